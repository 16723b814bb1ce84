"""Retention: what the agent removes so a state directory used for months stays small.

slurmctld forgets a finished job after MinJobAge (squeue shows it that long: state.MIN_JOB_AGE)
while slurmdbd keeps its accounting until PurgeJobAfter. Here the agent, when it starts and
then once a minute (`tidy`):

* removes the run directories (jobs/<id>: RESULT, the node runtimes' logs) of jobs finished
  more than `purge_run_dirs_after` seconds ago (default one day), and slims their stored
  spec to what the read commands use (the job's environment and script go);
* deletes the accounting of jobs finished more than `purge_job_after` days ago (default 0:
  kept for ever, as slurmdbd by default), and their submissions;
* rotates agent.log (to agent.log.1, one kept) once it passes `agent_log_max_mb`.
"""

from __future__ import annotations

import json
import os
import shutil

from slurmsky.core import state
from slurmsky.core.states import FINISHED_STATES, STATE_CODES

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


SPEC_KEPT = ("submit_host", "ntasks_per_node", "output", "error", "input")  # readers use these
# Each query's cost follows what there is to remove, not the jobs kept (100 000 held jobs
# cost nothing): candidates come from the jobs_end index, and a submission's jobs are found
# through jobs_pending (state, submission), sought once per state: "state IN (every state)".
_OF_SUBMISSION = f"j.state IN ({', '.join(repr(s) for s in STATE_CODES)}) AND j.submission = s.id"


def _finished(column: str = "state") -> str:
    return f"{column} IN ({', '.join(repr(s) for s in FINISHED_STATES)})"


def _kept(before: float) -> tuple[str, tuple]:
    """The condition (and its arguments) of a job of submission `s` still live at `before`."""
    return (
        f"{_OF_SUBMISSION} AND (NOT ({_finished('j.state')}) OR j.end_time IS NULL "
        "OR j.end_time >= ?)",
        (before,),
    )


def tidy(conn: Connection, cfg, now: float, log) -> None:
    home = state.home()
    _slim_specs(conn, now - cfg.purge_run_dirs_after)
    _purge_run_dirs(conn, home, now - cfg.purge_run_dirs_after, log)
    if cfg.purge_job_after:
        _purge_accounting(conn, now - cfg.purge_job_after * 86400, log)
    _rotate_log(os.path.join(home, "agent.log"), cfg.agent_log_max_mb * 1024 * 1024, log)


def _purge_run_dirs(conn: Connection, home: str, before: float, log) -> None:
    jobs_dir = os.path.join(home, "jobs")
    try:
        names = [int(n) for n in os.listdir(jobs_dir) if n.isdigit()]
    except OSError:
        return
    live = {
        r[0]
        for r in conn.execute(
            f"SELECT job_id FROM jobs WHERE job_id IN ({conn.dialect.id_list()}) AND "
            f"(NOT ({_finished()}) OR end_time IS NULL OR end_time >= ?)",
            (json.dumps(names), before),
        )
    }
    gone = [job_id for job_id in names if job_id not in live]
    for job_id in gone:
        shutil.rmtree(os.path.join(jobs_dir, str(job_id)), ignore_errors=True)
    if gone:
        log.info("retention: removed %d finished jobs' run directories", len(gone))


def _slim_specs(conn: Connection, before: float) -> None:
    """The specs of submissions whose jobs all ended before `before`: only SPEC_KEPT, once
    (a slimmed spec has no other key, a runtime spec many: the shared form's environment,
    which may be null, is in its own column, so no one key tells). Slimmed specs are
    shared blobs (state.blobs, one per content), as the specs they replace were."""
    kept = ", ".join(repr(k) for k in SPEC_KEPT)
    live, args = _kept(before)
    rows = conn.execute(
        "SELECT s.id, s.shared IS NOT NULL FROM submissions s LEFT JOIN blobs b ON b.id = "
        "s.shared WHERE s.id IN (SELECT submission FROM jobs WHERE end_time < ?) "
        f"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE {live}) "
        f"AND {conn.dialect.keys_beyond('coalesce(b.text, s.spec)', kept)}",
        (before, *args),
    ).fetchall()
    slim = []
    for sub, shared in rows:
        try:
            spec = state.get_spec(conn, sub)[0]  # its shared part too (state.blobs)
        except ValueError:
            spec = {}
        slim.append((sub, shared, json.dumps({k: spec.get(k) for k in SPEC_KEPT})))
    if not slim:
        return
    with state.write(conn):
        for sub, shared, text in slim:
            if shared:  # spec keeps the submission's own part ({"job_id": N})
                conn.execute(
                    "UPDATE submissions SET shared = ?, environment = NULL WHERE id = ?",
                    (state.blob(conn, text), sub),
                )
            else:  # stored before schema 4: the spec is all in its row
                conn.execute(
                    "UPDATE submissions SET spec = ?, environment = NULL WHERE id = ?", (text, sub)
                )
        conn.execute(  # what no submission shares any more
            "DELETE FROM blobs WHERE id NOT IN (SELECT shared FROM submissions WHERE shared "
            "IS NOT NULL UNION SELECT environment FROM submissions WHERE environment IS NOT "
            "NULL)"
        )


def _purge_accounting(conn: Connection, before: float, log) -> None:
    with state.write(conn):
        gone = conn.execute(
            f"DELETE FROM jobs WHERE {_finished()} AND end_time < ? RETURNING submission",
            (before,),
        ).fetchall()
        count = len(gone)
        conn.execute(  # the submissions whose last jobs those were
            f"DELETE FROM submissions AS s WHERE s.id IN ({conn.dialect.id_list()}) AND "
            f"NOT EXISTS (SELECT 1 FROM jobs j WHERE {_OF_SUBMISSION})",
            (json.dumps(sorted({r[0] for r in gone})),),
        )
    if count:
        log.info("retention: purged the accounting of %d jobs", count)


def _rotate_log(path: str, limit: int, log) -> None:
    """agent.log -> agent.log.1 past `limit` bytes; the agent's stdout and stderr (the log's
    descriptors) go on in a new agent.log."""
    try:
        if os.path.getsize(path) <= limit:
            return
        os.replace(path, path + ".1")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)
    log.info("retention: agent.log rotated (agent.log.1 holds the rest)")
