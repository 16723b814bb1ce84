"""The environment jobs see, against real Slurm 22.05's (captures in tests/runtime_fixtures).

Each job runs on local nodes (127.0.0.N) through the real entry point and dumps what its
batch script / srun tasks see; after normalising pids, ports, CPU counts, node names and paths,
names and values must equal the captures' (minus the site-defined SLURM_CONF,
SLURM_WORKING_CLUSTER).
"""

import pytest
from runtime_fixtures.cluster import (  # noqa: F401
    capture,
    ip_names,
    local_job,
    machine,
    normalise,
    without_site_vars,
)


def ours(job, text, names):
    bin_dir = str(job.rundir / "node0" / "bin") + ":"
    return normalise(
        text,
        names,
        {bin_dir: "", str(job.workdir): "<probe-dir>/c", "hostname=" + machine(): "hostname=vm"},
    )


def expected(name):
    return normalise(without_site_vars(capture(name)))


@pytest.mark.parametrize(
    "case, spec",
    [
        ("env-a-1node-1task.txt", dict(job_id=28, job_name="env-a")),
        (
            "env-a2-N1-n1-time-mem.txt",
            dict(
                job_id=29,
                job_name="env-a2",
                ntasks=1,
                time_limit=300,
                mem_per_node=200,
                mem_per_cpu=None,
            ),
        ),
    ],
)
def test_single_node_batch_env(local_job, case, spec):
    """env-a: no -n, so no SLURM_NTASKS; env-a2: -N1 -n1 --mem=200M adds NTASKS/NPROCS and
    MEM_PER_NODE in place of MEM_PER_CPU."""
    job = local_job(1, **spec).start()
    assert job.wait()["state"] == "COMPLETED"
    assert ours(job, job.output(), ip_names(1)) == expected(case)


def test_two_node_batch_env(local_job):
    """env-b: --nodes=2 --ntasks-per-node=2 --cpus-per-task=1; the script runs on node 0."""
    job = local_job(
        2,
        job_id=30,
        job_name="env-b",
        ntasks=4,
        ntasks_per_node=2,
        cpus_per_task=1,
        tasks_per_node=[2, 2],
        cpus_per_node=[2, 2],
    ).start()
    assert job.wait()["state"] == "COMPLETED"
    assert ours(job, job.output(), ip_names(2)) == expected("env-b-2nodes-2tpn-1cpt.txt")


@pytest.mark.parametrize(
    "rank, case, job_id, node",
    [
        (1, "env-c-array-31_3.txt", 33, "node2"),
        (3, "env-c-array-31_7.txt", 31, "node1"),
    ],
)
def test_array_element_env(local_job, rank, case, job_id, node):
    """--array=1-7:2%2: the element comes from SKYPILOT_JOB_RANK through the ranges; the
    last element took the array's own id."""
    array = {"job_id": 31, "ranges": "1-7:2", "count": 4, "throttle": 2, "step": 2}
    job = local_job(1, job_id=31, job_name="env-c", array=array, output="slurm-%A_%a.out").start(
        SKYPILOT_JOB_RANK=str(rank)
    )
    assert job.wait()["state"] == "COMPLETED"
    index = 2 * rank + 1
    text = job.output("slurm-31_%d.out" % index)
    assert ours(job, text, {"127.0.0.1": node}) == expected(case)


@pytest.mark.parametrize(
    "case, nodes, spec, names",
    [
        ("env-d2-gpus2.txt", 1, dict(job_id=41, job_name="env-d2", gpus=2), {"127.0.0.1": "node4"}),
        (
            "env-d3-gpus-per-node.txt",
            2,
            dict(
                job_id=42,
                job_name="env-d3",
                gpus_per_node=1,
                gpus_per_task=1,
                ntasks=2,
                ntasks_per_node=1,
            ),
            {"127.0.0.1": "node3", "127.0.0.2": "node4", "127.0.0.[1-2]": "node[3-4]"},
        ),
    ],
)
def test_gpu_job_env(local_job, case, nodes, spec, names):
    """--gpus=2 (env-d2), -N2 --gpus-per-node=1 --gpus-per-task=1 (env-d3): SLURM_GPUS*,
    SLURM_GPUS_ON_NODE and SLURM_JOB_GPUS as on Slurm; CUDA_VISIBLE_DEVICES is whatever the
    node provides."""
    gpus = str(spec.get("gpus") or spec.get("gpus_per_node"))
    visible = ",".join(str(i) for i in range(int(gpus)))
    job = local_job(nodes, partition="gpu", **spec).start(
        SKYPILOT_NUM_GPUS_PER_NODE=gpus, CUDA_VISIBLE_DEVICES=visible
    )
    assert job.wait()["state"] == "COMPLETED"
    slurm_part = ours(job, job.output(), names).split("== process")[0]
    assert slurm_part == expected(case).split("== process")[0]
    assert "CUDA_VISIBLE_DEVICES=%s\n" % visible in job.output()


