"""srun and salloc outside a job on the local backend, against real Slurm's captures."""

from __future__ import annotations

import re
import shlex
import time

import pytest

from captures import read_capture


def normalise(text: str) -> list[str]:
    """Lines with node names and ids made comparable, in a fixed order (tasks interleave)."""
    text = re.sub(r"node\d+|127\.0\.0\.\d+", "NODE", text)
    text = re.sub(r"StepId=\d+", "StepId=N", text)
    return sorted(text.splitlines())


@pytest.mark.parametrize("capture", [
    "srun-exit7.txt", "srun-false.txt", "srun-mixed-exit.txt", "srun-nonexistent-cmd.txt",
    "srun-stdout-stderr.txt", "srun-quiet-unbuffered.txt",
])
def test_srun_matches_slurm(cluster, capture):
    real = read_capture(capture)
    inner = re.fullmatch(r"asuser '(.*)'", real.command).group(1)
    argv = shlex.split(inner.replace("\\$", "$"))  # the shell between unescapes \$
    assert argv[0] == "srun"
    got = cluster.run(*argv)
    assert (normalise(got.stdout), normalise(got.stderr), got.returncode) == (
        normalise(real.stdout), normalise(real.stderr), real.exit)


def test_srun_task_killed_by_a_signal(cluster):
    got = cluster.run("srun", "bash", "-c", "kill -9 $$")
    assert got.returncode == 137
    assert "srun: error: 127.0.0.1: task 0: Killed\n" in got.stderr


def test_srun_multi_node_labels(cluster):
    got = cluster.run("srun", "-N2", "-n4", "-l", "bash", "-c", "echo $SLURM_NODEID $SLURM_PROCID")
    assert sorted(got.stdout.splitlines()) == ["0: 0 0", "1: 0 1", "2: 1 2", "3: 1 3"]
    assert got.returncode == 0 and got.stderr == ""


def test_srun_refused_like_slurm(cluster):
    got = cluster.run("srun", "-c", "100000", "true")
    assert got.stderr == ("srun: error: CPU count per node can not be satisfied\n"
                          "srun: error: Unable to allocate resources: Requested node "
                          "configuration is not available\n")
    assert got.returncode == 1


def test_salloc_environment_and_steps(cluster):
    real = read_capture("salloc-env.txt")
    got = cluster.run("salloc", "-N2", "-n2", "bash", "-c",
                      "env | grep -E ^SLURM_ | sort; srun -l hostname")
    names = lambda text: sorted(line.split("=")[0] for line in text.splitlines() if "=" in line)
    absent_here = {"SLURM_CONF", "SLURM_JOB_ACCOUNT", "SLURM_JOB_QOS"}  # no slurm.conf, no QOS
    assert names(got.stdout) == [n for n in names(real.stdout) if n not in absent_here]
    assert "SLURM_JOB_NAME=interactive\n" in got.stdout
    assert "SLURM_JOB_NODELIST=127.0.0.[1-2]\n" in got.stdout
    assert sorted(line[:3] for line in got.stdout.splitlines() if line[1:3] == ": ") == ["0: ",
                                                                                       "1: "]
    job = int(re.search(r"Granted job allocation (\d+)", got.stderr).group(1))
    assert got.stderr == (f"salloc: Granted job allocation {job}\n"
                          f"salloc: Relinquishing job allocation {job}\n")
    assert got.returncode == 0
    assert cluster.job(job)[1:3] == ("COMPLETED", 0)


def test_salloc_exit_code_is_the_commands(cluster):
    got = cluster.run("salloc", "bash", "-c", "exit 3")
    assert got.returncode == 3
    job = int(re.search(r"allocation (\d+)", got.stderr).group(1))
    assert cluster.job(job)[1:3] == ("FAILED", 3)


def test_srun_waits_for_resources_until_cancelled(cluster, monkeypatch):
    import subprocess
    import sys

    from conftest import BIN
    from test_local_backend_jobs import use_state

    from slurmsky import control

    real = read_capture("srun-too-many-nodes.txt")
    conn = use_state(cluster, monkeypatch)
    srun = subprocess.Popen([sys.executable, str(BIN / "srun"), "-N99", "hostname"],
                            cwd=cluster.cwd, env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    job = cluster.wait_for(lambda: cluster.jobs("reason = 'PartitionNodeLimit'"), 30)[0][0]
    time.sleep(0.5)
    assert control.cancel(conn, control.select(conn, job, None)) == {}
    out, err = srun.communicate(timeout=30)
    assert (out, normalise(err), srun.returncode) == (
        real.stdout, normalise(re.sub(r"job \d+", f"job {job}", real.stderr)), real.exit)
