"""A submission's plan (core.planning) -> the SkyPilot task config, the runtime spec inside it.

The task config is a plain dict that `sky.Task.from_yaml_config` accepts; SkyPilot is never
imported here. What SkyPilot has no field for (time limits, signals, the task layout,
output patterns, array indices) goes to the runtime spec, which travels inside the task.
"""

from __future__ import annotations

import json
import math
import os
import re

from slurmsky import backends
from slurmsky.backends.sky import pools, preflight, room
from slurmsky.backends.sky.check import check
from slurmsky.config import Config, partition_infras
from slurmsky.core.planning import Plan, build
from slurmsky.errors import SlurmError
from slurmsky.parse.request import JobRequest
from slurmsky.plan.environment import job_environment
from slurmsky.plan.layout import Layout
from slurmsky.record import Record
from slurmsky.runtime import PACKAGE_PARENT
from slurmsky.runtime.het import group_task_name

RUNTIME_HOME = "~/.slurmsky/runtime"
# The job's directory on its nodes (shared by nodes that share $HOME): its own per managed job,
# as one pool worker runs job after job whose SKYPILOT_TASK_ID is the same.
RUNDIR = (
    'SLURMSKY_RUNDIR="$HOME/.slurmsky/jobs/${SKYPILOT_TASK_ID:-job}-${SKYPILOT_MANAGED_JOB_ID:-0}"\n'
    'mkdir -p "$SLURMSKY_RUNDIR"\n'
)
# A job group's (a heterogeneous job's) tasks: one per launch, whatever the component (named
# by a digest of the job's secret), in a directory the nodes of every component share where
# they can: on Slurm infra $HOME is BASE/.sky_clusters/<cluster>, one per component, under a
# BASE the Slurm nodes share; elsewhere $HOME. runtime/het.py finds the nodes there.
GROUP_RUNDIR = (
    'SLURMSKY_BASE="$HOME"\n'
    'if [ "$(basename "$(dirname "$HOME")")" = .sky_clusters ]; then\n'
    '  SLURMSKY_BASE="$(dirname "$(dirname "$HOME")")"\n'
    "fi\n"
    'SLURMSKY_KEY="$(printf %s "$SLURMSKY_STEP_SECRET" | sha256sum | cut -c1-16)"\n'
    'SLURMSKY_RUNDIR="$SLURMSKY_BASE/.slurmsky/groups/${SKYPILOT_MANAGED_JOB_ID:-0}-$SLURMSKY_KEY"\n'
    'mkdir -p "$SLURMSKY_RUNDIR"\n'
)
SPEC_EOF = "SLURMSKY_SPEC_EOF"


class Translation(Record):
    task: dict
    spec: dict
    warnings: tuple[str, ...]


def workdir_lines(workdir: str, pool: str | None = None) -> list[str]:
    """What becomes of the workdir, for --test-only and translate: a local directory is
    uploaded (what would go up), but not to a pool; another path is a chdir on the node."""
    if not os.path.isdir(workdir):
        return [f"workdir {workdir}: not a local directory; the job changes to it on the node"]
    if pool:
        return [
            f"workdir {workdir}: not uploaded to pool {pool}'s workers; the job starts in "
            "SkyPilot's run directory on its worker"
        ]
    from slurmsky.backends.sky import upload

    return upload.describe(upload.plan(workdir))


def cluster_workdir(task: dict, spec: dict) -> str | None:
    """Where the node runtime changes to: -D when it is not uploaded (a path on the cluster);
    None (SkyPilot's copy of the workdir, `run`'s own) when it is, or when it is a local
    directory a pool job leaves home."""
    stays_home = task.get("_metadata", {}).get("slurmsky", {}).get("workdir_stays_home")
    return None if "workdir" in task or stays_home else spec["workdir"]


def with_runtime(task: dict, run: str) -> str:
    """`run`, after the lines that unpack the node runtime when the task is a pool job's
    (which has no file mounts)."""
    if task.get("_metadata", {}).get("slurmsky", {}).get("pool"):
        return pools.bootstrap(RUNTIME_HOME) + run
    return run


