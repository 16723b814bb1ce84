"""`slurmsky`: the tool's own commands (translate, config, agent, ...), on click."""

from __future__ import annotations

import os
import sys

import click

from slurmsky import backends
from slurmsky.config import dump_yaml
from slurmsky.errors import SlurmError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slurmsky")
def cli() -> None:
    """slurmsky: Slurm's commands over SkyPilot managed jobs and a local backend."""


for _backend in backends.every():  # each backend's own subcommands (sky: translate, sky-server)
    _backend.add_commands(cli)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str) -> None:
    """Print the shell's completion of the sbatch, srun and salloc options, from the option
    table: `source <(slurmsky completion bash)` (zsh: after compinit)."""
    from slurmsky.parse.completion import script

    click.echo(script(shell), nl=False)


@cli.command()
def config() -> None:
    """Print the effective configuration (file, defaults and SLURMSKY_BACKEND)."""
    from slurmsky.config import load_config

    try:
        cfg = load_config()
    except SlurmError as exc:
        exc.exit("slurmsky")
    click.echo(f"# {cfg.path}" + ("" if os.path.exists(cfg.path) else " (absent: defaults)"))
    click.echo(dump_yaml(cfg.as_dict()), nl=False)


@cli.command()
def doctor() -> None:
    """Check the setup: backend, configuration, state directory, agent, and the backend's
    own (sky: API server, enabled infra, partitions). A remedy follows each problem; exit 1
    if there is one."""
    from slurmsky.config import load_config
    from slurmsky.core import state
    from slurmsky.core.daemon import running_pid

    lines: list[tuple[str, str, str | None]] = []
    try:
        cfg = load_config()
    except SlurmError as exc:
        cfg = None
        lines.append(("config", str(exc), "fix the file (docs/configuration.md)"))
    backend = broken = None
    if cfg is not None:
        backend = backends.configured(cfg)
        broken = backend.unavailable()  # a missing dependency: what to install
        finding = cfg.backend + (f": {broken}" if broken else "")
        lines.append(("backend", finding, broken and "install what it names"))
        present = os.path.exists(cfg.path)
        lines.append(("config", cfg.path + ("" if present else " (absent: defaults)"), None))
    home = state.home()
    writable = os.access(home if os.path.isdir(home) else os.path.dirname(home), os.W_OK)
    lines.append(
        (
            "state dir",
            home + ("" if writable else ": not writable"),
            None if writable else "set SLURMSKY_HOME to a directory you can write",
        )
    )
    pid = running_pid()
    log = os.path.join(home, "agent.log")
    agent = f"running, pid {pid}" if pid else "not running (any command starts it when needed)"
    lines.append(("agent", f"{agent}; log {log}", None))
    if backend is not None and not broken:  # the backend's own checks need what it lacks
        lines += backend.doctor(cfg)
    problems = 0
    for what, finding, remedy in lines:
        click.echo(f"{what + ':':<12} {finding}")
        if remedy:
            problems += 1
            click.echo(f"{'':<12} remedy: {remedy}")
    click.echo(f"doctor: {problems or 'no'} problem{'' if problems == 1 else 's'}")
    sys.exit(1 if problems else 0)


@cli.group()
def agent() -> None:
    """The background agent that starts, watches and ends jobs (one per state directory).

    Any command that needs it starts it; it exits by itself when idle.
    """


@agent.command("status")
def agent_status() -> None:
    """Whether the agent runs, its pid, and how many jobs are pending or running."""
    from slurmsky.core import state
    from slurmsky.core.daemon import running_pid

    pid = running_pid()
    active = len(state.active_jobs(state.connect()))
    where = state.home()
    if pid is None:
        click.echo(f"agent: not running ({where}; {active} active jobs)")
        sys.exit(1)
    click.echo(f"agent: running, pid {pid} ({where}; {active} active jobs)")


@agent.command("stop")
def agent_stop() -> None:
    """Stop the agent. Running jobs go on; the next command's agent finds them again."""
    from slurmsky.core.daemon import STOP_WAIT, running_pid, stop

    pid = stop()
    if pid is not None and running_pid() == pid:
        click.echo(f"agent: pid {pid} did not stop within {STOP_WAIT:g} s", err=True)
        sys.exit(1)
    click.echo("agent: not running" if pid is None else f"agent: stopped pid {pid}")


@cli.command("db")
@click.argument("action", type=click.Choice(["init", "upgrade", "check"]))
def db(action: str) -> None:
    """The job state's database (the config's `state:`, or SLURMSKY_STATE): `init` makes
    slurmsky's schema in an empty PostgreSQL database, `upgrade` brings an older one to this
    slurmsky's, `check` says which it is (exit 1 unless current). SQLite's file needs none
    of them: any command makes and upgrades it."""
    from slurmsky.core import state

    where, version, said = state.administer(action)
    shown = "none" if version is None else str(version)
    click.echo(
        f"state: {where}: schema version {shown} (this slurmsky's: {state.SCHEMA_VERSION}); {said}"
    )
    sys.exit(0 if version == state.SCHEMA_VERSION else 1)


def main() -> None:
    from slurmsky.commands.common import run

    run("slurmsky", lambda argv: cli.main(argv, prog_name="slurmsky"))
