"""salloc: get an allocation, run a command (default $SHELL) here with its SLURM_* variables.

The allocation is a job record whose script writes the job's environment for salloc to
read, then waits on a FIFO for the command's exit code, which becomes the job's. On a
backend whose allocations are held elsewhere (REMOTE_ALLOCATION: a SkyPilot cluster) the
script never runs here: the variables come from the backend once the nodes are up (Slurm's
`Waiting for resource configuration` while they boot), and the exit code goes back through
the state (`relinquish`). `srun` in the command runs steps in the allocation (see srun.py).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

from slurmsky import SLURM_VERSION
from slurmsky.commands.common import run, warn
from slurmsky.errors import SlurmError
from slurmsky.parse.options import help_text
from slurmsky.parse.request import build_step_request, parse_command_line

# `salloc --usage`: Slurm 22.05's synopsis, verbatim.
USAGE = """\
Usage: salloc [-N numnodes|[min nodes]-[max nodes]] [-n num-processors]
              [-c cpus-per-node] [-r n] [-p partition] [--hold] [-t minutes]
              [--immediate[=secs]] [--no-kill] [--overcommit] [-D path]
              [--oversubscribe] [-J jobname]
              [--verbose] [--gid=group] [--uid=user] [--licenses=names]
              [--clusters=cluster_names]
              [--contiguous] [--mincpus=n] [--mem=MB] [--tmp=MB] [-C list]
              [--account=name] [--dependency=type:jobid[+time]] [--comment=name]
              [--mail-type=type] [--mail-user=user] [--nice[=value]]
              [--bell] [--no-bell] [--kill-command[=signal]] [--spread-job]
              [--nodefile=file] [--nodelist=hosts] [--exclude=hosts]
              [--network=type] [--mem-per-cpu=MB] [--qos=qos]
              [--mem-bind=...] [--reservation=name] [--mcs-label=mcs]
              [--time-min=minutes] [--gres=list] [--gres-flags=opts]
              [--cpu-freq=min[-max[:gov]]] [--power=flags] [--profile=...]
              [--switches=max-switches[@max-time-to-wait]]
              [--core-spec=cores] [--thread-spec=threads] [--reboot]
              [--bb=burst_buffer_spec] [--bbf=burst_buffer_file]
              [--delay-boot=mins] [--use-min-nodes]
              [--cpus-per-gpu=n] [--gpus=n] [--gpu-bind=...] [--gpu-freq=...]
              [--gpus-per-node=n] [--gpus-per-socket=n] [--gpus-per-task=n]
              [--mem-per-gpu=MB]
              [command [args...]]"""
SCRIPT = '#!/bin/bash\nenv -0 > "$1.tmp" && mv "$1.tmp" "$1"\nexit $(cat "$2")\n'
# --no-shell: nothing will hand an exit code back (salloc is gone, its directory with it);
# the allocation holds its nodes until scancel or its time limit, as on Slurm.
NO_SHELL_SCRIPT = (
    '#!/bin/bash\nenv -0 > "$1.tmp" && mv "$1.tmp" "$1"\nwhile :; do sleep 3600; done\n'
)
# Variables of the batch shell's own process, not of the allocation: salloc does not set them.
PROCESS_VARS = {
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NODEID",
    "SLURM_GTIDS",
    "SLURM_TASK_PID",
    "SLURM_CPUS_ON_NODE",
    "SLURM_TOPOLOGY_ADDR",
    "SLURM_TOPOLOGY_ADDR_PATTERN",
    "SLURM_PRIO_PROCESS",
    "SLURM_JOB_UID",
    "SLURM_JOB_GID",
    "SLURM_JOB_USER",
    "SLURMD_NODENAME",
    "SLURM_UMASK",
    "SLURM_GPUS_ON_NODE",
    "SLURM_JOB_GPUS",
}
END_WAIT = 30  # s for the allocation to end once released
REMOTE_END_WAIT = 120  # s for one held elsewhere (its cluster going down) to end


def body(argv: list[str]) -> int:
    cli = parse_command_line("salloc", argv)
    for flag, text in (
        ("help", help_text("salloc")),
        ("usage", USAGE),
        ("version", f"slurm-wlm {SLURM_VERSION}"),
    ):
        if cli.values.get(flag):
            print(text)
            return 0
    req = build_step_request("salloc", cli, dict(os.environ), os.getcwd())
    warn(req.warnings)
    from slurmsky import backends
    from slurmsky.config import load_config

    backend = backends.configured(load_config())
    backend.require(backends.Feature.INTERACTIVE)  # else no shell here reaches its nodes
    command = list(req.script_args) or [os.environ.get("SHELL") or "/bin/sh"]
    try:  # -D: salloc itself moves there first, so the command runs there (Slurm does too)
        os.chdir(req.workdir)
    except OSError as exc:
        raise SlurmError(f"chdir({req.workdir}): {exc.strerror}") from None
    from slurmsky.core.allocation import Allocation

    remote = backend.supports(backends.Feature.REMOTE_ALLOCATION)
    with Allocation("salloc") as alloc:
        env_file, release = os.path.join(alloc.dir, "env"), os.path.join(alloc.dir, "release")
        if not remote:
            os.mkfifo(release, 0o600)
        alloc.submit(
            req,
            NO_SHELL_SCRIPT if req.no_shell or remote else SCRIPT,
            [] if remote else [env_file, release],
            output=False,
            watch=not req.no_shell,  # --no-shell: the allocation outlives salloc
        )
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # revoked while it waits
            signal.signal(sig, lambda *_: alloc.cancel())
        if remote:
            variables = _remote_env(alloc, backend)
        else:
            variables = _allocation_env(alloc, env_file)
        if variables is None:
            ended = alloc.record()
            if ended.start_time is None or ended.state == "DEADLINE":  # ended before it ran
                raise SlurmError(
                    "salloc: Job has been cancelled",
                    *(
                        [f"salloc: Job allocation {alloc.job_id} has been revoked."]
                        if ended.state == "DEADLINE"
                        else []
                    ),
                    "salloc: error: Job submit/allocate failed: Job/step already "
                    "completing or completed",
                    bare=True,
                )
            sys.stderr.write(f"salloc: error: Job allocation {alloc.job_id} has been revoked.\n")
            return 1
        if not remote:
            alloc.info(f"Granted job allocation {alloc.job_id}")
        if req.no_shell:
            return 0
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command
        try:
            rc = subprocess.call(command, env={**os.environ, **variables})
        except OSError:  # no such command, or not one that runs
            sys.stderr.write(
                f'salloc: error: _fork_command: Unable to find command "{command[0]}"\n'
            )
            rc = 1
        rc = 128 - rc if rc < 0 else rc
        alloc.info(f"Relinquishing job allocation {alloc.job_id}")
        if remote:
            alloc.relinquish(rc & 0xFF, REMOTE_END_WAIT)
        else:
            _release(alloc, release, rc)
        return rc


def _allocation_env(alloc, env_file: str) -> dict | None:
    """The allocation's SLURM_* variables, once its script has written them (None: it ended)."""
    alloc.wait_started(pending_line=True)
    while not os.path.exists(env_file):
        if alloc.record().finished:
            return None
        time.sleep(0.02)
    with open(env_file, "rb") as fh:
        pairs = [item.decode().partition("=") for item in fh.read().split(b"\0") if item]
    return _allocation_vars({k: v for k, _, v in pairs})


