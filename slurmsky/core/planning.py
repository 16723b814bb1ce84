"""A submission's plan, built once: its partition, layout, the node runtime's spec and the
backend's task (shared/design.md, "the sky backend inside").

sbatch, srun and salloc store it (core.submit: the spec and the task, as `state.add_submission`
keeps them), `sbatch --test-only` prints it, and `slurmsky translate` prints the one a
request would get (its ids None). The backend makes its task from the plan it is handed
(`Backend.task`): the plan's partition, layout and spec, never the request laid out again.

Two steps, because the job's id comes between them: `shape` (the partition and layout, which
the refusal checks and the count of ids to take need), then `plan` (the spec and the task for
the id taken). `build` is both at once, for a request that takes no id.
"""

from __future__ import annotations

import os

from slurmsky.backends import Backend, Feature
from slurmsky.config import Config
from slurmsky.parse.request import JobRequest
from slurmsky.plan.layout import Layout, layout, partition_of, requested, with_default_memory
from slurmsky.plan.runtime_spec import runtime_spec
from slurmsky.record import Record


class Shape(Record):
    """A request laid out on its partition, before it has an id."""

    request: JobRequest  # as planned: DefMemPerCPU given, tasks spread over the nodes they need
    asked: JobRequest  # as asked (DefMemPerCPU given, not spread): what scontrol shows requested
    partition: str
    part: dict  # the partition's config ({} without partitions)
    layout: Layout


class Plan(Shape):
    """The whole submission, as stored: `spec` is what the node runtime reads
    (slurmsky/runtime/spec.py), `task` the backend's own (SkyPilot's task config; None for a
    backend that keeps none), `warnings` what the backend says of its task on stderr when the
    job is submitted or translated."""

    job_id: int | None
    spec: dict
    task: dict | None = None
    warnings: tuple[str, ...] = ()
    components: tuple[Shape, ...] = ()  # a heterogeneous job's, each shaped on its own


def shape(req: JobRequest, cfg: Config, backend: Backend) -> Shape:
    """The partition (Slurm's error for one the config lacks) and the layout on `backend`."""
    part_name, part = partition_of(req, cfg, backend.supports(Feature.PARTITION_LISTS))
    asked = with_default_memory(req, cfg, part)
    req = _spread(asked, backend, part)
    lay = _exclusive(req, layout(req, backend.max_nodes(part)), backend, part)
    lay = _overcommit(req, lay, backend, part)
    return Shape(req, asked, part_name, part, lay)


def shape_het(req: JobRequest, cfg: Config, backend: Backend) -> tuple[Shape, list[Shape]]:
    """A heterogeneous job's components shaped each on its own, and the whole: component
    0's request on all their nodes, in component order (the job runs on all of them; the
    node runtime gives each component its own world: spec "het", `het_spec`); each keeps its
    partition and GPUs per node there, where the executor places it."""
    shapes = [shape(c, cfg, backend) for c in req.components]
    first = shapes[0]
    lays = [s.layout for s in shapes]
    whole = first.layout.replace(
        num_nodes=sum(lay.num_nodes for lay in lays),
        num_tasks=sum(lay.num_tasks for lay in lays),
        num_cpus=sum(lay.num_cpus for lay in lays),
        tasks_per_node=tuple(t for lay in lays for t in lay.tasks_per_node),
        cpus_per_node=tuple(c for lay in lays for c in lay.cpus_per_node),
    )
    return first.replace(layout=whole), shapes


