"""Where a job's tasks, CPUs, GPUs and memory go, per node (Slurm's block layout), and
which partition it is in.
"""

from __future__ import annotations

import math

from slurmsky.config import Config
from slurmsky.errors import SlurmError
from slurmsky.parse.request import JobRequest
from slurmsky.record import Record


class Layout(Record):
    """Where tasks, cpus, gpus and memory go, per node (Slurm's block layout). A job that asks
    more nodes than the configuration can ever give keeps its totals but only the first
    nodes' entries (`layout`'s `most`): it never runs, and nothing is built per node."""

    num_nodes: int
    num_tasks: int
    num_cpus: int
    tasks_per_node: tuple[int, ...]
    cpus_per_node: tuple[int, ...]
    gpu_type: str | None
    gpus_per_node: int
    mem_per_node: int | None  # MB; None: not asked (0 means the whole node)


def layout(req: JobRequest, most: int) -> Layout:
    """The block layout; per-node entries for at most `most` + 1 nodes (see Layout)."""
    nodes = req.nodes[0] if req.nodes else 1
    if req.ntasks_per_node and req.ntasks is None:
        ntasks = nodes * req.ntasks_per_node
    else:
        ntasks = req.ntasks or nodes
    if req.ntasks and req.ntasks_per_node:
        nodes = max(nodes if req.nodes else 1, math.ceil(req.ntasks / req.ntasks_per_node))
    runs = _task_runs(nodes, ntasks, req.ntasks_per_node)
    gpu_type, per_node = _gpus(req, nodes, max(t for t, _ in runs))

    def cpus_of(tasks: int) -> int:
        return max(
            tasks * (req.cpus_per_task or 1), req.mincpus or 0, (req.cpus_per_gpu or 0) * per_node
        )

    shown = min(nodes, most + 1)
    tasks: list[int] = []
    for t, count in runs:
        tasks += [t] * min(count, shown - len(tasks))
    cpus = [cpus_of(t) for t in tasks]
    mem = req.mem
    if req.mem_per_cpu is not None:
        mem = req.mem_per_cpu * max(cpus)
    elif req.mem_per_gpu is not None:
        mem = req.mem_per_gpu * per_node
    return Layout(
        nodes,
        sum(t * n for t, n in runs),
        sum(cpus_of(t) * n for t, n in runs),
        tuple(tasks),
        tuple(cpus),
        gpu_type,
        per_node,
        mem,
    )


def _task_runs(nodes: int, ntasks: int, per_node: int | None) -> list[tuple[int, int]]:
    """The tasks of each node as (tasks, nodes) runs, in node order, each node at least one."""
    if per_node and ntasks >= nodes:
        # Slurm allocates --ntasks-per-node on every node, even when --ntasks leaves the
        # last one short (-N2 -n3 --ntasks-per-node=2: SLURM_TASKS_PER_NODE=2(x2))
        runs = [(per_node, nodes)]
    elif per_node:
        full, left = divmod(ntasks, per_node)
        full = min(full, nodes)
        runs = [(per_node, full), (left, 1), (1, nodes - full - 1)]
    else:
        base, extra = divmod(ntasks, nodes)
        runs = [(base + 1, extra), (base, nodes - extra)]
    return [(max(t, 1), n) for t, n in runs if n > 0]


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


def default_mem_per_cpu(cfg: Config, part: dict) -> int | None:
    """Slurm's DefMemPerCPU: the partition's `def_mem_per_cpu`, else the configuration's."""
    return part.get("def_mem_per_cpu", cfg.def_mem_per_cpu)


def with_default_memory(req: JobRequest, cfg: Config, part: dict) -> JobRequest:
    """A job that asks no memory (--mem, --mem-per-cpu, --mem-per-gpu) gets DefMemPerCPU
    MB per CPU; none configured leaves it unasked (ReqMem 0, as Slurm without a default)."""
    if req.mem is not None or req.mem_per_cpu is not None or req.mem_per_gpu is not None:
        return req
    default = default_mem_per_cpu(cfg, part)
    return req.replace(mem_per_cpu=default) if default else req


def requested(req: JobRequest, lay: Layout, node_mem: int | None) -> dict:
    """What slurmctld records of a job as asked, at submission, which `scontrol show job`
    shows: its TRES while it pends (nodes as -N asks, else 1; memory, MB: --mem=0 is a
    node's `node_mem`; GPUs; CPUs from the tasks, --mincpus only in MinCPUsNode until the
    job has nodes) and --tmp (MB), --ntasks-per-gpu/-core/-socket, --mail-type, --mail-user,
    -w and -x, --contiguous, --time-min."""
    nodes = req.nodes[0] if req.nodes else 1
    cpus = layout(req.replace(mincpus=None), 0).num_cpus if req.mincpus else lay.num_cpus
    if req.gpus:
        gpus = req.gpus.count
    elif req.gpus_per_task:
        gpus = req.gpus_per_task.count * lay.num_tasks
    else:
        gpus = lay.gpus_per_node * nodes
    if req.mem_per_gpu is not None:
        mem = req.mem_per_gpu * gpus
    elif req.mem is not None:
        mem = (req.mem or node_mem or 0) * nodes
    else:
        mem = (req.mem_per_cpu or 0) * cpus
    return {
        "nodes": nodes,
        "cpus": cpus,
        "mincpus": req.mincpus,
        "mem": mem,
        "gpus": gpus,
        "tmp": req.tmp or 0,
        "ntasks_per_gpu": req.ignored.get("ntasks_per_gpu"),
        "ntasks_per_core": req.ignored.get("ntasks_per_core"),
        "ntasks_per_socket": req.ignored.get("ntasks_per_socket"),
        "mail_type": req.ignored.get("mail_type"),
        "mail_user": req.ignored.get("mail_user"),
        "nodelist": req.nodelist,  # -w, -x: the nodes it must have, must not (hostlists)
        "exclude": req.exclude,
        "contiguous": req.contiguous,
        "time_min": req.time_min,  # minutes
    }


def partition_of(req: JobRequest, cfg: Config, lists: bool = False) -> tuple[str, dict]:
    """The partition's name and config; Slurm's error for a name the config lacks. With
    `lists` (a backend with PARTITION_LISTS), `-p a,b` is one job over them all: its name is
    the list, its config the first one's."""
    if not cfg.partitions:
        return req.partition or "local", {}
    name = req.partition or cfg.default_partition()
    assert name is not None  # default_partition() is None only without partitions
    names = name.split(",") if lists else [name]
    if any(n not in cfg.partitions for n in names):
        unknown = next((n for n in name.split(",") if n not in cfg.partitions), name)
        raise SlurmError(
            f"invalid partition specified: {unknown}",
            "Batch job submission failed: Invalid partition name specified",
        )
    return name, cfg.partitions[names[0]]
