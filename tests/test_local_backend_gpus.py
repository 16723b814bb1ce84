"""GPUs on the local backend: a partition's `gpus: N` gives each local node N (fake) devices,
accounted per node like CPUs and memory; jobs see the variables real Slurm 22.05 sets (the
peer's gpu nodes have Gres=gpu:2: captures env-d*)."""

from __future__ import annotations

import pytest

from slurmsky.backends.local import nodes

CONFIG = "kill_wait: 1\npartitions:\n  debug: {default: true}\n  gpu: {gpus: 2}\n"
GPU_ENV = (
    "env | grep -E '^(SLURM_GPUS|SLURM_JOB_GPUS|SLURM_STEP_GPUS|SLURMD_TRES_BIND|"
    "CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ROCR_VISIBLE_DEVICES|ZE_AFFINITY_MASK|"
    "SLURM_CPUS_PER_GPU|SLURM_MEM_PER)' | sort"
)
ONE_NODE = {"SLURMSKY_LOCAL_NODES": "1"}


@pytest.fixture
def gpus(cluster):
    (cluster.home / "slurmsky.yaml").write_text(CONFIG)
    cluster.script("gpu_env.sh", "#!/bin/bash\n" + GPU_ENV + "\n")
    return cluster


def output(cluster, job_id: int) -> str:
    cluster.wait_done(job_id)
    return (cluster.cwd / f"slurm-{job_id}.out").read_text()


def test_gres_gpu_batch_environment_is_slurms(gpus):
    """env-d1-gres-gpu1.txt: --gres=gpu:1 on a 2-GPU node."""
    job = gpus.sbatch(
        "-p", "gpu", "--gres=gpu:1", "--wrap", GPU_ENV, env={"CUDA_VISIBLE_DEVICES": "5"}
    )
    assert output(gpus, job) == (
        "CUDA_VISIBLE_DEVICES=0\nGPU_DEVICE_ORDINAL=0\nROCR_VISIBLE_DEVICES=0\n"
        "SLURM_GPUS_ON_NODE=1\nSLURM_JOB_GPUS=0\nZE_AFFINITY_MASK=0\n"
    )


def test_gpus_and_per_gpu_options_in_the_batch_environment(gpus):
    """env-d2-gpus2.txt and the peer's --cpus-per-gpu / --mem-per-gpu jobs."""
    both = gpus.sbatch("-p", "gpu", "--gpus=2", "--wrap", GPU_ENV)
    per_gpu = gpus.sbatch(
        "-p",
        "gpu",
        "--gpus=1",
        "--cpus-per-gpu=2",
        "--mem-per-gpu=300",
        "--wrap",
        GPU_ENV + "; echo cpus=$SLURM_CPUS_ON_NODE",
    )
    assert output(gpus, both) == (
        "CUDA_VISIBLE_DEVICES=0,1\nGPU_DEVICE_ORDINAL=0,1\nROCR_VISIBLE_DEVICES=0,1\n"
        "SLURM_GPUS=2\nSLURM_GPUS_ON_NODE=2\nSLURM_JOB_GPUS=0,1\nZE_AFFINITY_MASK=0,1\n"
    )
    text = output(gpus, per_gpu)
    ids = text.splitlines()[0].split("=")[1]  # whichever device was free
    assert text == (
        f"CUDA_VISIBLE_DEVICES={ids}\nGPU_DEVICE_ORDINAL={ids}\nROCR_VISIBLE_DEVICES={ids}\n"
        "SLURM_CPUS_PER_GPU=2\nSLURM_GPUS=1\nSLURM_GPUS_ON_NODE=1\n"
        f"SLURM_JOB_GPUS={ids}\nSLURM_MEM_PER_GPU=300\nZE_AFFINITY_MASK={ids}\ncpus=2\n"
    )


def test_gpus_per_node_and_task_over_two_nodes(gpus):
    """env-d3-gpus-per-node.txt: -N2 --gpus-per-node=1 --gpus-per-task=1 (2 tasks)."""
    job = gpus.sbatch(
        "-p",
        "gpu",
        "-N2",
        "--gpus-per-node=1",
        "--gpus-per-task=1",
        "--wrap",
        "bash gpu_env.sh; echo ntasks=$SLURM_NTASKS; srun -l bash gpu_env.sh | sort",
    )
    lines = output(gpus, job).splitlines()
    batch = lines[: lines.index("ntasks=2")]
    assert "SLURM_GPUS_ON_NODE=1" in batch and "SLURM_GPUS_PER_NODE=1" in batch
    assert "SLURM_GPUS_PER_TASK=1" in batch and "CUDA_VISIBLE_DEVICES=0" in batch
    steps = lines[lines.index("ntasks=2") + 1 :]
    for task in ("0", "1"):  # the peer: each node's own device 0, no per-task binding
        assert f"{task}: CUDA_VISIBLE_DEVICES=0" in steps
        assert f"{task}: SLURM_STEP_GPUS=0" in steps
    assert not any("SLURMD_TRES_BIND" in line for line in steps)


