"""sbatch on the local backend against real Slurm's captures: output, exit codes, what is stored."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from captures import read_capture

JOB = "#!/bin/bash\necho hi\n"


def normalise(text: str) -> str:
    return re.sub(r"\d+", "N", text)


@pytest.mark.parametrize(
    "capture",
    [
        "sbatch-basic.txt",
        "sbatch-parsable.txt",
        "sbatch-parsable-cluster.txt",
        "sbatch-cluster-noparsable.txt",
        "sbatch-clusters-long.txt",
        "sbatch-quiet.txt",
    ],
)
def test_submit_lines_match_slurm(cluster, capture):
    """The captures' -M names the peer's cluster: slurmsky's must be called so (sbatch
    refuses a cluster it does not know, as Slurm does)."""
    real = read_capture(capture)
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    config.write_text(config.read_text() + "cluster_name: peer\n")
    cluster.script("job.sh", JOB)
    got = cluster.run("sbatch", "--hold", *real.command.split()[1:])
    assert (normalise(got.stdout), got.stderr, got.returncode) == (
        normalise(real.stdout),
        real.stderr,
        real.exit,
    )


def test_parsable_array_prints_the_array_id(cluster):
    real = read_capture("sbatch-parsable-array.txt")
    first = cluster.run("sbatch", "--parsable", "--hold", "--array=1-3", "--wrap", "true")
    second = cluster.run("sbatch", "--hold", "--array=1-3", "--wrap", "true")
    assert normalise(first.stdout + second.stdout) == normalise(real.stdout)
    array_id = int(first.stdout)
    assert int(second.stdout.split()[-1]) == array_id + 3  # 3 elements consume 3 ids
    rows = cluster.jobs("array_job_id = ?", array_id)  # one record until elements start
    assert [r[0] for r in rows] == [array_id]
    assert rows[0][1:] == ("PENDING", None, None, "JobHeldUser")


def test_too_many_cpus_is_refused_and_recorded_failed(cluster):
    real = read_capture("sbatch-too-many-cpus.txt")
    cluster.script("job.sh", JOB)
    # more CPUs than a node has, not more than the partition's nodes have (-c 100000 pends,
    # PartitionConfig, as on the peer: compat case sbatch-beyond-partition-cpus)
    got = cluster.run("sbatch", "-c", str((os.cpu_count() or 1) + 1), "job.sh")
    assert (got.stdout, got.stderr, got.returncode) == (real.stdout, real.stderr, real.exit)
    assert cluster.jobs() == [(1, "FAILED", 1, 0, "BadConstraints")]
    assert cluster.sbatch("--hold", "job.sh") == 2  # the refused job consumed id 1


def test_gpus_are_refused_without_gpus(cluster):
    """A machine without GPUs (and no partition's `gpus`): refused as on a node without any."""
    got = cluster.run("sbatch", "--gres=gpu:1", "--wrap", "true", env={"CUDA_VISIBLE_DEVICES": ""})
    assert got.stderr == (
        "sbatch: error: Batch job submission failed: Requested node "
        "configuration is not available\n"
    )
    assert got.returncode == 1


def test_test_only_consumes_an_id_and_stores_nothing(cluster):
    cluster.script("job.sh", JOB)
    for args in (["--test-only"], ["--test-only", "--parsable"]):
        got = cluster.run("sbatch", *args, "job.sh")
        assert got.stdout == "" and got.returncode == 0
        assert re.fullmatch(
            r"sbatch: Job \d+ to start at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d using 1 "
            r"processors on nodes 127\.0\.0\.1 in partition local\n",
            got.stderr,
        )
    assert cluster.jobs() == []
    assert cluster.sbatch("--hold", "job.sh") == 3


def test_too_many_nodes_pends(cluster):
    """Real Slurm 22.05: `-N 5` on 4 nodes (of 4 CPUs: no more CPUs than they have) pends
    with the submit-time reason PartitionConfig,
    then, from the main scheduler's first pass (~1 s), PartitionNodeLimit; a held one shows
    JobHeldUser, one with a dependency PartitionConfig, then Dependency."""
    from slurmsky.core.scheduler import FIRST_PASS

    def submitted(*args):
        started = time.monotonic()
        job = cluster.sbatch(*args, "--wrap", "true")
        reason = cluster.run("squeue", "-h", "-j", str(job), "-o", "%t %r %D").stdout
        return job, reason, time.monotonic() - started < FIRST_PASS  # surely seen in time

    job, reason, in_time = submitted("-N", "5")
    if in_time:  # a loaded machine may take longer than the first pass
        assert reason == "PD PartitionConfig 5\n"
    held, reason, _ = submitted("-N", "5", "--hold")
    assert reason == "PD JobHeldUser 5\n"
    after, reason, in_time = submitted("-N", "5", "-d", f"afterok:{held}")
    if in_time:
        assert reason == "PD PartitionConfig 5\n"
    cluster.wait_for(lambda: cluster.job(job)[4] == "PartitionNodeLimit", 30, "the reason")
    cluster.wait_for(lambda: cluster.job(after)[4] == "Dependency", 30, "the reason")
    assert cluster.job(held)[4] == "JobHeldUser"


def test_more_memory_than_the_machine_is_refused(cluster):
    got = cluster.run("sbatch", "--mem=100T", "--wrap", "true")
    assert got.stderr == (
        "sbatch: error: Memory specification can not be satisfied\n"
        "sbatch: error: Batch job submission failed: Requested node "
        "configuration is not available\n"
    )
    assert got.returncode == 1
    assert cluster.jobs() == [(1, "FAILED", 1, 0, "BadConstraints")]


def test_ntasks_per_node_is_allocated_on_every_node(cluster):
    """Real Slurm 22.05 (compat case env-uneven-tasks): `-N2 -n3 --ntasks-per-node=2` gets
    2 tasks' CPUs on both nodes; `-N2 -n5 --ntasks-per-node=2` is refused (the id is used)."""
    cluster.script(
        "env.sh",
        "#!/bin/bash\nenv | grep -E '^SLURM_(NTASKS|TASKS_PER_NODE|"
        "JOB_CPUS_PER_NODE|NNODES)=' | sort\n",
    )
    job = cluster.sbatch("-N2", "-n3", "--ntasks-per-node=2", "env.sh")
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    assert (cluster.cwd / f"slurm-{job}.out").read_text() == (
        "SLURM_JOB_CPUS_PER_NODE=2(x2)\nSLURM_NNODES=2\nSLURM_NTASKS=3\n"
        "SLURM_TASKS_PER_NODE=2(x2)\n"
    )
    out = cluster.run("sbatch", "-N2", "-n5", "--ntasks-per-node=2", "env.sh")
    assert (out.returncode, out.stdout, out.stderr) == (
        1,
        "",
        "sbatch: error: Batch job submission failed: Requested node configuration is "
        "not available\n",
    )
    assert cluster.job(job + 1)[1:4] == ("FAILED", 1, 0)


def test_scontrol_shows_the_node_range_asked_while_pending(cluster):
    """Real Slurm 22.05 (compat cases env-nodes-range, scontrol-show-job-fields)."""

    def num_nodes(job):
        out = cluster.run("scontrol", "show", "job", str(job))
        return [w for w in out.stdout.split() if w.startswith("NumNodes=")]

    ranged = cluster.sbatch("-N", "1-2", "--hold", "--wrap", "true")
    exact = cluster.sbatch("-N2", "--hold", "--wrap", "true")
    plain = cluster.sbatch("-n2", "--hold", "--wrap", "true")
    assert [num_nodes(j) for j in (ranged, exact, plain)] == [
        ["NumNodes=1-2"],
        ["NumNodes=2-2"],
        ["NumNodes=1"],
    ]
    assert cluster.run("squeue", "-h", "-j", str(ranged), "-o", "%D").stdout == "1\n"
    assert cluster.run("scancel", str(exact)).returncode == 0
    assert num_nodes(exact) == ["NumNodes=2"]


def test_script_on_stdin_has_no_name_inside(cluster):
    """Real Slurm 22.05 (compat case sbatch-stdin): squeue/scontrol show `sbatch`, the job
    sees SLURM_JOB_NAME empty and its %x is `(null)`; with -J the job sees the name."""
    script = '#!/bin/bash\necho "name=$SLURM_JOB_NAME"\n'
    job = cluster.sbatch("-o", "o-%x-%j.txt", "--hold", input=script)
    assert cluster.run("squeue", "-h", "-j", str(job), "-o", "%j").stdout == "sbatch\n"
    assert cluster.run("scontrol", "release", str(job)).returncode == 0
    named = cluster.sbatch("-J", "given", input=script)
    cluster.wait_done(job, named)
    assert (cluster.cwd / f"o-(null)-{job}.txt").read_text() == "name=\n"
    assert (cluster.cwd / f"slurm-{named}.out").read_text() == "name=given\n"


@pytest.mark.parametrize("shebang", ["#!/bin/bash -l", "#!/usr/bin/env -S bash --login"])
def test_login_shell_script_keeps_the_jobs_srun(cluster, shebang):
    """Many site templates start `#!/bin/bash -l`: the login shell reads the profile, which
    here resets PATH (as /etc/profile does). srun and scontrol must still be the job's
    (this machine's /usr/bin/srun is a real Slurm's: reaching it would fail the step)."""
    (cluster.home / ".bash_profile").write_text("PATH=/usr/bin:/bin; export PATH\n")
    script = cluster.script(
        "login.sh",
        shebang + "\n"
        'case "$(command -v srun)" in */node0/bin/srun) echo "srun is the job\'s";; '
        '*) echo "srun is $(command -v srun)";; esac\n'
        'echo "${PATH##*:}"\n'
        "srun -n1 bash -c 'echo step $SLURM_STEP_ID'\n"
        "scontrol show job $SLURM_JOB_ID | grep -c JobState=RUNNING\n",
    )
    job = cluster.sbatch("-o", "out.txt", script)
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    assert (cluster.cwd / "out.txt").read_text() == "srun is the job's\n/bin\nstep 0\n1\n"
