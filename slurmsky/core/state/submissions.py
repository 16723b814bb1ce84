"""Submissions: job ids reserved, a submission's spec, task and job rows stored (its spec
and environment once in `blobs`, however many submissions share them) and read back, and
scancel --signal's requests queued for the agent."""

from __future__ import annotations

from slurmsky.core.state.db import write
from slurmsky.core.state.records import _bind, _mark, names_sql

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


def allocate_ids(conn: Connection, count: int) -> int:
    """Reserve `count` consecutive job ids and return the first; ids are never reused."""
    with write(conn):
        first = conn.execute("SELECT value FROM meta WHERE key = 'next_job_id'").fetchone()[0]
        conn.execute("UPDATE meta SET value = ? WHERE key = 'next_job_id'", (first + count,))
    return first


def add_submission(
    conn: Connection, submission: int, spec: dict, task: dict | None, jobs: list[dict]
) -> None:
    """Store one submission and its job rows (one per array element) in one transaction."""
    if not jobs:
        return
    import json

    rows = [_bind(conn, j) for j in jobs]
    cols = list(rows[0])
    sql = f"INSERT INTO jobs ({names_sql(cols)}) VALUES ({', '.join(map(_mark, cols))})"
    values = [tuple(r[c] for c in cols) for r in rows]
    shared = dict(spec)
    environment = shared.pop("environment", None)
    own = {}
    if "job_id" in shared:  # the spec's ids (its array's too) are the submission's own
        own["job_id"] = shared.pop("job_id")
        if shared.get("array"):
            shared["array"] = {k: v for k, v in shared["array"].items() if k != "job_id"}
    with write(conn):
        conn.execute(
            "INSERT INTO submissions (id, spec, task, shared, environment, user_name) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                submission,
                json.dumps(own),
                json.dumps(task) if task else None,
                blob(conn, json.dumps(shared)),
                None if environment is None else blob(conn, json.dumps(environment)),
                jobs[0]["user"],
            ),
        )
        conn.executemany(sql, values)


def blob(conn: Connection, text: str) -> int:
    """The id of this text in `blobs`, stored there if new."""
    return conn.dialect.blob_id(conn, text)


def next_job_id(conn: Connection) -> int:
    """The id the next submission gets (scontrol show config's NEXT_JOB_ID)."""
    return conn.execute("SELECT value FROM meta WHERE key = 'next_job_id'").fetchone()[0]


def latest_with_task(conn: Connection) -> int | None:
    """The newest submission that stored a task (the sky backend's latest job)."""
    sql = "SELECT id FROM submissions WHERE task IS NOT NULL ORDER BY id DESC LIMIT 1"
    row = conn.execute(sql).fetchone()  # from the newest down: the first with a task
    return row[0] if row else None


def get_spec(conn: Connection, submission: int) -> tuple[dict, dict | None]:
    """A submission's runtime spec and SkyPilot task."""
    import json

    spec, task, shared, environment = conn.execute(
        "SELECT spec, task, s.text, e.text FROM submissions LEFT JOIN blobs AS s "
        "ON s.id = shared LEFT JOIN blobs AS e ON e.id = environment WHERE submissions.id = ?",
        (submission,),
    ).fetchone()
    spec = json.loads(spec)
    if shared is not None:
        own, spec = spec, json.loads(shared)
        if "job_id" in own:
            spec["job_id"] = own["job_id"]
            if spec.get("array"):
                spec["array"]["job_id"] = own["job_id"]
    if environment is not None:
        spec["environment"] = json.loads(environment)
    return spec, (json.loads(task) if task else None)


def add_signal(conn: Connection, job_id: int, signal: int, scope: str) -> None:
    with write(conn):
        conn.execute(
            "INSERT INTO signals (job_id, signal, scope) VALUES (?, ?, ?)", (job_id, signal, scope)
        )


def take_signals(conn: Connection, user: str | None = None) -> list[tuple[int, int, str]]:
    """The queued scancel --signal requests (to this user's jobs, if named), removed from
    the queue."""
    where, params = "", ()  # type: tuple[str, tuple[str, ...]]
    if user is not None:
        where, params = ' WHERE job_id IN (SELECT job_id FROM jobs WHERE "user" = ?)', (user,)
    with write(conn):
        sql = f"SELECT job_id, signal, scope FROM signals{where} ORDER BY id"
        rows = conn.execute(sql, params).fetchall()
        conn.execute(f"DELETE FROM signals{where}", params)
    return [tuple(r) for r in rows]
