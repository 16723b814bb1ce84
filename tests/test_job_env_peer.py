"""The batch environment of jobs written as public scripts write them, against the values the
Slurm 22.05 peer gave for the same submissions (4-CPU nodes; captured side by side)."""

from __future__ import annotations

import pytest

PROBE = (
    "env | grep -E '^SLURM_(ARRAY_TASK_(STEP|COUNT|MIN|MAX)|JOB_DEPENDENCY|MEM_PER_(NODE|CPU)|"
    "CPUS_ON_NODE|JOB_CPUS_PER_NODE|TASKS_PER_NODE|NTASKS)=' | sort"
)
PEER_NODES = (
    "kill_wait: 1\npartitions:\n  debug: {default: true, cpus_per_node: 4, mem_per_node: 4000}\n"
)


def _run(cluster, *args: str) -> str:
    job = cluster.sbatch("-o", "out-%A_%a.txt", *args, "--wrap", PROBE)
    cluster.wait_done(job)
    outs = sorted(cluster.cwd.glob(f"out-{job}_*.txt"))
    return "".join(p.read_text() for p in outs)


@pytest.mark.parametrize(
    "spec,step,count,last",
    [("1,6,7,12", 1, 4, 12), ("3,5-9", 1, 6, 9), ("0-10:5,20", 5, 4, 20), ("0-4:2,5", 2, 4, 5)],
)
def test_array_step_is_the_first_items_stride(cluster, spec, step, count, last):
    (cluster.home / "slurmsky.yaml").write_text(PEER_NODES)  # nodes of the peer's shape
    got = _run(cluster, f"--array={spec}", "--mem-per-cpu=100")
    first = got.split("SLURM_TASKS_PER_NODE=1\n")[0]
    assert f"SLURM_ARRAY_TASK_STEP={step}\n" in first
    assert f"SLURM_ARRAY_TASK_COUNT={count}\n" in first
    assert f"SLURM_ARRAY_TASK_MAX={last}\n" in first


def test_dependency_mem0_and_exclusive(cluster):
    (cluster.home / "slurmsky.yaml").write_text(PEER_NODES)
    first = cluster.sbatch("--wrap", "true")
    cluster.wait_done(first)
    assert _run(cluster, f"--dependency=afterok:{first}:{first}?afterany:{first}") == (
        "SLURM_CPUS_ON_NODE=1\n"
        f"SLURM_JOB_CPUS_PER_NODE=1\nSLURM_JOB_DEPENDENCY=afterok:{first}:{first}"
        f"?afterany:{first}\nSLURM_TASKS_PER_NODE=1\n"
    )
    assert _run(cluster, "-d", f"afterok:{first}:{first},afterany:{first}") == (
        "SLURM_CPUS_ON_NODE=1\n"
        f"SLURM_JOB_CPUS_PER_NODE=1\nSLURM_JOB_DEPENDENCY=afterok:{first}:{first},afterany:"
        f"{first}\nSLURM_TASKS_PER_NODE=1\n"
    )
    # --mem=0: the whole node, and neither SLURM_MEM_PER_NODE nor _PER_CPU (peer: mem0)
    assert _run(cluster, "--mem=0") == (
        "SLURM_CPUS_ON_NODE=1\nSLURM_JOB_CPUS_PER_NODE=1\nSLURM_TASKS_PER_NODE=1\n"
    )
    # --exclusive: every CPU of the node, a task per CPU without -n (peer: excl, excl2)
    assert _run(cluster, "--exclusive", "--mem-per-cpu=100") == (
        "SLURM_CPUS_ON_NODE=4\nSLURM_JOB_CPUS_PER_NODE=4\nSLURM_MEM_PER_CPU=100\n"
        "SLURM_TASKS_PER_NODE=4\n"
    )
    assert _run(cluster, "--exclusive", "-n2", "--mem-per-cpu=100") == (
        "SLURM_CPUS_ON_NODE=4\nSLURM_JOB_CPUS_PER_NODE=4\nSLURM_MEM_PER_CPU=100\n"
        "SLURM_NTASKS=2\nSLURM_TASKS_PER_NODE=2\n"
    )


def test_step_refills_what_the_caller_stripped(cluster):
    """snakemake's jobstep plugin runs srun without some SLURM_* of the job: real srun
    fills them in from the job record (the peer: GID, NAME=bash, NODELIST, PARTITION, UID,
    USER), the job's name then being the step's command."""
    strip = " ".join(
        f"-u SLURM_JOB_{n}" for n in ("PARTITION", "NODELIST", "NAME", "USER", "UID", "GID")
    )
    probe = 'env | grep -E "^SLURM_JOB_(PARTITION|NODELIST|NAME|USER|UID|GID)=" | sort'
    job = cluster.sbatch(
        "-J", "myname", "-o", "out.txt", "--wrap", f"env {strip} srun -n1 bash -c '{probe}'"
    )
    cluster.wait_done(job)
    import os
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    assert (cluster.cwd / "out.txt").read_text() == (
        f"SLURM_JOB_GID={os.getgid()}\nSLURM_JOB_NAME=bash\nSLURM_JOB_NODELIST=127.0.0.1\n"
        f"SLURM_JOB_PARTITION=local\nSLURM_JOB_UID={os.getuid()}\nSLURM_JOB_USER={user}\n"
    )
