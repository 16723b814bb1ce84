"""JobRequest + Config -> the SkyPilot task config and the node runtime's spec.

The task config is a plain dict that `sky.Task.from_yaml_config` accepts; SkyPilot is never
imported here. What SkyPilot has no field for (time limits, signals, the task layout,
output patterns, array indices) goes to the runtime spec, which travels inside the task.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re

from slurmsky.config import Config
from slurmsky.errors import SlurmError
from slurmsky.record import Record
from slurmsky.runtime.rundir import PACKAGE_PARENT
from slurmsky.parse.request import JobRequest

RUNTIME_HOME = "~/.slurmsky/runtime"
SPEC_EOF = "SLURMSKY_SPEC_EOF"
NO_ARRAY_INDEX = 4294967294

# Never shipped to a cloud unless named in --export=NAME or the config's export.allow:
# credentials, and what only makes sense on the submit host. Matched without regard to case
# (`github_token` is as secret as `GITHUB_TOKEN`).
DEFAULT_DENY = (
    "*_KEY", "*_KEY_ID", "*_TOKEN", "*_SECRET", "*_SECRET_*", "*PASSWORD*", "*PASSWD*",
    "*_PASS", "*CREDENTIAL*",
    "AWS_*", "GOOGLE_*", "GCLOUD_*", "AZURE_*", "KUBECONFIG", "SSH_*", "GPG_*", "KRB5*",
    "SKYPILOT_*", "SLURMSKY_*", "SLURM_*", "SBATCH_*", "SRUN_*", "SALLOC_*",
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "TERM", "DISPLAY", "HOSTNAME",
    "MAIL", "SHLVL", "_", "TMPDIR", "XDG_*", "DBUS_*", "LS_COLORS", "LD_*", "PYTHONPATH",
    "PYTHONHOME", "VIRTUAL_ENV", "CONDA_*", "PS1", "TMUX*", "STY", "WINDOWID",
)


class Layout(Record):
    """Where tasks, cpus, gpus and memory go, per node (Slurm's block layout)."""

    num_nodes: int
    tasks_per_node: tuple[int, ...]
    cpus_per_node: tuple[int, ...]
    gpu_type: str | None
    gpus_per_node: int
    mem_per_node: int | None  # MB; None: not asked (0 means the whole node)


class Translation(Record):
    task: dict
    spec: dict
    warnings: tuple[str, ...]


def layout(req: JobRequest) -> Layout:
    nodes = req.nodes[0] if req.nodes else 1
    if req.ntasks_per_node and req.ntasks is None:
        ntasks = nodes * req.ntasks_per_node
    else:
        ntasks = req.ntasks or nodes
    if req.ntasks and req.ntasks_per_node:
        nodes = max(nodes if req.nodes else 1, math.ceil(req.ntasks / req.ntasks_per_node))
    if req.ntasks_per_node and ntasks >= nodes:
        # Slurm allocates --ntasks-per-node on every node, even when --ntasks leaves the
        # last one short (-N2 -n3 --ntasks-per-node=2: SLURM_TASKS_PER_NODE=2(x2))
        tasks = [req.ntasks_per_node] * nodes
    elif req.ntasks_per_node:
        tasks, left = [], ntasks
        for _ in range(nodes):
            tasks.append(min(req.ntasks_per_node, left))
            left -= tasks[-1]
    else:
        base, extra = divmod(ntasks, nodes)
        tasks = [base + (1 if i < extra else 0) for i in range(nodes)]
    tasks = [max(t, 1) for t in tasks]
    gpu_type, per_node = _gpus(req, nodes, max(tasks))
    cpus = [max(t * (req.cpus_per_task or 1), req.mincpus or 0,
                (req.cpus_per_gpu or 0) * per_node) for t in tasks]
    mem = req.mem
    if req.mem_per_cpu is not None:
        mem = req.mem_per_cpu * max(cpus)
    elif req.mem_per_gpu is not None:
        mem = req.mem_per_gpu * per_node
    return Layout(nodes, tuple(tasks), tuple(cpus), gpu_type, per_node, mem)


def _gpus(req: JobRequest, nodes: int, max_tasks: int) -> tuple[str | None, int]:
    for g in req.gres:
        if g.name == "gpu":
            return g.type, g.count
    if req.gpus_per_node:
        return req.gpus_per_node.type, req.gpus_per_node.count
    if req.gpus:
        return req.gpus.type, math.ceil(req.gpus.count / nodes)
    if req.gpus_per_task:
        return req.gpus_per_task.type, req.gpus_per_task.count * max_tasks
    return None, 0


def partition_of(req: JobRequest, cfg: Config) -> tuple[str, dict]:
    """The partition's name and config; Slurm's error for a name the config lacks."""
    if not cfg.partitions:
        return req.partition or "local", {}
    name = req.partition or cfg.default_partition()
    if name not in cfg.partitions:
        raise SlurmError(f"invalid partition specified: {name}",
                         "Batch job submission failed: Invalid partition name specified")
    return name, cfg.partitions[name]


def _denied(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name.upper(), p.upper()) for p in patterns)


