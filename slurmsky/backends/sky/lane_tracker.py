"""The agent's side of lanes (lanes.py): each lane's log read as it runs, its elements' rows
moved as that log says, and scancel of an element cutting the lane that runs it.

A lane SkyPilot lists has its log followed from STARTING and read whole once more after it
ended. While SkyPilot says STARTING, the log is read straight from the lane's cluster as soon
as that runs it (`_live`): SkyPilot's stream of a managed job waits for its controller to say
RUNNING, then up to 15 s more, and on the stack at load 18 the controller said it ~40 s after
the lane's first element started (no element showed R before its lane ended when the read
waited for RUNNING). Where the cluster is not the server's to read (a jobs controller of its
own), SkyPilot's stream it is; an element that ran before SkyPilot named the lane's node
gets it once SkyPilot does (`name`). An element is RUNNING from its start marker, with
the node of the lane whose log shows it as NODELIST, and ends with its own RESULT.

Dealt lanes (a token per lane, its share of elements fixed): once the lane has ended and its
log is read, an element with no RESULT ends as the lane did, or pends again when scancel cut
the lane before it. A cut (scancel of an element) cancels the lane at once when that element
runs, else once the element the lane runs ends; the elements it has not started then pend
again and go out in new lanes. A cut an earlier agent made is found again from the rows
(`_restore_cut`).

A release (claims: one token for its K lanes, each of which may run any of its elements):
an element is the lane's whose log shows it starting (its ref's `sky_job_id` then names that
lane, for scancel). Started, it ends with its RESULT, or once its lane ended without one: as
the lane did, or pending again when the lane was cancelled for another's sake. Never started,
it ends or pends again only once every lane of the release has ended and its log is read:
pending again when one was cancelled (it may have claimed it), else as they did. When its
lane is preempted (RECOVERING) a running element is REQUEUED, its lost run kept as
NODE_FAIL (as a job's: mirror.py), and RUNNING again from its rerun's start in that lane
(NODE_FAIL and its lane cancelled, with --no-requeue). scancel of a running element cancels
its lane at once; of one no lane has started, is remembered (`strays`, found again after a
restart from the rows): a lane that starts it anyway is cut at once, and the lanes that run
none of the release's elements left are cancelled once each has started. A lane that has not
started when every element has is cancelled too: there is nothing left for it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.backends.sky import lanes
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.calls import Calls
from slurmsky.backends.sky.client import ABSENT, SkyClient
from slurmsky.backends.sky.logs import LOG_ATTEMPTS
from slurmsky.backends.sky.output import LogReader
from slurmsky.backends.sky.server import Server
from slurmsky.core import state, transitions
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES, STARTED_STATES

log = logging.getLogger("slurmsky.core.daemon")

# A lane in these has not started running
NOT_RUNNING = (*skysync.QUEUED_THERE, "STARTING")
CLUSTER_EVERY = 3.0  # seconds between tries at reading a starting lane's log from its cluster


def ref_of(job: JobRecord) -> dict:
    """The ref of a job handed to SkyPilot (every job the executor follows has one)."""
    ref = job.executor_ref
    assert ref is not None, f"job {job.job_id} has no executor_ref"
    return ref


def sky_ids(ref: dict) -> list[int]:
    """The SkyPilot ids a ref names: a release's element's every lane (once its launch
    answered), else its one managed job's (none before its launch answered)."""
    if "lanes" in ref:
        return list(ref.get("lane_ids") or ())
    return [] if ref.get("sky_job_id") is None else [ref["sky_job_id"]]


