"""One agent pass's placing of sky jobs within their partitions' sizes (room.py).

The pass's first place() reads what the active jobs hold; each job placed after adds its
nodes, so a pass never places more than a partition's size (the launches come after every
place()). An array element may take its array out in lanes: its launch then takes the
waiting elements (lanes.plan), and `granted` says how many lanes it may open now; `whole`
names the elements whose launch may be their whole dense array's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from slurmsky.backends.sky import lanes, room
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.launcher import dense, lanes_of
from slurmsky.core import state
from slurmsky.core.state import JobRecord


class Placement:
    def __init__(self, db, partitions: dict, plan: Callable[[int], tuple[dict, dict]]):
        self.db, self.partitions, self.plan = db, partitions, plan
        self.new_pass()

    def new_pass(self) -> None:
        """Forget the last pass: what it counted held, its arrays' modes, its grants (what
        it placed and did not launch was cancelled meanwhile)."""
        # partition -> nodes held (held()), array -> whether it goes out in lanes, placed
        # elements' lanes (dealt, going out now)
        self.room: defaultdict[str, int] | None = None
        self.modes: dict[int | None, bool] = {}
        self.granted: dict[int, tuple[int, int]] = {}
        self.whole: set[int] = set()  # elements whose launch may be their whole array's

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        """Nodes within the partition's size, or why not."""
        held = self.held()
        free = self.free(job.partition)
        cap = lanes_of(self.plan(job.submission)[1]) if job.array_job_id is not None else None
        if cap is not None:
            array = job.array_job_id
            if self.modes.get(array) and any(
                j.array_job_id == array and j.state == "PENDING" for j in running
            ):
                return "JobArrayTaskLimit"  # one element a pass: its launch takes the others
            waiting = lanes.count_waiting(lanes.waiting(self.db, array))
            if self.modes.setdefault(array, room.in_lanes(cap[1], free, waiting)):
                out = lanes.out(self.db, array)
                now = room.lanes_now(free, cap[0], out, waiting)
                if now == 0:
                    return "Resources" if free <= 0 else "JobArrayTaskLimit"
                self.granted[job.job_id] = (cap[0] - out, now)
                held[job.partition] += now
                return [0]
        if job.array_throttle and self._array_busy(job, running) >= job.array_throttle:
            return "JobArrayTaskLimit"
        het = het_nodes(job.__dict__.get("het_parts"))
        if het:  # a heterogeneous job: each component's nodes in its own partition
            if any(self.free(part) < count for part, count in het.items()):
                return "Resources"
            for part, count in het.items():
                held[part] += count
            return list(range(job.num_nodes))
        if free < job.num_nodes:
            return "Resources"
        spec = self.plan(job.submission)[0]
        if dense(spec) and free >= spec["array"]["count"]:
            self.whole.add(job.job_id)  # its launch may be the whole array's: it fits
        held[job.partition] += job.num_nodes
        return list(range(job.num_nodes))

    def still_fits(self, job: JobRecord) -> str | None:
        """Why a job placed this pass has no room now, counted afresh from the state
        (another member's agent may have taken it since); None when it has."""
        counted, self.room = self.room, None
        try:
            now = self.held()
        finally:
            self.room = counted
        het = het_nodes(job.__dict__.get("het_parts"))
        need = het or {job.partition: 1 if job.job_id in self.granted else job.num_nodes}
        for part, count in need.items():
            if room.size_of(self.partitions.get(part) or {}) - now[part] < count:
                return "Resources"
        return None

    def held(self) -> dict[str, int]:
        """partition -> the nodes its jobs hold: read at a pass's first place(), then counted
        up as that pass places jobs. A heterogeneous job holds each component's nodes in its
        partition."""
        if self.room is None:
            by_part: dict[str, list[JobRecord]] = {}
            groups: defaultdict[str, int] = defaultdict(int)
            for j in state.active_jobs(self.db, "sky"):
                if j.executor_ref and j.job_id < skysync.FOREIGN_BASE:
                    het = het_nodes(self.plan(j.submission)[0].get("het"))
                    for part, count in het.items():
                        groups[part] += count
                    if not het:
                        by_part.setdefault(j.partition, []).append(j)
            self.room = defaultdict(int, {p: room.held(js) for p, js in by_part.items()})
            for part, count in groups.items():
                self.room[part] += count
        return self.room

    def free(self, partition: str) -> int:
        return room.size_of(self.partitions.get(partition) or {}) - self.held()[partition]

    def _array_busy(self, job: JobRecord, running: list[JobRecord]) -> int:
        """Elements of the array SkyPilot has (pending there too) or that start this pass."""
        assert job.array_job_id is not None  # a throttle is an array's
        out = state.array_elements_out(self.db, job.array_job_id)
        return len(out | {j.job_id for j in running if j.array_job_id == job.array_job_id})


def het_nodes(components: list[dict] | None) -> dict[str, int]:
    """A heterogeneous job's nodes per partition, from its spec's components ({}: none)."""
    nodes: dict[str, int] = {}
    for comp in components or ():
        nodes[comp["partition"]] = nodes.get(comp["partition"], 0) + comp["nodes"][1]
    return nodes
