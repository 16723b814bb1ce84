"""The environment of the batch script and of every srun task, as Slurm 22.05 sets it.

Names and values follow the real-Slurm captures (env-a/b/c/d for the batch script, env-e for
srun tasks). Variables a site defines (SLURM_CONF, SLURM_WORKING_CLUSTER, SLURM_TOPOLOGY_*)
are left out: they describe a slurm.conf that does not exist here.
"""

import os

from . import PACKAGE_PARENT, het, hostlist, indexset
from .spec import NODE_PRIVATE_PREFIXES, SECRET_VAR

# GPU visibility is the node's business (SkyPilot or the local machine set it).
GPU_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "ZE_AFFINITY_MASK",
)


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
    kept = [
        p
        for p in env.get("PYTHONPATH", "").split(os.pathsep)
        if p and os.path.realpath(os.path.expanduser(p)) != os.path.realpath(PACKAGE_PARENT)
    ]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)


def batch_env(job, node_environ, bin_dir):
    """Everything the batch script sees except SLURM_TASK_PID (set at exec: launch.py).

    In an allocation made by srun outside a job (spec "command" srun) the "batch script" is
    that srun itself: it gets what srun sets after allocating (setup_env), not what slurmd
    adds for a batch script (SLURM_NODE_ALIASES, SLURM_MEM_*, ENVIRONMENT, HOSTNAME), and no
    PATH of its own when --export left none (its tasks then find no program, as on Slurm)."""
    spec = job.spec
    srun_made = spec["command"] == "srun"
    env = base_environment(job, node_environ)
    nodelist = hostlist.compress(job.names)
    env.update(
        {
            "SLURM_JOB_ID": str(job.job_id),
            "SLURM_JOBID": str(job.job_id),
            "SLURM_JOB_NAME": "" if spec["job_name_unset"] else spec["job_name"],
            "SLURM_JOB_NODELIST": nodelist,
            "SLURM_NODELIST": nodelist,
            "SLURM_JOB_NUM_NODES": str(job.num_nodes),
            "SLURM_NNODES": str(job.num_nodes),
            "SLURM_TASKS_PER_NODE": hostlist.compress_counts(spec["tasks_per_node"]),
            "SLURM_JOB_CPUS_PER_NODE": hostlist.compress_counts(spec["cpus_per_node"]),
            "SLURM_CPUS_ON_NODE": str(spec["cpus_per_node"][0]),
            "SLURM_SUBMIT_DIR": spec["submit_dir"],
            "SLURM_SUBMIT_HOST": spec["submit_host"],
            "SLURM_CLUSTER_NAME": spec["cluster_name"],
            "SLURM_JOB_PARTITION": spec["partition"],
            "SLURM_JOB_USER": spec["user"],
            "SLURM_JOB_UID": str(spec["uid"]),
            "SLURM_JOB_GID": str(spec["gid"]),
            "SLURM_NODEID": "0",
            "SLURM_PROCID": "0",
            "SLURM_LOCALID": "0",
            "SLURM_GTIDS": "0",
            "SLURMD_NODENAME": job.names[0],
            "SLURM_TOPOLOGY_ADDR": job.names[0],  # topology/none: the node's own name
            "SLURM_TOPOLOGY_ADDR_PATTERN": "node",
            "SLURM_NODE_ALIASES": "(null)",
            "SLURM_PRIO_PROCESS": "0",
            "ENVIRONMENT": "BATCH",
            "HOSTNAME": job.names[0],
            "TMPDIR": env["TMPDIR"] if os.path.isdir(env.get("TMPDIR", "")) else "/tmp",
        }
    )
    optional = {
        "SLURM_NTASKS": spec["ntasks"],
        "SLURM_NPROCS": spec["ntasks"],
        "SLURM_NTASKS_PER_NODE": spec["ntasks_per_node"],
        "SLURM_CPUS_PER_TASK": spec["cpus_per_task"],
        "SLURM_JOB_ACCOUNT": spec["account"],
        "SLURM_JOB_QOS": spec["qos"],
        "SLURM_RESTART_COUNT": spec["restart_count"] or None,  # a requeued job's runs
    }
    if not srun_made:  # srun's own allocation does not show the GPU request to its tasks
        optional.update(
            {
                "SLURM_GPUS": spec["gpus"],
                "SLURM_GPUS_PER_NODE": spec["gpus_per_node"],
                "SLURM_GPUS_PER_TASK": spec["gpus_per_task"],
                "SLURM_CPUS_PER_GPU": spec["cpus_per_gpu"],
                "SLURM_MEM_PER_GPU": spec["mem_per_gpu"],
            }
        )
    if srun_made:
        pass
    elif spec["mem_per_node"] is not None:
        if spec["mem_per_node"]:  # --mem=0 (the whole node) sets neither, as Slurm 22.05
            optional["SLURM_MEM_PER_NODE"] = spec["mem_per_node"]
    elif spec["mem_per_gpu"] is None:
        optional["SLURM_MEM_PER_CPU"] = spec["mem_per_cpu"]
    env.update({k: str(v) for k, v in optional.items() if v is not None})
    if het.components(spec):
        env.pop("SLURM_CPUS_PER_TASK", None)  # each component's, as _HET_GROUP_N only
        env.update(het.batch_env(job))
    env.update(_array_env(job))
    ids = job.gpu_ids()
    if ids is None:
        env.update(node_env(job, node_environ))
    else:  # the devices the local executor placed: Slurm's gres/gpu variables
        _set_gpus(env, ids, ids, spec["hide_gpus"])
        if ids and not srun_made:
            env["SLURM_JOB_GPUS"] = ",".join(ids)
    env.update(spec["extra_env"])
    if srun_made:
        for name in ("SLURM_NODE_ALIASES", "ENVIRONMENT", "HOSTNAME"):
            del env[name]
        env["PATH"] = bin_dir + (os.pathsep + env["PATH"] if "PATH" in env else "")
    else:
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", os.defpath)
    if login_shell(spec["script"]):
        env["BASH_ENV"] = os.path.join(os.path.dirname(bin_dir), "bash_env")
    return env