class Lane:
    """One lane (a managed job) as the agent follows it."""

    def __init__(self, rec: dict):
        self.rec = rec  # SkyPilot's last record of it (its `server`)
        self.reader: lanes.LaneReader | None = None
        self.read: Future | None = None  # the read of its log
        self.ends: int | None = None  # whole reads of its log since it ended (None: not ended)
        self.direct = False  # its log was read from its cluster (once is enough: _live)
        self.named = False  # its elements that started before SkyPilot named its node have it

    def ran(self) -> bool:
        """Its log showed it starting elements (SkyPilot may still say STARTING)."""
        return self.reader is not None and bool(self.reader.last)

    def ended(self) -> bool:
        """SkyPilot ended it and its log is read (none to read: it never started)."""
        done = self.read is None or self.read.done()
        return self.rec["status"] in skysync.FINAL and self.ends is not None and done


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
        self.lanes: dict[str, dict[int, Lane]] = {}  # token -> its lanes by SkyPilot id
        self.cuts: dict[str, int | None] = {}  # cut dealt lane -> last seq kept; None: pending
        # a release with an element cancelled before any lane started it -> its server, lanes
        self.strays: dict[str, tuple[Server, set[int]]] = {}
        self.dropped: set[tuple[str, int]] = set()  # a release's lanes cancelled here
        # server name -> whether it reads its lanes' clusters (unknown till a lane ran)
        self.direct: dict[str, bool] = {}
        # (token, SkyPilot id) of lanes that ran elements of a release that ended: while
        # SkyPilot still says they start (not `settled`: none to cancel), and those whose
        # node SkyPilot had not named yet (`name`)
        self.ran: set[tuple[str, int]] = set()
        self.unnamed: set[tuple[str, int]] = set()
        self.stop = threading.Event()  # the agent stops: live reads wait for nothing more

    def follow(self, token: str, members: list[JobRecord], rec: dict) -> None:
        """A lane SkyPilot lists: its elements learn its id (an agent that restarted never
        saw the launch answer); its log is followed once it runs and read whole once more
        after it ended. progress() moves the elements' rows."""
        claims = "lanes" in ref_of(members[0])
        for job in members:
            ref = ref_of(job)
            if claims and rec["job_id"] not in (ref.get("lane_ids") or ()):
                job.executor_ref = dict(ref, lane_ids=sorted({*sky_ids(ref), rec["job_id"]}))
            elif not claims and ref.get("sky_job_id") is None:
                job.executor_ref = dict(ref, sky_job_id=rec["job_id"])
            else:
                continue
            state.update_job(self.db, job.job_id, executor_ref=job.executor_ref)
        if token not in self.lanes and token not in self.cuts:
            self._restore(token, members, rec["server"])
        lane = self.lanes.setdefault(token, {}).setdefault(rec["job_id"], Lane(rec))
        lane.rec = rec
        reader = lane.read
        if reader is not None and not reader.done():
            return
        if rec["status"] in skysync.FINAL:
            tries = lane.ends = lane.ends or 0
            last = reader is None or tries == 0 or reader.exception() is not None
            if rec.get("start_at") and last and tries < LOG_ATTEMPTS:
                lane.ends += 1
                self._read(lane, members, follow=False)
        elif rec["status"] not in skysync.QUEUED_THERE:
            if reader is not None and reader.exception() is not None:
                log.warning("lane %s: following its log failed: %s", token, reader.exception())
            self._read(lane, members, follow=True)

    def name(self, rec: dict) -> None:
        """A lane's record (SkyPilot names its node once it says RUNNING): its elements that
        started before, read from its cluster, get that node as their NodeList, as any
        element it runs does (once a lane; whether its elements are still active or not)."""
        meta = rec["metadata"]["slurmsky"]
        key = (meta.get("token"), rec["job_id"])
        lane = self.lanes.get(key[0], {}).get(rec["job_id"])
        unnamed = not lane.named if lane is not None else key in self.unnamed
        if unnamed and rec.get("node_names") and meta.get("lane"):
            nodes = skysync.node_fields(rec)
            state.name_lane_nodes(self.db, meta["lane"], rec["job_id"], nodes)
            if lane is not None:
                lane.named = True
            self.unnamed.discard(key)
        if lane is None and rec["status"] in skysync.FINAL:
            self.ran.discard(key)
            self.unnamed.discard(key)

    def settled(self, rec: dict) -> bool:
        """A lane whose elements all ended, none cancelled or requeued: it ends by itself
        (it may still be winding down after its last element's RESULT); a release's lane
        only once it runs (one still starting would find nothing left: it is cancelled), as
        SkyPilot says or as its log read from its cluster showed (SkyPilot may still say
        STARTING after it ran every element it took)."""
        meta = rec["metadata"]["slurmsky"]
        if not meta.get("lane"):
            return False
        kept = state.lane_kept(self.db, meta["lane"], meta.get("token"))
        key = (meta.get("token"), rec["job_id"])
        lane = self.lanes.get(key[0], {}).get(rec["job_id"])
        runs = rec["status"] in ("RUNNING", "WINDING_DOWN") or key in self.ran
        return kept and (not meta.get("claims") or runs or lane is not None and lane.ran())

    def _read(self, lane: Lane, members: list[JobRecord], *, follow: bool) -> None:
        rec = lane.rec
        if lane.reader is None:
            spec = state.get_spec(self.db, members[0].submission)[0]
            append = spec.get("open_mode") == "append"
            log = f"{rec['server'].name} {rec['job_id']}"
            if "lanes" in ref_of(members[0]):  # a release's: an element's reader at its start
                makers: dict[int, Callable[[], LogReader]] = {
                    ref_of(j)["lane"]: functools.partial(LogReader, j, append, log) for j in members
                }
                lane.reader = lanes.LaneReader({}, self.nudge, makers)
            else:
                readers = {ref_of(j)["lane"]: LogReader(j, append, log) for j in members}
                lane.reader = lanes.LaneReader(readers, self.nudge)
        reader = lane.reader.rewind()
        if follow and not lane.direct and rec["status"] != "RUNNING" and rec.get("job_name"):
            future = self.tails.submit(self._live, lane, reader)
        else:
            future = (self.tails if follow else self.pool).submit(
                self.client.tail, rec["server"], rec["job_id"], follow, reader
            )
        future.add_done_callback(lambda _: self.nudge())
        lane.read = future

    def _live(self, lane: Lane, reader: lanes.LaneReader) -> lanes.LaneReader:
        """A lane's live read while SkyPilot says it is starting (or recovering): from its
        cluster, tried every CLUSTER_EVERY seconds until that runs it (3 times that while
        SkyPilot has not made the cluster: each try is a request), followed to the run's
        end there; once SkyPilot says RUNNING (or ended) before that, or where the cluster is
        not the server's (it never showed while the lane started), SkyPilot's stream."""
        rec = lane.rec
        where = rec["server"]
        while self.direct.get(where.name, True) and not self.stop.is_set():
            now = lane.rec
            if now["status"] == "RUNNING" or now["status"] in skysync.FINAL:
                if now["status"] == "RUNNING" or now.get("start_at"):  # it ran, unseen
                    self.direct.setdefault(where.name, False)
                break
            code = self.client.tail_run(where, rec["job_id"], rec["job_name"], reader)
            if code != ABSENT:
                self.direct[where.name] = True
            if code is not None and code != ABSENT:
                lane.direct = True
                return reader
            self.stop.wait(CLUSTER_EVERY * (3 if code == ABSENT else 1))  # not made yet: later
        return self.client.tail(where, rec["job_id"], True, reader)

    def _restore(self, token: str, members: list[JobRecord], where: Server) -> None:
        """What an earlier agent knew of a launch it cut: a dealt lane's cut (_restore_cut);
        a release's element cancelled before any lane started it."""
        if "lanes" not in ref_of(members[0]):
            self._restore_cut(token)
        elif any(start is None for start, _ in state.killed_refs(self.db, token)):
            self.strays.setdefault(token, (where, set(sky_ids(ref_of(members[0])))))

    def _restore_cut(self, token: str) -> None:
        """A lane an earlier agent cut (scancel of an element of it, sent): cut again, at the
        element that had started, else once the element the lane runs ends; so an agent that
        restarted neither runs a cancelled element nor ends the lane's others with it."""
        refs = state.killed_refs(self.db, token)
        if refs:
            started = [ref["lane"] for start, ref in refs if start is not None]
            self.cuts[token] = min(started) if started else None
            log.info("lane %s: cut by an earlier agent, at %s", token, self.cuts[token])

    def cut(self, ref: dict, where: Server, *, at_once: bool) -> None:
        """scancel of an element (its ref): a dealt lane is cancelled now (its element
        runs), or once the element it runs ends, and the elements it has not started go out
        again. A release's: the lane that runs it is cancelled now; one no lane started is
        remembered (a lane that starts it is cut: progress)."""
        token = ref["token"]
        if "lanes" in ref:
            if at_once and ref.get("sky_job_id") is not None:
                self._drop(token, ref["sky_job_id"], where, "its element is cancelled")
            elif not at_once:
                ids = self.strays.get(token, (where, set()))[1] | set(sky_ids(ref))
                self.strays[token] = (where, ids)
            return
        if token in self.cuts and self.cuts[token] is not None:
            return  # cancelled already
        lane = next(iter(self.lanes.get(token, {}).values()), None)
        reader = lane.reader if lane else None
        if at_once or reader is None or not reader.running():
            self.cuts[token] = max(reader.started, default=-1) if reader else -1
            self.cancel(where, ref["sky_job_id"])
        else:
            self.cuts[token] = None

    def _drop(self, token: str, sky_id: int, where: Server, why: str) -> None:
        """Cancel a release's lane (once)."""
        if (token, sky_id) not in self.dropped:
            self.dropped.add((token, sky_id))
            log.info("release %s: cancelling lane %s: %s", token, sky_id, why)
            self.cancel(where, sky_id)

    def progress(self, active: list[JobRecord], now: float) -> bool:
        """Move the rows of lane elements as their lanes' logs say."""
        changed = False
        by_token: dict[str, list[JobRecord]] = {}
        for job in active:
            if "lane" in ref_of(job):
                by_token.setdefault(ref_of(job)["token"], []).append(job)
        for token in (set(self.lanes) | set(self.strays)) - set(by_token):  # all ended
            if token in self.strays:  # one cancelled before it started: no lane runs it
                where, ids = self.strays[token]
                known = self.lanes.get(token, {})
                for sky_id in ids | set(known):
                    if sky_id not in known or known[sky_id].rec["status"] not in skysync.FINAL:
                        self._drop(token, sky_id, where, "every element of it ended")
            for sky_id, lane in self.lanes.get(token, {}).items():
                if lane.ran():
                    if lane.rec["status"] not in skysync.FINAL:
                        self.ran.add((token, sky_id))
                    if not lane.named:
                        self.unnamed.add((token, sky_id))
            self.lanes.pop(token, None)
            self.cuts.pop(token, None)
            self.strays.pop(token, None)
            self.dropped = {(t, sky_id) for t, sky_id in self.dropped if t != token}
        for token, members in by_token.items():
            if token not in self.lanes:
                continue
            if "lanes" in ref_of(members[0]):
                changed |= self._release(token, members, now)
            else:
                changed |= self._elements(token, members, now)
        return changed

    # --- dealt lanes ------------------------------------------------------------------------

    def _elements(self, token: str, members: list[JobRecord], now: float) -> bool:
        """RUNNING at its start marker, ended with its RESULT; once the lane has ended and
        its log is read, an element with no RESULT ends as the lane did, or pends again when
        scancel cut the lane before it (a pending cut takes effect when none runs)."""
        (lane,) = self.lanes[token].values()
        rec, reader = lane.rec, lane.reader
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
        ended = lane.ended()
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
                changed |= self._start(job, rec, started[seq], now)
        return changed

    # --- a release's lanes (claims) -----------------------------------------------------------

    def _release(self, token: str, members: list[JobRecord], now: float) -> bool:
        """Each element as the lane whose log shows it starting says (see the module's
        docstring); one no lane started, once every lane ended."""
        by_seq = {ref_of(j)["lane"]: j for j in members}
        runs: dict[int, Lane] = {}  # seq -> the lane whose log shows its latest start
        for lane in self.lanes[token].values():
            reader = lane.reader
            if reader is None:
                continue
            for seq in set(reader.members) - set(by_seq):  # ended here: nothing more of it
                reader.members.pop(seq, None)
            for seq in set(reader.makers or ()) - set(by_seq):
                (reader.makers or {}).pop(seq, None)
            for seq, at in dict(reader.last).items():
                if seq not in runs or at > runs[seq].reader.last[seq]:  # type: ignore[union-attr]
                    runs[seq] = lane
        for seq, job in by_seq.items():  # started before this agent read the log
            sky_id = ref_of(job).get("sky_job_id")
            if seq not in runs and job.state != "PENDING" and sky_id in self.lanes[token]:
                runs[seq] = self.lanes[token][sky_id]
        self._cut_strays(token, by_seq)
        self._drop_idle(token, members, by_seq, runs)
        lanes_out = self.lanes[token]
        every = len(lanes_out) >= ref_of(members[0])["lanes"]
        every = every and all(lane.ended() for lane in lanes_out.values())
        changed = False
        for seq, job in by_seq.items():
            if seq in runs:
                changed |= self._claimed(job, seq, runs[seq], now)
            elif every:
                changed |= self._never_ran(job, now)
        return changed

    def _claimed(self, job: JobRecord, seq: int, lane: Lane, now: float) -> bool:
        """An element `lane` started: ended with its RESULT, or as its lane ended without
        one (pending again when the lane was cancelled and not for it); REQUEUED while the
        lane recovers; RUNNING from its (latest) start."""
        rec, reader = lane.rec, lane.reader
        member = reader.members.get(seq) if reader else None
        if member is not None and member.result is not None:
            return self._end(job, rec, member, now)
        if lane.ended():
            if rec["status"] == "CANCELLED" and not job.kill_action:
                return transitions.pend_again(self.db, job.job_id, reason="None", nodelist=None)
            return self._end(job, rec, member, now)
        if reader is None or seq not in reader.last:
            return False
        start = reader.last[seq]
        if rec["status"] == "RECOVERING" and seq in reader.running():
            return self._recovering(job, lane, now)
        if job.state == "PENDING" or job.state == "REQUEUED" and start > (job.start_time or 0):
            return self._start(job, rec, start, now)
        if job.state == "RUNNING" and start > (job.start_time or 0) + 0.001:
            return self._rerun(job, rec, start, now)  # recovered before RECOVERING was seen
        return False

    def _recovering(self, job: JobRecord, lane: Lane, now: float) -> bool:
        """The lane that runs `job` was preempted: the element is REQUEUED (its run kept,
        NODE_FAIL) until the recovered lane runs it again; with --no-requeue it ends
        NODE_FAIL and the lane is cancelled, as mirror.py ends a job."""
        if job.state not in STARTED_STATES or job.kill_action:
            return False
        if not job.requeue:
            token = ref_of(job)["token"]
            self._drop(token, lane.rec["job_id"], lane.rec["server"], "--no-requeue")
            result = {
                "state": "NODE_FAIL",
                "start": job.start_time,
                "end": now,
                "reason": "NodeDown",
            }
            return transitions.finish(self.db, job.job_id, result, now, ACTIVE_STATES) is not None
        with state.write(self.db):
            changed = state.update_job(
                self.db,
                job.job_id,
                where_state=STARTED_STATES,
                state="REQUEUED",
                reason="None",
                restarts=job.restarts + 1,
            )
            if changed:
                transitions.keep_run(self.db, job, now, ended="NODE_FAIL")
        if changed:
            log.info("job %s: REQUEUED (lane %s recovers)", job.job_id, lane.rec["job_id"])
        return changed

    def _rerun(self, job: JobRecord, rec: dict, start: float, now: float) -> bool:
        """A RUNNING element whose lane ran it again (a recovery this agent did not see):
        its earlier run is kept NODE_FAIL, and it runs from the rerun's start."""
        with state.write(self.db):
            changed = state.update_job(
                self.db,
                job.job_id,
                where_state=("RUNNING",),
                start_time=start,
                restarts=job.restarts + 1,
            )
            if changed:
                transitions.keep_run(self.db, job, start, ended="NODE_FAIL")
        return changed

    def _never_ran(self, job: JobRecord, now: float) -> bool:
        """An element no lane of its release started, every lane ended: pending again when
        one was cancelled (it may have claimed it), else it ends as they did (the first that
        failed: the release's lanes failed, not it)."""
        recs = [lane.rec for _, lane in sorted(self.lanes[ref_of(job)["token"]].items())]
        if any(rec["status"] == "CANCELLED" for rec in recs):
            return transitions.pend_again(self.db, job.job_id, reason="None", nodelist=None)
        rec = next((rec for rec in recs if rec["status"] != "SUCCEEDED"), recs[0])
        return self._end(job, rec, None, now, nodes=False)

    def _cut_strays(self, token: str, by_seq: dict[int, JobRecord]) -> None:
        """A release with an element cancelled before any lane started it: a lane that runs
        an element no longer the release's that never started (that one) is cut at once."""
        if token not in self.strays:
            return
        for sky_id, lane in self.lanes[token].items():
            if lane.reader is None or lane.rec["status"] in skysync.FINAL:
                continue
            ids = (lane.rec.get("metadata") or {}).get("slurmsky", {}).get("lane") or []
            for seq in lane.reader.running():
                if seq in by_seq or seq >= len(ids):
                    continue
                row = state.get_job(self.db, ids[seq])
                if row is not None and row.start_time is None:
                    self._drop(token, sky_id, lane.rec["server"], f"it runs cancelled {row.job_id}")

    def _drop_idle(
        self, token: str, members: list[JobRecord], by_seq: dict[int, JobRecord], runs: dict
    ) -> None:
        """Once every element of the release left has started: cancel its lanes that have
        not started (nothing is left for them; a lane whose log, read from its cluster,
        showed it running elements has, whatever SkyPilot says), and, when an element was cancelled before
        it started, every lane that runs none (it might start that one)."""
        busy = set()
        for seq in by_seq:
            if seq not in runs:
                return  # a lane may take it yet
            busy.add(runs[seq].rec["job_id"])
        lanes_out = self.lanes[token]
        where = next(iter(lanes_out.values())).rec["server"]
        for sky_id in (set(lanes_out) | set(sky_ids(ref_of(members[0])))) - busy:
            lane = lanes_out.get(sky_id)
            status = lane.rec["status"] if lane else None
            if status in skysync.FINAL:
                continue
            if (status is None or status in NOT_RUNNING) and not (lane and lane.ran()):
                self._drop(token, sky_id, where, "every element has started")
            elif token in self.strays:
                self._drop(token, sky_id, where, "it might start a cancelled element")

    # --- either ---------------------------------------------------------------------------

    def _start(self, job: JobRecord, rec: dict, start: float, now: float) -> bool:
        """RUNNING (again) from `start` (the node's clock) on the lane's node; a release's
        element learns the lane that runs it."""
        running = dict(rec, status="RUNNING", start_at=start)
        fields = skysync.active_fields(running, None, now)
        if "lanes" in ref_of(job):
            fields["executor_ref"] = dict(ref_of(job), sky_job_id=rec["job_id"])
        return state.update_job(self.db, job.job_id, where_state=ACTIVE_STATES, **fields)

    def _end(
        self, job: JobRecord, rec: dict, member: LogReader | None, now: float, nodes: bool = True
    ) -> bool:
        """An element ends with its own RESULT, or as its lane did (a lane that succeeded
        without the element's RESULT failed it); with what of its files did not come home
        either way. `nodes`: the lane's node is the element's (it ran there)."""
        result = member.result if member else None
        if result is not None:
            lane = dict(rec, status="SUCCEEDED", end_at=None)
        elif rec["status"] == "SUCCEEDED":
            lane = dict(rec, status="FAILED", failure_reason="no RESULT from the node")
        else:
            lane = rec
        # an element whose start and end came in one read was never RUNNING here: its
        # lane's node is still its own, and a release's element learns its lane
        placed = skysync.node_fields(rec) if nodes and not job.nodelist else {}
        if nodes and "lanes" in ref_of(job) and ref_of(job).get("sky_job_id") is None:
            placed["executor_ref"] = dict(ref_of(job), sky_job_id=rec["job_id"])
        fields = transitions.finish(
            self.db,
            job.job_id,
            skysync.result_of(lane, member.final() if member else None),
            now,
            ACTIVE_STATES,
            **placed,
        )
        if fields is None:
            return False
        log.info("job %s: %s (lane %s)", job.job_id, fields["state"], rec["job_id"])
        return True
