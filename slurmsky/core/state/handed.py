"""What a backend that hands jobs on to an outside queue (the sky backend) asks of their rows:
whether any is active (`handed_jobs_exist`), jobs found by the keys of
their executor_ref (`jobs_with_ref`, a launch's token: `refs_with_token`), scancels still to
pass on, the cuts an earlier agent made, and an array's elements handed on."""

from __future__ import annotations

from slurmsky.core.state.queries import find_jobs
from slurmsky.core.state.records import JobRecord
from slurmsky.core.states import ACTIVE_STATES

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


_ACTIVE = f"state IN ({', '.join('?' * len(ACTIVE_STATES))})"


def handed_jobs_exist(conn: Connection, executor: str, below: int, waiting: str) -> bool:
    """Whether `executor` has an active job of its own (an id below `below`: an outside
    queue's other jobs come above) that it handed on (an executor_ref) or whose reason starts
    with `waiting` (it waits for the outside queue to answer): Backend.needs_agent's question."""
    sql = (
        f"SELECT 1 FROM jobs WHERE executor = ? AND job_id < ? AND state IN "
        f"({', '.join('?' * len(ACTIVE_STATES))}) AND (executor_ref IS NOT NULL "
        "OR reason LIKE ? || '%') LIMIT 1"
    )
    args = (executor, below, *ACTIVE_STATES, waiting)
    return conn.execute(sql, args).fetchone() is not None


def jobs_with_ref(conn: Connection, executor: str, key: str) -> list[JobRecord]:
    """The active jobs of `executor` whose executor_ref holds `key` (sky's allocations that
    hold, or are getting, a cluster: `cluster`), as find_jobs gives them."""
    sql = (
        f"SELECT job_id FROM jobs WHERE executor = ? AND state IN "
        f"({', '.join('?' * len(ACTIVE_STATES))}) "
        f"AND {conn.dialect.json_text('executor_ref', key)} IS NOT NULL"
    )
    ids = [r[0] for r in conn.execute(sql, (executor, *ACTIVE_STATES))]
    return find_jobs(conn, ids=ids) if ids else []


def refs_with_token(conn: Connection, executor: str, token: str) -> list[tuple[int, dict]]:
    """(job id, executor_ref) of `executor`'s jobs whose ref names launch `token`."""
    import json  # not on the read commands' path

    sql = (
        "SELECT job_id, executor_ref FROM jobs WHERE executor = ? "
        f"AND {conn.dialect.json_text('executor_ref', 'token')} = ?"
    )
    return [(job_id, json.loads(ref)) for job_id, ref in conn.execute(sql, (executor, token))]


def cancelled_unsent(conn: Connection, executor: str, key: str) -> list[tuple[int, dict]]:
    """(job id, executor_ref) of `executor`'s jobs that scancel ended here while they were
    handed on (their ref holds `key`, the outside id), whose cancel is not sent there yet."""
    import json

    sql = (
        "SELECT job_id, executor_ref FROM jobs WHERE state = 'CANCELLED' AND executor = ? "
        "AND cancelled_by IS NOT NULL AND kill_sent IS NULL AND executor_ref IS NOT NULL "
        f"AND {conn.dialect.json_text('executor_ref', key)} IS NOT NULL"
    )
    return [(job_id, json.loads(ref)) for job_id, ref in conn.execute(sql, (executor,))]


def killed_refs(conn: Connection, token: str) -> list[tuple[float | None, dict]]:
    """(start time, executor_ref) of the jobs of launch `token` whose kill was sent (scancel
    or requeue), for an agent that restarts to know what it had cut."""
    import json

    sql = (
        "SELECT start_time, executor_ref FROM jobs WHERE kill_sent IS NOT NULL "
        "AND (kill_action IS NOT NULL OR state = 'CANCELLED') "
        f"AND {conn.dialect.json_text('executor_ref', 'token')} = ?"
    )
    return [(start, json.loads(ref)) for start, ref in conn.execute(sql, (token,))]


def lane_kept(conn: Connection, job_ids: list[int], token: str) -> bool:
    """Whether every one of `job_ids` still belongs to launch `token` and none was
    cancelled (a lane whose elements all ended by themselves)."""
    sql = (
        f"SELECT 1 FROM jobs WHERE job_id IN ({', '.join('?' * len(job_ids))}) AND "
        f"(state = 'CANCELLED' OR {conn.dialect.json_text('executor_ref', 'token')} "
        "IS DISTINCT FROM ?) LIMIT 1"
    )
    return conn.execute(sql, (*job_ids, token)).fetchone() is None


def name_lane_nodes(conn: Connection, job_ids: list[int], sky_id: int, nodes: dict) -> int:
    """`nodes` (nodelist, batch host) for those of `job_ids` that SkyPilot job `sky_id` (a
    lane) started and that have none: how many."""
    from slurmsky.core.state.db import write

    sql = (
        "UPDATE jobs SET nodelist = ?, batch_host = ? "
        f"WHERE job_id IN ({', '.join('?' * len(job_ids))}) AND start_time IS NOT NULL "
        "AND (nodelist IS NULL OR nodelist = '') "
        f"AND CAST({conn.dialect.json_text('executor_ref', 'sky_job_id')} AS TEXT) = ?"
    )
    with write(conn):
        args = (nodes["nodelist"], nodes["batch_host"], *job_ids, str(sky_id))
        return conn.execute(sql, args).rowcount


def array_elements_out(conn: Connection, array_job_id: int) -> set[int]:
    """The ids of the array's active elements that were handed on (an executor_ref)."""
    sql = (
        f"SELECT job_id FROM jobs WHERE array_job_id = ? AND executor_ref IS NOT NULL AND {_ACTIVE}"
    )
    return {r[0] for r in conn.execute(sql, (array_job_id, *ACTIVE_STATES))}
