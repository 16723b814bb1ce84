"""Lanes: an array as a few managed jobs, each running elements one after another.

An array of one-node elements runs in lanes on a partition with `lanes: N`, and by default
on any sky partition when it has more elements than free nodes (room.py). The first element
of it the scheduler releases takes every element still waiting with it: K = min(N or the
size, throttle, elements) lanes, less the array's lanes still out, of which as many go out
as there are free nodes; the other lanes' elements wait (Resources) and go out with new
lanes as room frees. How the lanes that go out share their elements depends on the infra:

* Claims (`release`), where the lanes share a filesystem: SkyPilot's Slurm infra, whose
  clusters' homes lie under one BASE its nodes share (infra.shares_base decides). Those
  lanes are ONE launch of K managed jobs (num_jobs) with the same `run` (claim_run): the
  whole list of the release's elements (their seq: their position in it). Before running an
  element a lane claims it (an atomic link under BASE/.slurmsky/claims/<token>), so each
  element runs once, on whichever lane is ready first, and a lane ends when none is left to
  claim: an array ends when its elements are done, not when its slowest lane's share is.
  A recovered lane (SkyPilot reran it after a preemption) first runs again the element it
  had claimed and not finished. (A lane whose node has no such BASE after all runs the
  elements dealt to its rank instead: none runs twice.)
* Dealt lanes (`plan`) elsewhere (a cloud, Kubernetes, a candidate list that mixes Slurm
  with others: lanes that share nothing): the elements are dealt, in index order, into the
  K lanes, each ONE managed job running its own share in turn (lane_run).

Either way K controllers at most, and an element after a lane's first starts within a
second of the one before it. Each element runs the node runtime beside an emitter of its
own whose SLURMSKY-IO lines end with the element's seq; each element's runtime sends the
files it creates or changes home (runtime/filesync.py: a snapshot of the lane's workdir at
the element's start, so the elements before it are not sent again).

Every element keeps its own row: PENDING until a lane starts it, RUNNING from its start
marker (the node's clock), then its own RESULT. LaneReader hands each element's lines to
that element's LogReader (its files, its append mode, its RESULT, the files it wrote); the
executor moves the rows, and cuts a lane for scancel (lane_tracker.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from slurmsky.backends.sky import room
from slurmsky.backends.sky.output import LogReader, MarkerStream, emitted
from slurmsky.backends.sky.task import RUNDIR, runtime_line, spec_lines
from slurmsky.core import state
from slurmsky.core.state import JobRecord

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


# One element of a lane: the runtime on the lane's spec, the element SLURMSKY_LANE_SEQ names
ELEMENT = "export SLURMSKY_LANE_SEQ\n" + runtime_line('"$SLURMSKY_LANE/spec.json"')
CLAIMS_KEPT = 30  # days a release's claims outlive its last claim (BASE/.slurmsky/claims)


def _element_lines() -> str:
    """Lines that run element $SLURMSKY_LANE_SEQ in a rundir of its own, with its tagged
    emitter."""
    return (
        'SLURMSKY_RUNDIR="$SLURMSKY_LANE/$SLURMSKY_LANE_SEQ"\n'
        'mkdir -p "$SLURMSKY_RUNDIR"\n'
        f"{emitted(ELEMENT, '$SLURMSKY_LANE_SEQ')}"
    )


def lane_run(spec: dict, workdir: str | None, count: int) -> str:
    """A dealt lane's `run`: the spec once, then the runtime for each of its `count` elements
    in turn (SLURMSKY_LANE_SEQ picks the element of spec["array"]["lane"]), each in a rundir
    of its own with its tagged emitter. The lane itself always ends 0: its elements' RESULTs
    say how each ended."""
    return (
        f"{RUNDIR}"
        'SLURMSKY_LANE="$SLURMSKY_RUNDIR"\n'
        f"{spec_lines(spec, workdir)}"
        f"for SLURMSKY_LANE_SEQ in $(seq 0 {count - 1}); do\n"
        f"{_element_lines()}"
        "done\n"
        "exit 0\n"
    )


def claim_run(spec: dict, workdir: str | None, count: int, lanes: int, token: str) -> str:
    """The `run` of every lane of a release (`lanes` lanes, one launch): the spec once, then
    each element the lane claims, run as lane_run runs one. On Slurm infra ($HOME is
    BASE/.sky_clusters/<cluster>, BASE shared) the lane claims element SEQ by making the
    link BASE/.slurmsky/claims/<token>/SEQ -> lane-<its managed job id>: making a link is
    atomic, so one lane's is made and every other's fails (that lane goes on to the next
    SEQ), and the link names the lane that holds the claim. Once the element ran, SEQ.done
    says so; the lane ends when no element is left to claim. A recovered lane (SkyPilot runs
    `run` again, in a fresh $HOME) first runs the element its link names that has no .done.
    A node whose $HOME is not under .sky_clusters (no BASE: not what SkyPilot's Slurm infra
    gives) runs the elements dealt to its SKYPILOT_JOB_RANK instead, so none runs twice.
    The lane itself always ends 0: its elements' RESULTs say how each ended."""
    claims = '"$SLURMSKY_CLAIMS/$SLURMSKY_LANE_SEQ'
    return (
        f"{RUNDIR}"
        'SLURMSKY_LANE="$SLURMSKY_RUNDIR"\n'
        f"{spec_lines(spec, workdir)}"
        # (not indented: the emitter's heredoc ends at the start of a line)
        f"slurmsky_element() {{\n{_element_lines()}}}\n"
        'if [ "$(basename "$(dirname "$HOME")")" = .sky_clusters ]; then\n'
        '  SLURMSKY_CLAIMS="$(dirname "$(dirname "$HOME")")/.slurmsky/claims"\n'
        '  mkdir -p "$SLURMSKY_CLAIMS"\n'
        f'  find "$SLURMSKY_CLAIMS" -mindepth 1 -maxdepth 1 -mtime +{CLAIMS_KEPT} '
        "-exec rm -rf {} + 2>/dev/null\n"
        f'  SLURMSKY_CLAIMS="$SLURMSKY_CLAIMS/{token}"\n'
        '  SLURMSKY_ME="lane-${SKYPILOT_MANAGED_JOB_ID:-0}"\n'
        '  mkdir -p "$SLURMSKY_CLAIMS"\n'
        '  for SLURMSKY_LANE_SEQ in $(find "$SLURMSKY_CLAIMS" -maxdepth 1 -type l '
        "-lname \"$SLURMSKY_ME\" -printf '%f\\n'); do\n"
        f'    [ -e {claims}.done" ] || {{ slurmsky_element; touch {claims}.done"; }}\n'
        "  done\n"
        f"  for SLURMSKY_LANE_SEQ in $(seq 0 {count - 1}); do\n"
        f'    if ln -sn "$SLURMSKY_ME" {claims}" 2>/dev/null; then\n'
        f'      slurmsky_element; touch {claims}.done"\n'
        "    fi\n"
        "  done\n"
        "else\n"
        f'  for SLURMSKY_LANE_SEQ in $(seq "${{SKYPILOT_JOB_RANK:-0}}" {lanes} {count - 1}); do\n'
        "    slurmsky_element\n"
        "  done\n"
        "fi\n"
        "exit 0\n"
    )