def test_two_concurrent_jobs_get_distinct_devices(gpus):
    """env-d4-two-jobs-one-node.txt: the second 1-GPU job on the node gets index 1."""
    script = (
        "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS=$SLURM_JOB_GPUS; sleep 2"
    )
    first = gpus.sbatch("-p", "gpu", "--gres=gpu:1", "--wrap", script, env=ONE_NODE)
    second = gpus.sbatch("-p", "gpu", "--gres=gpu:1", "--wrap", script, env=ONE_NODE)
    seen = sorted(output(gpus, job) for job in (first, second))
    assert seen == [
        "CUDA_VISIBLE_DEVICES=0 SLURM_JOB_GPUS=0\n",
        "CUDA_VISIBLE_DEVICES=1 SLURM_JOB_GPUS=1\n",
    ]


def test_a_job_that_does_not_fit_now_waits_for_resources(gpus):
    holder = gpus.sbatch("-p", "gpu", "--gpus=2", "--wrap", "sleep 3", env=ONE_NODE)
    gpus.wait_for(lambda: gpus.job(holder)[1] == "RUNNING", 30, "the 2-GPU job to run")
    waiting = gpus.sbatch(
        "-p", "gpu", "--gres=gpu:1", "--wrap", "echo $CUDA_VISIBLE_DEVICES", env=ONE_NODE
    )
    gpus.wait_for(lambda: gpus.job(waiting)[4] == "Resources", 10, "reason Resources")
    assert gpus.job(waiting)[1] == "PENDING"
    cpu_only = gpus.sbatch("-p", "gpu", "--wrap", "true", env=ONE_NODE)  # CPUs are free
    assert [r[1] for r in gpus.wait_done(cpu_only)] == ["COMPLETED"]
    assert output(gpus, waiting) == "0\n"


@pytest.mark.parametrize(
    "args", [["-p", "gpu", "--gres=gpu:3"], ["-p", "gpu", "--gpus=3"], ["--gres=gpu:1"]]
)
def test_more_gpus_than_a_node_has_is_refused(gpus, args):
    """env-d-submit-too-many-gpus.txt, env-d-submit-gpu-wrong-partition.txt."""
    got = gpus.run("sbatch", *args, "--wrap", "true")
    assert (got.stdout, got.stderr, got.returncode) == (
        "",
        "sbatch: error: Batch job submission failed: Requested node configuration is not "
        "available\n",
        1,
    )
    assert gpus.jobs() == [(1, "FAILED", 1, 0, "BadConstraints")]


def test_no_gpus_asked_on_a_gpu_node_hides_the_devices(gpus):
    """The peer unsets CUDA_VISIBLE_DEVICES (given at submission) for a job without GPUs and
    its device cgroup (ConstrainDevices) hides the cards; with no cgroup here, slurmsky sets
    an empty device list instead, in the batch script and in its steps."""
    job = gpus.sbatch(
        "-p",
        "gpu",
        "--wrap",
        "bash gpu_env.sh; srun bash gpu_env.sh",
        env={"CUDA_VISIBLE_DEVICES": "7"},
    )
    assert output(gpus, job) == "CUDA_VISIBLE_DEVICES=\nROCR_VISIBLE_DEVICES=\n" * 2


def test_constrain_devices_false_leaves_the_variables_as_the_peer(gpus):
    (gpus.home / "slurmsky.yaml").write_text(CONFIG + "constrain_devices: false\n")
    job = gpus.sbatch(
        "-p",
        "gpu",
        "--wrap",
        "bash gpu_env.sh; srun bash gpu_env.sh",
        env={"CUDA_VISIBLE_DEVICES": "7"},
    )
    assert output(gpus, job) == ""


def test_the_machines_gpus_are_hidden_on_every_node_from_jobs_without_gpus(cluster):
    """Without `gpus:` the nodes have the machine's GPUs (faked: CUDA_VISIBLE_DEVICES of the
    agent), all on 127.0.0.1; every local node is this machine, so a 2-node job that asked
    for none sees none on either node, and sinfo/scontrol show them."""
    fake = {"CUDA_VISIBLE_DEVICES": "0,1"}
    cluster.script("env.sh", "#!/bin/bash\necho $(hostname -s) [$CUDA_VISIBLE_DEVICES]\n")
    job = cluster.sbatch(
        "-N", "2", "--wrap", "srun -l bash -c 'echo [$CUDA_VISIBLE_DEVICES]'", env=fake
    )
    assert sorted(output(cluster, job).splitlines()) == ["0: []", "1: []"]
    gres = cluster.run("sinfo", "-N", "-h", "-o", "%N %G", env=fake).stdout.splitlines()
    assert gres[:2] == ["127.0.0.1 gpu:2", "127.0.0.2 (null)"]
    node = cluster.run("scontrol", "show", "node", "127.0.0.1", env=fake).stdout
    assert "   Gres=gpu:2\n" in node and ",gres/gpu=2\n" in node


