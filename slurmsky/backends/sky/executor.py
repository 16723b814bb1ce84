"""The SkyPilot executor: the agent's side of the sky backend, tying its parts together.

A released job becomes a SkyPilot managed job (launcher.py; an array in lanes, lanes.py),
salloc's allocation a cluster of its own instead (clusters.py). After launch the scheduler
leaves the job to `sync()`, called every pass: its state follows SkyPilot's queue (the
watcher asks, sync.py maps), its output comes home from SkyPilot's log (logs.py,
lane_tracker.py), scancel and requeue become `sky.jobs.cancel`, and orphans (a SkyPilot job
whose slurmsky job was cancelled or requeued meanwhile) are cancelled. SkyPilot jobs slurmsky
did not submit get rows of their own.

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
import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.backends.sky import lanes, room, server
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.client import CLIENT, SkyClient
from slurmsky.backends.sky.clusters import Clusters
from slurmsky.backends.sky.lane_tracker import LaneTracker, ref_of
from slurmsky.backends.sky.launcher import Launcher, dense, lanes_of
from slurmsky.backends.sky.logs import JobLogs
from slurmsky.backends.sky.server import Server
from slurmsky.backends.sky.watcher import PoolWatcher, QueueWatcher
from slurmsky.config import load_config
from slurmsky.core import state, transitions
from slurmsky.core.daemon import nudge
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES, STARTED_STATES
from slurmsky.runtime.spec import infra_matches

log = logging.getLogger("slurmsky.core.daemon")

THREADS = 4  # launches, cancels, whole log reads at once
QUERIES = 4  # queue and pool queries at once (one per server in use, and the pools')


class SkyExecutor:
    name = "sky"

    def __init__(self, client: SkyClient = CLIENT):
        os.environ.setdefault("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")  # never auto-start one
        logging.getLogger("alembic").setLevel(logging.WARNING)  # SkyPilot's import chatter
        self.client = client
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="sky")
        self.queries = ThreadPoolExecutor(QUERIES, thread_name_prefix="sky-query")
        self.instance = skysync.instance_id()
        self.db = state.connect(long_lived=True)
        self.home = server.current()  # the server of jobs stored before servers were recorded
        self.servers: dict[str, Server] = {self.home.name: self.home}  # by name, as last named
        self.watchers: dict[str, QueueWatcher] = {}  # server name -> the watcher of its queue
        self.pools = PoolWatcher(client, self._query, self.home)
        self.launcher = Launcher(
            client, self.db, self.instance, self._background, self._unreachable, self._cancel
        )
        self.logs = JobLogs(client, self.db, self.pool, nudge)
        self.lanes = LaneTracker(client, self.db, (self.pool, self.logs.tails), self._cancel, nudge)
        self.clusters = Clusters(  # salloc's
            client, self.db, self.instance, self._background, self._where
        )
        self.plans: dict[int, tuple[dict, dict]] = {}  # submission -> its stored spec, task
        self.partitions = load_config().partitions
        # this pass's (sync() starts each pass afresh): partition -> nodes held (_held),
        # array -> whether it goes out in lanes, placed elements' lanes (dealt, going out now)
        self.room: defaultdict[str, int] | None = None
        self.modes: dict[int | None, bool] = {}
        self.granted: dict[int, tuple[int, int]] = {}
        self.whole: set[int] = set()  # elements whose launch may be their whole array's

    def shutdown(self) -> None:
        """Wait for the SkyPilot calls in flight (tests; the agent exits instead)."""
        for pool in (self.pool, self.queries, self.logs.tails, self.clusters.pool):
            pool.shutdown(wait=True)

    # --- release ----------------------------------------------------------------------------

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        """Nodes within the partition's size (room.py), or why not: an array element may
        take its array out in lanes (its launch takes the waiting elements: lanes.plan)."""
        if job.executor_ref:  # handed to SkyPilot already: pending there, not here
            return job.reason
        unreachable = self._watcher(self._where(job).name).unreachable
        if unreachable:  # its server does not answer: the reason names it
            return unreachable
        held = self._held()
        free = room.size_of(self.partitions.get(job.partition) or {}) - held[job.partition]
        cap = lanes_of(self._plan(job.submission)[1]) if job.array_job_id is not None else None
        if cap is not None:
            array = job.array_job_id
            if self.modes.get(array) and any(
                j.array_job_id == array and j.state == "PENDING" for j in running
            ):
                return "JobArrayTaskLimit"  # one element a pass: its launch takes the others
            waiting = lanes.count_waiting(lanes.waiting(self.db, array))
            if self.modes.setdefault(array, room.in_lanes(cap[1], free, waiting)):
                out = len(lanes.out(self.db, array))
                now = room.lanes_now(free, cap[0], out, waiting)
                if now == 0:
                    return "Resources" if free <= 0 else "JobArrayTaskLimit"
                self.granted[job.job_id] = (cap[0] - out, now)
                held[job.partition] += now
                return [0]
        if job.array_throttle and self._array_busy(job, running) >= job.array_throttle:
            return "JobArrayTaskLimit"
        het = _het_nodes(job.__dict__.get("het_parts"))
        if het:  # a heterogeneous job: each component's nodes in its own partition
            if any(self._free(part) < count for part, count in het.items()):
                return "Resources"
            for part, count in het.items():
                held[part] += count
            return list(range(job.num_nodes))
        if free < job.num_nodes:
            return "Resources"
        spec = self._plan(job.submission)[0]
        if dense(spec) and free >= spec["array"]["count"]:
            self.whole.add(job.job_id)  # its launch may be the whole array's: it fits
        held[job.partition] += job.num_nodes
        return list(range(job.num_nodes))

    def _held(self) -> dict[str, int]:
        """partition -> the nodes its jobs hold: read at a pass's first place(), then counted
        up as that pass places jobs (their launches come after every place()). A
        heterogeneous job holds each component's nodes in its partition."""
        if self.room is None:
            by_part: dict[str, list[JobRecord]] = {}
            groups: defaultdict[str, int] = defaultdict(int)
            for j in state.active_jobs(self.db, "sky"):
                if j.executor_ref and j.job_id < skysync.FOREIGN_BASE:
                    het = _het_nodes(self._plan(j.submission)[0].get("het"))
                    for part, count in het.items():
                        groups[part] += count
                    if not het:
                        by_part.setdefault(j.partition, []).append(j)
            self.room = defaultdict(int, {p: room.held(js) for p, js in by_part.items()})
            for part, count in groups.items():
                self.room[part] += count
        return self.room

    def _free(self, partition: str) -> int:
        return room.size_of(self.partitions.get(partition) or {}) - self._held()[partition]

    def _plan(self, submission: int) -> tuple[dict, dict]:
        """The submission's stored spec and task (the sky backend stores a task with each)."""
        if submission not in self.plans:
            spec, task = state.get_spec(self.db, submission)
            assert task is not None
            self.plans[submission] = (spec, task)
        return self.plans[submission]

    def _array_busy(self, job: JobRecord, running: list[JobRecord]) -> int:
        """Elements of the array SkyPilot has (pending there too) or that start this pass."""
        assert job.array_job_id is not None  # a throttle is an array's
        out = state.array_elements_out(self.db, job.array_job_id)
        return len(out | {j.job_id for j in running if j.array_job_id == job.array_job_id})

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        # restarts: the job's requeues before this launch (SkyPilot counts its recoveries)
        return {
            "token": uuid.uuid4().hex,
            "sky_job_id": None,
            "server": self._where(job).name,
            "restarts": job.restarts,
        }

    def launch(self, job: JobRecord, spec: dict, ref: dict) -> dict:
        """Hand the job to SkyPilot (in the background); salloc's allocation becomes a
        cluster of its own (clusters.py)."""
        task = self._plan(job.submission)[1]
        if spec.get("command") == "salloc":
            return self.clusters.launch(job, task)
        lanes, whole = self.granted.get(job.job_id), job.job_id in self.whole
        return self.launcher.launch(job, spec, task, ref, lanes, whole, self._where(job))

    def handed(self, job: JobRecord, ref: dict) -> dict:
        """A managed job pends at SkyPilot until it has nodes (srun: `queued and waiting for
        resources`); salloc's cluster is CONFIGURING until it is up."""
        if "cluster" in ref:
            return {}
        return dict(
            state="PENDING", reason="Resources", start_time=None, nodelist=None, batch_host=None
        )

    def _background(self, fn, *args, pool: ThreadPoolExecutor | None = None) -> Future:
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
            for j in state.active_jobs(self.db, "sky")
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
        self.room, self.modes = None, {}
        self.granted.clear()  # what the last pass placed and did not launch (cancelled meanwhile)
        self.whole.clear()
        changed = self.launcher.collect(now)
        changed |= self.clusters.sync(now, wake)
        changed |= self._kill(now)
        self._cancelled_pending(now)
        for watcher in list(self.watchers.values()):
            apply = functools.partial(self._apply, watcher.where, now=now)
            changed |= watcher.collect(now, apply)
        changed |= self.lanes.progress(self._active(), now)
        changed |= self._finish(now)
        fresh = self._ask(now, wake)
        self.pools.sync(now, wake, fresh)
        return changed

    def _active(self, where: str | None = None) -> list[JobRecord]:
        """The managed jobs handed to SkyPilot (on server `where`, or any; salloc's clusters
        are clusters.py's)."""
        return [
            j
            for j in state.active_jobs(self.db, "sky")
            if j.executor_ref
            and "cluster" not in j.executor_ref
            and (where is None or self._where(j).name == where)
        ]

    def _watched(self, where: str) -> list[int]:
        """SkyPilot ids of the active jobs on `where`: a query that misses them asks for them
        by id."""
        return [
            ref_of(j)["sky_job_id"]
            for j in self._active(where)
            if ref_of(j).get("sky_job_id") is not None
        ]

    def _kill(self, now: float) -> bool:
        """scancel / scontrol requeue of a job SkyPilot has: cancel it there (once its id is
        known); the queue then shows it CANCELLED and the job ends (or pends again)."""
        changed = False
        for job in self._active():
            sky_id = ref_of(job).get("sky_job_id")
            if job.kill_action and job.kill_sent is None and sky_id is not None:
                log.info("job %s: %s (SkyPilot job %s)", job.job_id, job.kill_action, sky_id)
                if "lane" in ref_of(job):
                    self.lanes.cut(ref_of(job)["token"], self._where(job), sky_id, at_once=True)
                else:
                    self._cancel(self._where(job), sky_id)
                changed |= state.update_job(self.db, job.job_id, kill_sent=now)
        return changed

    def _cancelled_pending(self, now: float) -> None:
        """scancel of a job pending at SkyPilot ended it here at once: cancel it there."""
        for job_id, ref in state.cancelled_unsent(self.db, "sky", "sky_job_id"):
            job = state.get_job(self.db, job_id)
            assert job is not None  # just listed
            where = self._where(job)
            if "lane" in ref:  # its lane stops after the element it runs
                self.lanes.cut(ref["token"], where, ref["sky_job_id"], at_once=False)
            else:
                self._cancel(where, ref["sky_job_id"])
            state.update_job(self.db, job_id, kill_sent=now)

    def _apply(self, where: Server, records: list[dict], watched: list[int], *, now: float) -> bool:
        """Mirror one server's queue answer into the state of the jobs that went there."""
        by_job: dict[int, list[dict]] = {}
        for rec in records:
            rec["server"] = where  # where its log is read and its cancel sent
            by_job.setdefault(rec["job_id"], []).append(rec)
        views = [skysync.job_view(recs) for recs in by_job.values()]
        mine = {
            v["job_id"]
            for v in views
            if (v.get("metadata") or {}).get("slurmsky", {}).get("instance") == self.instance
        }
        changed = self._apply_own(where, [v for v in views if v["job_id"] in mine], now)
        changed |= self._apply_foreign(where, [v for v in views if v["job_id"] not in mine], now)
        for job in self._active(where.name):  # asked for by id and not there: SkyPilot lost it
            sky_id = ref_of(job).get("sky_job_id")
            if sky_id in watched and sky_id not in by_job:
                log.warning("job %s: SkyPilot job %s is gone", job.job_id, sky_id)
                self.logs.lost(
                    job.job_id,
                    {
                        "job_id": sky_id,
                        "status": "FAILED_CONTROLLER",
                        "failure_reason": "NotInSkyPilotQueue",
                    },
                )
        return changed

    def _apply_own(self, where: Server, records: list[dict], now: float) -> bool:
        changed = False
        jobs = self._active(where.name)
        by_sky = {
            ref_of(j)["sky_job_id"]: j for j in jobs if ref_of(j).get("sky_job_id") is not None
        }
        lane_members: dict[str, list[JobRecord]] = {}
        for j in jobs:
            if "lane" in ref_of(j):
                lane_members.setdefault(ref_of(j)["token"], []).append(j)
        by_token: dict[str, list[dict]] = {}
        for rec in records:
            by_token.setdefault(rec["metadata"]["slurmsky"].get("token"), []).append(rec)
        for rec in records:
            token = rec["metadata"]["slurmsky"].get("token")
            if token in self.launcher.pending:
                continue  # listed before its launch answered: next time
            if token in lane_members:
                self.lanes.follow(token, lane_members[token], rec)
                continue
            job = by_sky.get(rec["job_id"])
            if job is None or ref_of(job).get("token") != token:
                job = self._adopt(rec, jobs, by_token)
            if job is None:
                if rec["status"] not in skysync.FINAL and not self.lanes.settled(rec):
                    # its job was cancelled or requeued
                    log.info(
                        "SkyPilot job %s has no slurmsky job any more: cancelling it", rec["job_id"]
                    )
                    self._cancel(where, rec["job_id"])
                continue
            changed |= self._follow(job, rec, now)
        for job in jobs:  # a launch an earlier agent started that never reached SkyPilot
            ref = ref_of(job)
            if ref.get("sky_job_id") is None and ref.get("token") not in self.launcher.pending:
                log.info("job %s: its launch never reached SkyPilot; pending again", job.job_id)
                changed |= transitions.pend_again(self.db, job.job_id)
        return changed

    def _adopt(self, rec: dict, jobs: list[JobRecord], by_token: dict) -> JobRecord | None:
        """A launch whose answer this agent never saw (it restarted): match by token/rank."""
        token = rec["metadata"]["slurmsky"].get("token")
        ids = sorted(r["job_id"] for r in by_token.get(token, []))
        for job in jobs:
            ref = ref_of(job)
            if (
                ref.get("token") == token
                and ref.get("sky_job_id") is None
                and ids.index(rec["job_id"]) == (ref.get("rank") or 0)
            ):
                ref = dict(ref, sky_job_id=rec["job_id"])
                state.update_job(self.db, job.job_id, executor_ref=ref)
                job.executor_ref = ref
                log.info("job %s: found SkyPilot job %s again", job.job_id, rec["job_id"])
                return job
        return None

    def _follow(self, job: JobRecord, rec: dict, now: float) -> bool:
        """One of our jobs: its state from SkyPilot's, its output from SkyPilot's log."""
        if rec["status"] in skysync.FINAL:
            self.logs.ended_there(job, rec)
            return False
        if rec["status"] == "RECOVERING" and not job.requeue and not job.kill_action:
            return self._node_fail(job, rec, now)
        if rec["status"] not in skysync.QUEUED_THERE:
            self.logs.running(job, rec["server"], rec["job_id"])
        if job.kill_action:
            return False  # COMPLETING until SkyPilot has cancelled it
        return self._update(job, rec, now)

    def _node_fail(self, job: JobRecord, rec: dict, now: float) -> bool:
        """--no-requeue: a job SkyPilot would recover on new nodes ends NODE_FAIL, as Slurm
        ends a job that may not be requeued when its node fails; SkyPilot's job is cancelled."""
        log.info("job %s: SkyPilot recovers it and it may not requeue: NODE_FAIL", job.job_id)
        self._cancel(rec["server"], rec["job_id"])
        result = {"state": "NODE_FAIL", "start": job.start_time, "end": now, "reason": "NodeDown"}
        ended = transitions.finish(self.db, job.job_id, result, now, ACTIVE_STATES)
        return ended is not None

    def _placed(self, job: JobRecord, rec: dict, ref: dict | None = None) -> dict:
        """What SkyPilot's record says of the runs of one of our jobs: its restarts (the
        requeues before its launch, and the recoveries since: SkyPilot's count, or the
        RECOVERING states seen here when more, as SkyPilot 0.14.1 on Slurm infra counts
        none) and, for a job over several partitions (-p a,b), the partition whose infra
        SkyPilot chose."""
        ref = ref or ref_of(job)
        if ref.get("foreign"):
            return {}
        runs = max(rec.get("recovery_count") or 0, ref.get("recovered") or 0)
        fields = {"restarts": (ref.get("restarts") or 0) + runs}
        pairs = self._plan(job.submission)[0].get("partition_infra")
        if pairs and rec.get("cloud") not in (None, "-"):
            at = (rec["cloud"], rec.get("region"), rec.get("zone"))
            fields["partition"] = next((p for i, p in pairs if infra_matches(i, *at)), None)
        return {k: v for k, v in fields.items() if v is not None}

    def _update(self, job: JobRecord, rec: dict, now: float) -> bool:
        """The active columns SkyPilot's record changes. A run SkyPilot recovers on new
        nodes (RECOVERING, or a recovery seen only by its count) ends NODE_FAIL, kept as
        Slurm keeps the run of a job requeued when its node fails (`sacct -D`)."""
        fields = skysync.active_fields(rec, job, now)
        ref = ref_of(job)
        if fields.get("state") == "REQUEUED" and job.state in STARTED_STATES:
            seen = max((ref.get("recovered") or 0) + 1, rec.get("recovery_count") or 0)
            ref = fields["executor_ref"] = dict(ref, recovered=seen)
        fields = dict(fields, **self._placed(job, rec, ref))
        names = skysync.group_names(rec)
        if names and ref.get("names") != names:  # a heterogeneous job's: each component's
            ref = fields["executor_ref"] = dict(ref, names=names)
            self._component_nodes(job, names)
        fields = {k: v for k, v in fields.items() if getattr(job, k) != v}
        if not fields:
            return False
        recovered = job.state in STARTED_STATES and (
            fields.get("state") == "REQUEUED" or fields.get("restarts", 0) > job.restarts
        )
        with state.write(self.db):
            changed = state.update_job(self.db, job.job_id, where_state=ACTIVE_STATES, **fields)
            if changed and recovered:
                transitions.keep_run(self.db, job, now, ended="NODE_FAIL")
        return changed

    def _component_nodes(self, job: JobRecord, names: list[str]) -> None:
        """A heterogeneous job's rows each with its component's nodes (its group task's),
        the leader's too (its executor_ref's names share its steps out: transitions)."""
        from slurmsky.runtime import hostlist

        for comp in self._plan(job.submission)[0].get("het") or ():
            first, count = comp["nodes"]
            own = names[first : first + count]
            if own:
                nodes = hostlist.compress(own)
                state.update_job(self.db, comp["job_id"], nodelist=nodes, batch_host=own[0])

    def _finish(self, now: float) -> bool:
        """Record the end of jobs SkyPilot finished, once their log (if any) is read."""
        changed = False
        for job_id, rec, marker in self.logs.ends():
            result = skysync.result_of(rec, marker)
            job = state.get_job(self.db, job_id)
            placed = self._placed(job, rec) if job and job.executor_ref else {}
            fields = transitions.finish(self.db, job_id, result, now, ACTIVE_STATES, **placed)
            if fields is not None:
                changed = True
                log.info("job %s: %s (SkyPilot %s)", job_id, fields["state"], rec["status"])
        return changed

    def _apply_foreign(self, where: Server, records: list[dict], now: float) -> bool:
        """SkyPilot jobs slurmsky did not submit: rows FOREIGN_BASE + id, kept in step; a row
        is the server's whose queue listed that id first (ids repeat across servers)."""
        changed = False
        for rec in records:
            job_id = skysync.FOREIGN_BASE + rec["job_id"]
            job = state.get_job(self.db, job_id)
            if job is None:
                row = skysync.foreign_row(rec, self.watchers[where.name].user_hash)
                row["executor_ref"]["server"] = where.name
                state.add_submission(self.db, job_id, {}, None, [row])
                job = state.get_job(self.db, job_id)
                assert job is not None  # just added
                changed = True
            if job.finished or self._where(job).name != where.name:
                continue
            if rec["status"] in skysync.FINAL:
                self.logs.ended[job_id] = rec
            elif not job.kill_action:
                changed |= self._update(job, rec, now)
        return changed


def _het_nodes(components: list[dict] | None) -> dict[str, int]:
    """A heterogeneous job's nodes per partition, from its spec's components ({}: none)."""
    nodes: dict[str, int] = {}
    for comp in components or ():
        nodes[comp["partition"]] = nodes.get(comp["partition"], 0) + comp["nodes"][1]
    return nodes


def _log_cancel(future: Future) -> None:
    try:
        log.info("%s", future.result())
    except Exception as exc:
        log.warning("cancel failed: %s", exc)