def job_environment(req: JobRequest, cfg: Config, *, for_cloud: bool) -> dict:
    """The environment --export gives the job.

    Locally this is Slurm's rule exactly. For a cloud, ALL means "all that is safe": the
    submit host's credentials and host-specific variables stay home unless the user names
    them in --export=NAME (or the config's export.allow).
    """
    exp = req.export
    env = req.submit_env
    mode = exp.mode if exp else "ALL"
    names = exp.names if exp else ()
    if mode == "ALL":
        chosen = dict(env)
        if for_cloud:
            deny = DEFAULT_DENY + tuple(cfg.export.get("deny", ()))
            allow = tuple(cfg.export.get("allow", ()))
            chosen = {k: v for k, v in chosen.items() if not _denied(k, deny) or _denied(k, allow)}
    else:
        chosen = {}
    for name in names:
        if name in env:
            chosen[name] = env[name]
    if exp:
        chosen.update(dict(exp.assignments))
    if req.command == "sbatch" and req.open_mode:  # sbatch hands --open-mode on to the sruns
        chosen["SLURM_OPEN_MODE"] = req.open_mode[0]  # "a" or "t", as Slurm's opt.c sets it
    return chosen


def _gb(mb: int) -> str:
    gb = mb / 1024
    return f"{gb:g}+" if gb == int(gb) else f"{math.ceil(gb * 100) / 100:g}+"


def _accelerators(lay: Layout, part_name: str, part: dict):
    if not lay.gpus_per_node:
        return None
    if lay.gpu_type:
        return {lay.gpu_type: lay.gpus_per_node}
    candidates = part.get("accelerators") or []
    if len(candidates) == 1:
        return {candidates[0]: lay.gpus_per_node}
    if candidates:
        return [f"{c}:{lay.gpus_per_node}" for c in candidates]
    raise SlurmError(
        f"GPUs were requested without a type and partition '{part_name}' lists no candidate "
        "accelerators; give a type (--gres=gpu:A100:N) or set "
        f"partitions.{part_name}.accelerators in the slurmsky config")


def _module_setup(req: JobRequest, cfg: Config) -> tuple[list[str], dict, str | None, list[str]]:
    """Setup lines, envs and an image for the script's `module load` lines; warnings."""
    setup, envs, image, warnings = [], {}, None, []
    for mod in req.modules:
        if mod.verb != "load":
            continue
        for name in mod.args:
            entry = cfg.modules.get(name) or cfg.modules.get(name.split("/")[0])
            if entry is None:
                warnings.append(f"{req.command}: warning: module {name} is not in the slurmsky "
                                "config; `module load` will do nothing in the job")
                continue
            if entry.get("setup"):
                setup.append(entry["setup"].rstrip("\n"))
            envs.update(entry.get("envs", {}))
            image = entry.get("image_id", image)
    return setup, envs, image, warnings


