"""This machine as the local backend's nodes: their CPUs, memory and GPUs, what no node
here can ever give (sbatch refuses it at submission).

By default the machine is shown as LOCAL_NODES nodes (127.0.0.1, 127.0.0.2, ...; override with
$SLURMSKY_LOCAL_NODES), each with all of its CPUs and memory, as Slurm's multi-node emulation
does. A partition may give its nodes a shape of their own (`nodes`, `cpus_per_node`,
`mem_per_node`: "4 nodes of 8 CPUs" on a 2-core laptop; `tmp_disk_per_node`: MB for --tmp,
default the size of the filesystem of $TMPDIR, as slurmd reports TmpDisk); such a partition is its own pool of
nodes (at the same addresses), accounted apart from the others. `oversubscribe: true` lets its
jobs share CPUs and memory (Slurm's OverSubscribe=FORCE): a job still gets no more than a
node has. GPUs (`node_gpus`): a partition's `gpus: N` gives each of its nodes N devices,
indices 0..N-1, as a Slurm node's `Gres=gpu:N` (fake ones, like the peer's); without it the
nodes have the machine's own GPUs (`CUDA_VISIBLE_DEVICES`, else /dev/nvidiaN), all on the
first node: the nodes share one machine, and a device must not be handed to two of them.

`psutil_missing` says what is wrong where psutil cannot be imported (sbatch and the agent).

Imported by sbatch: only the standard library, and nothing heavy at import.
"""

from __future__ import annotations

import os
import re

from slurmsky.record import Record
from slurmsky.runtime.hostlist import expand

LOCAL_NODES = 4


class Node(Record):
    name: str  # the node's address doubles as its name: it resolves from every "node"
    cpus: int
    mem: int  # MB
    tmp: int  # MB of temporary disk (Slurm's TmpDisk)


SHAPE_KEYS = ("nodes", "cpus_per_node", "mem_per_node")


def nodes(part: dict | None = None, environ=os.environ) -> list[Node]:
    """The nodes of a partition (its config `part`): its shape, else this machine's."""
    part = part or {}
    count = part.get("nodes") or int(environ.get("SLURMSKY_LOCAL_NODES") or LOCAL_NODES)
    cpus = part.get("cpus_per_node") or os.cpu_count() or 1
    mem = part.get("mem_per_node") or (
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    )
    tmp = part.get("tmp_disk_per_node")
    if tmp is None:
        try:
            disk = os.statvfs(environ.get("TMPDIR") or "/tmp")
            tmp = disk.f_blocks * disk.f_frsize // (1024 * 1024)
        except OSError:
            tmp = 0
    return [Node(f"127.0.0.{k + 1}", cpus, mem, tmp) for k in range(count)]


def pool(partition: str, part: dict | None) -> str:
    """Whose CPUs and memory a partition's jobs use: its own nodes' if it has a shape, else
    the machine's nodes, shared with every partition without one ("")."""
    return partition if part and any(part.get(k) for k in SHAPE_KEYS) else ""


def job_mem(job_cpus: int, mem_per_node: int | None, mem_per_cpu: int | None, node: Node) -> int:
    """MB a job holds on one node (--mem=0 is the whole node, as on Slurm)."""
    if mem_per_node is not None:
        return mem_per_node or node.mem
    return (mem_per_cpu or 0) * job_cpus


