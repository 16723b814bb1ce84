"""A sky partition's size, as a Slurm partition has nodes: the SkyPilot nodes its jobs may
hold at once (`partitions.X.size`; a pool's workers; else DEFAULT_SIZE), and what they hold.

A job handed to SkyPilot (launching, pending there, running) holds its -N nodes; a lane holds
one node, whichever of its elements runs (a release's lanes: lanes_held). A job or lane that
would pass the size pends (Resources) until room frees; an array with more elements than
free nodes runs in lanes.

Standard library only: sbatch asks the size (a job larger than it is refused).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slurmsky.core.state import JobRecord

DEFAULT_SIZE = 8  # nodes at once: what one API server carries comfortably


def size_of(part: dict) -> int:
    """The partition's size: its `size`, else its pool's workers, else DEFAULT_SIZE."""
    if "size" in part:
        return part["size"]
    pool = part.get("pool")
    return DEFAULT_SIZE if pool is None else pool.get("workers", 1)


def held(jobs: Iterable[JobRecord]) -> int:
    """The nodes `jobs` hold: each job with a ref (handed to SkyPilot) its -N, the lanes of
    each launch of an array's elements (their refs share its token) as lanes_held says."""
    launches: dict[str, list[JobRecord]] = {}
    nodes = 0
    for job in jobs:
        ref = job.executor_ref
        if not ref:
            continue
        if "lane" in ref:
            launches.setdefault(ref["token"], []).append(job)
        else:
            nodes += job.num_nodes
    return nodes + sum(lanes_held(members) for members in launches.values())


def lanes_held(members: list[JobRecord]) -> int:
    """The nodes one launch of lanes holds, given its active elements: a dealt lane one,
    whichever of its elements runs; a release's lanes (claims: lanes.py) one each while an
    element of it has not started (any lane may take it), then one per element still out
    (a lane with nothing left ends)."""
    count = (members[0].executor_ref or {}).get("lanes")
    if count is None:
        return 1
    if any(job.state == "PENDING" for job in members):
        return count
    return min(count, len(members))


def lanes_now(free: int, cap: int, out: int, waiting: int) -> int:
    """How many lanes an array starts now: no more than the free nodes, its cap less its
    lanes out, its waiting elements (0: none may start)."""
    return max(0, min(free, cap - out, waiting))


def in_lanes(always: bool, free: int, waiting: int) -> bool:
    """Whether an array of one-node elements goes out in lanes: always (the partition's
    `lanes: N`), else when it has more waiting elements than free nodes."""
    return always or waiting > free
