"""What scancel and scontrol do to jobs: cancel, signal, hold, release, requeue, suspend.

Pending jobs change here, at once (a compare-and-set on their state); started jobs are
marked for the agent, which ends them through their executor, and the agent is woken.
Each operation returns None on success or Slurm's error text for that job (the command
adds `... for job N` / `Kill job error on job id N: ...` around it).
"""

from __future__ import annotations

import os
import re
import time
from signal import SIGCONT, SIGKILL, SIGSTOP

from slurmsky import backends
from slurmsky.backends import Feature, Unsupported
from slurmsky.core import state
from slurmsky.core.state import JobRecord, team
from slurmsky.core.states import KILLABLE_STATES, STARTED_STATES
from slurmsky.core.transitions import keep_run, requeued_fields

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


INVALID_ID = "Invalid job id specified"
ALREADY_DONE = "Job/step already completing or completed"
FINISHED = "Job has already finished"  # ESLURM_JOB_FINISHED: scontrol update of an ended job
ACCESS_DENIED = "Access/permission denied"
NOT_OWNER = "Invalid user id"  # what slurmctld says to hold/release/update of another's job
PENDING_ERR = "Job is pending execution"
NOT_PENDING = "Job is no longer pending execution"
DISABLED = "Requested operation is presently disabled"
NOT_RUNNING = "Job is not running"
NOT_SUSPENDED = "Job is not suspended"
# slurmctld's ESLURM_TRANSITION_STATE_NO_UPDATE: a signal but SIGKILL to a pending job
NOT_YET = "Job can not be altered now, try again later"
# Started jobs scancel ends through the agent (REQUEUED: a SkyPilot job being recovered).

# a component of a heterogeneous job, named alone (`J+1`, or its own id): slurmctld's
# ESLURM_NOT_WHOLE_HET_JOB, whose number (2108) scancel exits with, as a status: 60
NOT_WHOLE_HET = "Operation not permitted on individual component of heterogeneous job"
NOT_WHOLE_HET_EXIT = 2108 % 256

_JOB_ID = re.compile(r"(\d+)(?:_(\d+|\[[\d,\-]+\]))?")
_HET_ID = re.compile(r"(\d+)\+(\d+)")


