"""The local backend (the default): jobs run as processes on this machine, shown as
LOCAL_NODES nodes (nodes.py); the agent's executor starts and watches them (executor.py).

Imported by sbatch and squeue: the standard library only; psutil loads with the executor.
"""

from __future__ import annotations

import os

from slurmsky.backends import Backend, Feature, NodeState


class LocalBackend(Backend):
    name = "local"
    unsupported = {
        Feature.REMOTE_ALLOCATION: "salloc's allocation is on this machine: its shell runs here",
        Feature.FOREIGN_JOBS: "its jobs are processes slurmsky started: no outside queue "
        "holds others",
        Feature.QUEUE_SYNC: "the agent starts and watches its processes itself",
        Feature.FILES_HOME: "its nodes are this machine: what a job writes is already here",
        Feature.PARTITION_LISTS: "a job is placed in one configured partition's nodes "
        "(-p a,b: invalid partition specified)",
    }

    def unavailable(self):
        from slurmsky.backends.local.nodes import psutil_missing

        return psutil_missing()

    def executor(self):
        from slurmsky.backends.local.executor import LocalExecutor

        return LocalExecutor()

    def node_cpus(self, part=None):
        from slurmsky.backends.local.nodes import nodes

        return nodes(part)[0].cpus

    def node_mem(self, part=None):
        from slurmsky.backends.local.nodes import nodes

        return nodes(part)[0].mem

    def max_nodes(self, part=None):
        from slurmsky.backends.local.nodes import nodes

        return len(nodes(part))

    def refusal(self, lay, req, part):
        from slurmsky.backends.local.nodes import refusal

        return refusal(lay, req, part)

    def invalid(self, req, part):
        from slurmsky.backends.local.nodes import unknown_features, unknown_nodes

        return unknown_features(req.constraint, part) or unknown_nodes(req, part)

    def submit_reason(self, lay, part=None):
        from slurmsky.backends.local.nodes import submit_reason

        return submit_reason(lay.num_nodes, lay.num_cpus, part)

    def node_names(self, count, part=None):
        from slurmsky.backends.local.nodes import nodes

        return [n.name for n in nodes(part)[:count]]

    def nodes(self, partition, part, running):
        from slurmsky.backends.local.nodes import node_gpus, nodes
        from slurmsky.runtime.hostlist import expand

        used: dict[str, int] = {}
        for job in running:
            for name, cpus in zip(expand(job.nodelist or ""), job.cpus_per_node):
                used[name] = used.get(name, 0) + cpus
        shape = nodes(part)
        gpus = node_gpus(part, len(shape))
        return [
            NodeState(
                n.name,
                n.cpus,
                min(used.get(n.name, 0), n.cpus),
                n.mem,
                n.tmp,
                f"gpu:{len(devices)}" if devices else None,  # Slurm's Gres=gpu:N
            )
            for n, devices in zip(shape, gpus)
        ]

    def running_steps(self, job):
        from slurmsky.backends.local.executor import running_steps

        return running_steps(job)

    def step_io_dir(self, job):
        rundir = (job.executor_ref or {}).get("rundir")
        return rundir and os.path.join(rundir, "attach")

    def step_usage(self, job):
        from slurmsky.backends.local.executor import step_usage

        return step_usage(job)


BACKEND = LocalBackend()
