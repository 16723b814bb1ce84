"""The sky backend's subcommands of the `slurmsky` tool: translate, sky-server."""

from __future__ import annotations

import json
import os
import secrets
import sys

import click

from slurmsky.config import dump_yaml
from slurmsky.errors import SlurmError
from slurmsky.runtime.spec import SECRET_VAR


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    help="Output format of the SkyPilot task.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def translate(fmt: str, args: tuple[str, ...]) -> None:
    """Print the SkyPilot task a batch script becomes.

    ARGS: SCRIPT [sbatch options] [-- script args], or sbatch's own order
    ([sbatch options] SCRIPT [script args]). Warnings go to stderr. The YAML runs as is
    with `sky jobs launch` (an array: with `--num-jobs N`, as its first lines say); its
    `secrets` holds a fresh key for the job's step channel.
    """
    from slurmsky.backends.sky.task import translate as to_sky
    from slurmsky.config import load_config
    from slurmsky.parse.request import build_batch_request, parse_command_line

    words = list(args)
    if words and not words[0].startswith("-"):
        script, opts = words[0], words[1:]
        script_args: list[str] = []
        if "--" in opts:
            cut = opts.index("--")
            opts, script_args = opts[:cut], opts[cut + 1 :]
        words = opts + [script] + script_args
    try:
        cli_opts = parse_command_line("sbatch", words)
        req = build_batch_request(cli_opts, dict(os.environ), os.getcwd(), sys.stdin.buffer.read)
        cfg = load_config()
        for part in cfg.partitions.values():  # no agent reads the log of `sky jobs launch`
            part["files_home"] = False
        result = to_sky(req, cfg)
    except SlurmError as exc:
        exc.exit("slurmsky translate")
    from slurmsky.backends.sky.group import group_documents, group_tasks
    from slurmsky.backends.sky.price import estimate
    from slurmsky.backends.sky.task import task_notes

    group = group_tasks(result.task)
    first = group[0] if group else result.task
    pool = first["_metadata"]["slurmsky"].get("pool")
    notes = task_notes(req.workdir, first, result.spec, followed=False)
    notes += estimate(result.task, result.spec)[0]
    for line in req.warnings + result.warnings + tuple(notes):
        sys.stderr.write(line + "\n")
    secret = {SECRET_VAR: secrets.token_hex(32)}  # the step channel's (a job group's: all)
    task = dict(result.task, secrets=secret)
    notes = _keep_credentials_home(req.workdir, first)
    # what the script needs that the nodes lack (preflight.py), beside the lines it is about
    notes += [w.split(": warning: ", 1)[1] for w in result.warnings if ": warning: line " in w]
    if group:  # SkyPilot's job group: a header, then a task per component
        header, *tasks = group_documents(result.task)
        docs = [header] + [dict(t, secrets=secret) for t in tasks]
        notes.append(
            f"a heterogeneous job of {len(tasks)} components: one SkyPilot job group "
            "(sky jobs launch THIS_FILE)"
        )
        if fmt == "json":
            for note in notes:
                sys.stderr.write(f"slurmsky translate: {note}\n")
            click.echo(json.dumps(docs, indent=2))
        else:
            text = "---\n".join(dump_yaml(doc) for doc in docs)
            click.echo("".join(f"# {note}\n" for note in notes) + text, nl=False)
        return
    if req.array is not None:  # one launch of N managed jobs; the runtime maps rank -> index
        count = req.array.count
        notes.append(f"an array of {count}: sky jobs launch --num-jobs {count} THIS_FILE")
    if pool:
        notes.append(f"runs on a pool: sky jobs launch --pool {pool} THIS_FILE")
    if fmt == "json":
        for note in notes:
            sys.stderr.write(f"slurmsky translate: {note}\n")
        click.echo(json.dumps(task, indent=2))
    else:
        click.echo("".join(f"# {note}\n" for note in notes) + dump_yaml(task), nl=False)


def _keep_credentials_home(workdir: str, task: dict) -> list[str]:
    """As sbatch does (upload.exclude_credentials): the credentials in the workdir `sky jobs
    launch` would upload go into the block of its .skyignore, so SkyPilot leaves them home
    however the YAML is launched; the note that says so (none when there are none)."""
    from slurmsky.backends.sky import upload

    if "workdir" not in task or not os.path.isdir(workdir):  # not uploaded
        return []
    up = upload.plan(workdir)
    try:
        upload.exclude_credentials(up)
    except SlurmError as exc:
        exc.exit("slurmsky translate")
    if not up.left_out:
        return []
    return [
        f"credentials stay home: {os.path.join(up.root, upload.SKYIGNORE)} lists them for "
        "SkyPilot (" + " ".join(up.left_out) + "); launch from this workdir with it"
    ]


@click.group("sky-server")
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
        exc.exit("slurmsky")


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


@click.group("pool")
def pool() -> None:
    """The SkyPilot pool of a partition that has one (partitions.NAME.pool in the config):
    warm workers its jobs run on without provisioning."""


def _pool_call(fn, partition: str, making: bool = False):
    """fn(config, partition, server) once the partition has a pool and its server answers:
    the server this command names when `making` the pool, else the one the pool was made
    on (recorded by `pool up`; this command's if none was). Slurm-style errors (exit 1),
    the server's as sbatch and srun say it."""
    from slurmsky.backends.sky import client, pools, server
    from slurmsky.config import load_config

    try:
        cfg = load_config()
        name, _ = pools.named_pool(cfg, partition)
        where = (None if making else pools.server_of(name)) or server.current()
        if server.health(where.name, timeout=10) is None:  # SkyPilot's own: 4 tries of 2.5 s
            raise SlurmError(server.unreachable_message(where.name))
        try:
            return fn(cfg, partition, where)
        except Exception as exc:
            if client.connection_error(exc):  # it stopped answering (a busy server: slowly)
                raise SlurmError(server.unreachable_message(where.name)) from None
            raise
    except SlurmError as exc:
        exc.exit("slurmsky pool")


@pool.command("up")
@click.argument("partition")
def pool_up(partition: str) -> None:
    """Create the partition's pool (or apply its config again) on the SkyPilot server this
    command names, and wait for the request; the partition's jobs go to that server."""
    from slurmsky.backends.sky import pools

    click.echo(_pool_call(pools.up, partition, making=True))


@pool.command("down")
@click.argument("partition")
def pool_down(partition: str) -> None:
    """Take the partition's pool and its workers down (on the server it was made on)."""
    from slurmsky.backends.sky import pools

    click.echo(_pool_call(pools.down, partition))


@pool.command("status")
@click.argument("partition")
def pool_status(partition: str) -> None:
    """The pool's status and each worker's (on the server it was made on)."""
    from slurmsky.backends.sky import pools

    for line in _pool_call(pools.status, partition):
        click.echo(line)
