"""The state machine: one pass releases pending jobs and records the ends of started ones.

Only the agent runs passes. Each transition is a compare-and-set on the job's state, so a
command that cancels or holds a job at the same moment wins or loses cleanly, never halfway.

    PENDING --(held, dependency, begin time, array throttle, resources)--> stays, with a reason
    PENDING --> CONFIGURING (ref stored) --> RUNNING (processes started)
    RUNNING --(scancel / requeue: kill_action)--> COMPLETING --> CANCELLED / PENDING again
    RUNNING --> COMPLETED | FAILED | TIMEOUT | OUT_OF_MEMORY | NODE_FAIL (the runtime's RESULT)
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING, cast

from slurmsky import backends
from slurmsky.backends import Feature
from slurmsky.core import deps, fairshare, state
from slurmsky.core.state import JobRecord, team
from slurmsky.core.states import STARTED_STATES
from slurmsky.core.transitions import finish, requeued_fields
from slurmsky.errors import SlurmError
from slurmsky.runtime import hostlist

if TYPE_CHECKING:
    from collections.abc import Callable

    from slurmsky.backends import Executor, QueueSyncExecutor
    from slurmsky.core.state.engine import Connection

log = logging.getLogger("slurmsky.core.daemon")

KILL_GRACE = 15  # s beyond KillWait before the agent ends a job the runtime did not end
# Slurm tries to start a job when it is submitted; a job that attempt could not place keeps
# the attempt's reason (PartitionConfig: more nodes than the partition has) until the main
# scheduler's next pass, about a second later on the peer (0.8-1.7 s measured), which finds
# its own reason (PartitionNodeLimit, or Dependency, ...).
FIRST_PASS = 1.0
PENDING_CHUNK = 16  # pending jobs a pass reads first (then 4x as many at a time)
# On a team's state another member's agent frees the room (its job's end wakes no agent but
# its own): a job waiting for room is looked at again this often.
TEAM_RECHECK = 1.0
# The reasons of another member's pending job that its agent would start if it had room: a
# higher-priority one keeps that room from this agent's jobs (multifactor, on a team).
ROOM_REASONS = ("None", "Priority", "Resources")
EVERY = 2**62  # a pass on a team reads all the pending jobs at once, to order them


class Unavailable:
    """The executor of a backend that cannot run here (its executor could not be made: a
    missing dependency): whatever the scheduler asks of it fails with that error, so each
    of its jobs ends FAILED (JobLaunchFailure) at once instead of waiting for ever. Its
    queue is not synced (its started jobs stay as they are); the executor is made again
    after 1, 2, 4 ... RETRY_MAX s (`before`: the Unavailable it follows)."""

    RETRY_MAX = 30.0

    def __init__(self, name: str, exc: Exception, before: Unavailable | None = None):
        self.name = name
        self.error = SlurmError(f"the {name} backend cannot run jobs: {exc}")
        self.delay: float = min(2 * before.delay, self.RETRY_MAX) if before else 1.0
        self.retry_at = time.time() + self.delay

    def __getattr__(self, attr: str):
        def fail(*args, **kwargs):
            raise self.error

        return fail


def launch_failure(job: JobRecord, exc: Exception, now: float) -> dict:
    """The columns of a job its executor could not place, prepare or launch: FAILED with
    JobLaunchFailure (Slurm's reason and signal 53), the error kept in its result. Logged
    once, with its traceback (a SlurmError's words suffice): the job is not tried again, and
    the rest of the queue runs on."""
    if isinstance(exc, SlurmError):
        log.error("job %s: launch failed: %s", job.job_id, exc)
    else:
        log.error("job %s: launch failed", job.job_id, exc_info=exc)
    return dict(
        state="FAILED",
        reason="JobLaunchFailure",
        end_time=now,
        exit_code=0,
        exit_signal=53,
        result={"error": str(exc) or type(exc).__name__},
    )


def _per_element(record: JobRecord) -> bool:
    """Whether the elements of a pending array wait each on its own (a dependency per
    element, aftercorr, or on its siblings, singleton): then each becomes a job of its own."""
    spec = (record.dependency_spec or "").lower()
    return "aftercorr" in spec or "singleton" in spec


class Scheduler:
    def __init__(
        self,
        conn: Connection,
        backend: str = "local",
        priority: fairshare.Settings | None = None,
    ):
        self.conn = conn
        self.backend = backend  # the configured one: synced even with no job of its own
        self.executors: dict[str, Executor] = {}
        self._spec: tuple[int, dict] | None = None  # the last submission's spec (arrays reuse it)
        # What changes the state but this agent's own writes to pending jobs: another
        # connection's commit (PRAGMA data_version), a job this agent makes pending again, a
        # synced executor's changes. Counted, for what the passes remember between them.
        self._generation = 0
        self._data_version: int | None = None
        self._executors: tuple[int, set] | None = None  # (generation, active jobs' executors)
        self._watch_failed: set[int] = set()  # jobs whose watch raised (logged once each)
        # Set by the agent (`slurmsky agent stop`): a pass asked to stop ends between units
        # of work (a job's end, a chunk read, a start), each recorded whole or not begun.
        self.stopping: Callable[[], bool] = lambda: False
        # On a team's state (state/team.py): the member whose jobs this agent runs (every
        # member's started jobs count for the room); None: one person's state, every job.
        self.member: str | None = None
        # priority/multifactor's settings: on a team's state the pending jobs of every member
        # go in its order (None: priority/basic, submission order); its period's factors.
        self.priority = priority
        self._factors: fairshare.Factors | None = None

    def executor(self, name: str) -> Executor:
        found = self.executors.get(name)
        if isinstance(found, Unavailable) and time.time() < found.retry_at:
            return found  # type: ignore[return-value]
        if found is None or isinstance(found, Unavailable):
            try:
                self.executors[name] = backends.get(name).executor()
            except Exception as exc:  # a broken install: said once, its jobs fail (no hang)
                now_unavailable = Unavailable(name, exc, found)
                if found is None or str(found.error) != str(now_unavailable.error):
                    log.error("%s", now_unavailable.error)
                self.executors[name] = now_unavailable  # type: ignore[assignment]
            else:
                if found is not None:
                    log.info("the %s backend can run jobs again", name)
        return self.executors[name]

    def run_pass(self, now: float) -> tuple[bool, float | None]:
        """One pass over the active jobs: (whether anything changed, when to look again)."""
        self.member = team.login() if team.is_team(self.conn, fresh=True) else None
        self._deliver_signals()
        changed = False
        wake: list[float] = []
        version = self.conn.dialect.change_counter(self.conn)
        if version != self._data_version:
            self._data_version = version
            self._generation += 1
        if self._sync(now, wake):
            changed = True
            self._generation += 1
        started = state.started_jobs(self.conn)
        for job in started:
            if self.stopping():
                return changed, None
            if not self._synced(job.executor) and self._ours(job):
                try:
                    changed |= self._watch(job, now, wake)
                except Exception:  # looked at again next pass; the other jobs go on
                    if job.job_id not in self._watch_failed:
                        log.exception("job %s: watching it failed", job.job_id)
                    self._watch_failed.add(job.job_id)
                    wake.append(now + 1)
        if changed:
            started = state.started_jobs(self.conn)
        changed |= self._release(started, now, wake)
        return changed, (min(wake) if wake else None)

    # --- started jobs ------------------------------------------------------------------------

    def _ours(self, job: JobRecord) -> bool:
        """Whether this agent runs the job: on a team's state, its member's only."""
        return self.member is None or job.user == self.member

    def _synced(self, name: str) -> bool:
        """Whether the backend follows an outside queue and its executor moves its started
        jobs itself in sync(); the scheduler then only releases them."""
        return backends.get(name).supports(Feature.QUEUE_SYNC)

    def _sync(self, now: float, wake: list[float]) -> bool:
        changed = False
        if self._executors is None or self._executors[0] != self._generation:
            # only a synced executor's own sync, or a command, changes whether it has jobs
            self._executors = (self._generation, set(state.active_executors(self.conn)))
        for name in sorted(self._executors[1] | {self.backend}):
            if self._synced(name):
                synced = cast("QueueSyncExecutor", self.executor(name))
                if isinstance(synced, Unavailable):  # said once; its jobs fail at launch
                    continue
                synced.member = self.member  # a team's: it follows its member's jobs alone
                changed |= synced.sync(self.conn, now, wake)
        return changed

    def _watch(self, job: JobRecord, now: float, wake: list[float]) -> bool:
        ex = self.executor(job.executor)
        if job.executor_ref and not job.executor_ref.get("pids"):
            if not self._adopt(job, ex, now):
                return True
        if job.kill_action and job.kill_sent is None:
            log.info("job %s: %s", job.job_id, job.kill_action)
            ex.cancel(job)
            state.update_job(self.conn, job.job_id, kill_sent=now)
            job.kill_sent = now
        result = ex.poll(job)
        if result is None:
            if job.kill_sent is not None:
                deadline = job.kill_sent + self._kill_wait(job) + KILL_GRACE
                if now < deadline:
                    wake.append(deadline)
                    return False
                log.warning("job %s: did not end after its cancel; killing it", job.job_id)
                result = {"state": "CANCELLED", "end": now}
            else:
                interval = ex.poll_interval(job)
                if interval is not None:
                    wake.append(now + interval)
                return False
        ex.cleanup(job)
        fields = finish(self.conn, job.job_id, result, now)
        if fields is None:
            return False
        if fields["state"] == "PENDING":
            self._generation += 1  # requeued: pending again
        log.info("job %s: %s %s", job.job_id, fields["state"], result)
        return True

    def _adopt(self, job: JobRecord, ex: Executor, now: float) -> bool:
        """A job an earlier agent was starting when it died: found running (True), or never
        started and so pending again, or cancelled if that was asked meanwhile (False)."""
        ref = ex.adopt(job)
        if ref is None:
            self._generation += 1  # pending again (or cancelled)
            log.info("job %s: never started", job.job_id)
            fields: dict
            fields = dict(
                state="PENDING", executor_ref=None, start_time=None, nodelist=None, batch_host=None
            )
            if job.kill_action == "cancel":
                fields = dict(
                    state="CANCELLED", end_time=now, exit_code=0, exit_signal=0, kill_action=None
                )
            elif job.kill_action == "requeue":
                fields = requeued_fields(job, now)
            state.update_job(self.conn, job.job_id, where_state=STARTED_STATES, **fields)
            return False
        log.info("job %s: found running again", job.job_id)
        job.executor_ref = ref
        state.update_job(self.conn, job.job_id, executor_ref=ref)
        state.update_job(self.conn, job.job_id, where_state=("CONFIGURING",), state="RUNNING")
        return True

    def _kill_wait(self, job: JobRecord) -> int:
        return int(self._submission_spec(job.submission).get("kill_wait") or 30)

    # --- pending jobs ------------------------------------------------------------------------

    def _placed(self, job: JobRecord) -> JobRecord:
        """A job as its executor places it: a heterogeneous job's leader on all its
        components' nodes (its spec's top level; its row shows component 0's)."""
        if job.het_job_offset != 0:
            return job
        spec = self._submission_spec(job.submission)
        whole = copy.copy(job)
        whole.__dict__.update(
            num_nodes=spec["num_nodes"],
            num_cpus=sum(spec["cpus_per_node"]),
            cpus_per_node=spec["cpus_per_node"],
            tasks_per_node=spec["tasks_per_node"],
            het_parts=spec.get("het"),  # each component's partition and shape
        )
        return whole

    def _to_place(self, job: JobRecord) -> JobRecord:
        """A pending job as its executor places it (_placed), with the nodes it asked for,
        those it excluded and whether they must be consecutive (-w, -x, --contiguous:
        req_nodes, exc_nodes, contiguous)."""
        placed = self._placed(job)
        asked = self._submission_spec(job.submission).get("requested") or {}
        if asked.get("nodelist") or asked.get("exclude") or asked.get("contiguous"):
            placed = copy.copy(placed)
            placed.__dict__.update(
                req_nodes=asked.get("nodelist"),
                exc_nodes=asked.get("exclude"),
                contiguous=asked.get("contiguous"),
            )
        return placed

    def _factors_at(self, now: float) -> fairshare.Factors | None:
        """This period's fair shares where they order the pending jobs (a team's state)."""
        if self.member is None or self.priority is None:
            return None
        known = self._factors
        if known is None or now - known.at >= (self.priority.calc_period or 0):
            self._factors = fairshare.Factors(self.conn, self.priority, now)
        return self._factors

    def _release(self, started: list[JobRecord], now: float, wake: list[float]) -> bool:
        running = [self._placed(j) for j in started]
        factors = self._factors_at(now)
        connected = team.agents_connected(self.conn) if factors else set()
        ranks: dict[int, int] = {}  # multifactor: each pending job's priority
        absent: list[JobRecord] = []  # others' jobs whose member's agent is not connected
        per_array: dict[int | None, int] = {}  # .get(None) is 0 (no array)
        for j in running:
            if j.array_job_id is not None:
                per_array[j.array_job_id] = per_array.get(j.array_job_id, 0) + 1
        blocked = False  # a job waits for resources: later ones wait behind it (Priority)
        updates: list[tuple[JobRecord, dict]] = []
        # (job, placement, the pending record it is split off or None)
        launches: list[tuple[JobRecord, list[int], JobRecord | None]] = []
        explode: list[JobRecord] = []  # records whose elements wait each on its own

        def consider(job: JobRecord) -> None:
            """Decide one pending job, or as many elements of a pending record as may start."""
            nonlocal blocked
            if job.het_job_offset:  # a component follows its leader
                return
            if not self._ours(job):
                if factors and job.reason in ROOM_REASONS and not job.held:
                    if job.user in connected:
                        blocked = self._keep_room(job, running) or blocked
                    else:
                        absent.append(job)  # it keeps nothing: no agent of its own
                return
            if job.reason == "PartitionConfig" and now < job.submit_time + FIRST_PASS:
                wake.append(job.submit_time + FIRST_PASS)
                return
            if job.array_pending is not None and _per_element(job):
                explode.append(job)
                return
            reason, fields = self._pending_reason(job, now, wake, read)
            if factors:
                fields["priority"] = ranks[job.job_id]
            if reason is None:
                for element in self._elements(job):
                    if (
                        job.array_throttle
                        and per_array.get(job.array_job_id, 0) >= job.array_throttle
                    ):
                        reason = "JobArrayTaskLimit"
                        break
                    try:
                        placed = self._to_place(element)
                        placement = self.executor(job.executor).place(placed, running)
                    except Exception as exc:  # this job's fault: it fails, the queue runs on
                        updates.append((job, launch_failure(job, exc, now)))
                        return
                    if isinstance(placement, str):
                        reason = "Priority" if blocked and placement == "Resources" else placement
                        blocked = blocked or placement == "Resources"
                        if self.member is not None and placement == "Resources":
                            wake.append(now + TEAM_RECHECK)
                        break
                    launches.append((element, placement, job if element is not job else None))
                    element.executor_ref = placed.executor_ref = {"nodes": placement}
                    running.append(placed)
                    if job.array_job_id is not None:
                        per_array[job.array_job_id] = per_array.get(job.array_job_id, 0) + 1
                    reason = "None"
            if reason is not None:
                fields["reason"] = reason
            changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
            if changed:
                updates.append((job, changed))

        # The pending jobs are read a chunk at a time, in one snapshot (dependencies too: what
        # they wait for is read once a pass, `read`).
        read: dict = {}
        nice = False  # a pending job has a --nice (priority/basic)
        self.conn.execute(self.conn.dialect.begin_read)
        try:
            if factors:  # every member's pending jobs, highest priority first
                jobs = state.pending_jobs(self.conn, (), EVERY)
                ranks = {j.job_id: factors.of(j)[0] for j in jobs}
                for job in sorted(jobs, key=lambda j: (-ranks[j.job_id], state.pass_position(j))):
                    consider(job)
            elif nice := state.nice_pending(self.conn):
                # priority/basic's priority less --nice: every pending job, in that order
                jobs = state.pending_jobs(self.conn, (), EVERY)
                jobs.sort(key=lambda j: (j.submission + j.nice, state.pass_position(j)))
                for job in jobs:
                    consider(job)
            after: tuple = ()
            size = PENDING_CHUNK
            while not factors and not nice:
                if self.stopping():
                    return False  # nothing decided is written: the next agent decides again
                chunk = state.pending_jobs(self.conn, after, size)
                for job in chunk:
                    after = state.pass_position(job)
                    consider(job)
                if len(chunk) < size:
                    break
                size = min(size * 4, 1024)
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")
        with state.write(self.conn):
            for job, fields in updates:
                state.update_job(self.conn, job.job_id, where_state=("PENDING",), **fields)
            if absent:
                team.mark_absent(self.conn)
        done = any(f.get("state") for _, f in updates)
        for record in explode:
            if self.stopping():
                return True
            self._explode(record)
            done = True
        for job, placement, source in launches:
            if self.stopping():  # the others stay pending, as they are stored
                return True
            self._launch(job, placement, source)
            done = True
        return done

    def _keep_room(self, job: JobRecord, running: list[JobRecord]) -> bool:
        """Keep the room another member's job would start in (its agent starts it): whether it
        has none (it waits for Resources, as a job of ours would)."""
        try:
            placed = self._to_place(job)
            placement = self.executor(job.executor).place(placed, running)
        except Exception:  # its own agent finds out (its job fails)
            return False
        if isinstance(placement, str):
            return placement == "Resources"
        placed.executor_ref = {"nodes": placement}
        running.append(placed)
        return False

    def _elements(self, job: JobRecord):
        """What may start of a pending job: itself, or a pending record's elements in index
        order (each with the id it will have)."""
        if job.array_pending is None:
            yield job
            return
        from slurmsky.runtime import indexset

        array = self._submission_spec(job.submission)["array"]
        items = indexset.parse(job.array_pending)
        left = indexset.count(items)
        for index in indexset.iterate(items):
            left -= 1
            element = state.pending_element(job, index)
            job_id = state.element_id(array, job.job_id, index, not left)
            assert job_id is not None  # in index order, the highest index is the last
            element.__dict__.update(job_id=job_id)
            yield element

    def _explode(self, record: JobRecord) -> None:
        """Split every element off a pending record whose elements wait each on its own
        (aftercorr, singleton): they are pending jobs of their own from the next pass."""
        from slurmsky.runtime import indexset

        spec = self._submission_spec(record.submission)
        assert record.array_pending is not None
        for index in indexset.iterate(indexset.parse(record.array_pending)):
            state.split_element(self.conn, record.job_id, index, spec)
        self._generation += 1

    def _pending_reason(
        self, job: JobRecord, now: float, wake: list[float], read: dict
    ) -> tuple[str | None, dict]:
        """The reason a pending job must wait (None: it may start) and columns to update
        (`read`: the pass's memo of the jobs dependencies name)."""
        fields: dict = {}
        reason = None
        if job.dependency_spec:
            verdict = deps.evaluate(self.conn, job, now, read)
            fields["dependency"] = verdict.shown
            if verdict.recheck is not None:
                wake.append(verdict.recheck)
            if verdict.status == deps.FAILED:
                reason = "DependencyNeverSatisfied"
                if job.kill_on_invalid_dep:
                    fields.update(state="CANCELLED", end_time=now, exit_code=0, exit_signal=0)
                    return reason, fields
            elif verdict.status == deps.UNMET:
                reason = "Dependency"
        if job.held:
            return ("JobHeldAdmin" if job.held == "admin" else "JobHeldUser"), fields
        if reason:
            return reason, fields
        if job.begin_time and job.begin_time > now:
            wake.append(job.begin_time)
            return "BeginTime", fields
        if job.eligible_time is None:
            fields["eligible_time"] = now
        if job.deadline is not None:
            # slurmctld's deadline_ok, before it tries to place the job: one that could not
            # end by its deadline if it started now ends DEADLINE (its time limit is set at
            # submission when it had none: core/submit.py)
            latest = job.deadline - (job.time_limit or 0) * state.seconds_per_minute()
            if now > latest:
                fields.update(state="DEADLINE", start_time=now, end_time=now)
                fields.update(exit_code=1, exit_signal=0)
                return "DeadLine", fields
            wake.append(latest)  # a job waiting for room: ended then
        return None, fields

    def _launch(self, job: JobRecord, placement: list[int], record: JobRecord | None) -> None:
        now = time.time()  # not the pass's start: earlier launches and ends took time
        ex = self.executor(job.executor)
        claimed = self._claim(ex, job, placement, record, now)
        if claimed is None:
            return
        job, ref = claimed
        names = ref.get("names") or []
        job.executor_ref = ref
        try:
            ref = ex.launch(job, self._submission_spec(job.submission), ref)
        except Exception as exc:  # whatever it started is ended as any job's leftovers are
            fields = launch_failure(job, exc, now)
            state.update_job(self.conn, job.job_id, where_state=STARTED_STATES, **fields)
            try:
                ex.cleanup(job)
            except Exception:
                log.exception("job %s: cleanup after the failed launch", job.job_id)
            return
        synced = self._synced(job.executor)
        fields = cast("QueueSyncExecutor", ex).handed(job, ref) if synced else {"state": "RUNNING"}
        with state.write(self.conn):  # one commit: a job start costs few (arrays start many)
            state.update_job(self.conn, job.job_id, executor_ref=ref)  # cancelled meanwhile too
            if fields:
                state.update_job(self.conn, job.job_id, where_state=("CONFIGURING",), **fields)
        if synced:
            return  # its executor's sync() moves it from here
        log.info("job %s: started on %s", job.job_id, ",".join(names))

    def _claim(
        self, ex: Executor, job: JobRecord, placement: list[int], record: JobRecord | None, now
    ) -> tuple[JobRecord, dict] | None:
        """Make the job CONFIGURING on its nodes, in one write: (the job, its executor's ref),
        or None if it does not start (cancelled or held meanwhile, failed). On a team's state
        it is placed again there, against every member's started jobs as they are now: two
        agents never both take the last node (no room: it keeps pending, for its reason)."""
        with state.write(self.conn):
            try:
                if self.member is not None:
                    running = [self._placed(j) for j in state.started_jobs(self.conn)]
                    again = ex.place_again(self._to_place(job), placement, running)
                    if isinstance(again, str):
                        waiting = record if record is not None else job
                        state.update_job(
                            self.conn, waiting.job_id, where_state=("PENDING",), reason=again
                        )
                        return None
                    placement = again
                ref = ex.prepare(job, placement)
            except Exception as exc:
                failed = launch_failure(job, exc, now)
                if record is not None:
                    self._split(record, job, **failed)
                else:
                    state.update_job(self.conn, job.job_id, where_state=("PENDING",), **failed)
                return None
            names = ref.get("names") or []
            spec = self._submission_spec(job.submission)
            het = spec.get("het") if job.het_job_offset == 0 else None
            fields = dict(
                state="CONFIGURING",
                reason="None",
                executor_ref=ref,
                start_time=now,
                nodelist=hostlist.compress(names[: het[0]["nodes"][1]] if het else names) or None,
                batch_host=names[0] if names else None,
            )
            if record is not None:
                element = self._split(record, job, **fields)
                if element is None:
                    return None  # cancelled or held meanwhile
                job = element
            elif not state.update_job(self.conn, job.job_id, where_state=("PENDING",), **fields):
                return None  # cancelled or held meanwhile
            for comp in (het or [])[1:] if names else ():  # the others' rows: their own nodes
                first, count = comp["nodes"]
                state.update_job(
                    self.conn,
                    comp["job_id"],
                    nodelist=hostlist.compress(names[first : first + count]),
                    batch_host=names[first],
                )
        return job, ref

    def _split(self, record: JobRecord, element: JobRecord, **fields) -> JobRecord | None:
        """Split `element` (with its id) off its pending record with `fields`, unless the
        record was held, cancelled or left by that element meanwhile."""
        assert element.array_task_id is not None  # an element of the record
        spec = self._submission_spec(record.submission)
        return state.split_element(
            self.conn,
            record.job_id,
            element.array_task_id,
            spec,
            job_id=element.job_id,
            unheld=True,
            **fields,
        )

    def _submission_spec(self, submission: int) -> dict:
        if self._spec is None or self._spec[0] != submission:
            self._spec = (submission, state.get_spec(self.conn, submission)[0])
        return self._spec[1]

    # --- scancel --signal ----------------------------------------------------------------------

    def _deliver_signals(self) -> None:
        for job_id, signum, scope in state.take_signals(self.conn, self.member):
            job = state.get_job(self.conn, job_id)
            if job is None or job.state not in STARTED_STATES or not job.executor_ref:
                continue
            log.info("job %s: signal %s to %s", job_id, signum, scope)
            self.executor(job.executor).signal(job, signum, scope)
