"""The environment of the batch script and of every srun task, as Slurm 22.05 sets it.

Names and values follow the real-Slurm captures (env-a/b/c/d for the batch script, env-e for
srun tasks). Variables a site defines (SLURM_CONF, SLURM_WORKING_CLUSTER, SLURM_TOPOLOGY_*)
are left out: they describe a slurm.conf that does not exist here.
"""
import os

from . import hostlist
from .rundir import PACKAGE_PARENT
from .spec import NODE_PRIVATE_PREFIXES, SECRET_VAR

# GPU visibility is the node's business (SkyPilot or the local machine set it).
GPU_VARS = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
            "ZE_AFFINITY_MASK")


def base_environment(job, node_environ):
    """The job's environment before Slurm's variables: the spec's, or the node's own."""
    if job.spec["environment"] is not None:
        env = dict(job.spec["environment"])
    else:
        env = {k: v for k, v in node_environ.items() if not k.startswith(NODE_PRIVATE_PREFIXES)}
        _drop_runtime_path(env)
    env.pop(SECRET_VAR, None)
    return env


def _drop_runtime_path(env):
    """The node command put the runtime on PYTHONPATH; the job's own python must not see it."""
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
            if p and os.path.realpath(os.path.expanduser(p)) != os.path.realpath(PACKAGE_PARENT)]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)


def batch_env(job, node_environ, bin_dir):
    """Everything the batch script sees except SLURM_TASK_PID (set at exec: launch.py)."""
    spec = job.spec
    env = base_environment(job, node_environ)
    nodelist = hostlist.compress(job.names)
    env.update({
        "SLURM_JOB_ID": str(job.job_id), "SLURM_JOBID": str(job.job_id),
        "SLURM_JOB_NAME": "" if spec["job_name_unset"] else spec["job_name"],
        "SLURM_JOB_NODELIST": nodelist, "SLURM_NODELIST": nodelist,
        "SLURM_JOB_NUM_NODES": str(job.num_nodes), "SLURM_NNODES": str(job.num_nodes),
        "SLURM_TASKS_PER_NODE": hostlist.compress_counts(spec["tasks_per_node"]),
        "SLURM_JOB_CPUS_PER_NODE": hostlist.compress_counts(spec["cpus_per_node"]),
        "SLURM_CPUS_ON_NODE": str(spec["cpus_per_node"][0]),
        "SLURM_SUBMIT_DIR": spec["submit_dir"], "SLURM_SUBMIT_HOST": spec["submit_host"],
        "SLURM_CLUSTER_NAME": spec["cluster_name"], "SLURM_JOB_PARTITION": spec["partition"],
        "SLURM_JOB_USER": spec["user"], "SLURM_JOB_UID": str(spec["uid"]),
        "SLURM_JOB_GID": str(spec["gid"]),
        "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_GTIDS": "0",
        "SLURMD_NODENAME": job.names[0],
        "SLURM_NODE_ALIASES": "(null)", "SLURM_PRIO_PROCESS": "0",
        "ENVIRONMENT": "BATCH", "HOSTNAME": job.names[0],
        "TMPDIR": env["TMPDIR"] if os.path.isdir(env.get("TMPDIR", "")) else "/tmp",
    })
    optional = {
        "SLURM_NTASKS": spec["ntasks"], "SLURM_NPROCS": spec["ntasks"],
        "SLURM_NTASKS_PER_NODE": spec["ntasks_per_node"],
        "SLURM_CPUS_PER_TASK": spec["cpus_per_task"],
        "SLURM_JOB_ACCOUNT": spec["account"], "SLURM_JOB_QOS": spec["qos"],
        "SLURM_GPUS": spec["gpus"], "SLURM_GPUS_PER_NODE": spec["gpus_per_node"],
        "SLURM_GPUS_PER_TASK": spec["gpus_per_task"],
    }
    if spec["mem_per_node"] is not None:
        optional["SLURM_MEM_PER_NODE"] = spec["mem_per_node"]
    else:
        optional["SLURM_MEM_PER_CPU"] = spec["mem_per_cpu"]
    env.update({k: str(v) for k, v in optional.items() if v is not None})
    env.update(_array_env(job))
    env.update(node_env(job, node_environ))
    env.update(spec["extra_env"])
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", os.defpath)
    return env