def _gb(mb: int) -> str:
    gb = mb / 1024
    return f"{gb:g}+" if gb == int(gb) else f"{math.ceil(gb * 100) / 100:g}+"


def _accelerators(lay: Layout, part_name: str, part: dict):
    """The job's GPUs on a partition: its own type, else the partition's candidates (a list
    in its order, a set {A, B} in any: SkyPilot's dict form)."""
    if not lay.gpus_per_node:
        return None
    if lay.gpu_type:
        return {lay.gpu_type: lay.gpus_per_node}
    candidates = part.get("accelerators") or []
    if isinstance(candidates, str):
        candidates = [candidates]
    if len(candidates) == 1:
        return {next(iter(candidates)): lay.gpus_per_node}
    if isinstance(candidates, dict):
        return {c: lay.gpus_per_node for c in candidates}
    if candidates:
        return [f"{c}:{lay.gpus_per_node}" for c in candidates]
    raise SlurmError(
        f"GPUs were requested without a type and partition '{part_name}' lists no candidate "
        "accelerators; give a type (--gres=gpu:A100:N) or set "
        f"partitions.{part_name}.accelerators in the slurmsky config"
    )


def _resources(req: JobRequest, lay: Layout, part_name: str, part: dict, image) -> dict:
    """One partition's SkyPilot resources for the job (its infra as configured)."""
    resources: dict = {}
    infras = partition_infras(part)
    if len(infras) == 1 and infras[0]:
        resources["infra"] = infras[0]
    asked_cpus = (
        req.cpus_per_task or req.ntasks or req.ntasks_per_node or req.mincpus or req.cpus_per_gpu
    )
    accelerators = _accelerators(lay, part_name, part)
    if asked_cpus or not (part.get("cpus") or accelerators):
        # Slurm's default is one CPU per task; a GPU job asking none gets its GPUs' node
        resources["cpus"] = f"{max(lay.cpus_per_node)}+"
    elif part.get("cpus"):
        resources["cpus"] = part["cpus"]
    if lay.mem_per_node:
        resources["memory"] = _gb(lay.mem_per_node)
    elif part.get("memory"):
        resources["memory"] = part["memory"]
    if accelerators:
        resources["accelerators"] = accelerators
    if part.get("use_spot") is not None:
        resources["use_spot"] = part["use_spot"]
    image = image or part.get("image_id")
    if image:
        resources["image_id"] = image
    if req.tmp:
        resources["disk_size"] = max(1, math.ceil(req.tmp / 1024))
    elif part.get("disk_size"):
        resources["disk_size"] = part["disk_size"]
    if part.get("labels"):
        resources["labels"] = part["labels"]
    return resources


def _each(value) -> list:
    """A list's or a set's (dict's) members one by one ({A: n} each); anything else alone."""
    if isinstance(value, list):
        return [{c.rsplit(":", 1)[0]: int(c.rsplit(":", 1)[1])} for c in value]
    if isinstance(value, dict) and len(value) > 1:
        return [{k: v} for k, v in value.items()]
    return [value]


def failover(req: JobRequest, lay: Layout, parts: list[tuple[str, dict]], image) -> dict:
    """The job's resources over its partitions (-p a,b) and their infras: one partition on
    one infra as it is; else SkyPilot's candidates, partition by partition, each infra in
    turn, spot before on-demand (spot_fallback), each accelerator of a list: `ordered`, or
    `any_of` for one partition whose infra and accelerators are sets. What every candidate
    shares stays outside them."""
    name, part = parts[0]
    if len(parts) == 1 and len(partition_infras(part)) == 1 and not part.get("spot_fallback"):
        return _resources(req, lay, name, part, image)
    candidates, any_order = [], len(parts) == 1 and not part.get("spot_fallback")
    for name, part in parts:
        base = _resources(req, lay, name, part, image)
        any_order &= not isinstance(part.get("infra"), list)
        any_order &= not isinstance(base.get("accelerators"), list)
        spots = [True, False] if part.get("spot_fallback") else [base.get("use_spot")]
        for infra in partition_infras(part):
            for spot in spots:
                for accelerators in _each(base.get("accelerators")):
                    one = dict(infra=infra, use_spot=spot, accelerators=accelerators)
                    one.update((k, v) for k, v in base.items() if k not in one)
                    candidates.append({k: v for k, v in one.items() if v is not None})
    shared = {
        k: v
        for k, v in candidates[0].items()
        if k not in ("infra", "use_spot") and all(c.get(k) == v for c in candidates)
    }
    keyword = "any_of" if any_order else "ordered"
    return dict(shared, **{keyword: [_without(c, shared) for c in candidates]})


