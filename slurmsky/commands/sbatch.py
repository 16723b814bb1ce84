"""sbatch: validate a batch script and its options, store the job, print its id."""

from __future__ import annotations

import os
import sys

from .. import SLURM_VERSION
from ..options import help_text
from ..request import build_batch_request, parse_command_line
from .common import run, warn

USAGE = "Usage: sbatch [OPTIONS(0)...] [ : [OPTIONS(N)...]] script(0) [args(0)...]"


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
    from ..submit import submit_batch

    return submit_batch(req)


def main() -> None:
    run("sbatch", body)
