"""slurmsky installed beside a real Slurm (a venv a real cluster's job activates): inside the
real cluster's job every slurmsky command steps aside for the real one, so `scontrol requeue
$SLURM_JOB_ID` (Lightning's auto-requeue, submitit's checkpointing) requeues on the real
cluster. Run inside a job of the Slurm 22.05 peer (skipped when it is down)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")
REAL = "/usr/bin"


def _real(*args: str) -> str:
    return subprocess.run(
        [f"{REAL}/{args[0]}", *args[1:]], capture_output=True, text=True, timeout=30
    ).stdout


@pytest.mark.peer
def test_inside_a_real_job_the_real_commands_answer(tmp_path):
    if not os.access(f"{REAL}/scontrol", os.X_OK) or "UP" not in _real("scontrol", "ping"):
        pytest.skip("the Slurm peer is not up")
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"export PATH={BIN}:{os.path.dirname(sys.executable)}:/usr/bin:/bin\n"
        f"export SLURMSKY_HOME={tmp_path}/state SLURMSKY_CONFIG={tmp_path}/none.yaml\n"
        'squeue -h -j "$SLURM_JOB_ID" -o "%i %T"\n'
        'scontrol show job "$SLURM_JOB_ID" | head -1 | cut -d" " -f1\n'
        'scontrol requeue "$SLURM_JOB_ID"; echo "requeue $?"\n'
        "sleep 60\n"
    )
    out = _real("sbatch", "--parsable", "-J", "slurmsky-step-aside", "-o", f"{tmp_path}/out.txt",
                "--open-mode=append", str(script))  # fmt: skip
    job = out.strip().split(";")[0]
    try:
        deadline = time.monotonic() + 60
        text = ""
        while "requeue" not in text and time.monotonic() < deadline:
            time.sleep(0.5)
            text = (tmp_path / "out.txt").read_text() if (tmp_path / "out.txt").exists() else ""
        assert text.startswith(f"{job} RUNNING\nJobId={job}\nrequeue 0\n"), text
        shown = _real("scontrol", "show", "job", job)
        assert re.search(r"Restarts=1\b", shown), shown
        assert not (tmp_path / "state").exists()  # slurmsky's own state was never made
    finally:
        _real("scancel", job)


def test_every_command_steps_aside_in_another_clusters_job(cluster, tmp_path):
    """A fake real Slurm next on PATH: in a job of cluster `other` each command is the real
    one, with its arguments; in slurmsky's own cluster's job (or none), slurmsky answers."""
    real = tmp_path / "real"
    real.mkdir()
    commands = ("sbatch", "squeue", "scancel", "sacct", "scontrol", "sinfo", "sstat", "sprio")
    for name in commands:
        (real / name).write_text(f'#!/bin/sh\necho "real {name}: $*"\n')
        (real / name).chmod(0o755)
    path = f"{cluster.env['PATH'].split(':')[0]}:{real}:/usr/bin:/bin"
    foreign = {"SLURM_JOB_ID": "77", "SLURM_CLUSTER_NAME": "other", "PATH": path}
    for name in commands:
        got = cluster.run(name, "-h", "x y", env=foreign)
        assert (got.stdout, got.returncode) == (f"real {name}: -h x y\n", 0)
    own = dict(foreign, SLURM_CLUSTER_NAME="slurmsky")
    got = cluster.run("scontrol", "show", "job", "77", env=own)
    assert (got.stderr, got.returncode) == (
        "slurm_load_jobs error: Invalid job id specified\n",
        1,
    )