SRUN_ENV = """#!/bin/bash
echo "== step 0: srun -l hostname"
srun -l hostname
echo "== step 1: per-task ids"
srun -l bash -c 'echo PROCID=$SLURM_PROCID LOCALID=$SLURM_LOCALID NODEID=$SLURM_NODEID \
STEP_ID=$SLURM_STEP_ID STEPID=$SLURM_STEPID NODENAME=$SLURMD_NODENAME GTIDS=$SLURM_GTIDS'
echo "== step 2: full env per task into files"
srun bash -c 'env | grep ^SLURM | sort > task-$SLURM_JOB_ID-$SLURM_PROCID.env'
echo "== step 3: srun -n1 (one task)"
srun -n1 bash -c 'echo STEP_ID=$SLURM_STEP_ID NTASKS=$SLURM_NTASKS \
STEP_NUM_TASKS=$SLURM_STEP_NUM_TASKS STEP_NODELIST=$SLURM_STEP_NODELIST'
echo "== step 4: srun false"
srun -n1 false
echo "srun exit=$?"
echo "== step 5: srun exit 3 on task 1 only"
srun bash -c 'exit $(( SLURM_PROCID == 1 ? 3 : 0 ))'
echo "srun exit=$?"
echo "== batch step env SLURM_STEP*:"
env | grep ^SLURM_STEP
"""


def test_srun_task_env(local_job):
    """env-e: 2 nodes x 2 tasks; the batch output and every task's SLURM_* environment."""
    job = local_job(
        2,
        script=SRUN_ENV,
        job_id=45,
        job_name="env-e",
        ntasks=4,
        ntasks_per_node=2,
        cpus_per_task=1,
        tasks_per_node=[2, 2],
        cpus_per_node=[2, 2],
    ).start()
    result = job.wait()  # the last grep finds nothing: exit 1, as the probe job's
    assert (result["state"], result["exit_code"]) == ("FAILED", 1)
    names = ip_names(2)
    got = job.output().replace(": " + machine() + "\n", ": vm\n")
    for ip, node in names.items():
        got = got.replace("NODENAME=%s " % ip, "NODENAME=%s " % node)
        got = got.replace("=%s\n" % ip, "=%s\n" % node).replace(" %s: " % ip, " %s: " % node)
    # tasks of one step print in any order (as on Slurm); within a task the order is kept
    assert _sorted_steps(got) == _sorted_steps(capture("env-e-srun-in-batch-output.txt"))
    for task in range(4):
        env = (job.workdir / ("task-45-%d.env" % task)).read_text()
        assert ours(job, env, names) == expected("env-e-srun-task%d-env.txt" % task), task


def _sorted_steps(text):
    """Each "== step" block with its lines sorted."""
    blocks = text.split("== ")[1:]
    return [(b.split("\n")[0], sorted(b.split("\n")[1:])) for b in blocks]


def test_srun_sets_prio_process_and_srun_debug(local_job):
    """Slurm's srun sets SLURM_PRIO_PROCESS (its nice value) and SRUN_DEBUG (its log level:
    3, one more for each -v, one less for each -Q; the peer's tasks show 3, 4, 2) in its
    environment before it starts the tasks, whatever its caller stripped (snakemake's
    jobstep plugin removes SLURM_*)."""
    script = (
        "#!/bin/bash\n"
        "env -u SLURM_PRIO_PROCESS srun printenv SLURM_PRIO_PROCESS SRUN_DEBUG\n"
        "srun -v printenv SRUN_DEBUG 2>/dev/null\n"
        "srun -Q printenv SRUN_DEBUG\n"
        "nice -n 3 srun printenv SLURM_PRIO_PROCESS\n"
    )
    job = local_job(1, script=script).start()
    assert job.wait()["state"] == "COMPLETED"
    assert job.output() == "0\n3\n4\n2\n3\n"
