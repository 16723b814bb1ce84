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
def config() -> None:
    """Print the effective configuration (file, defaults and SLURMSKY_BACKEND)."""
    from slurmsky.config import load_config

    try:
        cfg = load_config()
    except SlurmError as exc:
        exc.exit("slurmsky")
    click.echo(f"# {cfg.path}" + ("" if os.path.exists(cfg.path) else " (absent: defaults)"))
    click.echo(dump_yaml(cfg.as_dict()), nl=False)


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
    from slurmsky.core.daemon import stop

    pid = stop()
    click.echo("agent: not running" if pid is None else f"agent: stopped pid {pid}")


def main() -> None:
    from slurmsky.commands.common import run

    run("slurmsky", lambda argv: cli.main(argv, prog_name="slurmsky"))