class LaneReader(MarkerStream):
    """One lane's log: each element's lines to its own LogReader (by seq; lines of elements
    not followed, or that ended, are skipped), the time each element started, and a call of
    `event` at each element's start and end (to wake the agent).

    A release's lane (claims) may run any element of the release: `makers` make an
    element's LogReader when this lane starts it, and every element's starts (`last`: the
    latest, a rerun's after a recovery) and RESULTs (`ended`) are noted, followed here or not
    (a lane may start an element cancelled before it started: the agent cuts the lane)."""

    def __init__(
        self,
        members: dict[int, LogReader],
        event: Callable[[], object],
        makers: dict[int, Callable[[], LogReader]] | None = None,
    ):
        self.members = members
        self.event = event
        self.makers = makers  # None: a dealt lane, whose members are made beforehand
        self.started: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.ended: set[int] = set()

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
        if tag is None:
            return  # not an element's line
        seq = int(tag)
        at = (float(data or 0) or time.time()) if kind == "s" else 0.0
        member = self.members.get(seq)
        if self.makers is not None:  # a release's lane: whatever the element
            if kind == "s":
                self.last[seq] = max(self.last.get(seq, 0.0), at)
                make = self.makers.pop(seq, None) if member is None else None
                if make is not None:
                    member = self.members[seq] = make()
            elif kind == "r":
                self.ended.add(seq)
            if member is None and kind in "sr":
                self.event()
        if member is None or member.result is not None and kind != "r":
            return  # an element not followed, or one that ended (a lane rerun)
        if kind == "s":
            self.started.setdefault(seq, at)
            data = b""
        member._marker(kind, offset, data)
        if kind in "sr":
            self.event()

    def running(self) -> list[int]:
        """The seqs started and not ended (at most one): of the elements followed here, or
        in a release's lane of any element."""
        if self.makers is not None:
            ended = set(self.ended)
            return [seq for seq in dict(self.last) if seq not in ended]
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


