"""sbatch on the local backend against real Slurm's captures: output, exit codes, what is stored."""

from __future__ import annotations

import re

import pytest

from captures import read_capture

JOB = "#!/bin/bash\necho hi\n"


def normalise(text: str) -> str:
    return re.sub(r"\d+", "N", text)


@pytest.mark.parametrize("capture", [
    "sbatch-basic.txt", "sbatch-parsable.txt", "sbatch-parsable-cluster.txt",
    "sbatch-cluster-noparsable.txt", "sbatch-clusters-long.txt", "sbatch-quiet.txt",
])
def test_submit_lines_match_slurm(cluster, capture):
    real = read_capture(capture)
    cluster.script("job.sh", JOB)
    got = cluster.run("sbatch", "--hold", *real.command.split()[1:])
    assert (normalise(got.stdout), got.stderr, got.returncode) == (
        normalise(real.stdout), real.stderr, real.exit)


def test_parsable_array_prints_the_array_id(cluster):
    real = read_capture("sbatch-parsable-array.txt")
    first = cluster.run("sbatch", "--parsable", "--hold", "--array=1-3", "--wrap", "true")
    second = cluster.run("sbatch", "--hold", "--array=1-3", "--wrap", "true")
    assert normalise(first.stdout + second.stdout) == normalise(real.stdout)
    array_id = int(first.stdout)
    assert int(second.stdout.split()[-1]) == array_id + 3  # 3 elements consume 3 ids
    rows = cluster.jobs("array_job_id = ?", array_id)
    assert sorted(r[0] for r in rows) == [array_id, array_id + 1, array_id + 2]
    assert all(r[1:] == ("PENDING", None, None, "JobHeldUser") for r in rows)


def test_too_many_cpus_is_refused_and_recorded_failed(cluster):
    real = read_capture("sbatch-too-many-cpus.txt")
    cluster.script("job.sh", JOB)
    got = cluster.run("sbatch", "-c", "100000", "job.sh")
    assert (got.stdout, got.stderr, got.returncode) == (real.stdout, real.stderr, real.exit)
    assert cluster.jobs() == [(1, "FAILED", 1, 0, "BadConstraints")]
    assert cluster.sbatch("--hold", "job.sh") == 2  # the refused job consumed id 1


def test_gpus_are_refused_locally(cluster):
    got = cluster.run("sbatch", "--gres=gpu:1", "--wrap", "true")
    assert got.stderr == ("sbatch: error: Batch job submission failed: Requested node "
                          "configuration is not available\n")
    assert got.returncode == 1


def test_test_only_consumes_an_id_and_stores_nothing(cluster):
    cluster.script("job.sh", JOB)
    for args in (["--test-only"], ["--test-only", "--parsable"]):
        got = cluster.run("sbatch", *args, "job.sh")
        assert got.stdout == "" and got.returncode == 0
        assert re.fullmatch(r"sbatch: Job \d+ to start at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d using 1 "
                            r"processors on nodes 127\.0\.0\.1 in partition local\n", got.stderr)
    assert cluster.jobs() == []
    assert cluster.sbatch("--hold", "job.sh") == 3


def test_too_many_nodes_pends(cluster):
    """Real Slurm 22.05: `-N 5` on 4 nodes pends with the submit-time reason PartitionConfig,
    then, from the main scheduler's first pass (~1 s), PartitionNodeLimit; a held one shows
    JobHeldUser, one with a dependency PartitionConfig, then Dependency."""
    job = cluster.sbatch("-N", "99", "--wrap", "true")
    held = cluster.sbatch("-N", "99", "--hold", "--wrap", "true")
    after = cluster.sbatch("-N", "99", "-d", f"afterok:{held}", "--wrap", "true")
    out = cluster.run("squeue", "-h", "-o", "%i %t %r %D")
    assert out.stdout == (f"{job} PD PartitionConfig 99\n{after} PD PartitionConfig 99\n"
                          f"{held} PD JobHeldUser 99\n")
    cluster.wait_for(lambda: cluster.job(job)[4] == "PartitionNodeLimit", 30, "the reason")
    cluster.wait_for(lambda: cluster.job(after)[4] == "Dependency", 30, "the reason")
    assert cluster.job(held)[4] == "JobHeldUser"


def test_more_memory_than_the_machine_is_refused(cluster):
    got = cluster.run("sbatch", "--mem=100T", "--wrap", "true")
    assert got.stderr == ("sbatch: error: Memory specification can not be satisfied\n"
                          "sbatch: error: Batch job submission failed: Requested node "
                          "configuration is not available\n")
    assert got.returncode == 1
    assert cluster.jobs() == [(1, "FAILED", 1, 0, "BadConstraints")]
