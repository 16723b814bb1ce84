"""The SkyPilot executor: a released job becomes one SkyPilot managed job (`sky.jobs.launch`);
salloc's allocation a cluster of its own instead (clusters.py, which sync() drives).

Only the agent uses it, and SkyPilot (~2.3 s to import) is imported on first use, in the
threads that call it. What is launched is the task translate.py made at sbatch time, with its
`run` rebuilt here from the runtime spec: a dense array without a throttle is ONE launch with
num_jobs=N (SKYPILOT_JOB_RANK picks the element: the spec lists every index and id), anything
else one launch per job or element. The job's step secret travels in the task's `secrets`,
never in `envs`; the Slurm ids, this state directory's instance id and a launch token go in
`_metadata`, so a job is found again after an agent restart.

SkyPilot calls take 1-15 s, so they run on a small thread pool that wakes the agent when one
returns; the agent thread only reads their results in `sync()`, which the scheduler calls on
every pass. After launch the scheduler leaves the job to `sync()`: its state follows SkyPilot's
queue (skysync.py maps it), scancel and requeue become `sky.jobs.cancel`, and orphans (a
SkyPilot job whose slurmsky job was cancelled or requeued meanwhile) are cancelled.

Output (output.py). Node 0 runs an emitter beside the node runtime: it prints the batch
script's output files and the runtime's RESULT as `SLURMSKY-IO` lines into SkyPilot's run
log. The agent follows that log with `jobs.tail_logs` while the job runs and writes the
bytes into the --output/--error files on the submit host; the RESULT gives sacct the job's
own state and exit code (SkyPilot's 100-103 exit codes are never needed).

Lanes (lanes.py): on a partition with `lanes`, an array runs as a few managed jobs, each
running its share of elements one after another; each element's start, output and RESULT
come back tagged in its lane's log and move that element's own row.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import secrets
import urllib.parse
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.backends.sky import lanes, pools, server
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.clusters import Clusters
from slurmsky.backends.sky.output import NODE_ERR, NODE_OUT, LogReader, MarkerStream, sky_run
from slurmsky.backends.sky.task import cluster_workdir, with_runtime
from slurmsky.config import load_config
from slurmsky.core import state
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES
from slurmsky.core.transitions import finish
from slurmsky.errors import SlurmError
from slurmsky.runtime.spec import SECRET_VAR

log = logging.getLogger("slurmsky.core.daemon")

THREADS = 4
TAILS = 64  # live log reads at once (one per running job; each holds a thread)
QUEUE_FIELDS = [
    "job_id",
    "task_id",
    "job_name",
    "status",
    "submitted_at",
    "start_at",
    "end_at",
    "failure_reason",
    "metadata",
    "user_name",
    "user_hash",
    "resources",
    "node_names",
]
LOG_ATTEMPTS = 5  # tries at reading a finished job's log before ending it without output
QUERY_TIMEOUT = 120.0  # s after which a queue query that never answered is given up
NEW_JOBS_MARGIN = 300.0  # s before the newest submission seen that a query lists ended jobs


def _read_nothing(reader: Future) -> bool:
    """A finished log read that never saw the job's result marker (a live read that SkyPilot
    answered before the job wrote anything, as a job ending between two syncs leaves it)."""
    return reader.done() and (reader.exception() is not None or reader.result().result is None)


def _ref(job: JobRecord) -> dict:
    """The ref of a job handed to SkyPilot (every job _active() lists has one)."""
    ref = job.executor_ref
    assert ref is not None, f"job {job.job_id} has no executor_ref"
    return ref


class Unreachable(Exception):
    """The API server did not answer; str() is the pending reason, naming its endpoint."""


class SkyExecutor:
    name = "sky"

    def __init__(self):
        os.environ.setdefault("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")  # never auto-start one
        logging.getLogger("alembic").setLevel(logging.WARNING)  # SkyPilot's import chatter
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="sky")
        self.instance = skysync.instance_id()
        self.db = state.connect(long_lived=True)
        self.unreachable: str | None = None  # pending reason while the API server is down
        self.query: Future | None = None
        self.query_started = 0.0
        self.query_watched: list[int] = []  # SkyPilot ids the query in flight must account for
        self.newest = 0.0  # the latest submitted_at (SkyPilot's clock) an answer held
        self.full_done = False  # the first query of an agent lists finished jobs too
        self.launches: dict[str, Future] = {}  # launch token -> future of the SkyPilot ids
        self.groups: dict[int, str] = {}  # array submission -> token of its num_jobs launch
        self.readers: dict[int, Future] = {}  # job id -> future of its LogReader
        self.logs: dict[int, LogReader] = {}  # job id -> its reader, across reads
        self.tails = ThreadPoolExecutor(TAILS, thread_name_prefix="sky-log")  # live reads
        self.log_failures: dict[int, int] = {}
        self.ended: dict[int, dict] = {}  # job id -> SkyPilot's final record, until recorded
        self.user_hash: str | None = None
        self.clusters = Clusters(self.db, self.instance, self._background)  # salloc's
        self.pools_query: Future | None = None  # the configured pools' status, for sinfo
        self.pools_started = 0.0
        self.pools_names: list[str] = []
        self.pools_error: str | None = None
        self.lane_limits: dict[int, int | None] = {}  # submission -> its task's lanes
        self.lane_logs: dict[str, lanes.LaneReader] = {}  # lane token -> its reader
        self.lane_reads: dict[str, Future] = {}  # lane token -> the read of its log
        self.lane_recs: dict[str, dict] = {}  # lane token -> SkyPilot's last record of it
        self.lane_ends: dict[str, int] = {}  # ended lane -> reads of its log since it ended
        self.lane_cuts: dict[str, int | None] = {}  # cut lane -> last seq kept; None: pending

    # --- release ----------------------------------------------------------------------------

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        if job.executor_ref:  # handed to SkyPilot already: pending there, not here
            return job.reason
        if self.unreachable:
            return self.unreachable
        limit = self._lanes_of(job)
        if limit is not None:  # one element a pass: its launch takes the others (lanes.plan)
            placed = any(
                j.array_job_id == job.array_job_id and j.state == "PENDING" for j in running
            )
            if placed or len(lanes.out(self.db, job.array_job_id)) >= limit:
                return "JobArrayTaskLimit"
        elif job.array_throttle and self._array_busy(job, running) >= job.array_throttle:
            return "JobArrayTaskLimit"
        return list(range(job.num_nodes))

    def _lanes_of(self, job: JobRecord) -> int | None:
        """How many lanes the job's array runs in (None: not in lanes)."""
        if job.array_job_id is None:
            return None
        if job.submission not in self.lane_limits:
            task = state.get_spec(self.db, job.submission)[1] or {}
            self.lane_limits[job.submission] = (
                task.get("_metadata", {}).get("slurmsky", {}).get("lanes")
            )
        return self.lane_limits[job.submission]

    def _array_busy(self, job: JobRecord, running: list[JobRecord]) -> int:
        """Elements of the array SkyPilot has (pending there too) or that start this pass."""
        rows = self.db.execute(
            f"SELECT job_id FROM jobs WHERE array_job_id = ? AND executor_ref IS NOT NULL "
            f"AND state IN ({', '.join('?' * len(ACTIVE_STATES))})",
            (job.array_job_id, *ACTIVE_STATES),
        ).fetchall()
        return len(
            {r[0] for r in rows} | {j.job_id for j in running if j.array_job_id == job.array_job_id}
        )

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        return {"token": uuid.uuid4().hex, "sky_job_id": None}

    def launch(self, job: JobRecord, spec: dict, ref: dict) -> dict:
        """Hand the job to SkyPilot (in the background) and show it pending there; salloc's
        allocation becomes a cluster of its own (clusters.py), CONFIGURING until it is up."""
        if spec.get("command") == "salloc":
            task = state.get_spec(self.db, job.submission)[1]
            assert task is not None  # the sky backend stores a task with each submission
            return self.clusters.launch(job, task)
        token = ref["token"]
        limit = self._lanes_of(job)
        if limit is not None:
            ref = self._lanes(job, spec, ref, limit)
        elif self._dense(spec):
            token = self._group(job, spec, token)
            ref = dict(ref, token=token, rank=job.array_rank)
        else:
            self._submit(token, self._task(job, spec, token, whole=False), None)
        state.update_job(
            self.db,
            job.job_id,
            where_state=("CONFIGURING",),
            state="PENDING",
            reason="Resources",  # SkyPilot finds them (srun: `queued and waiting for resources`)
            start_time=None,
            nodelist=None,
            batch_host=None,
            executor_ref=ref,
        )
        return ref

    @staticmethod
    def _dense(spec: dict) -> bool:
        array = spec.get("array")
        if not array or array.get("throttle"):
            return False
        return "," not in array["ranges"] and ":" not in array["ranges"]

    def _group(self, job: JobRecord, spec: dict, token: str) -> str:
        """The token of the array's one num_jobs launch: this element's sibling's, or a new
        launch when every other element is still pending and free (else per element)."""
        if job.submission in self.groups:
            return self.groups[job.submission]
        siblings = [
            s for s in state.find_jobs(self.db, ids=[job.array_job_id]) if s.job_id != job.job_id
        ]
        for s in siblings:
            if s.executor_ref and s.executor_ref.get("rank") is not None:
                self.groups[job.submission] = s.executor_ref["token"]
                return self.groups[job.submission]
        if all(s.state == "PENDING" and not s.held and not s.executor_ref for s in siblings):
            self.groups[job.submission] = token
            self._submit(token, self._task(job, spec, token, whole=True), spec["array"]["count"])
        else:
            self._submit(token, self._task(job, spec, token, whole=False), None)
        return token

    def _lanes(self, job: JobRecord, spec: dict, ref: dict, limit: int) -> dict:
        """Launch the lanes `job` goes out in (lanes.plan: with the array's pending
        elements): each element's ref names its lane's token and its seq in it. Returns
        `job`'s ref."""
        for members in lanes.plan(self.db, job, spec, limit):
            token = uuid.uuid4().hex
            for seq, member in enumerate(members):
                member_ref = {"token": token, "sky_job_id": None, "lane": seq}
                if member.job_id == job.job_id:
                    ref = dict(ref, **member_ref)
                else:
                    state.update_job(
                        self.db,
                        member.job_id,
                        where_state=("PENDING",),
                        executor_ref=member_ref,
                        reason="Resources",
                    )
            self._submit(token, self._task(job, spec, token, whole=False, lane=members), None)
        return ref

    def _task(
        self,
        job: JobRecord,
        spec: dict,
        token: str,
        *,
        whole: bool,
        lane: list[JobRecord] | None = None,
    ) -> dict:
        """The stored task with `run` for this launch (of the array's elements in `lane`,
        one after another, when given), its metadata and its secret."""
        task = copy.deepcopy(state.get_spec(self.db, job.submission)[1])
        assert task is not None  # the sky backend stores a task with each submission
        separate = spec.get("error") not in (None, spec.get("output"))
        node = dict(spec, environment=None, output=NODE_OUT, error=NODE_ERR if separate else None)
        meta = dict(
            task.get("_metadata", {}).get("slurmsky", {}), instance=self.instance, token=token
        )
        workdir = cluster_workdir(task, spec)
        if lane:
            node["array"] = dict(spec["array"], lane=[[m.array_task_id, m.job_id] for m in lane])
            meta["lane"] = [m.job_id for m in lane]
            task["run"] = with_runtime(task, lanes.lane_run(node, workdir, len(lane)))
        else:
            if spec.get("array") and not whole:
                node["array"] = dict(
                    spec["array"], task_id=job.array_task_id, task_job_id=job.job_id
                )
                meta.update(job_id=job.job_id, array_task_id=job.array_task_id)
            task["run"] = with_runtime(task, sky_run(node, workdir))
        task["_metadata"] = {"slurmsky": meta}
        task["secrets"] = {SECRET_VAR: secrets.token_hex(32)}
        return task

    def _submit(self, token: str, task: dict, num_jobs: int | None) -> None:
        self.launches[token] = self._background(_launch, task, num_jobs)

    def _background(self, fn, *args, pool: ThreadPoolExecutor | None = None) -> Future:
        """fn(*args) on the pool (by default the executor's own); the agent wakes when it
        returns."""
        future = (pool or self.pool).submit(fn, *args)
        future.add_done_callback(lambda _: _nudge_agent())
        return future

    # --- the queue --------------------------------------------------------------------------

    def sync(self, conn, now: float, wake: list[float]) -> bool:
        """Called by the scheduler every pass: collect finished SkyPilot calls, act on them,
        start the next queue query when one is due. True when the state changed."""
        changed = self._launched(now)
        changed |= self.clusters.sync(now, wake)
        changed |= self._kill(now)
        self._cancelled_pending(now)
        if self.query is not None and self.query.done():
            changed |= self._apply(self.query, now)
            self.query = None
        elif self.query is not None and now - self.query_started > QUERY_TIMEOUT:
            log.warning("SkyPilot queue query unanswered after %.0f s; asking again", QUERY_TIMEOUT)
            skysync.record_sync(self.query_started, "queue query timed out")
            self.query = None
        changed |= self._lane_progress(now)
        changed |= self._finish(now)
        if self.query is None:  # one in flight wakes the agent when it answers
            if self._keep_fresh(now):
                due = self.query_started + skysync.SYNC_INTERVAL
                if now >= due:
                    self.query_started, self.query_watched = now, self._watched()
                    self.query = self._background(_fetch, self._since(), self.query_watched)
                else:
                    wake.append(due)
        self._pools(now, wake)
        return changed

    def _pools(self, now: float, wake: list[float]) -> None:
        """Record the configured pools' status for sinfo (pools.record) when an answer came;
        ask again as often as the queue is asked, while it is kept fresh."""
        if self.pools_query is not None:
            if self.pools_query.done():
                try:
                    pools.record(self.pools_query.result(), self.pools_names, self.pools_started)
                    self.pools_error = None
                except Exception as exc:  # the last record stays
                    if str(exc) != self.pools_error:
                        log.warning("SkyPilot pool status failed: %s", exc)
                    self.pools_error = str(exc)
                self.pools_query = None
            elif now - self.pools_started <= QUERY_TIMEOUT:
                return  # its answer wakes the agent
            else:
                self.pools_query = None
        if not self._keep_fresh(now):
            return
        due = self.pools_started + skysync.SYNC_INTERVAL
        if now < due:
            wake.append(due)
            return
        self.pools_started = now
        try:
            self.pools_names = pools.configured_pools(load_config())
        except SlurmError:  # a broken config: the commands say so
            self.pools_names = []
        if self.pools_names:
            self.pools_query = self._background(_pool_status, self.pools_names)

    def _since(self) -> float | None:
        """What the next query lists of finished jobs: all of them (None) the first time,
        then those submitted since shortly before the newest one seen (a job that started
        and ended between two queries is listed too)."""
        if not self.full_done or not self.newest:
            return None
        return self.newest - NEW_JOBS_MARGIN

    def _keep_fresh(self, now: float) -> bool:
        """Whether the queue is worth querying: never yet, slurmsky's own jobs are active
        there, or readers came lately (foreign jobs then too)."""
        if not self.query_started or skysync.readers_recent(now):
            return True
        sql = (
            f"SELECT 1 FROM jobs WHERE executor = 'sky' AND job_id < ? AND state IN "
            f"({', '.join('?' * len(ACTIVE_STATES))}) "
            "AND json_extract(executor_ref, '$.cluster') IS NULL LIMIT 1"
        )
        return self.db.execute(sql, (skysync.FOREIGN_BASE, *ACTIVE_STATES)).fetchone() is not None

    def _active(self) -> list[JobRecord]:
        """The managed jobs handed to SkyPilot (salloc's clusters are clusters.py's)."""
        return [
            j
            for j in state.active_jobs(self.db, "sky")
            if j.executor_ref and "cluster" not in j.executor_ref
        ]

    def _watched(self) -> list[int]:
        """SkyPilot ids of the active jobs: a query that misses them asks for them by id."""
        return [
            _ref(j)["sky_job_id"] for j in self._active() if _ref(j).get("sky_job_id") is not None
        ]

    def _launched(self, now: float) -> bool:
        """Record the SkyPilot ids of launches that returned (on cancelled jobs too, whose
        SkyPilot job _cancelled_pending then cancels); a failed launch pends again (API
        server down) or fails the job."""
        changed = False
        for token, future in list(self.launches.items()):
            if not future.done():
                continue
            del self.launches[token]
            rows = [
                (job_id, json.loads(ref))
                for job_id, ref in self.db.execute(
                    "SELECT job_id, executor_ref FROM jobs WHERE executor = 'sky' "
                    "AND json_extract(executor_ref, '$.token') = ?",
                    (token,),
                )
            ]
            try:
                ids = future.result()
            except Unreachable as exc:
                self.unreachable = str(exc)
                for job_id, _ in rows:
                    changed |= state.update_job(
                        self.db,
                        job_id,
                        where_state=ACTIVE_STATES,
                        state="PENDING",
                        executor_ref=None,
                        reason=str(exc),
                        start_time=None,
                    )
                continue
            except Exception as exc:  # SkyPilot refused the task: the job cannot run
                reason = f"JobLaunchFailure: {skysync.clean(str(exc))}"[:300]
                log.error("launch %s failed: %s", token, exc)
                for job_id, _ in rows:
                    changed |= state.update_job(
                        self.db,
                        job_id,
                        where_state=ACTIVE_STATES,
                        state="FAILED",
                        reason=reason,
                        end_time=now,
                        exit_code=1,
                        exit_signal=0,
                        kill_action=None,
                        result={"error": str(exc)},
                    )
                continue
            for job_id, ref in rows:
                rank = ref.get("rank") or 0
                if rank < len(ids):
                    ref["sky_job_id"] = ids[rank]
                    changed |= state.update_job(self.db, job_id, executor_ref=ref)
                    log.info("job %s: SkyPilot managed job %s", job_id, ids[rank])
            known = {ref.get("rank") or 0 for _, ref in rows}
            for rank, sky_id in enumerate(ids):  # elements cancelled before their release
                if rank not in known:
                    self._cancel(sky_id)
        return changed

    def _kill(self, now: float) -> bool:
        """scancel / scontrol requeue of a job SkyPilot has: cancel it there (once its id is
        known); the queue then shows it CANCELLED and the job ends (or pends again)."""
        changed = False
        for job in self._active():
            sky_id = _ref(job).get("sky_job_id")
            if job.kill_action and job.kill_sent is None and sky_id is not None:
                log.info("job %s: %s (SkyPilot job %s)", job.job_id, job.kill_action, sky_id)
                if "lane" in _ref(job):
                    self._cut(_ref(job)["token"], sky_id, at_once=True)
                else:
                    self._cancel(sky_id)
                changed |= state.update_job(self.db, job.job_id, kill_sent=now)
        return changed

    def _cancelled_pending(self, now: float) -> None:
        """scancel of a job pending at SkyPilot ended it here at once: cancel it there."""
        rows = self.db.execute(
            "SELECT job_id, executor_ref FROM jobs WHERE state = 'CANCELLED' AND executor = 'sky' "
            "AND cancelled_by IS NOT NULL AND kill_sent IS NULL AND executor_ref IS NOT NULL "
            "AND json_extract(executor_ref, '$.sky_job_id') IS NOT NULL"
        ).fetchall()
        for job_id, text in rows:
            ref = json.loads(text)
            if "lane" in ref:  # its lane stops after the element it runs
                self._cut(ref["token"], ref["sky_job_id"], at_once=False)
            else:
                self._cancel(ref["sky_job_id"])
            state.update_job(self.db, job_id, kill_sent=now)

    def _cancel(self, sky_id: int) -> None:
        self._background(_cancel, sky_id).add_done_callback(_log_cancel)

    def _apply(self, query: Future, now: float) -> bool:
        """Mirror one queue answer into the state."""
        try:
            records, self.user_hash = query.result()
        except Unreachable as exc:
            self._unreachable(str(exc))
            return False
        except Exception as exc:
            log.error("SkyPilot queue failed: %s", exc)
            skysync.record_sync(self.query_started, str(exc))
            return False
        changed = self.unreachable is not None
        self.unreachable = None
        self.full_done = True
        self.newest = max([self.newest] + [r.get("submitted_at") or 0.0 for r in records])
        by_job: dict[int, list[dict]] = {}
        for rec in records:
            by_job.setdefault(rec["job_id"], []).append(rec)
        views = [skysync.job_view(recs) for recs in by_job.values()]
        mine = {
            v["job_id"]
            for v in views
            if (v.get("metadata") or {}).get("slurmsky", {}).get("instance") == self.instance
        }
        changed |= self._apply_own([v for v in views if v["job_id"] in mine], now)
        changed |= self._apply_foreign([v for v in views if v["job_id"] not in mine], now)
        for job in self._active():  # asked for by id and not there: SkyPilot lost it
            sky_id = _ref(job).get("sky_job_id")
            if sky_id in self.query_watched and sky_id not in by_job:
                log.warning("job %s: SkyPilot job %s is gone", job.job_id, sky_id)
                self.ended.setdefault(
                    job.job_id,
                    {
                        "job_id": sky_id,
                        "status": "FAILED_CONTROLLER",
                        "failure_reason": "NotInSkyPilotQueue",
                    },
                )
        skysync.record_sync(self.query_started, None)
        return changed

    def _unreachable(self, reason: str) -> None:
        if self.unreachable != reason:
            log.warning("%s", reason)
        self.unreachable = reason
        skysync.record_sync(self.query_started, reason)

    def _apply_own(self, records: list[dict], now: float) -> bool:
        changed = False
        jobs = self._active()
        by_sky = {_ref(j)["sky_job_id"]: j for j in jobs if _ref(j).get("sky_job_id") is not None}
        lane_members: dict[str, list[JobRecord]] = {}
        for j in jobs:
            if "lane" in _ref(j):
                lane_members.setdefault(_ref(j)["token"], []).append(j)
        by_token: dict[str, list[dict]] = {}
        for rec in records:
            by_token.setdefault(rec["metadata"]["slurmsky"].get("token"), []).append(rec)
        for rec in records:
            token = rec["metadata"]["slurmsky"].get("token")
            if token in self.launches:
                continue  # listed before its launch answered: next time
            if token in lane_members:
                self._follow_lane(token, lane_members[token], rec)
                continue
            job = by_sky.get(rec["job_id"])
            if job is None or _ref(job).get("token") != token:
                job = self._adopt(rec, jobs, by_token)
            if job is None:
                if rec["status"] not in skysync.FINAL and not self._lane_done(rec):
                    # its job was cancelled or requeued
                    log.info(
                        "SkyPilot job %s has no slurmsky job any more: cancelling it", rec["job_id"]
                    )
                    self._cancel(rec["job_id"])
                continue
            changed |= self._follow(job, rec, now)
        for job in jobs:  # a launch an earlier agent started that never reached SkyPilot
            ref = _ref(job)
            if ref.get("sky_job_id") is None and ref.get("token") not in self.launches:
                log.info("job %s: its launch never reached SkyPilot; pending again", job.job_id)
                changed |= self._pend_again(job.job_id)
        return changed

    def _lane_done(self, rec: dict) -> bool:
        """A lane whose elements all ended, none cancelled or requeued: it ends by itself
        (it may still be winding down after its last element's RESULT)."""
        ids = rec["metadata"]["slurmsky"].get("lane")
        if not ids:
            return False
        marks = ", ".join("?" * len(ids))
        sql = (
            f"SELECT 1 FROM jobs WHERE job_id IN ({marks}) AND (state = 'CANCELLED' OR "
            "json_extract(executor_ref, '$.token') IS NOT ?) LIMIT 1"
        )
        token = rec["metadata"]["slurmsky"].get("token")
        return self.db.execute(sql, (*ids, token)).fetchone() is None

    def _adopt(self, rec: dict, jobs: list[JobRecord], by_token: dict) -> JobRecord | None:
        """A launch whose answer this agent never saw (it restarted): match by token/rank."""
        token = rec["metadata"]["slurmsky"].get("token")
        ids = sorted(r["job_id"] for r in by_token.get(token, []))
        for job in jobs:
            ref = _ref(job)
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
            self.ended[job.job_id] = rec
            reader = self.readers.get(job.job_id)
            if rec.get("start_at") and (reader is None or _read_nothing(reader)):
                self._read_log(job, follow=False)  # a live read may have ended before the job
            return False
        if rec["status"] not in skysync.QUEUED_THERE:
            self._live(job)
        if job.kill_action:
            return False  # COMPLETING until SkyPilot has cancelled it
        fields = skysync.active_fields(rec, job, now)
        fields = {k: v for k, v in fields.items() if getattr(job, k) != v}
        return bool(fields) and state.update_job(
            self.db, job.job_id, where_state=ACTIVE_STATES, **fields
        )

    def _live(self, job: JobRecord) -> None:
        """Follow the log of a job SkyPilot starts or runs into its files as it is written
        (tail -f works on the submit host). A read that ended while SkyPilot still runs the
        job (a recovery on new nodes) starts again; one that failed, LOG_ATTEMPTS times."""
        reader = self.readers.get(job.job_id)
        if reader is not None:
            if not reader.done():
                return
            if reader.exception() is not None:
                tries = self.log_failures[job.job_id] = self.log_failures.get(job.job_id, 0) + 1
                log.warning("job %s: following its log failed: %s", job.job_id, reader.exception())
                if tries >= LOG_ATTEMPTS:
                    return
        self._read_log(job, follow=True)

    def _read_log(self, job: JobRecord, *, follow: bool) -> None:
        if job.job_id not in self.logs:
            spec = state.get_spec(self.db, job.submission)[0]
            self.logs[job.job_id] = LogReader(job, append=spec.get("open_mode") == "append")
        reader = self.logs[job.job_id].rewind()
        sky_id = _ref(job)["sky_job_id"]
        pool = self.tails if follow else self.pool
        future = pool.submit(_tail, sky_id, follow, reader)
        future.add_done_callback(lambda _: _nudge_agent())
        self.readers[job.job_id] = future

    # --- lanes (lanes.py) ----------------------------------------------------------------------

    def _follow_lane(self, token: str, members: list[JobRecord], rec: dict) -> None:
        """A lane SkyPilot lists: its elements learn its id (an agent that restarted never
        saw the launch answer); its log is followed while it runs and read whole once more
        after it ended. _lane_progress moves the elements' rows."""
        for job in members:
            if _ref(job).get("sky_job_id") is None:
                job.executor_ref = dict(_ref(job), sky_job_id=rec["job_id"])
                state.update_job(self.db, job.job_id, executor_ref=job.executor_ref)
        if token not in self.lane_recs and token not in self.lane_cuts:
            self._restore_cut(token)
        self.lane_recs[token] = rec
        reader = self.lane_reads.get(token)
        if reader is not None and not reader.done():
            return
        if rec["status"] in skysync.FINAL:
            tries = self.lane_ends.setdefault(token, 0)
            last = reader is None or tries == 0 or reader.exception() is not None
            if rec.get("start_at") and last and tries < LOG_ATTEMPTS:
                self.lane_ends[token] += 1
                self._read_lane(token, members, follow=False)
        elif rec["status"] not in skysync.QUEUED_THERE:
            if reader is not None and reader.exception() is not None:
                log.warning("lane %s: following its log failed: %s", token, reader.exception())
            self._read_lane(token, members, follow=True)

    def _read_lane(self, token: str, members: list[JobRecord], *, follow: bool) -> None:
        if token not in self.lane_logs:
            spec = state.get_spec(self.db, members[0].submission)[0]
            append = spec.get("open_mode") == "append"
            self.lane_logs[token] = lanes.LaneReader(
                {_ref(j)["lane"]: LogReader(j, append) for j in members}, _nudge_agent
            )
        reader = self.lane_logs[token].rewind()
        future = (self.tails if follow else self.pool).submit(
            _tail, self.lane_recs[token]["job_id"], follow, reader
        )
        future.add_done_callback(lambda _: _nudge_agent())
        self.lane_reads[token] = future

    def _restore_cut(self, token: str) -> None:
        """A lane an earlier agent cut (scancel of an element of it, sent): cut again, at the
        element that had started, else once the element the lane runs ends; so an agent that
        restarted neither runs a cancelled element nor ends the lane's others with it."""
        rows = self.db.execute(
            "SELECT start_time, executor_ref FROM jobs WHERE kill_sent IS NOT NULL "
            "AND (kill_action IS NOT NULL OR state = 'CANCELLED') "
            "AND json_extract(executor_ref, '$.token') = ?",
            (token,),
        ).fetchall()
        if rows:
            started = [json.loads(ref)["lane"] for start, ref in rows if start is not None]
            self.lane_cuts[token] = min(started) if started else None
            log.info("lane %s: cut by an earlier agent, at %s", token, self.lane_cuts[token])

    def _cut(self, token: str, sky_id: int, *, at_once: bool) -> None:
        """scancel of a lane's element: cancel the lane now (its element runs), or once the
        element it runs ends; the elements it has not started then go out again."""
        if token in self.lane_cuts and self.lane_cuts[token] is not None:
            return  # cancelled already
        reader = self.lane_logs.get(token)
        if at_once or reader is None or not reader.running():
            self.lane_cuts[token] = max(reader.started, default=-1) if reader else -1
            self._cancel(sky_id)
        else:
            self.lane_cuts[token] = None

    def _lane_progress(self, now: float) -> bool:
        """Move the rows of lane elements as their lanes' logs say (_lane_elements)."""
        changed = False
        by_token: dict[str, list[JobRecord]] = {}
        for job in self._active():
            if "lane" in _ref(job):
                by_token.setdefault(_ref(job)["token"], []).append(job)
        for token in set(self.lane_recs) - set(by_token):  # every element ended
            for done in (self.lane_recs, self.lane_logs, self.lane_reads, self.lane_ends):
                done.pop(token, None)  # type: ignore[attr-defined]
            self.lane_cuts.pop(token, None)
        for token, members in by_token.items():
            if token in self.lane_recs:
                changed |= self._lane_elements(token, members, now)
        return changed

    def _lane_elements(self, token: str, members: list[JobRecord], now: float) -> bool:
        """RUNNING at its start marker, ended with its RESULT; once the lane has ended and
        its log is read, an element with no RESULT ends as the lane did, or pends again when
        scancel cut the lane before it (a pending cut takes effect when none runs)."""
        rec = self.lane_recs[token]
        reader = self.lane_logs.get(token)
        if reader is not None:  # an element that ended here (scancel) writes nothing more
            for seq in set(reader.members) - {_ref(j)["lane"] for j in members}:
                del reader.members[seq]
        started = dict(reader.started) if reader else {}
        if token in self.lane_cuts and self.lane_cuts[token] is None:
            # an element runs while the log says so, or while its row does until its RESULT
            # is read (an agent that restarted has not read the log yet)
            logged = reader.members if reader else {}
            busy = {_ref(j)["lane"] for j in members if j.state != "PENDING"}
            busy = {seq for seq in busy if seq not in logged or logged[seq].result is None}
            if not (reader and reader.running()) and not busy:
                self.lane_cuts[token] = max(started, default=-1)
                self._cancel(rec["job_id"])
        cut = self.lane_cuts.get(token)
        read = self.lane_reads.get(token)
        ended = rec["status"] in skysync.FINAL and token in self.lane_ends
        ended = ended and (read is None or read.done())
        changed = False
        for job in members:
            seq = _ref(job)["lane"]
            if cut is not None and seq > cut:  # not run, or started after the cut
                if ended:
                    changed |= self._pend_again(job.job_id, reason="None", nodelist=None)
                continue
            result = reader.members[seq].result if reader else None
            if result is not None or ended:
                if result is not None:  # the element's own RESULT
                    lane = dict(rec, status="SUCCEEDED", end_at=None)
                elif rec["status"] == "SUCCEEDED":
                    lane = dict(rec, status="FAILED", failure_reason="no RESULT from the node")
                else:
                    lane = rec
                # an element whose start and end came in one read was never RUNNING here
                nodes = {} if job.nodelist else skysync.node_fields(rec)
                fields = finish(
                    self.db,
                    job.job_id,
                    skysync.result_of(lane, result),
                    now,
                    ACTIVE_STATES,
                    **nodes,
                )
                if fields is not None:
                    changed = True
                    log.info("job %s: %s (lane %s)", job.job_id, fields["state"], rec["job_id"])
            elif seq in started and job.state == "PENDING":
                running = dict(rec, status="RUNNING", start_at=started[seq])
                fields = skysync.active_fields(running, None, now)
                changed |= state.update_job(
                    self.db, job.job_id, where_state=ACTIVE_STATES, **fields
                )
        return changed

    def _pend_again(self, job_id: int, **fields) -> bool:
        """A job handed to SkyPilot that is to go out again: pending, with no ref."""
        return state.update_job(
            self.db,
            job_id,
            where_state=ACTIVE_STATES,
            state="PENDING",
            executor_ref=None,
            start_time=None,
            **fields,
        )

    def _finish(self, now: float) -> bool:
        """Record the end of jobs SkyPilot finished, once their log (if any) is read."""
        changed = False
        for job_id, rec in list(self.ended.items()):
            marker = None
            reader = self.readers.get(job_id)
            if reader is not None:
                if not reader.done():
                    continue
                try:
                    marker = reader.result().result
                except Exception as exc:
                    tries = self.log_failures[job_id] = self.log_failures.get(job_id, 0) + 1
                    log.warning(
                        "job %s: reading its log failed (%s/%s): %s",
                        job_id,
                        tries,
                        LOG_ATTEMPTS,
                        exc,
                    )
                    if tries < LOG_ATTEMPTS:
                        del self.readers[job_id]  # the next queue answer starts a new one
                        del self.ended[job_id]
                        continue
            del self.ended[job_id]
            self.readers.pop(job_id, None)
            self.logs.pop(job_id, None)
            self.log_failures.pop(job_id, None)
            fields = finish(self.db, job_id, skysync.result_of(rec, marker), now, ACTIVE_STATES)
            if fields is not None:
                changed = True
                log.info("job %s: %s (SkyPilot %s)", job_id, fields["state"], rec["status"])
        return changed

    def _apply_foreign(self, records: list[dict], now: float) -> bool:
        """SkyPilot jobs slurmsky did not submit: rows FOREIGN_BASE + id, kept in step."""
        changed = False
        for rec in records:
            job_id = skysync.FOREIGN_BASE + rec["job_id"]
            job = state.get_job(self.db, job_id)
            if job is None:
                row = skysync.foreign_row(rec, self.user_hash)
                state.add_submission(self.db, job_id, {}, None, [row])
                job = state.get_job(self.db, job_id)
                assert job is not None  # just added
                changed = True
            if job.finished:
                continue
            if rec["status"] in skysync.FINAL:
                self.ended[job_id] = rec
            elif not job.kill_action:
                fields = skysync.active_fields(rec, job, now)
                fields = {k: v for k, v in fields.items() if getattr(job, k) != v}
                if fields:
                    changed |= state.update_job(
                        self.db, job_id, where_state=ACTIVE_STATES, **fields
                    )
        return changed


