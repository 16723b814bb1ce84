"""Every command's `--help` and `--usage` as Slurm 22.05 prints them (the peer's captures,
help-COMMAND-help.txt and -usage.txt): Slurm's text whole, then slurmsky's own part where it
has one (what it does with each option of sbatch, srun and salloc; the scontrol commands it
supports), never instead of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from captures import read_capture

BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")
COMMANDS = ("sacct", "sacctmgr", "salloc", "sattach", "sbatch", "sbcast", "scancel", "scontrol",
            "sdiag", "sinfo", "sprio", "sreport", "squeue", "srun", "sshare")  # fmt: skip
OWN_PART = {"sbatch", "srun", "salloc", "scontrol"}  # Slurm's text, then slurmsky's


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ("help", "usage"))
def test_help_and_usage_are_slurms(tmp_path, command, kind):
    cap = read_capture(f"help-{command}-{kind}.txt")
    out = subprocess.run(
        [sys.executable, os.path.join(BIN, command), f"--{kind}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=dict(os.environ, SLURMSKY_HOME=str(tmp_path / "state"), HOME=str(tmp_path)),
    )
    assert (out.returncode, out.stderr) == (cap.exit, cap.stderr)
    if command in OWN_PART and len(out.stdout) > len(cap.stdout):
        assert out.stdout.startswith(cap.stdout)
        assert out.stdout[len(cap.stdout) :].startswith("slurmsky")
    else:
        assert out.stdout == cap.stdout


@pytest.mark.parametrize(
    "capture",
    sorted(
        p.name for p in (Path(__file__).parent / "fixtures" / "slurm-captures").glob("strigger-*")
    ),
)
def test_strigger_answers_as_the_peer(tmp_path, capture):
    """strigger as the peer answers root (triggers are SlurmUser's): none to get, none set."""
    cap = read_capture(capture)
    out = subprocess.run(
        [sys.executable, os.path.join(BIN, "strigger"), *cap.command.split()[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (out.stdout, out.stderr, out.returncode) == (cap.stdout, cap.stderr, cap.exit)
