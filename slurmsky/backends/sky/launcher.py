"""A released job handed to SkyPilot: the launches, and their answers recorded.

What is launched is the task stored with the submission (its plan), with `run` made for this
launch from the plan's runtime spec: a dense array without a throttle is ONE launch with
num_jobs=N (SKYPILOT_JOB_RANK picks the element: the spec lists every index and id); an array
in lanes (the executor decides: room.py), on Slurm infra ONE launch of K lanes (num_jobs=K)
that claim its elements, elsewhere a launch per lane that runs its dealt share in turn
(lanes.py); anything else one launch per job or element. The job's step secret travels in
the task's `secrets`, never in `envs`; the Slurm ids, this state directory's instance id and
a launch token go in `_metadata`, so a job is found again after an agent restart. Each launch
goes to the server its job's sbatch named (the ref's `server`; the URL, which may hold
credentials, stays out of the task).

Launches run on daemon threads, THREADS at once (calls.Calls); `collect` records the SkyPilot ids
of those that returned, pends a job again when its API server did not answer (naming it), and
fails it when SkyPilot refused its task. A launch whose request has not reached its server
REACH seconds after it began (its workdir zipped and uploaded: SkyPilot's zip once read a FIFO
for ever) is abandoned: its jobs go out again, and what it launches if it ever returns is an
orphan the queue's mirror cancels. Until SkyPilot lists it, a job pends `SkyPilotLaunching`
(sync.LAUNCHING), then `Resources` while SkyPilot waits for nodes.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future

from slurmsky.backends.sky import lanes, price
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.calls import Calls
from slurmsky.backends.sky.client import SkyClient, Unreachable
from slurmsky.backends.sky.group import group_tasks
from slurmsky.backends.sky.output import NODE_ERR, NODE_OUT, sky_run
from slurmsky.backends.sky.server import Server
from slurmsky.backends.sky.task import cluster_workdir, run_command, with_runtime
from slurmsky.backends.sky.watcher import Background
from slurmsky.core import state, transitions
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES
from slurmsky.runtime.spec import SECRET_VAR

log = logging.getLogger("slurmsky.core.daemon")

THREADS = 4  # launches at once
REACH = 300  # s a launch may take to reach its server before it is abandoned


def lanes_of(task: dict) -> tuple[int, bool] | None:
    """The most lanes the stored task's array runs in at once, and whether always (the
    partition's `lanes: N`) or only when it has more elements than free nodes (None: one
    managed job per element)."""
    meta = task.get("_metadata", {}).get("slurmsky", {})
    # a task stored before `lanes_by` came from `lanes: N`
    return (meta["lanes"], meta.get("lanes_by", "lanes") == "lanes") if meta.get("lanes") else None


def dense(spec: dict) -> bool:
    """An array that goes out as one launch of num_jobs elements (no throttle, one range)."""
    array = spec.get("array")
    if not array or array.get("throttle"):
        return False
    return "," not in array["ranges"] and ":" not in array["ranges"]


def launch_task(
    task: dict,
    spec: dict,
    job: JobRecord,
    meta: dict,
    *,
    whole: bool,
    lane: list[JobRecord] | None = None,
    claims: int | None = None,
    emitter: bool = True,
) -> dict:
    """The stored task with `run` for one launch (of the array's elements in `lane`, one
    after another, when given: each of the `claims` lanes of a release claiming from all of
    them, when given; of every element with `whole`), `meta` in its metadata, and a new step
    secret. Without `emitter`, its nodes write no output to its log (a job group's other
    components: component 0's runs the batch script)."""
    task = copy.deepcopy(task)
    separate = spec.get("error") not in (None, spec.get("output"))
    # The node's output files are each run's own (the agent appends them here for
    # --open-mode=append): a recovered run on Slurm infra, whose shared home may still
    # hold the lost run's, must not send that run's output home again
    node = dict(spec, environment=None, output=NODE_OUT, error=NODE_ERR if separate else None)
    node["open_mode"] = "truncate"
    node["restart_count"] = job.restarts  # scontrol requeue: the runs before this launch
    node["count_runs"] = True  # and SkyPilot's recoveries of it (runtime.spec.on_node)
    meta = dict(task.get("_metadata", {}).get("slurmsky", {}), **meta)
    meta.pop("server", None)  # its URL may hold credentials: the agent's, not SkyPilot's
    workdir = cluster_workdir(task, spec)
    if lane:
        node["array"] = dict(spec["array"], lane=[[m.array_task_id, m.job_id] for m in lane])
        meta["lane"] = [m.job_id for m in lane]
        if claims:
            meta["claims"] = claims
            run = lanes.claim_run(node, workdir, len(lane), claims, meta["token"])
        else:
            run = lanes.lane_run(node, workdir, len(lane))
        task["run"] = with_runtime(task, run)
    else:
        if spec.get("array") and not whole:
            node["array"] = dict(spec["array"], task_id=job.array_task_id, task_job_id=job.job_id)
            meta.update(job_id=job.job_id, array_task_id=job.array_task_id)
        run = sky_run(node, workdir) if emitter else run_command(node, workdir)
        task["run"] = with_runtime(task, run)
    task["_metadata"] = {"slurmsky": meta}
    task["secrets"] = {SECRET_VAR: secrets.token_hex(32)}
    return task


def launch_group(task: dict, spec: dict, job: JobRecord, meta: dict) -> dict:
    """A heterogeneous job's stored job group for its launch: each component's task as
    launch_task makes it (the node runtime as that component: spec het_component), all with
    one step secret (one step channel over every component's nodes), `meta` in each."""
    secret = {SECRET_VAR: secrets.token_hex(32)}
    tasks = []
    for offset, comp in enumerate(group_tasks(task) or ()):
        one = launch_task(
            comp, dict(spec, het_component=offset), job, meta, whole=False, emitter=offset == 0
        )
        tasks.append(dict(one, secrets=secret))
    group = {k: copy.deepcopy(v) for k, v in task.items() if k != "job_group"}
    own = dict(group.get("_metadata", {}).get("slurmsky", {}), **meta)
    own.pop("server", None)  # its URL may hold credentials
    return dict(group, _metadata={"slurmsky": own}, job_group=tasks)


class Launcher:
    def __init__(
        self,
        client: SkyClient,
        db,
        instance: str,
        background: Background,
        unreachable: Callable[[str, str], None],
        cancel: Callable[[Server, int], None],
    ):
        self.client, self.db, self.instance = client, db, instance
        self.background, self.unreachable, self.cancel = background, unreachable, cancel
        self.pending: dict[str, Future] = {}  # launch token -> future of the SkyPilot ids
        self.where: dict[str, Server] = {}  # launch token -> the server it went to
        self.threads = Calls(THREADS)
        self.begun: dict[str, float] = {}  # launch token -> when its call began
        self.reached: set[str] = set()  # launch tokens whose request the server has
        self.groups: dict[int, str] = {}  # array submission -> token of its num_jobs launch

    def launch(
        self,
        job: JobRecord,
        spec: dict,
        task: dict,
        ref: dict,
        lanes: tuple[int, int, bool] | None,
        whole: bool,
        where: Server,
    ) -> dict:
        """Hand the job to SkyPilot on `where` (in the background); its ref, with its
        launch's token (and its rank in a num_jobs launch, or its seq in a lane or release).
        `lanes`: the array goes out in lanes, (how many to deal its waiting elements into,
        how many go out now, whether they claim: infra.shares_base); `whole`: the array fits
        the free nodes (one num_jobs launch may take it)."""
        token = ref["token"]
        if lanes is not None:
            return self._lanes(job, spec, task, ref, *lanes, where)
        if group_tasks(task):  # a heterogeneous job: one job group
            meta = {"instance": self.instance, "token": token}
            self._submit(where, token, launch_group(task, spec, job, meta), None, spec)
            return ref
        group = self._group(job, spec, task, token, whole, where) if dense(spec) else None
        if group is not None:
            return dict(ref, token=group, rank=job.array_rank)
        self._submit(where, token, self._task(task, spec, job, token, whole=False), None, spec)
        return ref

    def _task(self, task: dict, spec: dict, job: JobRecord, token: str, **kw) -> dict:
        return launch_task(task, spec, job, {"instance": self.instance, "token": token}, **kw)

    def _group(
        self, job: JobRecord, spec: dict, task: dict, token: str, whole: bool, where: Server
    ) -> str | None:
        """The token of the array's one num_jobs launch: this element's sibling's, or a new
        launch when the array fits (`whole`) and every other element is still pending and
        free; None: the element goes out on its own."""
        if job.submission in self.groups:
            return self.groups[job.submission]
        siblings = [
            s for s in state.find_jobs(self.db, ids=[job.array_job_id]) if s.job_id != job.job_id
        ]
        for s in siblings:
            if s.executor_ref and s.executor_ref.get("rank") is not None:
                self.groups[job.submission] = s.executor_ref["token"]
                return self.groups[job.submission]
        if whole and all(
            s.state == "PENDING" and not s.held and not s.executor_ref for s in siblings
        ):
            self.groups[job.submission] = token
            launched = self._task(task, spec, job, token, whole=True)
            self._submit(where, token, launched, spec["array"]["count"], spec)
            return token
        return None

    def _lanes(
        self,
        job: JobRecord,
        spec: dict,
        task: dict,
        ref: dict,
        dealt: int,
        now: int,
        claims: bool,
        where: Server,
    ) -> dict:
        """Launch the lanes `job` goes out in, with the array's waiting elements: a release
        (`claims`), else dealt lanes (lanes.plan), each element's ref naming its lane's
        token and its seq in it. Returns `job`'s ref."""
        if claims:
            return self._release(job, spec, task, ref, dealt, now, where)
        for members in lanes.plan(self.db, job, spec, dealt, now):
            token = uuid.uuid4().hex
            ref = self._hand_out(job, ref, members, token=token, server=where.name)
            launched = self._task(task, spec, job, token, whole=False, lane=members)
            self._submit(where, token, launched, None, spec)
        return ref

    def _hand_out(self, job: JobRecord, ref: dict, members: list, **fields) -> dict:
        """Each member's ref (`fields`, its seq as `lane`, no SkyPilot id yet): stored for the
        others, which wait (Resources), merged into `job`'s `ref`, which is returned."""
        for seq, member in enumerate(members):
            member_ref = dict(fields, sky_job_id=None, lane=seq)
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
        return ref

    def _release(
        self, job: JobRecord, spec: dict, task: dict, ref: dict, dealt: int, now: int, where: Server
    ) -> dict:
        """Launch the release `job` goes out in (lanes.release): ONE launch of its K lanes
        (num_jobs=K). Each element's ref names the release's token, the element's seq in
        the release and K (`lanes`); then `lane_ids`, the lanes' SkyPilot ids, once the
        launch answered, and `sky_job_id`, the lane that runs it, once one started it.
        Returns `job`'s ref."""
        members, count = lanes.release(self.db, job, spec, dealt, now)
        token = uuid.uuid4().hex
        ref = self._hand_out(job, ref, members, token=token, lanes=count, server=where.name)
        launched = self._task(task, spec, job, token, whole=False, lane=members, claims=count)
        self._submit(where, token, launched, count, spec)
        return ref

    def _submit(
        self, where: Server, token: str, task: dict, num_jobs: int | None, spec: dict
    ) -> None:
        self.where[token] = where
        self.pending[token] = self.background(
            self._launch, token, where, task, num_jobs, spec, pool=self.threads
        )

    def _launch(
        self, token: str, where: Server, task: dict, num_jobs: int | None, spec: dict
    ) -> tuple[list[int], dict | None]:
        """The launch's SkyPilot ids, and then what its jobs should cost (price.py)."""
        self.begun[token] = time.time()
        ids = self.client.launch(where, task, num_jobs, lambda _: self._reached(token))
        return ids, price.estimate(task, spec)[1]

    def _reached(self, token: str) -> None:
        if token in self.pending:  # not abandoned meanwhile: nothing kept of those
            self.reached.add(token)

    def _forget(self, token: str) -> Server:
        del self.pending[token]
        self.begun.pop(token, None)
        self.reached.discard(token)
        return self.where.pop(token)

    def abandon(self, now: float) -> bool:
        """Launches that have not reached their server REACH s after they began: their jobs
        go out again (a fresh token, on fresh threads)."""
        stuck = [
            token
            for token, future in self.pending.items()
            if not future.done()
            and token not in self.reached
            and now - self.begun.get(token, now) > REACH
        ]
        changed = False
        for token in stuck:
            where = self._forget(token)
            log.warning(
                "launch %s has not reached %s in %d s: abandoned, its jobs go out again",
                token,
                where.name,
                REACH,
            )
            self.groups = {s: t for s, t in self.groups.items() if t != token}
            for job_id, _ in state.refs_with_token(self.db, "sky", token):
                changed |= transitions.pend_again(self.db, job_id, reason=skysync.LAUNCHING)
        if stuck:
            self.threads.renew()
        return changed

    def collect(self, now: float) -> bool:
        """Record the SkyPilot ids of launches that returned (on cancelled jobs too, whose
        SkyPilot job is then cancelled); a failed launch pends again (API server down) or
        fails the job; a launch stuck on its way to the server is abandoned."""
        changed = self.abandon(now)
        for token, future in list(self.pending.items()):
            if not future.done():
                continue
            where = self._forget(token)
            rows = state.refs_with_token(self.db, "sky", token)
            try:
                ids, estimate = future.result()
            except Unreachable as exc:
                self.unreachable(where.name, str(exc))
                for job_id, _ in rows:
                    changed |= transitions.pend_again(self.db, job_id, reason=str(exc))
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
            if any("lanes" in ref for _, ref in rows):
                changed |= self._released(where, rows, ids, estimate)
                continue
            for job_id, ref in rows:
                rank = ref.get("rank") or 0
                if rank < len(ids):
                    ref["sky_job_id"] = ids[rank]
                    if estimate:
                        ref["estimate"] = estimate
                    changed |= state.update_job(self.db, job_id, executor_ref=ref)
                    log.info("job %s: SkyPilot managed job %s", job_id, ids[rank])
            known = {ref.get("rank") or 0 for _, ref in rows}
            for rank, sky_id in enumerate(ids):  # elements cancelled before their release
                if rank not in known:
                    self.cancel(where, sky_id)
        return changed

    def _released(
        self, where: Server, rows: list[tuple[int, dict]], ids: list[int], estimate: dict | None
    ) -> bool:
        """A release's launch answered: its elements learn its lanes' ids; when none of them
        is active any more (all cancelled meanwhile), its lanes are cancelled."""
        changed = False
        for job_id, ref in rows:
            ref = dict(ref, lane_ids=ids, **({"estimate": estimate} if estimate else {}))
            changed |= state.update_job(self.db, job_id, executor_ref=ref)
        log.info("release %s: SkyPilot managed jobs %s", rows[0][1]["token"], ids)
        if not state.find_jobs(self.db, ids=[job_id for job_id, _ in rows], states=ACTIVE_STATES):
            for sky_id in ids:
                self.cancel(where, sky_id)
        return changed