def het_spec(shapes: list[Shape], first_id: int | None) -> list[dict]:
    """The node runtime's "het" list (runtime/spec.py): each component's id (J, J+1, ...),
    its nodes among the job's, and what its world shows."""
    out, node = [], 0
    for offset, s in enumerate(shapes):
        req, lay = s.request, s.layout
        out.append(
            {
                "job_id": None if first_id is None else first_id + offset,
                "job_name": req.job_name,
                "partition": s.partition,
                "nodes": [node, lay.num_nodes],
                "ntasks": lay.num_tasks,
                "cpus_per_task": req.cpus_per_task,
                "tasks_per_node": list(lay.tasks_per_node),
                "cpus_per_node": list(lay.cpus_per_node),
                "gpus_per_node": lay.gpus_per_node,
                "mem_per_node": req.mem,
                "mem_per_cpu": None if req.mem is not None else req.mem_per_cpu,
                "gpus": req.gpus.count if req.gpus else None,
                "account": req.account,
                "qos": req.ignored.get("qos"),
            }
        )
        node += lay.num_nodes
    return out


def plan(
    shaped: Shape,
    cfg: Config,
    backend: Backend,
    *,
    job_id: int | None,
    components: list[Shape] | None = None,
) -> Plan:
    """The spec and the backend's task for a shaped request with its id (None: not taken);
    a heterogeneous job's `components` (shape_het) are in its spec ("het") and plan.

    The task is made from the spec every backend's runtime reads; the submission's own facts
    (its umask, what it requested, a login environment read at launch, the time limit in the
    seconds Slurm's minute lasts) are added to the stored spec after it: the task's `run` shows
    the spec as translate always has, and the sky executor writes the stored spec into `run`
    when it launches."""
    req, lay = shaped.request, shaped.layout
    # the submit environment is stored only where the job takes it from the spec
    environment = (
        _environment(req, cfg, backend) if backend.supports(Feature.SPEC_ENVIRONMENT) else None
    )
    spec = runtime_spec(
        req,
        cfg,
        lay,
        shaped.partition,
        job_id=job_id,
        environment=environment,
        files_home=backend.supports(Feature.FILES_HOME),
    )
    if components and len(components) > 1:
        spec["het"] = het_spec(components, job_id)
    if req.command == "srun" and not backend.supports(Feature.REMOTE_ALLOCATION):
        spec["stdin_relay"] = _stdin_relay(req)
    planned = Plan(
        req,
        shaped.asked,
        shaped.partition,
        shaped.part,
        lay,
        job_id=job_id,
        spec=spec,
        components=tuple(components or ()) if components and len(components) > 1 else (),
    )
    task, warnings = backend.task(planned, cfg)
    spec = dict(spec, umask=_umask())
    spec["requested"] = requested(shaped.asked, lay, backend.node_mem(shaped.part))
    if _login_export(req) and backend.supports(Feature.LOGIN_AT_LAUNCH):
        spec["login_environment"] = True  # under `environment`, read when the job starts
    if spec["time_limit"]:
        from slurmsky.core import state

        assert req.time is not None  # the spec's time_limit is --time's
        spec["time_limit"] = max(1, round(req.time * state.seconds_per_minute()))
    return planned.replace(spec=spec, task=task, warnings=tuple(warnings))


def _stdin_relay(req: JobRequest) -> str | None:
    """Where an srun's allocation on this machine reads this srun's own stdin, which its
    srun forwards to the tasks (-i all, the default, or a task id): this process's fd 0
    while it waits for the job. None with -i none or a file, or from a terminal this srun is
    not in the foreground of (a backgrounded srun: Slurm's stops on SIGTTIN, it does not
    take the shell's input)."""
    mode = (req.input or "all").lower()
    if mode != "all" and not mode.isdigit():
        return None
    try:
        if os.isatty(0) and os.tcgetpgrp(0) != os.getpgrp():
            return None
        os.fstat(0)
    except OSError:
        return None
    return f"/proc/{os.getpid()}/fd/0"


def build(req: JobRequest, cfg: Config, backend: Backend, *, job_id: int | None = None) -> Plan:
    """The plan of a request on `backend` in one step (`slurmsky translate`: ids None)."""
    if req.components:
        whole, shapes = shape_het(req, cfg, backend)
        return plan(whole, cfg, backend, job_id=job_id, components=shapes)
    return plan(shape(req, cfg, backend), cfg, backend, job_id=job_id)


