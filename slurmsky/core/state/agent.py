"""What the agent reads: the jobs a pass works on (`pending_jobs`, in the order of
`PASS_COLUMNS`' index; `started_jobs`, `active_jobs`), the executors that have active jobs,
and whether an agent is needed at all (`needs_agent`, `active_jobs_exist`; a backend that
hands jobs on asks handed.py)."""

from __future__ import annotations

from slurmsky.core.state.db import _IDLE, index_sql
from slurmsky.core.state.queries import find_jobs
from slurmsky.core.state.records import _CONN, _SELECT, JobRecord, _record, names_sql
from slurmsky.core.states import ACTIVE_STATES, AGENT_REASONS, STARTED_STATES

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


def active_jobs(conn: Connection, executor: str | None = None) -> list[JobRecord]:
    """Jobs not yet finished (what the agent works on), in submission order: an array's
    elements by index, as Slurm starts them; with `executor`, only its jobs (an index
    lookup: a backend's sync reads its own jobs, not everyone's)."""
    if executor is None:
        jobs = find_jobs(conn, states=ACTIVE_STATES)
    else:
        sql = f"{_SELECT} WHERE executor = ? AND state IN ({', '.join('?' * len(ACTIVE_STATES))})"
        jobs = [_record(r) for r in conn.execute(sql, (executor, *ACTIVE_STATES))]
    jobs.sort(key=lambda j: (j.submission, j.array_task_id or 0))
    return jobs


# What a pass reads of each pending job; a record reads the rest of its row when first used
# (a job that starts). The order is active_jobs' (job_id is the index's last column).
PASS_COLUMNS = (
    "job_id",
    "submission",
    "array_job_id",
    "array_task_id",
    "array_throttle",
    "array_pending",
    "name",
    "user",
    "partition",
    "num_nodes",
    "max_nodes",
    "num_cpus",
    "cpus_per_node",
    "mem_per_node",
    "mem_per_cpu",
    "gpus_per_node",
    "dependency_spec",
    "dependency",
    "kill_on_invalid_dep",
    "state",
    "reason",
    "held",
    "submit_time",
    "begin_time",
    "eligible_time",
    "executor",
    "executor_ref",
    "restarts",
    "het_job_offset",
    "account",
    "priority",
    "deadline",
    "nice",
)


def _pass_order(conn) -> str:
    return f"submission, {index_sql(conn.dialect)}, job_id"


def _after(conn) -> str:
    """After (submission, index, job_id): the form the index can seek."""
    index = index_sql(conn.dialect)
    return f"state = 'PENDING' AND submission = ? AND {index} >= ? AND ({index}, job_id) > (?, ?)"


def pass_position(job: JobRecord) -> tuple[int, int, int]:
    """Where a pending job is in a pass's order (pending_jobs' `after`)."""
    if job.array_task_id is not None:
        return job.submission, job.array_task_id, job.job_id
    first = (
        int(job.array_pending.split(",")[0].split("-")[0].split(":")[0]) if job.array_pending else 0
    )
    return job.submission, first, job.job_id


def _pass_records(conn: Connection, sql: str, args, limit: int) -> list[JobRecord]:
    records = [
        _record(r, PASS_COLUMNS)
        for r in conn.execute(
            f"SELECT {names_sql(PASS_COLUMNS)} FROM jobs WHERE {sql} AND NOT ({_IDLE}) "
            f"ORDER BY {_pass_order(conn)} LIMIT ?",
            (*args, limit),
        )
    ]
    for record in records:
        record.__dict__[_CONN] = conn
    return records


def started_jobs(conn: Connection) -> list[JobRecord]:
    """The started jobs, in active_jobs' order; of a heterogeneous job its leader alone (the
    others follow it: db._HET_FOLLOW)."""
    jobs = [j for j in find_jobs(conn, states=STARTED_STATES) if not j.het_job_offset]
    jobs.sort(key=lambda j: (j.submission, j.array_task_id or 0))
    return jobs


def active_executors(conn: Connection) -> list[str]:
    """The executors of the active jobs: each executor of a job (a few, found one after the
    other in jobs_executor) that has an active job (a seek there too); no scan of the jobs."""
    active = f"SELECT 1 FROM jobs WHERE executor = ? AND state IN ({', '.join('?' * len(ACTIVE_STATES))})"
    found: list[str] = []
    name = ""
    while True:
        (name,) = conn.execute(
            "SELECT min(executor) FROM jobs WHERE executor > ?", (name,)
        ).fetchone()
        if name is None:
            return found
        if conn.execute(active + " LIMIT 1", (name, *ACTIVE_STATES)).fetchone():
            found.append(name)


def pending_jobs(conn: Connection, after: tuple = (), limit: int = 64) -> list[JobRecord]:
    """Up to `limit` pending jobs (PASS_COLUMNS) in active_jobs' order, from after `after`:
    () from the first, (submission,) past that submission, or (submission, index, job_id)
    past that job. Held jobs with nothing to do (_IDLE) are left out: jobs_waiting holds
    none, so a pass over 100 000 held jobs reads none of them."""
    if not after:
        return _pass_records(conn, "state = 'PENDING'", (), limit)
    if len(after) == 1:
        return _pass_records(conn, "state = 'PENDING' AND submission > ?", after, limit)
    submission, index, job_id = after
    jobs = _pass_records(conn, _after(conn), (submission, index, index, job_id), limit)
    if len(jobs) < limit:
        jobs += _pass_records(
            conn, "state = 'PENDING' AND submission > ?", (submission,), limit - len(jobs)
        )
    return jobs


def nice_pending(conn: Connection) -> bool:
    """Whether a pending job has a --nice: priority/basic's order is then not submission's."""
    sql = "SELECT 1 FROM jobs WHERE state = 'PENDING' AND nice != 0 LIMIT 1"
    return conn.execute(sql).fetchone() is not None


def needs_agent(conn: Connection, followed: tuple[str, ...] = ()) -> bool:
    """Whether some job can progress without a command: started, or pending for a reason
    time or other jobs will change. Started jobs of the `followed` executors (an outside
    queue's) are left to their backend's judgement (Backend.needs_agent)."""
    skip = f" AND executor NOT IN ({', '.join('?' * len(followed))})" if followed else ""
    sql = (
        f"SELECT 1 FROM jobs WHERE (state IN ({', '.join('?' * len(STARTED_STATES))}){skip}) "
        f"OR (state = 'PENDING' AND reason IN ({', '.join('?' * len(AGENT_REASONS))})) "
        "LIMIT 1"
    )
    args = STARTED_STATES + tuple(followed) + AGENT_REASONS
    return conn.execute(sql, args).fetchone() is not None


def active_jobs_exist(conn: Connection) -> bool:
    sql = f"SELECT 1 FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE_STATES))}) LIMIT 1"
    return conn.execute(sql, ACTIVE_STATES).fetchone() is not None
