"""JobRequest + Config -> the node runtime's spec: what every backend hands the runtime
(slurmsky/runtime) that starts the job on its nodes.
"""

from __future__ import annotations

import os

from slurmsky.config import Config, partition_infras
from slurmsky.parse.dependency import dependency_text
from slurmsky.parse.gres import gres_text
from slurmsky.parse.request import JobRequest
from slurmsky.plan.layout import Layout


def runtime_spec(
    req: JobRequest,
    cfg: Config,
    lay: Layout,
    partition: str,
    *,
    job_id: int | None,
    environment: dict | None,
    files_home: bool = False,
) -> dict:
    """The node runtime's spec (see slurmsky/runtime for its contract); `files_home`: the
    nodes send what the job writes home (where the workdir is a directory here)."""
    array = None
    if req.array is not None:
        array = {
            "job_id": job_id,
            "ranges": req.array.ranges,
            "count": req.array.count,
            "throttle": req.array.throttle,
            "step": req.array.step,
        }
    default_out = "slurm-%A_%a.out" if array else "slurm-%j.out"
    return {
        "version": 1,
        "job_id": job_id,
        "command": req.command,
        "job_name": req.job_name,
        "job_name_unset": req.name_unset,
        "partition": partition,
        **_partition_infra(partition, cfg),
        "cluster_name": cfg.cluster_name,
        "account": req.account,
        "qos": req.ignored.get("qos"),
        "user": current_user(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "submit_dir": req.submit_dir,
        "submit_host": os.uname().nodename,
        "workdir": req.workdir,
        "script": req.script,
        "script_args": list(req.script_args),
        "num_nodes": lay.num_nodes,
        "ntasks": req.ntasks
        if req.ntasks is not None
        else (lay.num_tasks if req.ntasks_per_node else None),
        "ntasks_per_node": req.ntasks_per_node,
        "cpus_per_task": req.cpus_per_task,
        "tasks_per_node": list(lay.tasks_per_node),
        "cpus_per_node": list(lay.cpus_per_node),
        "mem_per_node": req.mem,
        "mem_per_cpu": req.mem_per_cpu,
        "gpus": req.gpus.count if req.gpus else None,
        "gpus_per_node": req.gpus_per_node.count if req.gpus_per_node else None,
        "gpus_per_task": req.gpus_per_task.count if req.gpus_per_task else None,
        "gpu_types": {
            key: asked.type
            for key, asked in (
                ("gpus", req.gpus),
                ("gpus_per_node", req.gpus_per_node),
                ("gpus_per_task", req.gpus_per_task),
            )
            if asked and asked.type
        },
        "gres": gres_text(req.gres),
        "cpus_per_gpu": req.cpus_per_gpu,
        "mem_per_gpu": req.mem_per_gpu,
        "exclusive": req.exclusive is not None,
        "time_limit": req.time * 60 if req.time is not None and req.time > 0 else None,
        "kill_wait": cfg.kill_wait,
        "acct_gather_frequency": cfg.acct_gather_frequency,
        "signal": (
            {
                "signum": req.signal.signum,
                "seconds": req.signal.seconds,
                "batch": req.signal.batch,
                "full": False,
            }
            if req.signal
            else None
        ),
        "output": req.output or default_out,
        "error": req.error,
        "input": req.input,
        "open_mode": req.open_mode or "truncate",
        "environment": environment,
        "extra_env": _extra_env(req),
        "node_names": None,
        "array": array,
        # -p a,b: the task is the first partition's (backends/sky/task.py), its files_home too
        "files_home": files_home_settings(
            cfg.partitions.get(partition.split(",")[0], {}), partition.split(",")[0]
        )
        if files_home and os.path.isdir(req.workdir)
        else None,
    }


# cap_mb: results, plots, small checkpoints; everything sent travels through the API server
# (a third larger), at well under 1 MB/s on the sky-e2e stack (BENCHMARKS.md, where 50 MB
# came home whole): raise it per partition, or use a bucket, for more
FILES_HOME_DEFAULTS = {"cap_mb": 10, "exclude": [], "interval": 60}


def files_home_settings(part: dict, partition: str) -> dict | None:
    """A partition's files_home (config: false, or a mapping over these defaults), with
    what the error file says of a file past the cap (`left`: the node goes with the job)."""
    given = part.get("files_home", {})
    if given is False:
        return None
    key = f"partitions.{partition}"
    left = (
        "left on the node, which goes when the job ends: raise "
        f"{key}.files_home.cap_mb, or write it to a bucket ({key}.file_mounts)"
    )
    return dict(FILES_HOME_DEFAULTS, **given, left=left)


def _extra_env(req: JobRequest) -> dict:
    extra = {}
    # srun's --export is its tasks' only; a plain --export=ALL is the default, unmarked
    plain = (
        req.export is not None
        and req.export.mode == "ALL"
        and not (req.export.names or req.export.assignments)
    )
    if req.export is not None and req.command != "srun" and not plain:
        extra["SLURM_EXPORT_ENV"] = req.submit_env.get("SBATCH_EXPORT") or _export_text(req.export)
        extra["SLURM_GET_USER_ENV"] = "1"
    if req.dependency is not None and req.dependency.items and req.command != "srun":
        extra["SLURM_JOB_DEPENDENCY"] = dependency_text(req.dependency)
    for key in ("ntasks_per_core", "ntasks_per_socket"):  # sbatch's and salloc's, as asked
        if req.ignored.get(key) is not None and req.command != "srun":
            extra[f"SLURM_{key.upper()}"] = str(req.ignored[key])
    if req.overcommit:  # the job's (sbatch, salloc) and srun's tasks', as Slurm's env.c
        extra["SLURM_OVERCOMMIT"] = "1"
    return extra


def _export_text(exp) -> str:
    parts = [exp.mode] if exp.mode else []
    parts += list(exp.names) + [f"{k}={v}" for k, v in exp.assignments]
    return ",".join(parts)


def _partition_infra(partition: str, cfg: Config) -> dict:
    """For a job over several partitions (-p a,b): each one's infra entries, in order, for
    the node to name the partition it runs in."""
    if "," not in partition or not cfg.partitions:
        return {}
    pairs = [
        [infra, name]
        for name in partition.split(",")
        for infra in partition_infras(cfg.partitions[name])
    ]
    return {"partition_infra": pairs}


def current_user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