def test_gpu_reporting_in_sinfo_scontrol_and_sacct(gpus):
    """The peer's gpu nodes: sinfo %G gpu:2, scontrol show node Gres=gpu:2 and CfgTRES with
    gres/gpu=2; a --gres=gpu:1 job's AllocTRES and ReqTRES name gres/gpu=1, its steps' too."""
    assert gpus.run("sinfo", "-h", "-p", "gpu", "-o", "%P %G").stdout == "gpu gpu:2\n"
    assert gpus.run("sinfo", "-h", "-p", "debug", "-o", "%P %G").stdout == "debug* (null)\n"
    node = gpus.run("scontrol", "show", "node", "127.0.0.1").stdout
    assert "   Gres=gpu:2\n" in node
    assert f"CfgTRES=cpu={nodes.nodes()[0].cpus},mem=" in node and ",gres/gpu=2\n" in node
    job = gpus.sbatch("-p", "gpu", "--gres=gpu:1", "--mem=100", "--wrap", "true")
    gpus.wait_done(job)
    out = gpus.run("sacct", "-j", str(job), "-P", "-n", "-o", "JobID,AllocTRES,ReqTRES")
    assert out.stdout == (
        f"{job}|billing=1,cpu=1,gres/gpu=1,mem=100M,node=1|billing=1,cpu=1,gres/gpu=1,mem=100M,node=1\n"
        f"{job}.batch|cpu=1,gres/gpu=1,mem=100M,node=1|\n"
    )


def test_srun_binds_one_gpu_per_task(gpus):
    """The peer: srun -n2 --gpus-per-task=1 outside a job."""
    got = gpus.run("srun", "-p", "gpu", "-n2", "-l", "--gpus-per-task=1", "bash", "-c", GPU_ENV)
    assert got.returncode == 0, got.stderr
    assert sorted(got.stdout.splitlines()) == sorted(
        f"{t}: {line}"
        for t in (0, 1)
        for line in (
            f"CUDA_VISIBLE_DEVICES={t}",
            f"GPU_DEVICE_ORDINAL={t}",
            f"ROCR_VISIBLE_DEVICES={t}",
            "SLURMD_TRES_BIND=gpu:per_task:1",
            "SLURM_GPUS_ON_NODE=2",
            f"SLURM_STEP_GPUS={t}",
            f"ZE_AFFINITY_MASK={t}",
        )
    )


def test_salloc_shows_the_request_not_the_node(gpus):
    got = gpus.run(
        "salloc",
        "-p",
        "gpu",
        "--gpus=1",
        "--cpus-per-gpu=1",
        "--mem-per-gpu=200",
        "bash",
        "-c",
        "env | grep -E '^SLURM_.*GPU' | sort",
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout == "SLURM_CPUS_PER_GPU=1\nSLURM_GPUS=1\nSLURM_MEM_PER_GPU=200\n"


def test_gpus_per_task_needs_tasks(gpus):
    got = gpus.run("sbatch", "-p", "gpu", "--gpus-per-task=1", "--wrap", "true")
    assert (got.stderr, got.returncode) == (
        "sbatch: error: Failed to validate job spec. --gpus-per-task used without either --gpus "
        "or -n/--ntasks is not allowed.\n"
        "sbatch: error: Invalid generic resource (gres) specification\n",
        1,
    )


def test_node_gpus_configured_or_the_machines(monkeypatch):
    assert nodes.node_gpus({"gpus": 2}, 3) == [["0", "1"]] * 3
    assert nodes.node_gpus({"gpus": 0}, 2) == [[], []]
    # the machine's own GPUs belong to the first node only: every node is this machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert nodes.node_gpus({}, 2) == [["2", "3"], []]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert nodes.node_gpus(None, 2) == [[], []]


def test_too_few_gpu_nodes_pends(gpus):
    """The peer: -N3 --gpus-per-node=1 in its 2-node gpu partition pends PartitionNodeLimit;
    here -N2 in a 1-node one (of this machine's CPUs: the job's 2 are not more than it has)."""
    job = gpus.sbatch("-p", "gpu", "-N2", "--gpus-per-node=1", "--wrap", "true", env=ONE_NODE)
    gpus.wait_for(lambda: gpus.job(job)[4] == "PartitionNodeLimit", 30, "the reason")
