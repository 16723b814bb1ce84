"""`slurmsky`: the tool's own commands (translate, config, agent, ...), on click."""

from __future__ import annotations

import json
import os
import sys

import click

from slurmsky.errors import SlurmError


def _fail(exc: SlurmError, prog: str = "slurmsky") -> None:
    sys.stderr.write(exc.render(prog))
    sys.exit(exc.exit_code)


def dump_yaml(data: dict) -> str:
    """YAML with multi-line strings (the run script) as readable `|` blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def str_block(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, str_block)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slurmsky")
def cli() -> None:
    """slurmsky: Slurm's commands over SkyPilot managed jobs and a local backend."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              help="Output format of the SkyPilot task.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def translate(fmt: str, args: tuple[str, ...]) -> None:
    """Print the SkyPilot task a batch script becomes.

    ARGS: SCRIPT [sbatch options] [-- script args], or sbatch's own order
    ([sbatch options] SCRIPT [script args]). Warnings go to stderr. The YAML runs as is
    with `sky jobs launch`.
    """
    from slurmsky.config import load_config
    from slurmsky.parse.request import build_batch_request, parse_command_line
    from slurmsky.plan.translate import translate as to_sky

    words = list(args)
    if words and not words[0].startswith("-"):
        script, opts = words[0], words[1:]
        script_args: list[str] = []
        if "--" in opts:
            cut = opts.index("--")
            opts, script_args = opts[:cut], opts[cut + 1:]
        words = opts + [script] + script_args
    try:
        cli_opts = parse_command_line("sbatch", words)
        req = build_batch_request(cli_opts, dict(os.environ), os.getcwd(),
                                  sys.stdin.buffer.read)
        result = to_sky(req, load_config())
    except SlurmError as exc:
        _fail(exc, "slurmsky translate")
    for line in req.warnings + result.warnings:
        sys.stderr.write(line + "\n")
    if fmt == "json":
        click.echo(json.dumps(result.task, indent=2))
    else:
        click.echo(dump_yaml(result.task), nl=False)


@cli.command()
def config() -> None:
    """Print the effective configuration (file, defaults and SLURMSKY_BACKEND)."""
    from slurmsky.config import load_config

    try:
        cfg = load_config()
    except SlurmError as exc:
        _fail(exc)
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


@cli.group("sky-server")
def sky_server() -> None:
    """A local SkyPilot API server for the sky backend (consolidation mode).

    The sky backend uses whatever server SkyPilot's configuration points at; this runs the
    local one (127.0.0.1, port $SKYPILOT_API_SERVER_LOCAL_PORT or 46580) with its state in
    $SLURMSKY_HOME/sky-server.
    """


@sky_server.command("start")
def sky_server_start() -> None:
    """Start it and wait until it answers (a first start can take a minute)."""
    from slurmsky.backends.sky import server as skyserver

    try:
        click.echo(skyserver.start())
    except SlurmError as exc:
        _fail(exc)


@sky_server.command("stop")
def sky_server_stop() -> None:
    """Stop the server started here, with its job controllers."""
    from slurmsky.backends.sky import server as skyserver

    click.echo(skyserver.stop())


@sky_server.command("status")
def sky_server_status() -> None:
    """Whether it runs and answers (exit 1 if not)."""
    from slurmsky.backends.sky import server as skyserver

    up, line = skyserver.status()
    click.echo(line)
    sys.exit(0 if up else 1)


def main() -> None:
    from slurmsky.commands.common import run

    run("slurmsky", lambda argv: cli.main(argv, prog_name="slurmsky"))
