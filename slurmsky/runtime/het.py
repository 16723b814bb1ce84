"""Heterogeneous jobs inside: each component's nodes, its SLURM_*_HET_GROUP_N world, and
the layout of a step over the components `srun --het-group` names.

A heterogeneous job's spec lists its components under "het" (runtime/spec.py); the job's
nodes are theirs, in component order, and its top-level fields are component 0's, but for
the nodes: the job runs on all of them. Slurm 22.05 sets every per-component variable twice,
as _HET_GROUP_N and as the older _PACK_GROUP_N (the peer's batch and step environments).
"""

import os
import shutil
import socket
import time

from . import hostlist, layout


class HetGroupError(Exception):
    """srun's error for a --het-group it cannot take (the message is srun's whole line)."""


def components(spec):
    """The spec's components, or None for a job that is not heterogeneous."""
    return spec.get("het") or None


def node_range(component):
    first, count = component["nodes"]
    return range(first, first + count)


def names_of(job, component):
    return [job.names[i] for i in node_range(component)]


# (variable, component key or function of (job, component)), in the order Slurm sets them
_GROUP_VARS = (
    ("SLURM_CPUS_PER_TASK", "cpus_per_task"),
    ("SLURM_GPUS", "gpus"),
    ("SLURM_JOB_ACCOUNT", "account"),
    ("SLURM_JOB_CPUS_PER_NODE", lambda job, c: hostlist.compress_counts(c["cpus_per_node"])),
    ("SLURM_JOB_ID", "job_id"),
    ("SLURM_JOB_NAME", "job_name"),
    ("SLURM_JOB_NODELIST", lambda job, c: hostlist.compress(names_of(job, c))),
    ("SLURM_JOB_NUM_NODES", lambda job, c: c["nodes"][1]),
    ("SLURM_JOB_PARTITION", "partition"),
    ("SLURM_JOB_QOS", "qos"),
    ("SLURM_MEM_PER_CPU", "mem_per_cpu"),
    ("SLURM_MEM_PER_NODE", "mem_per_node"),
    ("SLURM_NPROCS", "ntasks"),
    ("SLURM_NTASKS", "ntasks"),
    ("SLURM_TASKS_PER_NODE", lambda job, c: hostlist.compress_counts(c["tasks_per_node"])),
)


def group_env(job):
    """Every component's variables, _HET_GROUP_N and _PACK_GROUP_N, and the sizes."""
    comps = components(job.spec)
    env = {"SLURM_HET_SIZE": str(len(comps)), "SLURM_PACK_SIZE": str(len(comps))}
    for n, comp in enumerate(comps):
        for name, source in _GROUP_VARS:
            value = source(job, comp) if callable(source) else comp.get(source)
            if value is None or (source == "mem_per_node" and not value):
                continue
            env["%s_HET_GROUP_%d" % (name, n)] = str(value)
            env["%s_PACK_GROUP_%d" % (name, n)] = str(value)
    return env


def batch_env(job):
    """What the batch script sees of a heterogeneous job: component 0's allocation at the
    top level (its nodes, tasks and CPUs; no SLURM_CPUS_PER_TASK), every component's
    variables beside it."""
    first = components(job.spec)[0]
    nodelist = hostlist.compress(names_of(job, first))
    env = {
        "SLURM_JOB_NODELIST": nodelist,
        "SLURM_NODELIST": nodelist,
        "SLURM_JOB_NUM_NODES": str(first["nodes"][1]),
        "SLURM_NNODES": str(first["nodes"][1]),
        "SLURM_TASKS_PER_NODE": hostlist.compress_counts(first["tasks_per_node"]),
        "SLURM_JOB_CPUS_PER_NODE": hostlist.compress_counts(first["cpus_per_node"]),
        "SLURM_NTASKS": str(first["ntasks"]),
        "SLURM_NPROCS": str(first["ntasks"]),
    }
    env.update(group_env(job))
    return env


def parse_groups(text, size):
    """--het-group's value ("0,1", "0-2", "1") as component offsets, with srun's errors."""
    offsets = []  # type: list[int]
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise HetGroupError("srun: error: Invalid hetjob component specification (%s)" % text)
        offsets.extend(range(int(low), int(high or low) + 1))
    if not offsets:
        raise HetGroupError("srun: error: Invalid hetjob component specification (%s)" % text)
    top = max(offsets)
    if top >= size:
        raise HetGroupError(
            "srun: error: Requested het-group offset exceeds highest hetjob index "
            "(%d > %d)" % (top, size - 1)
        )
    return sorted(set(offsets))


