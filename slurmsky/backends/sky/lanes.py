"""Lanes: an array as a few managed jobs, each running its share of elements in turn.

An array of one-node elements runs in lanes on a partition with `lanes: N`, and by default
on any sky partition when it has more elements than free nodes (room.py). The first element
of it the scheduler releases takes every element still waiting with it (plan): they are
dealt, in index order, into K = min(N or the size, throttle, elements) lanes, less the
array's lanes still running, of which as many go out as there are free nodes; the others'
elements wait (Resources) and go out in new lanes as room frees. Each lane is ONE
managed job whose `run` (lane_run) runs the node runtime for its elements one after another,
each element beside an emitter of its own whose SLURMSKY-IO lines end with the element's
position in the lane (its seq); each element's runtime sends the files it creates or
changes home (runtime/filesync.py: a snapshot of the lane's workdir at the element's start,
so the elements before it are not sent again). So K controllers at most, and an element after a lane's
first starts within a second of the one before it.

Every element keeps its own row: PENDING until its lane starts it, RUNNING from its start
marker (the node's clock), then its own RESULT. LaneReader hands each element's lines to
that element's LogReader (its files, its append mode, its RESULT, the files it wrote); the executor moves the
rows (lane_tracker.py).

No channel reaches a running managed job from home, so `scancel` of one element cuts its
lane: at once when that element runs; when the lane's running element ends (or at once when
none runs) when it was pending. The elements the lane had not started then are pending again
and go out in new lanes; elements that ended keep their results.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from slurmsky.backends.sky.output import LogReader, MarkerStream, emitted
from slurmsky.backends.sky.task import RUNDIR, runtime_line, spec_lines
from slurmsky.core import state
from slurmsky.core.state import JobRecord

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


# One element of a lane: the runtime on the lane's spec, the element SLURMSKY_LANE_SEQ names
ELEMENT = "export SLURMSKY_LANE_SEQ\n" + runtime_line('"$SLURMSKY_LANE/spec.json"')


def lane_run(spec: dict, workdir: str | None, count: int) -> str:
    """A lane's `run`: the spec once, then the runtime for each of its `count` elements in
    turn (SLURMSKY_LANE_SEQ picks the element of spec["array"]["lane"]), each in a rundir
    of its own with its tagged emitter. The lane itself always ends 0: its elements' RESULTs
    say how each ended."""
    return (
        f"{RUNDIR}"
        'SLURMSKY_LANE="$SLURMSKY_RUNDIR"\n'
        f"{spec_lines(spec, workdir)}"
        f"for SLURMSKY_LANE_SEQ in $(seq 0 {count - 1}); do\n"
        '  SLURMSKY_RUNDIR="$SLURMSKY_LANE/$SLURMSKY_LANE_SEQ"\n'
        '  mkdir -p "$SLURMSKY_RUNDIR"\n'
        f"{emitted(ELEMENT, '$SLURMSKY_LANE_SEQ')}"
        "done\n"
        "exit 0\n"
    )


class LaneReader(MarkerStream):
    """One lane's log: each element's lines to its own LogReader (by seq; lines of elements
    not followed, or that ended, are skipped), the time each element started, and a call of
    `event` at each element's start and end (to wake the agent)."""

    def __init__(self, members: dict[int, LogReader], event: Callable[[], object]):
        self.members = members
        self.event = event
        self.started: dict[int, float] = {}

    def rewind(self) -> LaneReader:
        """For a new read of the lane's log: elements that ended keep what they have (their
        lines are skipped: the notes on their files stay)."""
        self.partial, self.frames, self.last_io = "", None, ""
        for member in self.members.values():
            if member.result is None:
                member.rewind()
        return self

    def _file(self, body: str) -> None:
        """A file frame, to the element whose runtime sent it (its job id leads the
        frame's id: runtime/filesync.py), unless that element ended."""
        words = body.split(" ", 2)
        job_id = words[1].split(".", 1)[0] if len(words) > 1 else ""
        for member in list(self.members.values()):
            if str(member.job_id) == job_id and member.result is None:
                member._file(body)

    def _marker(self, kind: str, offset: int, data: bytes, tag: str | None = None) -> None:
        member = self.members.get(int(tag)) if tag is not None else None
        if tag is None or member is None or member.result is not None and kind != "r":
            return  # not an element's line, or one of an element that ended (a lane rerun)
        if kind == "s":
            self.started.setdefault(int(tag), float(data or 0) or time.time())
            data = b""
        member._marker(kind, offset, data)
        if kind in "sr":
            self.event()

    def running(self) -> list[int]:
        """The seqs started and not ended (at most one)."""
        members = dict(self.members)
        return [seq for seq in list(self.started) if seq in members and members[seq].result is None]


def waiting(conn: Connection, array_job_id: int | None) -> list[JobRecord]:
    """The array's pending records and elements not held or handed out yet."""
    return [
        row
        for row in state.find_jobs(conn, ids=[array_job_id])
        if not (row.finished or row.held or row.executor_ref)
        and (row.array_pending is not None or row.state == "PENDING")
    ]


def count_waiting(rows: list[JobRecord]) -> int:
    """The elements in `waiting`'s rows (a pending record holds several)."""
    from slurmsky.runtime import indexset

    return sum(
        1 if row.array_pending is None else indexset.count(indexset.parse(row.array_pending))
        for row in rows
    )


def plan(
    conn: Connection, job: JobRecord, spec: dict, lanes: int, now: int
) -> list[list[JobRecord]]:
    """The lanes `job` (an element being launched) goes out in now: with every element of its
    array still waiting, dealt in index order (`job` first) into `lanes` lanes, of which the
    first `now` go out (their elements split off the array's pending record); the others'
    elements wait where they are."""
    from slurmsky.runtime import indexset

    others: list[tuple[int, JobRecord, bool]] = []  # (index, its row, whether its record)
    for row in waiting(conn, job.array_job_id):
        if row.job_id == job.job_id:
            continue
        if row.array_pending is None:
            others.append((row.array_task_id or 0, row, False))
        else:
            items = indexset.iterate(indexset.parse(row.array_pending))
            others += [(index, row, True) for index in items]
    others.sort(key=lambda other: other[0])
    dealt = [(job.array_task_id or 0, job, False), *others]
    count = max(1, min(lanes, len(dealt)))
    out = []
    for k in range(min(now, count)):
        members = []
        for index, row, record in dealt[k::count]:
            if record:
                split = state.split_element(
                    conn, row.job_id, index, spec, unheld=True, reason="Resources"
                )
                if split is None:  # held or cancelled meanwhile
                    continue
                row = split
            members.append(row)
        out.append(members)
    return out


def out(conn: Connection, array_job_id: int | None) -> set[str]:
    """The tokens of an array's lanes that are still out (an element of theirs active)."""
    from slurmsky.core.states import ACTIVE_STATES

    return {
        row.executor_ref["token"]
        for row in state.find_jobs(conn, ids=[array_job_id], states=ACTIVE_STATES)
        if row.executor_ref and "lane" in row.executor_ref
    }
