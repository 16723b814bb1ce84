"""The agent's side of lanes (lanes.py): each lane's log read as it runs, its elements' rows
moved as that log says, and scancel of an element cutting its lane.

A lane SkyPilot lists has its log followed while it runs and read whole once more after it
ended; each element is RUNNING from its start marker (the lane's node as NODELIST) and ends
with its own RESULT. Once the lane has ended and its log is read, an element with no RESULT
ends as the lane did, or pends again when scancel cut the lane before it.

A cut (scancel of an element) cancels the lane at once when that element runs, else once the
element the lane runs ends; the elements it has not started then pend again and go out in new
lanes. A cut an earlier agent made is found again from the rows (`_restore_cut`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.backends.sky import lanes
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.calls import Calls
from slurmsky.backends.sky.client import SkyClient
from slurmsky.backends.sky.logs import LOG_ATTEMPTS
from slurmsky.backends.sky.output import LogReader
from slurmsky.backends.sky.server import Server
from slurmsky.core import state, transitions
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES

log = logging.getLogger("slurmsky.core.daemon")


def ref_of(job: JobRecord) -> dict:
    """The ref of a job handed to SkyPilot (every job the executor follows has one)."""
    ref = job.executor_ref
    assert ref is not None, f"job {job.job_id} has no executor_ref"
    return ref


class LaneTracker:
    def __init__(
        self,
        client: SkyClient,
        db,
        reads: tuple[Calls, ThreadPoolExecutor],
        cancel: Callable[[Server, int], None],
        nudge: Callable[[], object],
    ):
        self.client, self.db, self.cancel, self.nudge = client, db, cancel, nudge
        self.pool, self.tails = reads  # whole reads, live ones
        self.logs: dict[str, lanes.LaneReader] = {}  # lane token -> its reader
        self.reads: dict[str, Future] = {}  # lane token -> the read of its log
        self.recs: dict[str, dict] = {}  # lane token -> SkyPilot's last record of it (its server)
        self.ends: dict[str, int] = {}  # ended lane -> reads of its log since it ended
        self.cuts: dict[str, int | None] = {}  # cut lane -> last seq kept; None: pending

    def follow(self, token: str, members: list[JobRecord], rec: dict) -> None:
        """A lane SkyPilot lists: its elements learn its id (an agent that restarted never
        saw the launch answer); its log is followed while it runs and read whole once more
        after it ended. progress() moves the elements' rows."""
        for job in members:
            if ref_of(job).get("sky_job_id") is None:
                job.executor_ref = dict(ref_of(job), sky_job_id=rec["job_id"])
                state.update_job(self.db, job.job_id, executor_ref=job.executor_ref)
        if token not in self.recs and token not in self.cuts:
            self._restore_cut(token)
        self.recs[token] = rec
        reader = self.reads.get(token)
        if reader is not None and not reader.done():
            return
        if rec["status"] in skysync.FINAL:
            tries = self.ends.setdefault(token, 0)
            last = reader is None or tries == 0 or reader.exception() is not None
            if rec.get("start_at") and last and tries < LOG_ATTEMPTS:
                self.ends[token] += 1
                self._read(token, members, follow=False)
        elif rec["status"] not in skysync.QUEUED_THERE:
            if reader is not None and reader.exception() is not None:
                log.warning("lane %s: following its log failed: %s", token, reader.exception())
            self._read(token, members, follow=True)

    def settled(self, rec: dict) -> bool:
        """A lane whose elements all ended, none cancelled or requeued: it ends by itself
        (it may still be winding down after its last element's RESULT)."""
        meta = rec["metadata"]["slurmsky"]
        return bool(meta.get("lane")) and state.lane_kept(self.db, meta["lane"], meta.get("token"))

    def _read(self, token: str, members: list[JobRecord], *, follow: bool) -> None:
        if token not in self.logs:
            spec = state.get_spec(self.db, members[0].submission)[0]
            append = spec.get("open_mode") == "append"
            rec = self.recs[token]
            log = f"{rec['server'].name} {rec['job_id']}"
            self.logs[token] = lanes.LaneReader(
                {ref_of(j)["lane"]: LogReader(j, append, log) for j in members}, self.nudge
            )
        reader = self.logs[token].rewind()
        future = (self.tails if follow else self.pool).submit(
            self.client.tail, self.recs[token]["server"], self.recs[token]["job_id"], follow, reader
        )
        future.add_done_callback(lambda _: self.nudge())
        self.reads[token] = future

    def _restore_cut(self, token: str) -> None:
        """A lane an earlier agent cut (scancel of an element of it, sent): cut again, at the
        element that had started, else once the element the lane runs ends; so an agent that
        restarted neither runs a cancelled element nor ends the lane's others with it."""
        refs = state.killed_refs(self.db, token)
        if refs:
            started = [ref["lane"] for start, ref in refs if start is not None]
            self.cuts[token] = min(started) if started else None
            log.info("lane %s: cut by an earlier agent, at %s", token, self.cuts[token])

    def cut(self, token: str, where: Server, sky_id: int, *, at_once: bool) -> None:
        """scancel of a lane's element: cancel the lane now (its element runs), or once the
        element it runs ends; the elements it has not started then go out again."""
        if token in self.cuts and self.cuts[token] is not None:
            return  # cancelled already
        reader = self.logs.get(token)
        if at_once or reader is None or not reader.running():
            self.cuts[token] = max(reader.started, default=-1) if reader else -1
            self.cancel(where, sky_id)
        else:
            self.cuts[token] = None

    def progress(self, active: list[JobRecord], now: float) -> bool:
        """Move the rows of lane elements as their lanes' logs say."""
        changed = False
        by_token: dict[str, list[JobRecord]] = {}
        for job in active:
            if "lane" in ref_of(job):
                by_token.setdefault(ref_of(job)["token"], []).append(job)
        for token in set(self.recs) - set(by_token):  # every element ended
            for done in (self.recs, self.logs, self.reads, self.ends, self.cuts):
                done.pop(token, None)  # type: ignore[attr-defined]
        for token, members in by_token.items():
            if token in self.recs:
                changed |= self._elements(token, members, now)
        return changed

    def _elements(self, token: str, members: list[JobRecord], now: float) -> bool:
        """RUNNING at its start marker, ended with its RESULT; once the lane has ended and
        its log is read, an element with no RESULT ends as the lane did, or pends again when
        scancel cut the lane before it (a pending cut takes effect when none runs)."""
        rec = self.recs[token]
        reader = self.logs.get(token)
        if reader is not None:  # an element that ended here (scancel) writes nothing more
            for seq in set(reader.members) - {ref_of(j)["lane"] for j in members}:
                del reader.members[seq]
        started = dict(reader.started) if reader else {}
        if token in self.cuts and self.cuts[token] is None:
            # an element runs while the log says so, or while its row does until its RESULT
            # is read (an agent that restarted has not read the log yet)
            logged = reader.members if reader else {}
            busy = {ref_of(j)["lane"] for j in members if j.state != "PENDING"}
            busy = {seq for seq in busy if seq not in logged or logged[seq].result is None}
            if not (reader and reader.running()) and not busy:
                self.cuts[token] = max(started, default=-1)
                self.cancel(rec["server"], rec["job_id"])
        cut = self.cuts.get(token)
        read = self.reads.get(token)
        ended = rec["status"] in skysync.FINAL and token in self.ends
        ended = ended and (read is None or read.done())
        changed = False
        for job in members:
            seq = ref_of(job)["lane"]
            if cut is not None and seq > cut:  # not run, or started after the cut
                if ended:
                    changed |= transitions.pend_again(
                        self.db, job.job_id, reason="None", nodelist=None
                    )
                continue
            member = reader.members.get(seq) if reader else None
            if member is not None and member.result is not None or ended:
                changed |= self._end(job, rec, member, now)
            elif seq in started and job.state == "PENDING":
                running = dict(rec, status="RUNNING", start_at=started[seq])
                fields = skysync.active_fields(running, None, now)
                changed |= state.update_job(
                    self.db, job.job_id, where_state=ACTIVE_STATES, **fields
                )
        return changed

    def _end(self, job: JobRecord, rec: dict, member: LogReader | None, now: float) -> bool:
        """An element ends with its own RESULT, or as its lane did (a lane that succeeded
        without the element's RESULT failed it); with what of its files did not come home
        either way."""
        result = member.result if member else None
        if result is not None:
            lane = dict(rec, status="SUCCEEDED", end_at=None)
        elif rec["status"] == "SUCCEEDED":
            lane = dict(rec, status="FAILED", failure_reason="no RESULT from the node")
        else:
            lane = rec
        # an element whose start and end came in one read was never RUNNING here
        nodes = {} if job.nodelist else skysync.node_fields(rec)
        fields = transitions.finish(
            self.db,
            job.job_id,
            skysync.result_of(lane, member.final() if member else None),
            now,
            ACTIVE_STATES,
            **nodes,
        )
        if fields is None:
            return False
        log.info("job %s: %s (lane %s)", job.job_id, fields["state"], rec["job_id"])
        return True