def _spread(req: JobRequest, backend: Backend, part: dict) -> JobRequest:
    """Without --nodes, Slurm allocates as many nodes as the tasks' CPUs need (with
    --ntasks-per-node, as many as that gives: plan.layout); with --overcommit a node (its
    minimum CPUs are one per node)."""
    if req.nodes is not None or not req.ntasks or req.ntasks_per_node or req.overcommit:
        return req
    node_cpus = backend.node_cpus(part)
    if node_cpus is None:
        return req
    per_node = node_cpus // (req.cpus_per_task or 1)
    if req.ntasks <= max(per_node, 1):
        return req
    # a task more than a node holds: a node each, as Slurm counts them (it never runs)
    count = -(-req.ntasks // per_node) if per_node else req.ntasks
    return req.replace(nodes=(count, count))


def _exclusive(req: JobRequest, lay: Layout, backend: Backend, part: dict) -> Layout:
    """--exclusive: every CPU of the job's nodes is the job's (SLURM_CPUS_ON_NODE and
    SLURM_JOB_CPUS_PER_NODE show them, and its CPU count: --test-only's processors); without
    --ntasks the job has a task per CPU (SLURM_TASKS_PER_NODE), as Slurm 22.05 allocates."""
    node_cpus = backend.node_cpus(part)
    if req.exclusive != "exclusive" or node_cpus is None:
        return lay
    tasks = lay.tasks_per_node
    if req.ntasks is None and req.ntasks_per_node is None:
        tasks = (max(1, node_cpus // (req.cpus_per_task or 1)),) * lay.num_nodes
    cpus = tuple(max(c, node_cpus) for c in lay.cpus_per_node)
    total = max(lay.num_cpus, node_cpus * lay.num_nodes)
    return lay.replace(tasks_per_node=tasks, cpus_per_node=cpus, num_cpus=total)


def _overcommit(req: JobRequest, lay: Layout, backend: Backend, part: dict) -> Layout:
    """--overcommit: the job takes one task's CPUs a node (slurmctld's min_cpus; the peer's
    `-N1 -n6 -O` job has SLURM_JOB_CPUS_PER_NODE 1, with -c2 2); every task shares them
    (runtime/layout.py)."""
    if not req.overcommit or backend.node_cpus(part) is None or req.exclusive == "exclusive":
        return lay
    least = max(req.cpus_per_task or 1, req.mincpus or 0)
    cpus = tuple(least for _ in lay.cpus_per_node)
    mem = lay.mem_per_node
    if req.mem_per_cpu is not None:  # per CPU of the node (plan.layout): of the CPUs it takes
        mem = req.mem_per_cpu * least
    return lay.replace(cpus_per_node=cpus, num_cpus=least * lay.num_nodes, mem_per_node=mem)


def _environment(req: JobRequest, cfg: Config, backend: Backend) -> dict:
    """The job's environment; a backend that reads the login environment at launch (as
    slurmd does) adds it then, the others get `su -`'s base of it now."""
    from slurmsky.plan.environment import job_environment

    env = job_environment(req, cfg, for_cloud=False)
    if _login_export(req) and not backend.supports(Feature.LOGIN_AT_LAUNCH):
        import pwd

        from slurmsky.plan.login import login_base, login_defs

        env = {**login_base(pwd.getpwuid(os.getuid()), login_defs()), **env}
    return env


def _login_export(req: JobRequest) -> bool:
    """sbatch/salloc --export=NONE or NAMES: the job starts from the user's login environment
    (as slurmd reads it); srun's --export=NONE gives the tasks SLURM_* only."""
    return req.export is not None and req.export.mode != "ALL" and req.command != "srun"


def _umask() -> str:
    mask = os.umask(0o022)
    os.umask(mask)
    return f"{mask:04o}"