def _without(candidate: dict, shared: dict) -> dict:
    return {k: v for k, v in candidate.items() if k not in shared}


def _partitions(part_name: str, part: dict, cfg: Config) -> list[tuple[str, dict]]:
    """The job's partitions and their configs: -p a,b's, in order, or its one."""
    if "," not in part_name or not cfg.partitions:
        return [(part_name, part)]
    pooled = next(
        (name for name in part_name.split(",") if pools.pool_of(name, cfg.partitions[name])), None
    )
    if pooled:
        raise SlurmError(
            f"partition {pooled} runs on a SkyPilot pool: it cannot be listed with others",
            "Batch job submission failed: Invalid partition name specified",
        )
    return [(name, cfg.partitions[name]) for name in part_name.split(",")]


def _module_setup(req: JobRequest, cfg: Config) -> tuple[list[str], dict, str | None, list[str]]:
    """Setup lines, envs and an image for the script's `module load` lines; warnings."""
    setup, envs, image, warnings = [], {}, None, []
    for mod in req.modules:
        if mod.verb != "load":
            continue
        for name in mod.args:
            entry = cfg.modules.get(name) or cfg.modules.get(name.split("/")[0])
            if entry is None:
                warnings.append(
                    f"{req.command}: warning: module {name} is not in the slurmsky "
                    "config; `module load` will do nothing in the job"
                )
                continue
            if entry.get("setup"):
                setup.append(entry["setup"].rstrip("\n"))
            envs.update(entry.get("envs", {}))
            image = entry.get("image_id", image)
    return setup, envs, image, warnings


def _runtime_source() -> str:
    """The local directory holding the `slurmsky` package (shipped as the runtime)."""
    return os.path.join(PACKAGE_PARENT, "slurmsky")


def sky_task(
    req: JobRequest,
    cfg: Config,
    lay: Layout,
    part_name: str,
    part: dict,
    spec: dict,
    metadata: dict,
) -> tuple[dict, list[str]]:
    """The SkyPilot task config for a request (validated by sky.Task.from_yaml_config)."""
    setup, module_envs, module_image, warnings = _module_setup(req, cfg)
    lacking = preflight.findings(req, cfg, part_name, part, dict(os.environ))
    if lacking and cfg.strict_env:
        raise SlurmError(
            *lacking, "Batch job submission failed: the script needs what the nodes lack"
        )
    warnings.extend(f"{req.command}: warning: {line}" for line in lacking)
    parts = _partitions(part_name, part, cfg)
    pool = pools.pool_of(part_name, part)
    if pool:
        pools.refuse_shape(part_name, lay.num_nodes)
        if len(partition_infras(part)) > 1 or part.get("spot_fallback"):
            raise SlurmError(
                f"partition {part_name} runs on SkyPilot pool {pool}, whose workers have one "
                "infra: give it one (a string) and no spot_fallback",
                "Batch job submission failed: Requested node configuration is not available",
            )
        metadata["slurmsky"]["pool"] = pool
        if setup:
            warnings.append(
                f"{req.command}: warning: partition {part_name} runs on pool {pool}, whose jobs "
                f"run no setup: `module load` setup goes in partitions.{part_name}.pool.setup"
            )
            setup = []
    image = f"docker:{req.container_image}" if req.container_image else module_image
    for name, one in parts:  # a refusal names the partition whose infra it is (-p k8s,bad)
        check(failover(req, lay, [(name, one)], image), name)
    resources = failover(req, lay, parts, image)
    if req.requeue is not None:
        restarts = cfg.requeue.get("max_restarts_on_errors", 3) if req.requeue else 0
        resources["job_recovery"] = {"max_restarts_on_errors": restarts}

    kept_home: list[str] = []
    envs = job_environment(req, cfg, for_cloud=True, kept_home=kept_home)
    if kept_home:
        warnings.append(
            f"{req.command}: warning: environment variables that look like credentials "
            "stayed home (name them in --export to send them): " + ",".join(sorted(kept_home))
        )
    envs.update(part.get("envs", {}))
    envs.update(module_envs)
    task: dict = {"name": _task_name(req.job_name)}
    if os.path.isdir(req.workdir):  # else a path on the cluster: cluster_workdir()
        if pool:  # SkyPilot leaves a pool job's workdir (and file mounts) home
            metadata["slurmsky"]["workdir_stays_home"] = True
        else:
            task["workdir"] = req.workdir
    task["num_nodes"] = lay.num_nodes
    if resources:
        task["resources"] = resources
    if envs:
        task["envs"] = {k: str(v) for k, v in envs.items()}
    if not pool:  # a pool job carries the runtime in its run (node_run)
        file_mounts = {f"{RUNTIME_HOME}/slurmsky": _runtime_source()}
        file_mounts.update(part.get("file_mounts", {}))
        task["file_mounts"] = file_mounts
    if part.get("volumes"):
        task["volumes"] = part["volumes"]
    if setup:
        task["setup"] = "\n".join(setup) + "\n"
    task["run"] = ""  # before _metadata, as it prints
    task["_metadata"] = metadata
    task["run"] = with_runtime(task, run_command(spec, cluster_workdir(task, spec)))
    return task, warnings