def parse_het_id(text: str) -> tuple[int, int] | None:
    """`7+1` -> (7, 1): a heterogeneous job's component; None for any other id."""
    m = _HET_ID.fullmatch(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def whole_jobs(records: list[JobRecord]) -> list[JobRecord] | None:
    """The records an id names as scancel acts on them: of a heterogeneous job its leader
    alone (the others follow it); None where the id names a component alone."""
    kept = [r for r in records if not r.het_job_offset]
    if records and not kept:
        return None
    return kept


def parse_job_id(text: str) -> tuple[int, list[int] | None]:
    """`12`, `12_3` or `12_[1-3,5]` -> (id, array indices or None); ValueError otherwise."""
    m = _JOB_ID.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(text)
    if m.group(2) is None:
        return int(m.group(1)), None
    indices: list[int] = []
    for part in m.group(2).strip("[]").split(","):
        low, _, high = part.partition("-")
        if not low or (_ and not high) or (high and int(high) < int(low)):
            raise ValueError(text)
        # an index at or above MaxArraySize names no element (and a huge range no memory)
        indices.extend(range(int(low), min(int(high or low) + 1, _max_array_size())))
    return int(m.group(1)), indices


def _max_array_size() -> int:
    from slurmsky.config import load_config

    return load_config().max_array_size


def select(conn: Connection, job_id: int, indices: list[int] | None) -> list[JobRecord]:
    """The jobs an id names: a job, every element of an array (its pending record one of
    them), or the listed elements (those inside the pending record as PendingElements)."""
    if indices is None:
        return state.find_jobs(conn, ids=[job_id])
    return state.find_jobs(conn, tasks=[(job_id, i) for i in indices])


def split_off(conn: Connection, job: JobRecord) -> JobRecord | None:
    """The job itself, or for an element inside its array's pending record, that element
    split off into a job of its own (as slurmctld does to hold or update one element);
    None if it left the record meanwhile."""
    if not job.virtual:
        return job
    assert job.array_job_id is not None and job.array_task_id is not None
    spec = state.get_spec(conn, job.submission)[0]
    return state.split_element(conn, job.array_job_id, job.array_task_id, spec)


def _denied(conn: Connection, job: JobRecord) -> bool:
    return not team.may_change(conn, job.user, job.uid)


def _wake() -> None:
    from slurmsky.core.daemon import wake

    wake()


def cancel(conn: Connection, jobs: list[JobRecord], *, by_index: bool = False) -> dict[int, str]:
    """scancel: pending jobs end CANCELLED now; started ones are ended by the agent.

    by_index: the jobs were named by array index (`7_3`, `7_[4-5]`); elements still inside
    their array's pending record leave it instead of ending CANCELLED (`remove_pending_tasks`).
    """
    errors: dict[int, str] = {}
    woken = False
    if by_index:
        jobs = _leave_arrays(conn, jobs, errors)
    for job in jobs:
        if _denied(conn, job):
            errors[job.job_id] = ACCESS_DENIED
            continue
        own = split_off(conn, job)
        if own is None:
            errors[job.job_id] = ALREADY_DONE
            continue
        job = own
        now = time.time()
        while True:
            if job.state == "PENDING" and state.update_job(
                conn,
                job.job_id,
                where_state=("PENDING",),
                state="CANCELLED",
                end_time=now,
                exit_code=0,
                exit_signal=0,
                cancelled_by=os.getuid(),
            ):
                break
            if job.state in KILLABLE_STATES and state.update_job(
                conn,
                job.job_id,
                where_state=KILLABLE_STATES,
                state="COMPLETING",
                kill_action="cancel",
                cancelled_by=os.getuid(),
            ):
                woken = True
                break
            if job.state not in ("PENDING",) + KILLABLE_STATES:
                errors[job.job_id] = ALREADY_DONE
                break
            found = state.get_job(conn, job.job_id)  # it moved on meanwhile: look again
            # None: a pending element another `scancel ID_INDEX` removed meanwhile
            assert found is not None
            job = found
    if woken:
        _wake()
    return errors


def _leave_arrays(
    conn: Connection, jobs: list[JobRecord], errors: dict[int, str]
) -> list[JobRecord]:
    """Remove the elements among `jobs` still inside their array's pending record from it;
    the jobs left to cancel as usual (the others, and an array's emptied pending record)."""
    rest: list[JobRecord] = []
    arrays: dict[int, set] = {}
    for job in jobs:
        if job.virtual and job.state == "PENDING":
            if _denied(conn, job):
                errors[job.job_id] = ACCESS_DENIED
            else:
                assert job.array_job_id is not None  # an element (it has an index)
                arrays.setdefault(job.array_job_id, set()).add(job.array_task_id)
        else:
            rest.append(job)
    for array_job_id, indices in arrays.items():
        record = state.remove_pending_tasks(conn, array_job_id, indices)
        if record is not None:
            pending = state.get_job(conn, record)
            assert pending is not None  # the row remove_pending_tasks kept
            rest.append(pending)
    return rest


def signal(
    conn: Connection, jobs: list[JobRecord], signum: int, scope: str = "steps"
) -> dict[int, str]:
    """scancel --signal: to the steps (default), the batch shell (--batch) or both (--full)."""
    errors: dict[int, str] = {}
    for job in jobs:
        if _denied(conn, job):
            errors[job.job_id] = ACCESS_DENIED
        elif job.state == "PENDING":
            errors[job.job_id] = PENDING_ERR if signum == SIGKILL else NOT_YET
        elif job.state not in STARTED_STATES:
            errors[job.job_id] = INVALID_ID
        else:
            try:  # no channel from here to the job's nodes: ESLURM_DISABLED
                backends.get(job.executor).require(Feature.STEP_SIGNALS)
            except Unsupported as refusal:
                errors[job.job_id] = str(refusal)
                continue
            state.add_signal(conn, job.job_id, signum, scope)
    if len(errors) < len(jobs):
        _wake()
    return errors


def signal_step(
    conn: Connection, jobs: list[JobRecord], step: int, signum: int, by: int | None = None
) -> dict[int, str]:
    """scancel J.S: signum to step S of each job (`by`: the uid cancelling it, SIGKILL,
    for sacct's `CANCELLED by`); a step a running job of the caller's is not running is an
    invalid id (another user's job: access denied, as signal says)."""
    errors: dict[int, str] = {}
    for job in jobs:
        if job.state not in ("RUNNING", "COMPLETING") or _denied(conn, job):
            continue
        running = backends.get(job.executor).running_steps(job) if job.executor else []
        if not any(str(s.get("id")) == str(step) for s in running):
            errors[job.job_id] = INVALID_ID
    scope = f"step:{step}" if by is None else f"step:{step}:{by}"
    found = [j for j in jobs if j.job_id not in errors]
    return {**errors, **signal(conn, found, signum, scope)}


def hold(conn: Connection, job: JobRecord, *, admin: bool) -> str | None:
    """scontrol hold (admin) / uhold (user)."""
    if _denied(conn, job):
        return NOT_OWNER
    kind = "admin" if admin else "user"
    reason = "JobHeldAdmin" if admin else "JobHeldUser"
    own = split_off(conn, job) if job.state == "PENDING" else job
    if own is None:
        return NOT_PENDING
    job = own
    if not state.update_job(conn, job.job_id, where_state=("PENDING",), held=kind, reason=reason):
        return NOT_PENDING
    return None


def release(conn: Connection, job: JobRecord) -> str | None:
    if _denied(conn, job):
        return NOT_OWNER
    if job.virtual and job.state == "PENDING" and job.held:  # the whole record is held
        own = split_off(conn, job)
        if own is None:
            return NOT_PENDING
        job = own
    if not state.update_job(conn, job.job_id, where_state=("PENDING",), held=None, reason="None"):
        return NOT_PENDING
    _wake()
    return None


def suspend(conn: Connection, job: JobRecord, *, resume: bool = False) -> str | None:
    """scontrol suspend: a running job's processes stop (SIGSTOP, on every node) and it is
    SUSPENDED; resume: they go on (SIGCONT) and it is RUNNING. The job's owner may, as may
    root (Slurm: operators only)."""
    if _denied(conn, job):
        return ACCESS_DENIED
    if job.state == "PENDING":
        return PENDING_ERR
    if job.finished:
        return ALREADY_DONE
    try:
        backends.get(job.executor).require(Feature.SUSPEND)
    except Unsupported as refusal:
        return str(refusal)
    before, after = ("SUSPENDED", "RUNNING") if resume else ("RUNNING", "SUSPENDED")
    if job.state == "SUSPENDED" and not resume:
        return None  # scontrol's suspend is "indefinite": of a suspended job, it succeeds
    with state.write(conn):
        if not state.update_job(conn, job.job_id, where_state=(before,), state=after):
            return NOT_SUSPENDED if resume else NOT_RUNNING
        state.add_signal(conn, job.job_id, SIGCONT if resume else SIGSTOP, "job")
    _wake()
    return None


def requeue(conn: Connection, job: JobRecord) -> str | None:
    """scontrol requeue: a started job is ended and pends again (BeginTime, Restarts+1)."""
    if _denied(conn, job):
        return ACCESS_DENIED
    if not job.requeue or not job.batch:
        return DISABLED
    if job.state == "PENDING":
        return PENDING_ERR
    if state.update_job(
        conn,
        job.job_id,
        where_state=("CONFIGURING", "RUNNING"),
        state="COMPLETING",
        kill_action="requeue",
        end_time=time.time(),  # the run ends now: the rerun's record is submitted now
    ):
        _wake()
        return None
    if not job.finished:
        return ALREADY_DONE
    now = time.time()
    with state.write(conn):
        fields = requeued_fields(job, now)
        requeued = state.update_job(conn, job.job_id, where_state=(job.state,), **fields)
        if requeued:
            keep_run(conn, job, now)
    if not requeued:
        return ALREADY_DONE
    _wake()
    return None