def login_shell(script):
    """Does the script's shebang start bash as a login shell (``#!/bin/bash -l``,
    ``--login``, ``-lx``, through ``env -S``)?"""
    first = (script or "").split("\n", 1)[0]
    if not first.startswith("#!"):
        return False
    words = first[2:].split()
    return any(os.path.basename(w) == "bash" for w in words) and any(
        w == "--login" or (w.startswith("-") and not w.startswith("--") and "l" in w)
        for w in words[1:]
    )


def _array_env(job):
    if job.array_task_id is None:
        return {}
    items = indexset.parse(job.spec["array"]["ranges"])
    count = indexset.count(items)
    step = job.spec["array"].get("step", 1)  # the spec's first ":N" (array-step-and-list)
    return {
        "SLURM_ARRAY_JOB_ID": str(job.array_job_id),
        "SLURM_ARRAY_TASK_ID": str(job.array_task_id),
        "SLURM_ARRAY_TASK_COUNT": str(count),
        "SLURM_ARRAY_TASK_MIN": str(items[0][0]),
        "SLURM_ARRAY_TASK_MAX": str(items[-1][1]),
        "SLURM_ARRAY_TASK_STEP": str(step),
    }


def node_env(job, node_environ):
    """What differs from node to node although srun passes its own environment on: GPUs."""
    env = {k: node_environ[k] for k in GPU_VARS if k in node_environ}
    gpus = job.gpus_on_node()
    if gpus is not None:
        env["SLURM_GPUS_ON_NODE"] = str(gpus)
        env["SLURM_JOB_GPUS"] = node_environ.get("CUDA_VISIBLE_DEVICES") or ",".join(
            str(i) for i in range(gpus)
        )
    return env


# What hides a GPU node's devices from a job that holds none of them, where no device cgroup
# does (Slurm's ConstrainDevices): an empty device list for CUDA and ROCm.
HIDDEN_GPUS = {"CUDA_VISIBLE_DEVICES": "", "ROCR_VISIBLE_DEVICES": ""}


def _set_gpus(env, ids, visible, hide):
    """A job's or a step's GPUs on this node (`ids`), and those a task sees (`visible`): what
    Slurm's gres/gpu plugin sets. No GPUs on a GPU node: the device variables are unset, as
    on Slurm, or with `hide` (spec "hide_gpus") set to no device (HIDDEN_GPUS)."""
    for name in GPU_VARS:
        env.pop(name, None)
    if not ids and hide:
        env.update(HIDDEN_GPUS)
    env.pop("SLURM_GPUS_ON_NODE", None)
    env.pop("SLURM_JOB_GPUS", None)
    if ids:
        env["SLURM_GPUS_ON_NODE"] = str(len(ids))
        for name in GPU_VARS:
            env[name] = ",".join(visible)