def rundir_lines(spec: dict) -> str:
    """The lines that make the node's $SLURMSKY_RUNDIR: its managed job's, or its job
    group's for a component of a heterogeneous job."""
    return RUNDIR if spec.get("het_component") is None else GROUP_RUNDIR


def spec_file(spec: dict) -> str:
    """The node spec's file in the rundir (a job group's components each their own)."""
    comp = spec.get("het_component")
    return "spec.json" if comp is None else f"spec-{comp}.json"


def run_command(spec: dict, workdir: str | None) -> str:
    """Every node writes the spec (a quoted heredoc: no expansion) and starts the runtime in
    `workdir` (None: where SkyPilot runs `run`, its synced workdir)."""
    return (
        rundir_lines(spec)
        + spec_lines(spec, workdir)
        + runtime_line(f'"$SLURMSKY_RUNDIR/{spec_file(spec)}"')
    )


def spec_lines(spec: dict, workdir: str | None) -> str:
    """Lines that write the node spec to $SLURMSKY_RUNDIR/spec.json (spec-N.json: a job
    group's component N)."""
    node_spec = dict(spec, workdir=workdir)
    return (
        f"cat > \"$SLURMSKY_RUNDIR/{spec_file(spec)}\" <<'{SPEC_EOF}'\n"
        f"{json.dumps(node_spec, sort_keys=True)}\n"
        f"{SPEC_EOF}\n"
    )


def runtime_line(spec_path: str) -> str:
    """The line that becomes the node runtime, its RESULT and files in $SLURMSKY_RUNDIR."""
    return (
        f'PYTHONPATH="$HOME{RUNTIME_HOME[1:]}${{PYTHONPATH:+:$PYTHONPATH}}" exec python3 -S -m slurmsky.runtime '
        f'node --spec {spec_path} --result "$SLURMSKY_RUNDIR/result.json" '
        '--rundir "$SLURMSKY_RUNDIR"\n'
    )


def lanes_of(
    count: int, throttle: int | None, part: dict, num_nodes: int
) -> tuple[int, str] | None:
    """The most lanes an array of `count` runs as at once on a partition, and the key that
    caps it: `lanes` (always in lanes) or `size` (in lanes when it has more elements than
    free nodes); None: one managed job per element (`lanes: false`, or multi-node elements)."""
    lanes = part.get("lanes")
    if lanes is False or num_nodes != 1:
        return None
    size = room.size_of(part)
    return max(1, min(lanes or size, size, throttle or count, count)), "lanes" if lanes else "size"


