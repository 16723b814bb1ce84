"""Where the local backend's jobs go: the nodes of their partition (nodes.py) that have
the CPUs, memory and GPUs the job asks beside what the running jobs hold.

A placed job's GPUs (`gpu_choice`) and a heterogeneous job's partition per node
(`het_parts`) wait here for the executor's prepare(), which takes them.
"""

from __future__ import annotations

import copy

from slurmsky.backends.local.nodes import Node, job_mem, node_gpus, nodes, pool
from slurmsky.core.state import JobRecord


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
        chosen: list[int] = []
        for cpus in job.cpus_per_node:
            fits = [
                k
                for k, n in enumerate(job_nodes)
                if k not in chosen
                and len(free_gpus[k]) >= want
                and (
                    shared
                    or (
                        free_cpus[k] >= cpus
                        and free_mem[k] >= job_mem(cpus, job.mem_per_node, job.mem_per_cpu, n)
                    )
                )
            ]
            if not fits:
                return "Resources"
            chosen.append(fits[0])
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