def _array_env(job):
    if job.array_task_id is None:
        return {}
    indices = sorted(job.spec["array"]["indices"])
    # Slurm's step for a mixed list is its first stride: 0-10:5,20 gives 5 (array-step-and-list)
    step = indices[1] - indices[0] if len(indices) > 1 else 1
    return {
        "SLURM_ARRAY_JOB_ID": str(job.array_job_id),
        "SLURM_ARRAY_TASK_ID": str(job.array_task_id),
        "SLURM_ARRAY_TASK_COUNT": str(len(indices)),
        "SLURM_ARRAY_TASK_MIN": str(indices[0]), "SLURM_ARRAY_TASK_MAX": str(indices[-1]),
        "SLURM_ARRAY_TASK_STEP": str(step),
    }


def node_env(job, node_environ):
    """What differs from node to node although srun passes its own environment on: GPUs."""
    env = {k: node_environ[k] for k in GPU_VARS if k in node_environ}
    gpus = job.gpus_on_node()
    if gpus is not None:
        env["SLURM_GPUS_ON_NODE"] = str(gpus)
        env["SLURM_JOB_GPUS"] = node_environ.get("CUDA_VISIBLE_DEVICES") or ",".join(
            str(i) for i in range(gpus))
    return env


def step_env(srun_env, job, step):
    """Variables srun sets for all tasks of a step (Slurm's env_array_for_step + setup_env)."""
    nodes = [job.names[i] for i in step["nodes"]]
    counts = [len(gids) for gids in step["tasks"]]
    ntasks = sum(counts)
    env = dict(srun_env)
    env.update({
        "SLURM_STEP_ID": str(step["id"]), "SLURM_STEPID": str(step["id"]),
        "SLURM_STEP_NODELIST": hostlist.compress(nodes), "SLURM_NODELIST": hostlist.compress(nodes),
        "SLURM_STEP_NUM_NODES": str(len(nodes)), "SLURM_NNODES": str(len(nodes)),
        "SLURM_STEP_NUM_TASKS": str(ntasks), "SLURM_NTASKS": str(ntasks),
        "SLURM_NPROCS": str(ntasks),
        "SLURM_STEP_TASKS_PER_NODE": hostlist.compress_counts(counts),
        "SLURM_TASKS_PER_NODE": hostlist.compress_counts(counts),
        "SLURM_DISTRIBUTION": "block", "SLURM_UMASK": "%04o" % step["umask"],
        "SLURM_SRUN_COMM_HOST": step["srun_host"], "SLURM_LAUNCH_NODE_IPADDR": step["srun_host"],
        "SLURM_SRUN_COMM_PORT": str(step["srun_port"]),
        "SLURM_STEP_LAUNCHER_PORT": str(step["srun_port"]),
        "SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0": hostlist.compress_counts(
            job.spec["cpus_per_node"]),
    })
    if step["cpus_per_task_set"]:
        env["SLURM_CPUS_PER_TASK"] = str(step["cpus_per_task"])
    if step["job_name"]:
        env["SLURM_JOB_NAME"] = step["job_name"]
    return env


def task_env(step_environ, job, step, node_environ, bin_dir, local_id):
    """One task's environment on this node (what slurmstepd adds per task)."""
    pos = step["nodes"].index(job.rank)
    gids = step["tasks"][pos]
    env = dict(step_environ)
    env.update({
        "SLURM_PROCID": str(gids[local_id]), "SLURM_LOCALID": str(local_id),
        "SLURM_NODEID": str(pos), "SLURM_GTIDS": ",".join(str(g) for g in gids),
        "SLURMD_NODENAME": job.name,
        "SLURM_CPUS_ON_NODE": str(min(job.spec["cpus_per_node"][job.rank],
                                      len(gids) * step["cpus_per_task"])),
    })
    env.update(node_env(job, node_environ))
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(bin_dir if p == step["bin_dir"] else p for p in path)
    return env