def task_notes(workdir: str, task: dict, spec: dict, *, followed: bool = True) -> list[str]:
    """What becomes of the workdir, of the files the job writes there and of an array, which
    infra is tried first and the recovery policy, for --test-only and translate (`followed`:
    False, a task no agent of ours follows)."""
    meta = task["_metadata"]["slurmsky"]
    lines = workdir_lines(workdir, meta.get("pool"))
    lines += files_home_lines(workdir, meta, spec.get("files_home"), followed)
    from slurmsky.backends.sky.infra import shares_base

    each = (
        "the next element none has taken, one after another (on Slurm infra they share its "
        "filesystem)"
        if shares_base(task)
        else "their share of elements one after another"
    )
    if meta.get("lanes_by") == "lanes":
        lines.append(
            f"array: slurmsky runs it as {meta['lanes']} lanes (partitions.{meta['partition']}"
            f".lanes): managed jobs that each run {each}"
        )
    elif meta.get("lanes"):
        lines.append(
            f"array: slurmsky runs it as up to {meta['lanes']} lanes (partitions."
            f"{meta['partition']}.size) when it has more elements than free nodes: managed "
            f"jobs that each run {each}"
        )
    resources = task.get("resources", {})
    several = resources.get("ordered") or resources.get("any_of")
    if several:
        infras, where, _ = zip(*candidates(task, spec))
        if "ordered" in resources:
            lines.append(
                f"tries first: infra {infras[0]} (partition {where[0]}), then "
                f"{len(infras) - 1} more in order"
            )
        else:
            lines.append(
                f"tries any of {len(infras)} candidates, as SkyPilot's optimizer chooses: "
                + ", ".join(f"infra {i} (partition {p})" for i, p in zip(infras, where))
            )
    recovery = resources.get("job_recovery")
    if recovery is not None and not recovery["max_restarts_on_errors"]:
        lines.append(
            "recovery: none (--no-requeue): a preempted job ends NODE_FAIL, SkyPilot's "
            "max_restarts_on_errors is 0"
        )
    elif recovery is not None or several:
        restarts = recovery["max_restarts_on_errors"] if recovery else 0
        lines.append(
            "recovery: SkyPilot recovers the job on new nodes when preempted, and restarts "
            f"it up to {restarts} times when it fails (Restarts and SLURM_RESTART_COUNT "
            "count both)"
        )
    return lines


def candidates(task: dict, spec: dict) -> list[tuple[str, str, dict]]:
    """Each infra candidate of a task (its resources' `ordered` or `any_of`, else its one):
    its infra ("any": none named), its partition, and what it adds to the shared resources."""
    resources = task.get("resources", {})
    pairs = spec.get("partition_infra") or [[None, spec["partition"]]]
    out = []
    for one in resources.get("ordered") or resources.get("any_of") or [{}]:
        infra = one.get("infra", resources.get("infra")) or "any"
        out.append((infra, next((p for i, p in pairs if i in (infra, None)), pairs[0][1]), one))
    return out


def files_home_lines(workdir: str, meta: dict, files: dict | None, followed: bool) -> list[str]:
    """What of the files the job writes comes home (runtime/filesync.py), and from where."""
    if not os.path.isdir(workdir):
        return []  # -D on the cluster: the job's files are there
    if not followed:
        return [
            "files home: none with `sky jobs launch` of this task (the files the job writes "
            "stay on its nodes); with sbatch they come back to " + workdir
        ]
    key = f"partitions.{meta['partition'].split(',')[0]}.files_home"  # -p a,b: a's
    if files is None:
        return [f"files home: off ({key}): the files the job writes stay on its nodes"]
    where = "its worker's run directory" if meta.get("pool") else "the workdir on its nodes"
    excluded = f", except {' '.join(files['exclude'])}" if files["exclude"] else ""
    return [
        f"files home: what the job creates or changes in {where} comes back to {workdir}"
        f"{excluded}, every {files['interval']} s while it runs and at its end; past "
        f"{files['cap_mb']} MB a file stays on the node ({key})"
    ]


