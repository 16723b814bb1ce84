"""-w/--nodelist, -x/--exclude and --contiguous on the local backend, as the peer places them
(its nodes node1..4 are 127.0.0.1..4 here; each answer below was measured on the peer): the
job has the nodes asked, the rest taken from the first asked node up, then down; never an
excluded one; a name no node has is refused before the job takes an id."""

from __future__ import annotations

import pytest

N = [f"127.0.0.{k}" for k in range(1, 5)]
PRINT = "echo $SLURM_JOB_NODELIST $SLURM_NNODES $SLURM_TASKS_PER_NODE"


@pytest.mark.parametrize(
    "args, shown",
    [
        (["-w", f"{N[0]},{N[1]}"], "127.0.0.[1-2] 2 1(x2)"),
        (["-N3", "-w", N[1], "-x", N[2]], "127.0.0.[1-2,4] 3 1(x3)"),
        (["-N2", "-w", N[3]], "127.0.0.[3-4] 2 1(x2)"),
        (["-n3", "-w", "127.0.0.[2-3]"], "127.0.0.[2-3] 2 2,1"),
        (["-N2", "-x", f"{N[0]},{N[1]}"], "127.0.0.[3-4] 2 1(x2)"),
        (["-N3", "-w", N[2]], "127.0.0.[2-4] 3 1(x3)"),
        (["-N3", "-w", f"{N[0]},{N[3]}"], "127.0.0.[1-2,4] 3 1(x3)"),
    ],
)
def test_the_job_gets_the_nodes_asked_and_none_excluded(cluster, args, shown):
    got = cluster.run("sbatch", "-W", *args, "-o", "out", "--wrap", PRINT)
    assert got.returncode == 0, got.stderr
    assert (cluster.cwd / "out").read_text() == shown + "\n"


def test_fewer_tasks_than_listed_nodes_keep_the_first(cluster):
    got = cluster.run("sbatch", "-W", "-n1", "-w", "127.0.0.[2-3]", "-o", "out", "--wrap", PRINT)
    assert got.stderr == "sbatch: Warning: can't run 1 processes on 2 nodes, setting nnodes to 1\n"
    assert (cluster.cwd / "out").read_text() == "127.0.0.2 1 1\n"


def test_srun_cuts_a_list_longer_than_its_node_count(cluster):
    got = cluster.run("srun", "-N1", "-w", f"{N[0]},{N[1]}", "printenv", "SLURMD_NODENAME")
    assert (got.stdout, got.stderr, got.returncode) == (
        "127.0.0.1\n",
        "srun: error: Required nodelist includes more nodes than permitted by max-node count "
        "(2 > 1). Eliminating nodes from the nodelist.\n",
        0,
    )


def test_contiguous_takes_consecutive_nodes_around_a_busy_one(cluster):
    blocker = cluster.sbatch("-w", N[1], "--exclusive", "--wrap", "sleep 30")
    cluster.wait_for(lambda: cluster.job(blocker)[1] == "RUNNING", what="the blocker")
    for args, shown in ((["--contiguous"], "127.0.0.[3-4]"), ([], "127.0.0.[1,3]")):
        got = cluster.run("sbatch", "-W", "-N2", *args, "-o", "out", "--wrap", PRINT)
        assert got.returncode == 0, got.stderr
        assert (cluster.cwd / "out").read_text() == shown + " 2 1(x2)\n"
    cluster.run("scancel", str(blocker))


@pytest.mark.parametrize(
    "command, error",
    [
        (["sbatch", "-w", "nonode", "--wrap", "true"], "Invalid node name specified"),
        (["sbatch", "-x", "nonode", "--wrap", "true"], "Invalid node name specified"),
        (["sbatch", "-w", N[0], "-x", N[0], "--wrap", "true"], "Invalid node name specified"),
        (
            ["sbatch", "-N4", "-x", N[0], "--wrap", "true"],
            "Requested node configuration is not available",
        ),
    ],
)
def test_names_no_node_has_are_refused_and_nothing_stored(cluster, command, error):
    got = cluster.run(*command)
    assert (got.stdout, got.stderr, got.returncode) == (
        "",
        f"sbatch: error: Batch job submission failed: {error}\n",
        1,
    )
    assert not cluster.has_state() or all(row[1] == "FAILED" for row in cluster.jobs())


def test_sbatch_refuses_a_list_longer_than_its_node_count(cluster):
    got = cluster.run("sbatch", "-N1", "-w", f"{N[0]},{N[1]}", "--wrap", "true")
    assert (got.stderr, got.returncode) == ("sbatch: error: invalid number of nodes (-N 2-1)\n", 1)
    assert not cluster.has_state() or cluster.jobs() == []


def test_scontrol_shows_what_was_asked(cluster):
    job = cluster.sbatch(
        "--hold", "-w", N[1], "-x", N[3], "--contiguous", "--time-min=1", "-t5", "--wrap", "true"
    )
    shown = cluster.run("scontrol", "show", "job", str(job)).stdout
    for field in (
        f"ReqNodeList={N[1]} ExcNodeList={N[3]}",
        "TimeLimit=00:05:00 TimeMin=00:01:00",
        "Contiguous=1",
    ):
        assert field in shown
    cluster.run("scancel", str(job))


@pytest.mark.parametrize(
    "args", [["--deadline", "now+1hour", "--time-min", "120"], ["--time-min=10", "-t5"]]
)
def test_time_min_over_the_limit_is_refused(cluster, args):
    got = cluster.run("sbatch", *args, "--wrap", "true")
    assert (got.stderr, got.returncode) == (
        "sbatch: error: Batch job submission failed: Invalid time-min specification "
        "(exceeds job's time or other limits)\n",
        1,
    )


def test_on_the_sky_backend_a_node_name_is_refused_and_an_exclusion_said_ignored(cluster):
    (cluster.home / "slurmsky.yaml").write_text(
        "backend: sky\npartitions:\n  cloud: {default: true, infra: [aws/us-east-1]}\n"
    )
    got = cluster.run("sbatch", "-w", "node1", "--wrap", "true")
    assert (got.stderr, got.returncode) == (
        "sbatch: error: Batch job submission failed: Invalid node name specified\n",
        1,
    )
    assert not cluster.has_state() or cluster.jobs() == []
    got = cluster.run("sbatch", "--hold", "-x", "node13", "--wrap", "true")
    assert got.returncode == 0
    assert (
        "sbatch: warning: --exclude=node13 ignored by slurmsky: a SkyPilot node has no name "
        "before it is launched" in got.stderr.splitlines()
    )