def _remote_env(alloc, backend) -> dict | None:
    """The variables of an allocation held elsewhere, once its nodes are up (None: it ended
    or is being ended first); salloc says what Slurm's does while cloud nodes boot."""
    rec = alloc.wait_started(pending_line=True)
    if rec.start_time is None or rec.finished:
        return None
    alloc.info(f"Granted job allocation {alloc.job_id}")
    if rec.state == "CONFIGURING":
        alloc.info("Waiting for resource configuration")
        rec = alloc.wait_configured()
    if rec.state != "RUNNING" or rec.kill_action:
        return None
    alloc.info(f"Nodes {rec.nodelist} are ready for job")
    return _allocation_vars(backend.allocation_env(alloc.conn, rec))


def _allocation_vars(environ: dict) -> dict:
    """What salloc takes of the allocation's batch environment: its SLURM_* variables, not
    those of the batch shell's own process."""
    return {
        k: v
        for k, v in environ.items()
        if k.startswith(("SLURM_", "SLURMD_")) and k not in PROCESS_VARS
    }


def _release(alloc, release: str, rc: int) -> None:
    """Hand the exit code to the allocation's script, which ends with it; wait (bounded).

    The script may not be reading the FIFO yet (ENXIO): try again while the job runs."""
    deadline = time.monotonic() + END_WAIT
    while not alloc.record().finished and time.monotonic() < deadline:
        try:
            fd = os.open(release, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            time.sleep(0.02)
            continue
        os.write(fd, f"{rc & 0xFF}\n".encode())
        os.close(fd)
        break
    else:
        alloc.cancel()  # its script did not take the exit code: end it the hard way
    while not alloc.record().finished and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    run("salloc", body)
