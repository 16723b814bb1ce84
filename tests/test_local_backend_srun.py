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


def test_srun_own_allocation_task_env(cluster):
    """srun-task-env / srun-mem: the tasks of an srun that made its own allocation get
    SLURM_LABELIO with -l, and none of what a batch script or a step inside an allocation
    gets: SLURM_DISTRIBUTION (unless memory was asked for), ..._PACK_GROUP_0,
    SLURM_NODE_ALIASES, SLURM_MEM_PER_NODE/CPU."""
    probe = ('echo "${SLURM_LABELIO-unset} ${SLURM_DISTRIBUTION-unset} '
             '${SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0-unset} ${SLURM_NODE_ALIASES-unset} '
             '${SLURM_MEM_PER_NODE-unset} ${SLURM_MEM_PER_CPU-unset} ${ENVIRONMENT-unset}"')
    got = cluster.run("srun", "-N2", "-n2", "-l", "bash", "-c", probe)
    assert sorted(got.stdout.splitlines()) == [
        "0: 1 unset unset unset unset unset unset", "1: 1 unset unset unset unset unset unset"]
    got = cluster.run("srun", "--mem=200", "bash", "-c", probe)
    assert got.stdout == "unset cyclic unset unset unset unset unset\n"
    got = cluster.run("srun", "--mincpus=2", "bash", "-c", 'echo "$SLURM_CPUS_ON_NODE"')
    assert got.stdout == "2\n"


def test_srun_export_none_leaves_no_path(cluster):
    """srun-export: --export=NONE gives the tasks SLURM_* only: without PATH, `bash` is not
    found (slurmstepd's execve message, exit 2); --export=ALL,BAR=bar adds BAR."""
    got = cluster.run("srun", "--export=NONE", "bash", "-c", "echo hi", env={"FOO": "foo1"})
    assert (got.stdout, got.returncode) == ("", 2)
    assert sorted(got.stderr.splitlines()) == [
        "slurmstepd-127.0.0.1: error: execve(): bash: No such file or directory",
        "srun: error: 127.0.0.1: task 0: Exited with exit code 2"]
    got = cluster.run("srun", "--export=NONE", "/usr/bin/env", env={"FOO": "foo1"})
    names = {line.split("=")[0] for line in got.stdout.splitlines()}
    assert "TMPDIR" in names and not names & {"PATH", "FOO", "HOME", "USER", "SHELL"}
    assert not names & {"SLURM_EXPORT_ENV", "SLURM_GET_USER_ENV"}  # sbatch's, not srun's
    got = cluster.run("srun", "--export=ALL,BAR=bar", "bash", "-c", 'echo "$FOO $BAR"',
                      env={"FOO": "foo1"})
    assert got.stdout == "foo1 bar\n"


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


def test_squeue_steps_lists_running_srun_steps(cluster):
    """squeue-steps: `squeue -s` lists a running job's srun steps (named as sacct names them)
    before its batch step, as slurmctld orders step ids."""
    name = cluster.script("steps.sh", "#!/bin/bash\nsrun -J inner bash -c "
                          "'touch started; while [ ! -e go ]; do sleep 0.1; done'\n")
    job = cluster.sbatch("-J", "sq-steps", name)
    cluster.wait_for(lambda: (cluster.cwd / "started").exists(), what="the step to start")
    got = cluster.run("squeue", "-h", "-s", "-o", "%i %j %N")
    (cluster.cwd / "go").touch()
    assert got.stdout == f"{job}.0 inner 127.0.0.1\n{job}.batch batch 127.0.0.1\n"
    cluster.wait_done(job)
