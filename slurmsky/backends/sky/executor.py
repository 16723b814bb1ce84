"""The SkyPilot executor: the agent's side of the sky backend, tying its parts together.

A job is placed within its partition's size (placement.py), then becomes a SkyPilot managed
job (launcher.py; an array in lanes, lanes.py), salloc's allocation a cluster of its own
instead (clusters.py). After launch the scheduler leaves the job to `sync()`, called every
pass: its state follows SkyPilot's queue (the watcher asks, mirror.py applies the answer,
sync.py maps), its output comes home from SkyPilot's log (logs.py, lane_tracker.py), scancel
and requeue become `sky.jobs.cancel`, and orphans (a SkyPilot job whose slurmsky job was
cancelled or requeued meanwhile) are cancelled. SkyPilot jobs slurmsky did not submit get
rows of their own.

Each job goes to the SkyPilot API server its sbatch named (server.Server, recorded with its
task; its ref names it once handed on): launched, followed, tailed and cancelled there. Each
server in use has its own queue watcher, and a server's answer only touches the jobs that
went to it (SkyPilot's job ids repeat across servers). The agent's own environment names the
server of jobs stored before servers were recorded.

Every SkyPilot call goes through one SkyClient (client.py), on small thread pools that wake
the agent when a call returns (queue queries on one of their own, so they never wait behind
launches; the queries of different servers run at once); the agent thread only reads their
results in `sync()`. Only the agent builds this class, and SkyPilot (~2.3 s to import) is
imported on first use, in the threads that call it.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.backends.sky import infra, server
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.calls import Calls
from slurmsky.backends.sky.client import CLIENT, SkyClient
from slurmsky.backends.sky.clusters import Clusters
from slurmsky.backends.sky.lane_tracker import LaneTracker, ref_of, sky_ids
from slurmsky.backends.sky.launcher import Launcher
from slurmsky.backends.sky.logs import JobLogs
from slurmsky.backends.sky.mirror import Mirror
from slurmsky.backends.sky.placement import Placement
from slurmsky.backends.sky.server import Server
from slurmsky.backends.sky.watcher import PoolWatcher, QueueWatcher
from slurmsky.config import load_config
from slurmsky.core import state
from slurmsky.core.daemon import nudge
from slurmsky.core.state import JobRecord

log = logging.getLogger("slurmsky.core.daemon")

THREADS = 4  # cancels and whole log reads at once
BOUND = 300.0  # s such a call may take before it is given up (calls.py)
KILL_AGAIN = 600.0  # s after which a cancel SkyPilot has not carried out is sent again
QUERIES = 4  # queue and pool queries at once (one per server in use, and the pools')


class SkyExecutor:
    name = "sky"

    def __init__(self, client: SkyClient = CLIENT):
        os.environ.setdefault("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")  # never auto-start one
        logging.getLogger("alembic").setLevel(logging.WARNING)  # SkyPilot's import chatter
        self.client = client
        self.pool = Calls(THREADS)  # bounded: a stuck call is given up (sync)
        self.queries = ThreadPoolExecutor(QUERIES, thread_name_prefix="sky-query")
        self.instance = skysync.instance_id()
        self.db = state.connect(long_lived=True)
        # On a team's state, the member whose jobs this agent runs (the scheduler sets it each
        # pass): its sync follows and ends those alone; the room counts everyone's.
        self.member: str | None = None
        self.home = server.current()  # the server of jobs stored before servers were recorded
        self.servers: dict[str, Server] = {self.home.name: self.home}  # by name, as last named
        self.watchers: dict[str, QueueWatcher] = {}  # server name -> the watcher of its queue
        self.pools = PoolWatcher(client, self._query, self.home)
        self.infra = infra.Answers(client, self._query)  # which infra each server can use
        self.launcher = Launcher(
            client, self.db, self.instance, self._background, self._unreachable, self._cancel
        )
        self.logs = JobLogs(client, self.db, self.pool, nudge)
        self.lanes = LaneTracker(client, self.db, (self.pool, self.logs.tails), self._cancel, nudge)
        self.clusters = Clusters(  # salloc's
            client, self.db, self.instance, self._background, self._where
        )
        self.plans: dict[int, tuple[dict, dict]] = {}  # submission -> its stored spec, task
        self.placement = Placement(self.db, load_config().partitions, self._plan)  # each pass's
        self.mirror = Mirror(
            self.db,
            self.instance,
            (self.launcher, self.logs, self.lanes),
            self._plan,
            self._where,
            self._active,
            self._cancel,
        )

    def shutdown(self) -> None:
        """Wait for the SkyPilot calls in flight (tests; the agent exits instead)."""
        self.lanes.stop.set()
        for pool in (self.pool, self.queries, self.logs.tails, self.clusters.pool):
            pool.shutdown(wait=True)

    # --- release ----------------------------------------------------------------------------

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        """Nodes within the partition's size (placement.py), or why not."""
        if job.executor_ref:  # handed to SkyPilot already: pending there, not here
            return job.reason
        where = self._where(job)
        unreachable = self._watcher(where.name).unreachable
        if unreachable:  # its server does not answer: the reason names it
            return unreachable
        task, now = self._plan(job.submission)[1], time.time()
        if infra.names_infra(task):  # launched with the candidates SkyPilot can use
            enabled = self.infra.enabled(where, now)
            if enabled is None and self.infra.first(where, now):
                return skysync.LAUNCHING
            if enabled is not None and not infra.runnable(task, enabled):
                return infra.reason(task, enabled)
        return self.placement.place(job, running)

    def place_again(
        self, job: JobRecord, placement: list[int], running: list[JobRecord]
    ) -> list[int] | str:
        """The room counted afresh from the state (this pass's count holds the job)."""
        return self.placement.still_fits(job) or placement

    def _plan(self, submission: int) -> tuple[dict, dict]:
        """The submission's stored spec and task (the sky backend stores a task with each)."""
        if submission not in self.plans:
            spec, task = state.get_spec(self.db, submission)
            assert task is not None
            self.plans[submission] = (spec, task)
        return self.plans[submission]

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        # restarts: the job's requeues before this launch (SkyPilot counts its recoveries)
        return {
            "token": uuid.uuid4().hex,
            "sky_job_id": None,
            "server": self._where(job).name,
            "restarts": job.restarts,
        }

    def launch(self, job: JobRecord, spec: dict, ref: dict) -> dict:
        """Hand the job to SkyPilot (in the background), with the infra candidates it can
        use (infra.py); salloc's allocation becomes a cluster of its own (clusters.py). An
        array's lanes claim its elements where they share a filesystem (infra.shares_base)."""
        task, known = self._plan(job.submission)[1], self.infra.known.get(self._where(job).name)
        task = infra.prune(task, known) or task
        if spec.get("command") == "salloc":
            return self.clusters.launch(job, task)
        granted, whole = self.placement.granted.get(job.job_id), job.job_id in self.placement.whole
        lanes = (*granted, infra.shares_base(task, known)) if granted else None
        return self.launcher.launch(job, spec, task, ref, lanes, whole, self._where(job))

    def handed(self, job: JobRecord, ref: dict) -> dict:
        """A managed job pends until SkyPilot has its launch (sync.LAUNCHING), then at
        SkyPilot until it has nodes (Resources; srun: `queued and waiting for resources`);
        salloc's cluster is CONFIGURING until it is up."""
        if "cluster" in ref:
            return {}
        return dict(
            state="PENDING",
            reason=skysync.LAUNCHING,
            start_time=None,
            nodelist=None,
            batch_host=None,
        )

    def _background(self, fn, *args, pool: ThreadPoolExecutor | Calls | None = None) -> Future:
        """fn(*args) on the pool (by default the executor's own); the agent wakes when it
        returns."""
        future = (pool or self.pool).submit(fn, *args)
        future.add_done_callback(lambda _: nudge())
        return future

    def _query(self, fn, *args) -> Future:
        """A query on the queries' own pool (never behind launches)."""
        return self._background(fn, *args, pool=self.queries)

    def _cancel(self, where: Server, sky_id: int) -> None:
        self._background(self.client.cancel, where, sky_id).add_done_callback(_log_cancel)

    # --- servers ----------------------------------------------------------------------------

    def _where(self, job: JobRecord) -> Server:
        """The server a job goes to: the one its sbatch named (recorded with its task), else
        the one its ref names (SkyPilot's other jobs), else the agent's own."""
        if job.job_id < skysync.FOREIGN_BASE:
            where = server.of_task(self._plan(job.submission)[1])
            if where is not None:
                self.servers[where.name] = where
                return where
        name = (job.executor_ref or {}).get("server")
        return self.servers.setdefault(name, Server(name)) if name else self.home

    def _watcher(self, name: str) -> QueueWatcher:
        if name not in self.watchers:
            self.watchers[name] = QueueWatcher(self.client, self.servers[name], self._query)
        return self.watchers[name]

    def _unreachable(self, name: str, reason: str) -> None:
        """A launch found its server not answering: the jobs for it pend, saying so."""
        self._watcher(name).unreachable = reason

    def _current(self) -> str:
        """The server of the latest submission (the one readers' SkyPilot jobs are shown
        from), else the agent's own."""
        latest = state.latest_with_task(self.db)
        if latest is None:
            return self.home.name
        where = server.of_task(self._plan(latest)[1])
        if where is None:
            return self.home.name
        self.servers.setdefault(where.name, where)
        return where.name

    def _ask(self, now: float, wake: list[float]) -> bool:
        """Start the queue queries due: of each server slurmsky's active managed jobs (pending
        here or there) went to, and of the latest submission's while readers come. Whether
        any queue is kept fresh."""
        busy = {
            self._where(j).name
            for j in self._mine()
            if j.job_id < skysync.FOREIGN_BASE and "cluster" not in (j.executor_ref or {})
        }
        current = self._current()
        readers = skysync.readers_recent(now)
        for name in busy | {current}:
            wanted = name in busy or (readers and name == current)
            self._watcher(name).ask(now, wake, functools.partial(self._watched, name), wanted)
        return bool(busy) or readers

    # --- the queue --------------------------------------------------------------------------

    def sync(self, conn, now: float, wake: list[float]) -> bool:
        """Called by the scheduler every pass: collect finished SkyPilot calls, act on them,
        start the next queries when due. True when the state changed."""
        self.placement.new_pass()
        stuck = self.pool.expire(BOUND, "a cancel or a whole log read")
        if stuck:
            log.warning("%d SkyPilot call(s) ran over %d s: given up", len(stuck), BOUND)
        changed = self.launcher.collect(now)
        changed |= self.clusters.sync(now, wake)
        changed |= self._kill(now)
        self._cancelled_pending(now)
        for watcher in list(self.watchers.values()):
            changed |= watcher.collect(now, functools.partial(self._apply, watcher, now=now))
        changed |= self.lanes.progress(self._active(), now)
        changed |= self.mirror.finish(now)
        fresh = self._ask(now, wake)
        self.pools.sync(now, wake, fresh)
        return changed

    def _apply(self, watcher: QueueWatcher, records: list[dict], watched: list[int], *, now):
        return self.mirror.apply(watcher.where, watcher.user_hash, records, watched, now)

    def _active(self, where: str | None = None) -> list[JobRecord]:
        """The managed jobs handed to SkyPilot (on server `where`, or any; salloc's clusters
        are clusters.py's)."""
        return [
            j
            for j in self._mine()
            if j.executor_ref
            and "cluster" not in j.executor_ref
            and (where is None or self._where(j).name == where)
        ]

    def _mine(self) -> list[JobRecord]:
        """The active sky jobs this agent follows: every one, or on a team its member's."""
        jobs = state.active_jobs(self.db, "sky")
        return jobs if self.member is None else [j for j in jobs if j.user == self.member]

    def _watched(self, where: str) -> list[int]:
        """SkyPilot ids of the active jobs on `where`: a query that misses them asks for them
        by id."""
        return sorted({sky_id for j in self._active(where) for sky_id in sky_ids(ref_of(j))})

    def _kill(self, now: float) -> bool:
        """scancel / scontrol requeue of a job SkyPilot has: cancel it there (once its id is
        known; again after KILL_AGAIN s, a cancel that failed or was given up); the queue then
        shows it CANCELLED and the job ends (or pends again)."""
        changed = False
        for job in self._active():
            sky_id = ref_of(job).get("sky_job_id")
            sent = job.kill_sent is not None and now - job.kill_sent < KILL_AGAIN
            if job.kill_action and not sent and sky_id is not None:
                log.info("job %s: %s (SkyPilot job %s)", job.job_id, job.kill_action, sky_id)
                if "lane" in ref_of(job):
                    self.lanes.cut(ref_of(job), self._where(job), at_once=True)
                else:
                    self._cancel(self._where(job), sky_id)
                changed |= state.update_job(self.db, job.job_id, kill_sent=now)
        return changed

    def _cancelled_pending(self, now: float) -> None:
        """scancel of a job pending at SkyPilot ended it here at once: cancel it there (an
        element of a release, which no lane has started yet, is left to the lanes' tracker:
        a lane that starts it is cut)."""
        cancelled = dict(state.cancelled_unsent(self.db, "sky", "sky_job_id"))
        cancelled.update(state.cancelled_unsent(self.db, "sky", "lane_ids"))
        for job_id, ref in cancelled.items():
            job = state.get_job(self.db, job_id)
            assert job is not None  # just listed
            if self.member is not None and job.user != self.member:
                continue  # another member's: its own agent cancels it there
            where = self._where(job)
            if "lane" in ref:  # the lanes' tracker cuts the lane (lane_tracker.cut)
                self.lanes.cut(ref, where, at_once=False)
            else:
                self._cancel(where, ref["sky_job_id"])
            state.update_job(self.db, job_id, kill_sent=now)


def _log_cancel(future: Future) -> None:
    try:
        log.info("%s", future.result())
    except Exception as exc:
        log.warning("cancel failed: %s", exc)