def step_gpus(job_ids, per_node, per_task, gpus, nnodes, ntasks_here):
    """A step's GPUs on one node, from the job's there: srun's --gres=gpu:N/--gpus-per-node,
    --gpus (spread over the step's nodes), --gpus-per-task; by default all of them."""
    if per_node:
        want = per_node
    elif gpus:
        want = -(-gpus // nnodes)
    elif per_task:
        want = per_task * ntasks_here
    else:
        want = len(job_ids)
    return job_ids[:want]


def step_env(srun_env, job, step):
    """Variables srun sets for all tasks of a step (Slurm's env_array_for_step + setup_env).

    SLURM_NODELIST stays the job's. With -E (--preserve-env) SLURM_NNODES, SLURM_NTASKS,
    SLURM_NPROCS and SLURM_TASKS_PER_NODE stay srun's. A step in an existing allocation gets
    SLURM_DISTRIBUTION (cyclic when there are no more tasks than nodes, else block) and
    SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0; the srun that made the allocation sets neither,
    except SLURM_DISTRIBUTION when memory was asked for (as Slurm 22.05's srun does)."""
    spec = job.spec
    nodes = [job.names[i] for i in step["nodes"]]
    counts = [len(gids) for gids in step["tasks"]]
    ntasks = sum(counts)
    env = dict(srun_env)
    env.update(
        {
            "SLURM_STEP_ID": str(step["id"]),
            "SLURM_STEPID": str(step["id"]),
            "SLURM_STEP_NODELIST": hostlist.compress(nodes),
            "SLURM_STEP_NUM_NODES": str(len(nodes)),
            "SLURM_STEP_NUM_TASKS": str(ntasks),
            "SLURM_STEP_TASKS_PER_NODE": hostlist.compress_counts(counts),
            "SLURM_UMASK": "%04o" % step["umask"],
            "SLURM_SRUN_COMM_HOST": step["srun_host"],
            "SLURM_LAUNCH_NODE_IPADDR": step["srun_host"],
            "SLURM_SRUN_COMM_PORT": str(step["srun_port"]),
            "SLURM_STEP_LAUNCHER_PORT": str(step["srun_port"]),
        }
    )
    env.setdefault("SLURM_NODELIST", hostlist.compress(job.names))
    # srun fills in from the job record what its caller removed (snakemake's jobstep
    # plugin strips SLURM_*): the job's name is then the step's command, as srun names it
    for name, value in (
        ("SLURM_JOB_PARTITION", spec["partition"]),
        ("SLURM_JOB_NODELIST", hostlist.compress(job.names)),
        ("SLURM_JOB_USER", spec["user"]),
        ("SLURM_JOB_UID", str(spec["uid"])),
        ("SLURM_JOB_GID", str(spec["gid"])),
        ("SLURM_JOB_NAME", os.path.basename(step["argv"][0])),
    ):
        env.setdefault(name, value)
    if het.components(spec):
        env.update(het.step_allocation_env(job, step))
    if not step["preserve_env"]:
        env.update(
            {
                "SLURM_NNODES": str(len(nodes)),
                "SLURM_NTASKS": str(ntasks),
                "SLURM_NPROCS": str(ntasks),
                "SLURM_TASKS_PER_NODE": hostlist.compress_counts(counts),
            }
        )
    if not step["allocating"] and not het.components(spec):  # a hetjob's: the batch's
        env["SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0"] = hostlist.compress_counts(
            spec["cpus_per_node"]
        )
    if not step["allocating"] or spec["mem_per_node"] or spec["mem_per_cpu"]:
        env["SLURM_DISTRIBUTION"] = "cyclic" if ntasks <= len(nodes) else "block"
    if step["label"]:
        env["SLURM_LABELIO"] = "1"
    if step.get("overcommit"):
        env["SLURM_OVERCOMMIT"] = "1"
    if step.get("pmi_jobid"):
        env["SLURM_MPI_TYPE"] = "pmi2"
    if step["allocating"] and "PATH" in env:  # the tasks of srun get the user's PATH as is
        path = [p for p in env["PATH"].split(os.pathsep) if p != step["bin_dir"]]
        if path:
            env["PATH"] = os.pathsep.join(path)
        else:
            del env["PATH"]
    if step["cpus_per_task_set"]:
        env["SLURM_CPUS_PER_TASK"] = str(step["cpus_per_task"])
    if step["job_name"]:
        env["SLURM_JOB_NAME"] = step["job_name"]
    return env


def task_env(step_environ, job, step, node_environ, bin_dir, local_id, pmi_fd=None):
    """One task's environment on this node (what slurmstepd adds per task; with pmi_fd, the
    task's end of its PMI socket, what Slurm's mpi/pmi2 plugin adds)."""
    pos = step["nodes"].index(job.rank)
    gids = step["tasks"][pos]
    env = dict(step_environ)
    env.update(
        {
            "SLURM_PROCID": str(gids[local_id]),
            "SLURM_LOCALID": str(local_id),
            "SLURM_NODEID": str(pos),
            "SLURM_GTIDS": ",".join(str(g) for g in gids),
            "SLURMD_NODENAME": job.name,
            "SLURM_TOPOLOGY_ADDR": job.name,
            "SLURM_TOPOLOGY_ADDR_PATTERN": "node",
            # the job's CPUs on this node, or with --exact (or -c) the step's own
            "SLURM_CPUS_ON_NODE": str(
                min(job.spec["cpus_per_node"][job.rank], len(gids) * step["cpus_per_task"])
                if step["exact"]
                else job.spec["cpus_per_node"][job.rank]
            ),
        }
    )
    job_gpus = job.gpu_ids()
    if job_gpus is None:
        env.update(node_env(job, node_environ))
    else:
        _task_gpus(
            env,
            job_gpus,
            step,
            len(gids),
            local_id,
            job.spec["cpus_per_node"][job.rank],
            job.spec["hide_gpus"],
        )
    if pmi_fd is not None:
        env.update(
            {
                "PMI_FD": str(pmi_fd),
                "PMI_JOBID": step["pmi_jobid"],
                "PMI_RANK": str(gids[local_id]),
                "PMI_SIZE": str(sum(len(t) for t in step["tasks"])),
            }
        )
    if not os.path.isdir(env.get("TMPDIR", "")):
        env["TMPDIR"] = "/tmp"  # slurmstepd's, whatever srun exported
    if "PATH" in env:
        path = env["PATH"].split(os.pathsep)
        env["PATH"] = os.pathsep.join(bin_dir if p == step["bin_dir"] else p for p in path)
    login = os.path.join(os.path.dirname(step["bin_dir"]), "bash_env")
    if env.get("BASH_ENV") == login:
        env["BASH_ENV"] = os.path.join(os.path.dirname(bin_dir), "bash_env")  # this node's
    return env


def _task_gpus(env, job_gpus, step, ntasks_here, local_id, job_cpus, hide):
    """The step's GPUs on this node (SLURM_STEP_GPUS); with --gpus-per-task alone each task
    is bound to its own, said by SLURMD_TRES_BIND=gpu:per_task:N where the node runs more
    than one of the step's tasks, as Slurm 22.05 does."""
    gpus = step.get("gpus") or {}
    ids = step_gpus(
        job_gpus,
        gpus.get("per_node"),
        gpus.get("per_task"),
        gpus.get("gpus"),
        len(step["nodes"]),
        ntasks_here,
    )
    visible = ids
    bind = gpus.get("per_task") if not gpus.get("per_node") else None
    if bind and ids:
        visible = ids[local_id * bind : (local_id + 1) * bind]
        if ntasks_here > 1:
            env["SLURMD_TRES_BIND"] = "gpu:per_task:%d" % bind
    inherited = "SLURM_JOB_GPUS" in env
    _set_gpus(env, ids, visible, hide)
    if ids:
        env["SLURM_STEP_GPUS"] = ",".join(visible)
    if inherited and job_gpus:  # the allocation shows its GPUs: this node's
        env["SLURM_JOB_GPUS"] = ",".join(job_gpus)
    if gpus.get("cpus_per_gpu") and ids:  # the step holds cpus-per-gpu CPUs for each GPU
        env["SLURM_CPUS_ON_NODE"] = str(
            max(int(env["SLURM_CPUS_ON_NODE"]), min(job_cpus, gpus["cpus_per_gpu"] * len(ids)))
        )
