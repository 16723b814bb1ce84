"""sbatch: validate a batch script and its options, store the job, print its id."""

from __future__ import annotations

import os
import sys

from slurmsky import SLURM_VERSION
from slurmsky.commands.common import auth_lines, plugin_lines, propagating_lines, run, warn
from slurmsky.parse.options import help_text
from slurmsky.parse.request import build_batch_request, parse_command_line

# `sbatch --usage`: Slurm 22.05's synopsis, verbatim.
USAGE = """\
Usage: sbatch [-N nnodes] [-n ntasks]
              [-c ncpus] [-r n] [-p partition] [--hold] [--parsable] [-t minutes]
              [-D path] [--no-kill] [--overcommit]
              [--input file] [--output file] [--error file]
              [--time-min=minutes] [--licenses=names] [--clusters=cluster_names]
              [--chdir=directory] [--oversubscribe] [-m dist] [-J jobname]
              [--verbose] [--gid=group] [--uid=user]
              [--contiguous] [--mincpus=n] [--mem=MB] [--tmp=MB] [-C list]
              [--account=name] [--dependency=type:jobid[+time]] [--comment=name]
              [--mail-type=type] [--mail-user=user] [--nice[=value]] [--wait]
              [--requeue] [--no-requeue] [--ntasks-per-node=n] [--propagate]
              [--nodefile=file] [--nodelist=hosts] [--exclude=hosts]
              [--network=type] [--mem-per-cpu=MB] [--qos=qos] [--gres=list]
              [--mem-bind=...] [--reservation=name] [--mcs-label=mcs]
              [--cpu-freq=min[-max[:gov]]] [--power=flags] [--gres-flags=opts]
              [--switches=max-switches{@max-time-to-wait}] [--reboot]
              [--core-spec=cores] [--thread-spec=threads]
              [--bb=burst_buffer_spec] [--bbf=burst_buffer_file]
              [--array=index_values] [--profile=...] [--ignore-pbs] [--spread-job]
              [--export[=names]] [--export-file=file|fd] [--delay-boot=mins]
              [--use-min-nodes]
              [--cpus-per-gpu=n] [--gpus=n] [--gpu-bind=...] [--gpu-freq=...]
              [--gpus-per-node=n] [--gpus-per-socket=n] [--gpus-per-task=n]
              [--mem-per-gpu=MB]
              executable [args...]"""


def body(argv: list[str]) -> int:
    cli = parse_command_line("sbatch", argv)
    if cli.values.get("help"):
        print(help_text("sbatch"))
        return 0
    if cli.values.get("usage"):
        print(USAGE)
        return 0
    if cli.values.get("version"):
        print(f"slurm-wlm {SLURM_VERSION}")
        return 0
    req = build_batch_request(cli, dict(os.environ), os.getcwd(), sys.stdin.buffer.read)
    warn(req.warnings)
    if req.verbose:
        from slurmsky.runtime.options import defined_block

        debug = req.verbose >= 2  # -vv
        warn(
            defined_block("sbatch", req.set_options)
            + (propagating_lines("sbatch") if debug else [])
            + plugin_lines("sbatch")
            + (auth_lines("sbatch") if debug else [])
        )
    from slurmsky.core.submit import submit_batch

    return submit_batch(req)


def main() -> None:
    run("sbatch", body)
