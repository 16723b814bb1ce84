"""A sky partition's size, as a Slurm partition has nodes: the SkyPilot nodes its jobs may
hold at once (`partitions.X.size`; a pool's workers; else DEFAULT_SIZE), and what they hold.

A job handed to SkyPilot (launching, pending there, running) holds its -N nodes; a lane holds
one node, whichever of its elements runs. A job or lane that would pass the size pends
(Resources) until room frees; an array with more elements than free nodes runs in lanes.

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
    """The nodes `jobs` hold: each job with a ref (handed to SkyPilot) its -N, each lane
    (its elements share a token) one."""
    lanes: set[str] = set()
    nodes = 0
    for job in jobs:
        ref = job.executor_ref
        if not ref:
            continue
        if "lane" in ref:
            lanes.add(ref["token"])
        else:
            nodes += job.num_nodes
    return nodes + len(lanes)


def lanes_now(free: int, cap: int, out: int, waiting: int) -> int:
    """How many lanes an array starts now: no more than the free nodes, its cap less its
    lanes out, its waiting elements (0: none may start)."""
    return max(0, min(free, cap - out, waiting))


def in_lanes(always: bool, free: int, waiting: int) -> bool:
    """Whether an array of one-node elements goes out in lanes: always (the partition's
    `lanes: N`), else when it has more waiting elements than free nodes."""
    return always or waiting > free