def step_layout(job, req):
    """-> (node indices, [[task ids] per node]) of a step over the components the request
    names (`het_groups`; component 0 without one): each component's nodes laid out as a
    step of its own (its task count, by default its own), the task ids numbered on across
    them, as one MPI_COMM_WORLD."""
    comps = components(job.spec)
    groups = req.get("het_groups")
    nodes, tasks, gid = [], [], 0
    for offset in groups or [0]:
        comp = comps[offset]
        span = list(node_range(comp))
        ntasks, nnodes = req["ntasks"], req["nnodes"]
        if groups and not req.get("ntasks_set"):
            ntasks, nnodes = comp["ntasks"], None
        sub_nodes, sub_tasks = layout.plan_request(
            [job.names[i] for i in span],
            [job.spec["cpus_per_node"][i] for i in span],
            req,
            ntasks,
            nnodes,
        )
        for index, ids in zip(sub_nodes, sub_tasks):
            nodes.append(span[index])
            tasks.append([gid + i for i in range(len(ids))])
            gid += len(ids)
    return nodes, tasks


def step_allocation_env(job, step):
    """The allocation a step over several components sees (SLURM_JOB_NODELIST and the
    others: the union of its components', as the peer's srun --het-group=0,1 tasks show)."""
    comps = [components(job.spec)[g] for g in step.get("het_groups") or [0]]
    names = [n for c in comps for n in names_of(job, c)]
    cpus = [x for c in comps for x in c["cpus_per_node"]]
    tasks = [x for c in comps for x in c["tasks_per_node"]]
    nodelist = hostlist.compress(names)
    return {
        "SLURM_JOB_NODELIST": nodelist,
        "SLURM_NODELIST": nodelist,
        "SLURM_JOB_NUM_NODES": str(len(names)),
        "SLURM_JOB_CPUS_PER_NODE": hostlist.compress_counts(cpus),
        "SLURM_TASKS_PER_NODE": hostlist.compress_counts(tasks),
    }


# --- a component of a SkyPilot job group -----------------------------------------------------

GROUP_POLL = 0.5  # s between looks for the other components' nodes


def join_group(spec, environ, run_dir, timeout):
    """The node's SkyPilot variables as the whole job's, for a task of a SkyPilot job group
    (spec "het_component": the component it runs; None: environ as it is). SkyPilot gives
    each component's task its own SKYPILOT_NODE_RANK and SKYPILOT_NODE_IPS; the job's rank is
    the component's first node + that rank, its IPs every component's in order, so the rest
    of the runtime runs one job over all of them (node 0: component 0's first). Each node
    publishes its address in RUNDIR/group (the group's rundir, shared by the components'
    nodes where they share a filesystem: backends/sky/task.py GROUP_RUNDIR) and finds the
    others' there, or by the hostname SkyPilot gives a node of a job group
    (<task>-<rank>.<group>, where it sets up in-group networking: Kubernetes), waiting up to
    `timeout` s."""
    comp = spec.get("het_component")
    if comp is None:
        return environ
    comps = spec["het"]
    rank = int(environ.get("SKYPILOT_NODE_RANK") or 0)
    ips = environ.get("SKYPILOT_NODE_IPS") or "127.0.0.1"
    own = [ip.strip() for ip in ips.splitlines() if ip.strip()]
    group = environ.get("SKYPILOT_JOBGROUP_NAME") or "group"
    board = os.path.join(run_dir or ".", "group")
    _publish(board, "%d-%d" % (comp, rank), own[rank])
    if comp == 0 and rank == 0 and run_dir:
        _prune(os.path.dirname(os.path.abspath(run_dir)))
    deadline = time.monotonic() + timeout
    found = []
    for c, component in enumerate(comps):
        for i in range(component["nodes"][1]):
            if c == comp:
                found.append(own[i])
            else:
                found.append(_address(board, "%d-%d" % (c, i), group, c, i, deadline))
    return dict(
        environ,
        SKYPILOT_NODE_RANK=str(comps[comp]["nodes"][0] + rank),
        SKYPILOT_NODE_IPS="\n".join(found),
    )


GROUPS_KEPT = 30 * 86400  # s a job group's rundir outlives its last change (as run counts)


def _prune(groups):
    """Forget the rundirs of job groups untouched for GROUPS_KEPT (a shared BASE keeps them:
    SkyPilot deletes only its clusters' homes)."""
    if os.path.basename(groups) != "groups":
        return
    old = time.time() - GROUPS_KEPT
    for entry in os.scandir(groups):
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < old:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


def _publish(board, name, address):
    os.makedirs(board, mode=0o700, exist_ok=True)
    tmp = os.path.join(board, ".%s.%d" % (name, os.getpid()))
    with open(tmp, "w") as f:
        f.write(address + "\n")
    os.replace(tmp, os.path.join(board, name))


def _address(board, name, group, comp, rank, deadline):
    """A node of another component: its address on the board, else its job-group hostname
    once it resolves (group_task_name), waiting until `deadline`."""
    host = "%s-%d.%s" % (group_task_name(group, comp), rank, group)
    while True:
        try:
            with open(os.path.join(board, name)) as f:
                address = f.read().strip()
            if address:
                return address
        except OSError:
            pass
        try:
            return socket.gethostbyname(host)
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise OSError("node %d of component %d did not come (%s)" % (rank, comp, host))
        time.sleep(GROUP_POLL)


def group_task_name(group, comp):
    """The name of component `comp`'s task in job group `group` (backends/sky/task.py names
    its tasks by it, SkyPilot their nodes' hostnames)."""
    return "%s-%d" % (group, comp)