Waiting = tuple[int, JobRecord, bool]  # an element's index, its row, whether its array's record


def _in_order(conn: Connection, job: JobRecord) -> list[Waiting]:
    """`job` (an element being launched), then every other element of its array still
    waiting, in index order."""
    from slurmsky.runtime import indexset

    others: list[Waiting] = []
    for row in waiting(conn, job.array_job_id):
        if row.job_id == job.job_id:
            continue
        if row.array_pending is None:
            others.append((row.array_task_id or 0, row, False))
        else:
            items = indexset.iterate(indexset.parse(row.array_pending))
            others += [(index, row, True) for index in items]
    others.sort(key=lambda other: other[0])
    return [(job.array_task_id or 0, job, False), *others]


def _take(conn: Connection, spec: dict, elements: list[Waiting]) -> list[JobRecord]:
    """The rows of `elements`, those still in the array's pending record split off it (one
    held or cancelled meanwhile is left out)."""
    rows = []
    for index, row, record in elements:
        if record:
            split = state.split_element(
                conn, row.job_id, index, spec, unheld=True, reason="Resources"
            )
            if split is None:  # held or cancelled meanwhile
                continue
            row = split
        rows.append(row)
    return rows


def plan(
    conn: Connection, job: JobRecord, spec: dict, lanes: int, now: int
) -> list[list[JobRecord]]:
    """The dealt lanes `job` (an element being launched) goes out in now: with every element
    of its array still waiting, dealt in index order (`job` first) into `lanes` lanes, of
    which the first `now` go out (their elements split off the array's pending record); the
    others' elements wait where they are."""
    dealt = _in_order(conn, job)
    count = max(1, min(lanes, len(dealt)))
    shares = (_take(conn, spec, dealt[k::count]) for k in range(min(now, count)))
    return [share for share in shares if share]


def release(
    conn: Connection, job: JobRecord, spec: dict, lanes: int, now: int
) -> tuple[list[JobRecord], int]:
    """The elements of the release `job` (an element being launched) goes out in now, and
    its lanes: as many elements as plan would deal to the lanes that go out now, the first
    in index order (`job` first), each lane claiming from all of them; the other elements
    wait where they are."""
    dealt = _in_order(conn, job)
    count = max(1, min(lanes, len(dealt)))
    out = min(now, count)
    members = _take(conn, spec, dealt[: sum(len(dealt[k::count]) for k in range(out))])
    return members, min(out, len(members))


def out(conn: Connection, array_job_id: int | None) -> int:
    """The array's lanes still out (an element of theirs active), as room.lanes_held
    counts each launch's."""
    from slurmsky.core.states import ACTIVE_STATES

    launches: dict[str, list[JobRecord]] = {}
    for row in state.find_jobs(conn, ids=[array_job_id], states=ACTIVE_STATES):
        if row.executor_ref and "lane" in row.executor_ref:
            launches.setdefault(row.executor_ref["token"], []).append(row)
    return sum(room.lanes_held(members) for members in launches.values())
