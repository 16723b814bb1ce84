"""-C/--constraint on the local backend: a feature no node of the partition has is refused
as slurmctld refuses it (the peer's nodes have none: its answer for `--constraint=gpu80`,
tests/corpus/expected/117-*-verdict.txt), before the job takes an id; a partition's
`features` are what its nodes have."""

from __future__ import annotations


def test_unknown_feature_is_refused_by_each_command_and_nothing_stored(cluster):
    for command, line in (
        (
            ["sbatch", "-C", "invalid", "--wrap", "true"],
            "sbatch: error: Batch job submission failed: ",
        ),
        (["sbatch", "--test-only", "-C", "gpu80", "--wrap", "true"], "allocation failure: "),
        (["srun", "-C", "invalid", "true"], "srun: error: Unable to allocate resources: "),
        (["salloc", "-C", "a&b", "true"], "salloc: error: Job submit/allocate failed: "),
        (["sbatch", "--wrap", "true"], "sbatch: error: Batch job submission failed: "),
    ):
        got = cluster.run(*command, env={"SBATCH_CONSTRAINT": "x"})
        assert (got.stdout, got.stderr, got.returncode) == (
            "",
            line + "Invalid feature specification\n",
            1,
        ), command
    assert not cluster.has_state() or cluster.jobs() == []


def test_features_of_the_partition_are_accepted(cluster):
    cluster.home.joinpath("slurmsky.yaml").write_text(
        "kill_wait: 1\npartitions:\n  debug: {default: true, features: [fast, big]}\n"
    )
    assert cluster.run("sbatch", "--hold", "-C", "fast&big*2", "--wrap", "true").returncode == 0
    assert cluster.run("sbatch", "--hold", "-C", "[fast|big]", "--wrap", "true").returncode == 0
    got = cluster.run("sbatch", "--hold", "-C", "fast|slow", "--wrap", "true")
    assert (got.stderr, got.returncode) == (
        "sbatch: error: Batch job submission failed: Invalid feature specification\n",
        1,
    )
