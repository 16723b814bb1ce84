"""The local backend's node shape per partition (nodes, CPUs, memory, GPUs), oversubscription,
and the shipped example config with which every example job runs on a small machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAPTOP = ROOT / "examples" / "config" / "laptop.yaml"
SHAPED = (
    "kill_wait: 1\npartitions:\n"
    "  small: {default: true, nodes: 2, cpus_per_node: 1, mem_per_node: 1000}\n"
    "  shared: {nodes: 2, cpus_per_node: 1, mem_per_node: 1000, oversubscribe: true}\n"
    "  machine: {}\n"
)


def configure(cluster, text: str) -> None:
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(text)


def test_sinfo_and_scontrol_show_each_partitions_shape(cluster):
    configure(cluster, SHAPED)
    out = cluster.run("sinfo", "-N", "-h", "-p", "small,shared", "-o", "%N %c %m %P")
    assert sorted(out.stdout.splitlines()) == [
        "127.0.0.1 1 1000 shared",
        "127.0.0.1 1 1000 small*",
        "127.0.0.2 1 1000 shared",
        "127.0.0.2 1 1000 small*",
    ]
    node = cluster.run("scontrol", "show", "node", "127.0.0.2").stdout
    assert "CPUTot=1 " in node and "RealMemory=1000 " in node
    machine = cluster.run("sinfo", "-h", "-p", "machine", "-o", "%D").stdout
    assert machine == "4\n"  # a partition without a shape: this machine, LOCAL_NODES nodes


def test_a_job_larger_than_a_shaped_node_is_refused_as_slurm_does(cluster):
    configure(cluster, SHAPED)
    out = cluster.run("sbatch", "-c", "2", "--wrap", "true")
    assert out.returncode == 1
    assert out.stderr.startswith("sbatch: error: CPU count per node can not be satisfied\n")
    out = cluster.run("sbatch", "--mem=2000", "--wrap", "true")
    assert out.stderr.startswith("sbatch: error: Memory specification can not be satisfied\n")
    out = cluster.run("sbatch", "-N", "3", "--wrap", "true")
    job = int(out.stdout.split()[-1])
    # more CPUs (3) than the partition's nodes have (2): accepted, pending for good, as
    # Slurm's EnforcePartLimits=NO does (PartitionNodeLimit when only the nodes are too few)
    time.sleep(2)
    assert cluster.job(job)[4] == "PartitionConfig"
    cluster.run("scancel", str(job))


def test_tmp_asks_the_nodes_tmp_disk(cluster, tmp_path):
    """--tmp is checked against a node's TmpDisk: by default the size of $TMPDIR's
    filesystem (as slurmd reports it), or the partition's tmp_disk_per_node."""
    configure(
        cluster, "partitions:\n  small: {default: true, tmp_disk_per_node: 100}\n  machine: {}\n"
    )
    disk = os.statvfs(tmp_path)
    size = disk.f_blocks * disk.f_frsize // (1024 * 1024)
    env = {"TMPDIR": str(tmp_path)}
    out = cluster.run("sinfo", "-h", "-o", "%P %d", env=env)
    assert out.stdout == f"small* 100\nmachine {size}\n"
    node = cluster.run("scontrol", "show", "node", "127.0.0.1", env=env).stdout
    assert " TmpDisk=100 " in node  # small's nodes (the first partition listed)
    out = cluster.run("sbatch", "--tmp=101", "--wrap", "true")
    assert (out.stderr, out.returncode) == (
        "sbatch: error: Temporary disk specification can not be satisfied\n"
        "sbatch: error: Batch job submission failed: Requested node configuration is not "
        "available\n",
        1,
    )
    jobs = [
        cluster.sbatch("--tmp=100", "--wrap", "true"),
        cluster.sbatch("-p", "machine", f"--tmp={size}", "--wrap", "true", env=env),
    ]
    assert [r[1] for r in cluster.wait_done(*jobs)] == ["COMPLETED", "COMPLETED"]


@pytest.mark.parametrize("partition, running", [("small", 2), ("shared", 3)])
def test_oversubscription_shares_the_shaped_nodes(cluster, partition, running):
    """Two 1-CPU nodes: three 1-CPU jobs, two run and one waits for Resources; with
    oversubscribe all three run at once."""
    configure(cluster, SHAPED)
    jobs = [cluster.sbatch("-p", partition, "--wrap", "sleep 30") for _ in range(3)]
    cluster.wait_for(
        lambda: sum(cluster.job(j)[1] == "RUNNING" for j in jobs) == running,
        timeout=60,
        what=f"{running} running",
    )
    if running < 3:
        assert cluster.job(jobs[2])[1:5:3] == ("PENDING", "Resources")
    cluster.run("scancel", *map(str, jobs))
    cluster.wait_done(*jobs)


EXAMPLES = {
    # example -> what it needs that a 2-core machine lacks
    "hello.sh": "",
    "array.sh": "10 elements of 500 MB",
    "modules.sh": "4 tasks",
    "gpu-train.sh": "a GPU (A100), 8 CPUs, 32 GB",
    "ray-cluster.sh": "3 nodes of 16 CPUs and 64 GB",
    "torchrun-multinode.sh": "2 nodes of 8 GPUs (H100) and 32 CPUs",
}


def test_every_example_job_runs_with_the_laptop_config(cluster):
    """examples/config/laptop.yaml gives a 2-core machine the shape each example asks:
    every example is accepted, placed and started (what the job itself then needs, torch,
    ray, train.py, is not this machine's to give)."""
    config = LAPTOP.read_text().replace("acct_gather_frequency: 30", "kill_wait: 1")
    configure(cluster, config)
    jobs = {}
    for name in EXAMPLES:
        out = cluster.run("sbatch", "--parsable", str(ROOT / "examples" / "sbatch" / name))
        assert out.returncode == 0, (name, out.stderr)
        jobs[name] = int(out.stdout.split(";")[0])

    def started(job: int) -> bool:
        rows = cluster.jobs("job_id = ? OR array_job_id = ?", job, job)
        return bool(rows) and all(r[1] not in ("PENDING", "CONFIGURING") for r in rows)

    for name, job in jobs.items():
        cluster.wait_for(lambda job=job: started(job), timeout=120, what=f"{name} to start")
        with cluster.db() as conn:
            (start,) = conn.execute(
                "SELECT MIN(start_time) FROM jobs WHERE job_id = ? OR array_job_id = ?", (job, job)
            ).fetchone()
        assert start is not None, name
    finishing = ("hello.sh", "array.sh", "modules.sh")
    cluster.run("scancel", *[str(j) for name, j in jobs.items() if name not in finishing])
    cluster.wait_done(*jobs.values(), timeout=60)
    # what ran to its end on a 2-core machine: hello, the sweep, the module script's srun
    for name in finishing:
        rows = cluster.jobs("job_id = ? OR array_job_id = ?", jobs[name], jobs[name])
        assert {r[1] for r in rows} == {"COMPLETED"}, (name, rows)
