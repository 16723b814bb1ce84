"""Where the local backend's jobs go: the nodes of their partition (nodes.py) that have
the CPUs, memory and GPUs the job asks beside what the running jobs hold.

A placed job's GPUs (`gpu_choice`) and a heterogeneous job's partition per node
(`het_parts`) wait here for the executor's prepare(), which takes them.
"""

from __future__ import annotations

import copy

from slurmsky.backends.local.nodes import Node, job_mem, node_gpus, nodes, pool
from slurmsky.core.state import JobRecord
from slurmsky.runtime.hostlist import expand


class Placement:
    def __init__(self, partitions: dict):
        self.partitions = partitions
        self._nodes: dict[str, list[Node]] = {}  # a partition's nodes (nodes.nodes)
        self.gpu_choice: dict[int, list[list[str]]] = {}  # placed, not yet prepared
        self.het_parts: dict[int, list[str]] = {}  # placed: each node's partition
        self._pass_usage: list | None = None  # _usage's sums for the pass's running list

    def nodes_of(self, partition: str) -> list[Node]:
        if partition not in self._nodes:
            self._nodes[partition] = nodes(self.partitions.get(partition))
        return self._nodes[partition]

    def node_gpus(self, partition: str) -> list[list[str]]:
        return node_gpus(self.partitions.get(partition), len(self.nodes_of(partition)))

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        parts = job.__dict__.get("het_parts")
        if parts and len({(p["partition"], p["gpus_per_node"]) for p in parts}) > 1:
            return self._place_het(job, running, parts)
        return self._place(job, running)

    def _place_het(self, job: JobRecord, running: list[JobRecord], parts: list) -> list[int] | str:
        """A heterogeneous job whose components differ in partition or GPUs per node: each
        placed in its own partition, beside the ones placed before it; the partition of each
        node is kept for prepare (ref "parts")."""
        placed: list[JobRecord] = []
        chosen: list[int] = []
        gpus: list[list[str]] = []
        partitions: list[str] = []
        for comp in parts:
            sub = copy.copy(job)
            sub.__dict__.update(
                partition=comp["partition"],
                num_nodes=len(comp["cpus_per_node"]),
                cpus_per_node=comp["cpus_per_node"],
                num_cpus=sum(comp["cpus_per_node"]),
                gpus_per_node=comp["gpus_per_node"],
            )
            where = self._place(sub, running + placed)
            self._pass_usage = None  # the sums were of that list
            if isinstance(where, str):
                self.gpu_choice.pop(job.job_id, None)
                return where
            sub.executor_ref = {"nodes": where}
            choice = self.gpu_choice.pop(job.job_id, None)
            if choice:
                sub.executor_ref["gpus"] = choice
            gpus += choice or [[] for _ in where]
            placed.append(sub)
            chosen += where
            partitions += [comp["partition"]] * len(where)
        if any(gpus):
            self.gpu_choice[job.job_id] = gpus
        self.het_parts[job.job_id] = partitions
        return chosen

    def _place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        part = self.partitions.get(job.partition) or {}
        job_nodes = self.nodes_of(job.partition)
        if job.num_cpus > sum(n.cpus for n in job_nodes):
            return "PartitionConfig"  # more CPUs than the partition has (nodes.submit_reason)
        if job.num_nodes > len(job_nodes):
            return "PartitionNodeLimit"
        free_cpus, free_mem, busy_gpus, devices_of = self._usage(running, job.partition)
        if job.partition not in devices_of:
            devices_of[job.partition] = self.node_gpus(job.partition)
        devices = devices_of[job.partition]
        want = job.gpus_per_node or 0
        if sum(len(d) >= want for d in devices) < job.num_nodes:
            return "PartitionNodeLimit"  # too few nodes with that many GPUs
        free_gpus = [
            [d for d in devices[k] if d not in busy_gpus[k]] for k in range(len(job_nodes))
        ]
        shared = bool(part.get("oversubscribe"))  # CPUs and memory, never GPUs

        def fits(k: int, cpus: int) -> bool:
            return len(free_gpus[k]) >= want and (
                shared
                or (
                    free_cpus[k] >= cpus
                    and free_mem[k]
                    >= job_mem(cpus, job.mem_per_node, job.mem_per_cpu, job_nodes[k])
                )
            )

        required, order = _preference([n.name for n in job_nodes], job.__dict__)
        pick = _contiguous if job.__dict__.get("contiguous") else _chosen
        chosen = pick(job.cpus_per_node, required, order, fits)
        if not chosen:
            return "Resources"
        if want:
            self.gpu_choice[job.job_id] = [free_gpus[k][:want] for k in chosen]
        return chosen

    def _usage(self, running: list[JobRecord], partition: str) -> tuple[list, list, list, dict]:
        """What `running` holds of each node of the partition's pool (free CPUs and memory,
        busy GPUs: nodes.pool), and the partitions' devices, for one scheduling pass. A pass
        calls place() with one list that only grows (the jobs it places are appended), so the
        sums are kept for that list and only its new entries are added: a pass costs its
        placements, not placements times running jobs (nor a look at /dev for the machine's
        GPUs per pending job)."""
        cache = self._pass_usage
        if cache is None or cache[0] is not running or cache[1] > len(running):
            cache = self._pass_usage = [running, 0, {}, {}]
        _, applied, pools, devices_of = cache

        def sums(name: str) -> tuple[list, list, list]:
            key = pool(name, self.partitions.get(name))
            if key not in pools:
                shape = self.nodes_of(name)
                pools[key] = (
                    [n.cpus for n in shape],
                    [n.mem for n in shape],
                    [set() for _ in shape],
                )
            return pools[key]

        for other in running[applied:]:
            ref = other.executor_ref or {}
            gpus = ref.get("gpus") or self.gpu_choice.get(other.job_id) or ()
            parts = ref.get("parts")  # a heterogeneous job's partition per node
            for i, k in enumerate(ref.get("nodes", ())):
                name = parts[i] if parts else other.partition
                free_cpus, free_mem, busy_gpus = sums(name)
                shape = self.nodes_of(name)
                if k >= len(shape):
                    continue  # placed when the partition had more nodes
                free_cpus[k] -= other.cpus_per_node[i]
                free_mem[k] -= job_mem(
                    other.cpus_per_node[i], other.mem_per_node, other.mem_per_cpu, shape[k]
                )
                busy_gpus[k].update(gpus[i] if i < len(gpus) else ())
        cache[1] = len(running)
        return (*sums(partition), devices_of)


