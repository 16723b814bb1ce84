"""Which nodes a step runs on and which task ids each gets: Slurm's default block layout."""


class LayoutError(Exception):
    """The step cannot be created (the message is what srun prints after 'Unable to create
    step for job N: ')."""


def plan(
    names,
    cpus_per_node,
    ntasks,
    nnodes,
    nodelist=(),
    exclude=(),
    ntasks_per_node=None,
    cpus_per_task=1,
    overcommit=False,
    relative=0,
    busy=None,
):
    """-> (node indices, [[task ids] per node]) for a step of the allocation.

    Nodes named with -w come first in the choice, the rest are taken in allocation order
    from the node at index `relative` on (srun -r); the chosen nodes keep allocation order. Tasks are laid out as Slurm's
    _task_layout_block: one per node, then fill each node's CPUs in turn. `busy`: the CPUs
    other --exact steps hold on each node: this (--exact) step takes the others, nodes with
    room first; where they are too few it shares them (Slurm would wait for them)."""
    args = (names, ntasks, nnodes, nodelist, exclude, ntasks_per_node, cpus_per_task, overcommit)
    if busy and any(busy):
        free = [c - b for c, b in zip(cpus_per_node, busy)]
        try:
            return _plan(*args, relative, free)
        except LayoutError:
            pass
    return _plan(*args, relative, cpus_per_node)


def plan_request(names, cpus_per_node, req, ntasks, nnodes, busy=None):
    """plan() for srun's request (runtime/srun.py parse), with these task and node counts."""
    return plan(
        names,
        cpus_per_node,
        ntasks,
        nnodes,
        req["nodelist"],
        req["exclude"],
        req["ntasks_per_node"],
        req["cpus_per_task"],
        req["overcommit"],
        req.get("relative", 0),
        busy,
    )


def _plan(
    names,
    ntasks,
    nnodes,
    nodelist,
    exclude,
    ntasks_per_node,
    cpus_per_task,
    overcommit,
    relative,
    cpus_per_node,
):
    wanted = []
    for name in nodelist:
        if name not in names:
            raise LayoutError("Requested node configuration is not available")
        if names.index(name) not in wanted:
            wanted.append(names.index(name))
    others = [i for i in range(relative, len(names)) if i not in wanted and names[i] not in exclude]
    others.sort(key=lambda i: cpus_per_node[i] < cpus_per_task)  # nodes with room first
    count = max(nnodes or 0, len(wanted)) or min(len(names) - relative, ntasks)
    chosen = sorted(wanted + others[: max(count - len(wanted), 0)])
    if len(chosen) < count:
        raise LayoutError("Requested node configuration is not available")
    cpus = [cpus_per_node[i] // cpus_per_task for i in chosen]
    if ntasks_per_node:
        cpus = [min(c, ntasks_per_node) for c in cpus]
    counts = _block(ntasks, cpus, overcommit)
    nodes, tasks, gid = [], [], 0
    for node, n in zip(chosen, counts):
        if n:
            nodes.append(node)
            tasks.append(list(range(gid, gid + n)))
            gid += n
    return nodes, tasks


def _block(ntasks, cpus, overcommit):
    counts = [0] * len(cpus)
    left = ntasks
    for i, c in enumerate(cpus):  # pass 1: one task on each node
        if left and counts[i] < c:
            counts[i] += 1
            left -= 1
    for i, c in enumerate(cpus):  # pass 2: fill each node's CPUs
        take = min(c - counts[i], left)
        counts[i] += take
        left -= take
    if left and not overcommit:
        raise LayoutError("More processors requested than permitted")
    while left:  # pass 3 (--overcommit): spread the rest
        for i in range(len(counts)):
            if left:
                counts[i] += 1
                left -= 1
    return counts
