"""What the read commands ask: jobs by filters as records (`find_jobs`) or as rows SQLite
computes (`list_rows`, `query_jobs`), and the facts a listing or its kept answer depends on
(`timeless`, `generation`, `arrays_exist`, `submitted_since`, `user_has_jobs`)."""

from __future__ import annotations

from slurmsky.core.state.records import (
    _CONN,
    _SELECT,
    LIST_COLUMNS,
    MAX_INTEGER,
    JobRecord,
    _record,
    bindable,
    names_sql,
    pending_element,
)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from slurmsky.core.state.engine import Connection


MIN_JOB_AGE = 300  # seconds a finished job stays in `squeue -t all` (Slurm's MinJobAge)


def find_jobs(
    conn: Connection,
    *,
    ids=None,
    tasks=None,
    states=None,
    users=None,
    names=None,
    partitions=None,
    active_or_ended_after: float | None = None,
    submitted_before: float | None = None,
    light: bool = False,
) -> list[JobRecord]:
    """Jobs matching every given filter, by job id.

    ids: job ids; an array's id matches all its elements (as `squeue -j 7` does).
    tasks: (array id, index) pairs (`7_3`). ids and tasks together: either matches.
    active_or_ended_after: active jobs plus those that ended at or after this time
    (`squeue -t all` passes now - MIN_JOB_AGE).
    light: a listing's records, with LIST_COLUMNS only until another column is read.
    """
    filters = (states, users, names, partitions, active_or_ended_after, submitted_before)
    records = _select(conn, _where(ids, tasks, *filters), light)
    if tasks:  # elements still inside their array's pending record
        where, args = _where(sorted({a for a, _ in tasks}), None, *filters)
        where += (" AND " if where else " WHERE ") + "array_pending IS NOT NULL"
        found = {(r.array_job_id, r.array_task_id) for r in records}
        from slurmsky.runtime import indexset

        for record in _select(conn, (where, args), light):
            items = indexset.parse(record.array_pending)
            records.extend(
                pending_element(record, index)
                for array, index in tasks
                if array == record.job_id
                and (array, index) not in found
                and indexset.contains(items, index)
            )
        records.sort(key=lambda r: r.job_id)
    return records


def _select(conn: Connection, where: tuple[str, list], light: bool) -> list[JobRecord]:
    where_text, args = where
    if not light:
        return [_record(r) for r in conn.execute(_SELECT + where_text + " ORDER BY job_id", args)]
    sql = f"SELECT {names_sql(LIST_COLUMNS)} FROM jobs{where_text} ORDER BY job_id"
    records = [_record(r, LIST_COLUMNS) for r in conn.execute(sql, args)]
    for record in records:
        record.__dict__[_CONN] = conn
    return records


def list_rows(
    conn: Connection,
    columns,
    column_args,
    order_by: str,
    order_args=(),
    *,
    ids=None,
    tasks=None,
    states=None,
    users=None,
    names=None,
    partitions=None,
    active_or_ended_after: float | None = None,
) -> Any:
    """A listing as plain rows (a cursor over them): `columns` (SQL expressions over `jobs`, their `?`s bound to
    `column_args`) of the jobs find_jobs would return with the same filters, in `order_by`'s
    order (its `?`s bound to `order_args`). No record per job: a long queue costs what SQLite
    computes and Python prints."""
    where_text, args = _where(
        ids, tasks, states, users, names, partitions, active_or_ended_after, None
    )
    sql = f"SELECT {', '.join(columns)} FROM jobs{where_text} ORDER BY {order_by}"
    _add_functions(conn)
    return conn.execute(sql, [*column_args, *args, *order_args])


def timeless(conn: Connection, now: float, **filters) -> bool:
    """Whether the jobs list_rows' `filters` select list alike at any time after `now` while
    none changes: all pending and eligible by `now` (no running time to show; a listing sorts
    them by `now` alike). A job that starts or ends changes its row; one whose begin time is
    still to come would move in the order when it comes."""
    changing = "NOT (state = 'PENDING' AND (begin_time IS NULL OR begin_time <= ?))"
    unset = ("ids", "tasks", "states", "users", "names", "partitions", "active_or_ended_after")
    where_text, args = _where(
        **(dict.fromkeys(unset) | filters), submitted_before=None, condition=changing
    )
    sql = f"SELECT 1 FROM jobs{where_text} LIMIT 1"
    return conn.execute(sql, [*args, now]).fetchone() is None


def query_jobs(
    conn: Connection,
    sql: str,
    *,
    users=None,
    names=None,
    partitions=None,
    states=None,
    uids=None,
    accounts=None,
    active_or_ended_after: float | None = None,
    submitted_before: float | None = None,
    condition: str | None = None,
) -> Any:
    """A listing's rows (a cursor over them) from `sql`, in which each `{jobs}` stands for
    `jobs WHERE` the filters (find_jobs' filters, `uids`, `accounts`, and `condition`: SQL
    over a row's columns): sacct's lines, computed and ordered by SQLite. The filters' values
    are `sql`'s only parameters."""
    where_text, args = _where(
        None,
        None,
        states,
        users,
        names,
        partitions,
        active_or_ended_after,
        submitted_before,
        uids=uids,
        accounts=accounts,
        condition=condition,
    )
    _add_functions(conn)
    pieces = sql.split("{jobs}")
    return conn.execute(f"jobs{where_text}".join(pieces), args * (len(pieces) - 1))


def computes_sacct_listing(conn) -> bool:
    """Whether the engine computes sacct's listing (its steps from the RESULT with SQLite's
    json_each); elsewhere sacct makes the same lines from records."""
    return conn.dialect.computes_sacct_listing