def _preference(names: list[str], job: dict) -> tuple[list[int], list[int]]:
    """-w and -x (the placed job's req_nodes, exc_nodes): the nodes the job must have, by
    index, and the order the others are taken in: without -w, node order; with it, from
    its first node up, then down from it (the peer: -N2 -w node4 gets node[3-4], -N3 -w
    node2 node[2-4]). Excluded nodes are never taken."""
    index = {name: k for k, name in enumerate(names)}
    required = sorted(index[n] for n in expand(job.get("req_nodes") or "") if n in index)
    excluded = {index[n] for n in expand(job.get("exc_nodes") or "") if n in index}
    start = required[0] if required else 0
    order = list(range(start, len(names))) + list(range(start - 1, -1, -1))
    return required, [k for k in order if k not in excluded and k not in required]


def _chosen(shares: list[int], required: list[int], allowed: list[int], fits) -> list[int]:
    """The job's nodes: the required ones, then the first of `allowed` that fit (`fits(node,
    cpus)`, each node its share), in node order as Slurm's (where nodes were required, each
    fits the largest share); [] if they do not."""
    chosen: list[int] = []
    for slot, cpus in enumerate(shares):
        k = required[slot] if slot < len(required) else None
        if k is None:
            k = next((k for k in allowed if k not in chosen and fits(k, cpus)), None)
        if k is None or not fits(k, cpus):
            return []
        chosen.append(k)
    if required:
        chosen.sort()
        if not all(fits(k, max(shares)) for k in chosen):
            return []
    return chosen


def _contiguous(shares: list[int], required: list[int], allowed: list[int], fits) -> list[int]:
    """--contiguous: the first run of consecutive nodes that holds the required ones, has no
    excluded one, and fits the job (`fits(node, cpus)`, each node its share); [] if none."""
    usable = set(required) | set(allowed)
    for first in range(max(usable, default=-1) - len(shares) + 2):
        run = list(range(first, first + len(shares)))
        if (
            usable.issuperset(run)
            and set(required).issubset(run)
            and all(fits(k, cpus) for k, cpus in zip(run, shares))
        ):
            return run
    return []