def runtime_spec(req: JobRequest, cfg: Config, lay: Layout, partition: str, *,
                 job_id: int | None, array_job_ids: list[int] | None = None,
                 environment: dict | None) -> dict:
    """The node runtime's spec (see slurmsky/runtime for its contract)."""
    array = None
    if req.array is not None:
        array = {"job_id": job_id, "indices": list(req.array.indices),
                 "job_ids": array_job_ids, "throttle": req.array.throttle}
    default_out = "slurm-%A_%a.out" if array else "slurm-%j.out"
    return {
        "version": 1,
        "job_id": job_id,
        "command": req.command,
        "job_name": req.job_name,
        "job_name_unset": req.name_unset,
        "partition": partition,
        "cluster_name": cfg.cluster_name,
        "account": req.ignored.get("account"),
        "qos": req.ignored.get("qos"),
        "user": _user(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "submit_dir": req.submit_dir,
        "submit_host": os.uname().nodename,
        "workdir": req.workdir,
        "script": req.script,
        "script_args": list(req.script_args),
        "num_nodes": lay.num_nodes,
        "ntasks": req.ntasks if req.ntasks is not None else (
            sum(lay.tasks_per_node) if req.ntasks_per_node else None),
        "ntasks_per_node": req.ntasks_per_node,
        "cpus_per_task": req.cpus_per_task,
        "tasks_per_node": list(lay.tasks_per_node),
        "cpus_per_node": list(lay.cpus_per_node),
        "mem_per_node": req.mem,
        "mem_per_cpu": req.mem_per_cpu,
        "gpus": req.gpus.count if req.gpus else None,
        "gpus_per_node": req.gpus_per_node.count if req.gpus_per_node else None,
        "gpus_per_task": req.gpus_per_task.count if req.gpus_per_task else None,
        "gres": ",".join(_gres_text(g) for g in req.gres) or None,
        "cpus_per_gpu": req.cpus_per_gpu,
        "mem_per_gpu": req.mem_per_gpu,
        "time_limit": req.time * 60 if req.time is not None and req.time > 0 else None,
        "kill_wait": cfg.kill_wait,
        "signal": ({"signum": req.signal.signum, "seconds": req.signal.seconds,
                    "batch": req.signal.batch, "full": False} if req.signal else None),
        "output": req.output or default_out,
        "error": req.error,
        "input": req.input,
        "open_mode": req.open_mode or "truncate",
        "environment": environment,
        "extra_env": _extra_env(req),
        "node_names": None,
        "array": array,
    }


def _gres_text(g) -> str:
    return ":".join(str(p) for p in (g.name, g.type, g.count) if p is not None)


def _extra_env(req: JobRequest) -> dict:
    extra = {}
    if req.export is not None and req.command != "srun":  # srun's --export is its tasks' only
        extra["SLURM_EXPORT_ENV"] = req.submit_env.get("SBATCH_EXPORT") or _export_text(req.export)
        extra["SLURM_GET_USER_ENV"] = "1"
    return extra


def _export_text(exp) -> str:
    parts = [exp.mode] if exp.mode else []
    parts += list(exp.names) + [f"{k}={v}" for k, v in exp.assignments]
    return ",".join(parts)


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _runtime_source() -> str:
    """The local directory holding the `slurmsky` package (shipped as the runtime)."""
    return os.path.join(PACKAGE_PARENT, "slurmsky")


def sky_task(req: JobRequest, cfg: Config, lay: Layout, part_name: str, part: dict,
             spec: dict, metadata: dict) -> tuple[dict, list[str]]:
    """The SkyPilot task config for a request (validated by sky.Task.from_yaml_config)."""
    setup, module_envs, module_image, warnings = _module_setup(req, cfg)
    resources: dict = {}
    if part.get("infra"):
        resources["infra"] = part["infra"]
    asked_cpus = (req.cpus_per_task or req.ntasks or req.ntasks_per_node or req.mincpus
                  or req.cpus_per_gpu)
    if asked_cpus:
        resources["cpus"] = f"{max(lay.cpus_per_node)}+"
    elif part.get("cpus"):
        resources["cpus"] = part["cpus"]
    if lay.mem_per_node:
        resources["memory"] = _gb(lay.mem_per_node)
    elif part.get("memory"):
        resources["memory"] = part["memory"]
    accelerators = _accelerators(lay, part_name, part)
    if accelerators:
        resources["accelerators"] = accelerators
    if part.get("use_spot") is not None:
        resources["use_spot"] = part["use_spot"]
    image = (f"docker:{req.container_image}" if req.container_image
             else module_image or part.get("image_id"))
    if image:
        resources["image_id"] = image
    if req.tmp:
        resources["disk_size"] = max(1, math.ceil(req.tmp / 1024))
    elif part.get("disk_size"):
        resources["disk_size"] = part["disk_size"]
    if part.get("labels"):
        resources["labels"] = part["labels"]
    if req.requeue is not None:
        restarts = cfg.requeue.get("max_restarts_on_errors", 3) if req.requeue else 0
        resources["job_recovery"] = {"max_restarts_on_errors": restarts}

    envs = job_environment(req, cfg, for_cloud=True)
    envs.update(part.get("envs", {}))
    envs.update(module_envs)
    task: dict = {"name": _task_name(req.job_name), "workdir": req.workdir,
                  "num_nodes": lay.num_nodes}
    if resources:
        task["resources"] = resources
    if envs:
        task["envs"] = {k: str(v) for k, v in envs.items()}
    file_mounts = {f"{RUNTIME_HOME}/slurmsky": _runtime_source()}
    file_mounts.update(part.get("file_mounts", {}))
    task["file_mounts"] = file_mounts
    if part.get("volumes"):
        task["volumes"] = part["volumes"]
    if setup:
        task["setup"] = "\n".join(setup) + "\n"
    task["run"] = run_command(spec)
    task["_metadata"] = metadata
    return task, warnings


def run_command(spec: dict) -> str:
    """Every node writes the spec (a quoted heredoc: no expansion) and starts the runtime."""
    node_spec = dict(spec, workdir=None)  # SkyPilot runs `run` in its synced workdir
    return (
        'SLURMSKY_RUNDIR="$HOME/.slurmsky/jobs/${SKYPILOT_TASK_ID:-job}"\n'
        'mkdir -p "$SLURMSKY_RUNDIR"\n'
        f"cat > \"$SLURMSKY_RUNDIR/spec.json\" <<'{SPEC_EOF}'\n"
        f"{json.dumps(node_spec, sort_keys=True)}\n"
        f"{SPEC_EOF}\n"
        f'PYTHONPATH="$HOME{RUNTIME_HOME[1:]}${{PYTHONPATH:+:$PYTHONPATH}}" exec python3 -m slurmsky.runtime '
        'node --spec "$SLURMSKY_RUNDIR/spec.json" --result "$SLURMSKY_RUNDIR/result.json" '
        '--rundir "$SLURMSKY_RUNDIR"\n'
    )


def _task_name(job_name: str) -> str:
    """SkyPilot cluster names derive from the task name: letters, digits, - _ . only."""
    name = re.sub(r"[^A-Za-z0-9_.]+", "-", job_name).strip("-_.")
    if not name or not name[0].isalpha():
        name = "job-" + name
    return name[:60].rstrip("-_.")


def translate(req: JobRequest, cfg: Config, *, job_id: int | None = None,
              array_job_ids: list[int] | None = None) -> Translation:
    """The SkyPilot task and runtime spec for a request (ids are None before submission)."""
    part_name, part = partition_of(req, cfg)
    lay = layout(req)
    spec = runtime_spec(req, cfg, lay, part_name, job_id=job_id, array_job_ids=array_job_ids,
                        environment=None)
    metadata = {"slurmsky": {"version": 1, "job_id": job_id, "job_name": req.job_name,
                             "partition": part_name}}
    if req.array is not None:
        metadata["slurmsky"]["array_job_id"] = job_id
        metadata["slurmsky"]["array_indices"] = list(req.array.indices)
    task, warnings = sky_task(req, cfg, lay, part_name, part, spec, metadata)
    return Translation(task, spec, tuple(warnings))