def arrays_exist(conn: Connection) -> bool:
    """Whether any job is an array's (its record or an element)."""
    found = conn.execute("SELECT 1 FROM jobs WHERE array_job_id IS NOT NULL LIMIT 1")
    return found.fetchone() is not None


def _add_functions(conn: Connection) -> None:
    """The SQL functions of a pending record's indices a listing may call: array_tasks
    (squeue's task string, `1-7%2`) and array_count (how many)."""
    conn.create_function("array_tasks", 2, _array_tasks, deterministic=True)
    conn.create_function("array_count", 1, _array_count, deterministic=True)


def _array_tasks(pending: str | None, throttle: int | None) -> str | None:
    """SQL array_tasks(array_pending, array_throttle): a pending record's task string."""
    if pending is None:
        return None
    from slurmsky.runtime.indexset import display

    return display(pending, throttle)


def _array_count(pending: str | None) -> int:
    from slurmsky.runtime import indexset

    return indexset.count(indexset.parse(pending))


def _where(
    ids,
    tasks,
    states,
    users,
    names,
    partitions,
    active_or_ended_after,
    submitted_before,
    *,
    uids=None,
    accounts=None,
    condition: str | None = None,
) -> tuple[str, list]:
    """find_jobs' filters (and query_jobs') as a WHERE clause and its arguments."""
    where, args = [], []

    def one_of(column: str, values) -> str:
        values = [bindable(v) for v in values]
        if not values:
            return "1 = 0"  # (PostgreSQL has no empty IN list)
        args.extend(values)
        marks = ("CAST(? AS TEXT)" if v.__class__ is bytes else "?" for v in values)
        return f"{column} IN ({', '.join(marks)})"

    if ids is not None or tasks is not None:
        ids = [i for i in ids or () if i <= MAX_INTEGER]
        tasks = [t for t in tasks or () if max(t) <= MAX_INTEGER]
        alts = []
        if ids:
            alts.append(one_of("job_id", ids))
            alts.append(one_of("array_job_id", ids))
            alts.append(one_of("het_job_id", ids))  # a heterogeneous job's components
        if tasks:  # one row-value list: an OR per pair would overflow SQLite's expression depth
            alts.append(
                "(array_job_id, array_task_id) IN (VALUES "
                + ", ".join(["(?, ?)"] * len(tasks))
                + ")"
            )
            args.extend(value for pair in tasks for value in pair)
        where.append("(" + (" OR ".join(alts) or "1 = 0") + ")")
    if states is not None:
        where.append(one_of("state", states))
    if users is not None:
        where.append(one_of('"user"', users))
    if names is not None:
        where.append(one_of("name", names))
    if partitions is not None:
        where.append(one_of("partition", partitions))
    if active_or_ended_after is not None:
        where.append("(end_time IS NULL OR end_time >= ?)")
        args.append(active_or_ended_after)
    if submitted_before is not None:
        where.append("submit_time < ?")
        args.append(submitted_before)
    if uids is not None:
        where.append(f"uid IN ({', '.join('?' * len(uids))})" if uids else "1 = 0")
        args.extend(uids)
    if accounts is not None:
        where.append(one_of("account", accounts))
    if condition is not None:
        where.append(f"({condition})")
    return (" WHERE " + " AND ".join(where) if where else ""), args


def generation(conn: Connection) -> int:
    """The jobs' generation (_GENERATION): equal at two reads when no job changed between."""
    return conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]


def submitted_since(conn: Connection, when: float) -> bool:
    return (
        conn.execute("SELECT 1 FROM jobs WHERE submit_time > ? LIMIT 1", (when,)).fetchone()
        is not None
    )


def user_has_jobs(conn: Connection, user: str) -> bool:
    """Whether the state holds a job of `user` (a name squeue -u knows without a passwd entry)."""
    return (
        conn.execute('SELECT 1 FROM jobs WHERE "user" = ? LIMIT 1', (user,)).fetchone() is not None
    )


def het_sets(conn: Connection, het_ids: set[int]) -> dict[int, str]:
    """Each of these heterogeneous jobs' component ids, as Slurm's HetJobIdSet (`J-K`)."""
    if not het_ids:
        return {}
    marks = ",".join("?" * len(het_ids))
    rows = conn.execute(
        f"SELECT het_job_id, MAX(job_id) FROM jobs WHERE het_job_id IN ({marks}) "
        "GROUP BY het_job_id",
        sorted(het_ids),
    )
    return {het: f"{het}-{last}" for het, last in rows}


# Slurm's job_completion_logger: COMPLETED counts as completed, CANCELLED as canceled, every
# other end (FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, ...) as failed.
_FIGURES = (
    "SELECT COUNT(DISTINCT CASE WHEN submit_time >= ? THEN submission END), "
    "SUM(CASE WHEN start_time >= ? THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN end_time >= ? AND state = 'COMPLETED' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN end_time >= ? AND state = 'CANCELLED' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN end_time >= ? AND state NOT IN ('COMPLETED', 'CANCELLED', 'PENDING', "
    "'CONFIGURING', 'RUNNING', 'COMPLETING', 'REQUEUED', 'SUSPENDED') THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN state = 'PENDING' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN state IN ('CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED') "
    "THEN 1 ELSE 0 END) FROM jobs"
)


def job_figures(conn: Connection, since: float) -> tuple[int, ...]:
    """sdiag's job figures: (submitted, started, completed, canceled, failed) since `since`,
    then the jobs pending and running now. A submission counts once (an array's elements are
    one submission, as Slurm counts an array's one submit RPC)."""
    row = conn.execute(_FIGURES, (since,) * 5).fetchone()
    return tuple(int(v or 0) for v in row)