def machine_gpus(environ=os.environ) -> list[str]:
    """The machine's GPUs, cheaply: CUDA_VISIBLE_DEVICES if set, else /dev/nvidiaN."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        found = [
            int(name[6:])
            for name in os.listdir("/dev")
            if name.startswith("nvidia") and name[6:].isdigit()
        ]
    except OSError:
        return []
    return [str(n) for n in sorted(found)]


def node_gpus(part: dict | None, count: int, environ=os.environ) -> list[list[str]]:
    """The GPU device ids of each of `count` local nodes, for jobs of partition `part`."""
    if part and part.get("gpus") is not None:
        return [[str(i) for i in range(part["gpus"])] for _ in range(count)]
    return [machine_gpus(environ)] + [[] for _ in range(count - 1)]


def refusal(lay, req, part: dict | None = None) -> list[str] | None:
    """Slurm's submit-time errors for a job no node here can ever hold, or None. A detail
    line names what one node can never give (as slurmctld checks the job's per-node minimums:
    CPUs of one node's tasks as asked, --mem or --mem-per-cpu, --tmp over its TmpDisk); a layout that fits no node otherwise gets the last line alone (--mem-per-gpu,
    tasks packed by -N). part: the partition's config (its shape, its `gpus`)."""
    all_nodes = nodes(part)
    node = all_nodes[0]
    failed = "Batch job submission failed: Requested node configuration is not available"
    if min_cpus_per_node(req) > node.cpus:
        return ["CPU count per node can not be satisfied", failed]
    if max(req.mem or 0, req.mem_per_cpu or 0) > node.mem:
        return ["Memory specification can not be satisfied", failed]
    if (req.tmp or 0) > node.tmp:
        return ["Temporary disk specification can not be satisfied", failed]
    gpus = lay.gpus_per_node
    if gpus and all(len(g) < gpus for g in node_gpus(part, len(all_nodes))):
        return [failed]  # some nodes have them but too few: pends (PartitionNodeLimit)
    if max(lay.cpus_per_node) > node.cpus or (lay.mem_per_node or 0) > node.mem:
        return [failed]
    if req.exclude and lay.num_nodes > len(all_nodes) - len(set(expand(req.exclude))):
        return [failed]
    return None


def unknown_nodes(req, part: dict | None) -> str | None:
    """-w, -x: slurmctld's refusal of a name no node of the partition has, or of a node
    both asked for and excluded, else None."""
    if not (req.nodelist or req.exclude):
        return None
    have = {n.name for n in nodes(part)}
    try:
        asked, excluded = (set(expand(text or "")) for text in (req.nodelist, req.exclude))
    except ValueError:
        asked = excluded = {""}
    if not (asked | excluded) <= have or asked & excluded:
        return "Invalid node name specified"
    return None


def unknown_features(constraint: str | None, part: dict | None) -> str | None:
    """-C: slurmctld's refusal of a constraint naming a feature no node of the partition
    has (its config's `features`), or None. Counts (`*2`) are not names."""
    if not constraint:
        return None
    names = re.findall(r"(?<![*\w.-])[\w.-]+", constraint)
    have = set((part or {}).get("features") or ())
    if any(name not in have for name in names):
        return "Invalid feature specification"
    return None


def min_cpus_per_node(req) -> int:
    """The CPUs one node must have for the job as asked (slurmctld's pn_min_cpus): a task's,
    or --ntasks-per-node tasks' (not with --overcommit), or --mincpus."""
    per_node = 1 if req.overcommit else req.ntasks_per_node or 1
    return max((req.cpus_per_task or 1) * per_node, req.mincpus or 0)


def submit_reason(num_nodes: int, num_cpus: int, part: dict | None = None) -> str | None:
    """Why a job beyond what the partition holds pends (Slurm's EnforcePartLimits=NO accepts
    it): `PartitionConfig` for more CPUs than all its nodes have, for good; for more nodes
    than it has, `PartitionConfig` until the main scheduler's first pass finds
    `PartitionNodeLimit` (place). None: within the partition."""
    shape = nodes(part)
    if num_cpus > sum(n.cpus for n in shape) or num_nodes > len(shape):
        return "PartitionConfig"
    return None


def psutil_missing() -> str | None:
    """What is wrong when this Python cannot import psutil (the agent follows process trees
    with it), found without importing it: sbatch stays light. A finder on sys.meta_path that
    refuses it counts as missing."""
    import sys

    if "psutil" in sys.modules:
        return None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            if find("psutil", None) is not None:
                return None
        except ImportError:
            break
    return (
        f"the local backend needs psutil, which {sys.executable} cannot import (pip install psutil)"
    )