def _task_name(job_name: str) -> str:
    """SkyPilot cluster names derive from the task name: letters, digits, - _ . only."""
    name = re.sub(r"[^A-Za-z0-9_.]+", "-", job_name).strip("-_.")
    if not name or not name[0].isalpha():
        name = "job-" + name
    return name[:60].rstrip("-_.")


def _group_name(job_name: str) -> str:
    """A job group's and its tasks' names: letters, digits, - and _ only (dag_utils)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", _task_name(job_name)).strip("-_")[:40] or "job"


def plan_group(plan: Plan, cfg: Config) -> tuple[dict, list[str]]:
    """A heterogeneous job's SkyPilot job group (SkyPilot 0.14): a task per component, on
    the component's partition with its own resources, each running the node runtime on its
    nodes as the component (spec "het_component": runtime/het.py joins them into one job);
    component 0's task is the primary one (the batch script ends the job, the others then
    end). A pool runs no job group: a component on a pool's partition is refused."""
    name = _group_name(plan.request.job_name)
    tasks: list[dict] = []
    warnings: list[str] = []
    for offset, comp in enumerate(plan.components):
        pool = pools.pool_of(comp.partition, comp.part)
        if pool:
            raise SlurmError(
                f"partition {comp.partition} runs on SkyPilot pool {pool}, which runs no job "
                "group: a heterogeneous job's components need partitions without a pool",
                "Batch job submission failed: Requested node configuration is not available",
            )
        metadata = {
            "slurmsky": {
                "version": 1,
                "job_id": plan.job_id,
                "job_name": comp.request.job_name,
                "partition": comp.partition,
                "het_offset": offset,
            }
        }
        spec = dict(plan.spec, het_component=offset)
        task, said = sky_task(
            comp.request, cfg, comp.layout, comp.partition, comp.part, spec, metadata
        )
        task["name"] = group_task_name(name, offset)
        tasks.append(task)
        warnings += [w for w in said if w not in warnings]
    group = {
        "name": name,
        "execution": "parallel",
        "primary_tasks": [tasks[0]["name"]],
        "_metadata": {
            "slurmsky": {
                "version": 1,
                "job_id": plan.job_id,
                "job_name": plan.request.job_name,
                "partition": plan.partition,
                "het_size": len(tasks),
            }
        },
        "job_group": tasks,
    }
    return group, warnings


def plan_task(plan: Plan, cfg: Config) -> tuple[dict, list[str]]:
    """The SkyPilot task of a submission's plan (core.planning): its partition, layout and
    spec as planned; the warnings to say of it. A heterogeneous job's is a job group
    (plan_group)."""
    if plan.components:
        return plan_group(plan, cfg)
    req, lay, part = plan.request, plan.layout, plan.part
    metadata: dict[str, dict]
    metadata = {
        "slurmsky": {
            "version": 1,
            "job_id": plan.job_id,
            "job_name": req.job_name,
            "partition": plan.partition,
        }
    }
    if req.array is not None:
        metadata["slurmsky"]["array_job_id"] = plan.job_id
        metadata["slurmsky"]["array_ranges"] = plan.spec["array"]["ranges"]
        lanes = lanes_of(req.array.count, req.array.throttle, part, lay.num_nodes)
        if lanes:
            metadata["slurmsky"]["lanes"], metadata["slurmsky"]["lanes_by"] = lanes
    return sky_task(req, cfg, lay, plan.partition, part, plan.spec, metadata)


def translate(
    req: JobRequest,
    cfg: Config,
    *,
    job_id: int | None = None,
) -> Translation:
    """The plan of a request on the sky backend (core.planning.build; ids are None before
    submission): its SkyPilot task, its runtime spec as stored, the task's warnings."""
    plan = build(req, cfg, backends.get("sky"), job_id=job_id)  # this package's BACKEND
    assert plan.task is not None  # the sky backend makes a task of every plan
    return Translation(plan.task, plan.spec, plan.warnings)