# --- SkyPilot calls (pool threads) ---------------------------------------------------------


def _nudge_agent() -> None:
    """Wake the agent's select() (a no-op when it is not listening)."""
    try:
        fd = os.open(os.path.join(state.home(), "agent.fifo"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno not in (errno.ENXIO, errno.ENOENT):
            raise
        return
    try:
        os.write(fd, b"!")
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def endpoint() -> str:
    """SkyPilot's API server URL, without credentials (it names the server in reasons)."""
    from sky.server import common

    parts = urllib.parse.urlsplit(common.get_server_url())
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _check_server() -> None:
    """Raise Unreachable (naming the endpoint) unless the API server answers /api/health."""
    url = endpoint()
    if server.health(url) is None:  # {} when it answered behind auth
        raise Unreachable(f"SkyPilotApiServerUnreachable:{url}")


def _launch(task: dict, num_jobs: int | None) -> list[int]:
    _check_server()
    import sky

    try:
        request = sky.jobs.launch(
            sky.Task.from_yaml_config(copy.deepcopy(task)),
            name=task.get("name"),
            pool=task["_metadata"]["slurmsky"].get("pool"),
            num_jobs=num_jobs,
        )
        ids, _handle = sky.get(request)  # the handle's repr raises in consolidation mode
    except Exception as exc:
        _check_server()  # the server went away meanwhile: say so, not SkyPilot's side effect
        if server.connection_error(exc):  # it did not answer for a while: pend, launch again
            raise Unreachable(f"SkyPilotApiServerUnreachable:{endpoint()}") from exc
        raise
    assert ids is not None  # None only for a dry run
    return sorted(ids)


def _fetch(since: float | None, watched: list[int]) -> tuple[list[dict], str | None]:
    """Active jobs (all users), jobs submitted from `since` on whatever their state (None:
    every finished job: an agent's first query, for adoption and sacct history), and the
    watched ones that finished meanwhile."""
    _check_server()
    import sky
    from sky.utils import common_utils

    def query(**kw) -> list[dict]:
        try:
            records = sky.get(
                sky.jobs.queue_v2(refresh=False, all_users=True, fields=QUEUE_FIELDS, **kw)
            )[0]
        except sky.exceptions.ClusterNotUpError:  # no controller: no jobs
            return []
        return [
            dict({f: rec.get(f) for f in QUEUE_FIELDS}, status=rec["status"].value)
            for rec in records
        ]

    try:
        if since is None:
            records = query(skip_finished=False)
        else:
            records = query(skip_finished=True)
            seen = {(r["job_id"], r["task_id"]) for r in records}
            records += [
                r for r in query(submitted_after=since) if (r["job_id"], r["task_id"]) not in seen
            ]
        missing = sorted(set(watched) - {r["job_id"] for r in records})
        if missing:
            records += query(job_ids=missing)
    except Exception:
        _check_server()  # the server went away meanwhile: say so, not SkyPilot's side effect
        raise
    return records, common_utils.get_user_hash()


def _pool_status(names: list[str]) -> list[dict]:
    _check_server()
    return pools.query_status(names)


def _cancel(sky_id: int) -> str:
    """sky.jobs.cancel never raises for unknown or finished ids: its streamed text says."""
    import io

    import sky

    out = io.StringIO()
    sky.stream_and_get(sky.jobs.cancel(job_ids=[sky_id]), output_stream=out)
    return f"SkyPilot job {sky_id}: " + " ".join(skysync.clean(out.getvalue()).split())


def _log_cancel(future: Future) -> None:
    try:
        log.info("%s", future.result())
    except Exception as exc:
        log.warning("cancel failed: %s", exc)


def _tail(sky_id: int, follow: bool, reader: MarkerStream) -> MarkerStream:
    import sky

    # A MarkerStream is a file-like object (write, flush), which is all tail_logs uses of its
    # output_stream; SkyPilot annotates it as io.TextIOBase.
    sky.jobs.tail_logs(job_id=sky_id, follow=follow, output_stream=reader)  # type: ignore[call-overload]
    reader.write("\n")
    return reader
