"""A requeued job's earlier runs, kept as slurmdbd keeps them: one record per run, the last
one the job's row, the earlier ones here (`sacct -D` lists them all, `sacct` the last).

A run is kept as the columns it ended with (ATTEMPT_COLUMNS, JSON), under the job's id and
its restart count when it ran (0: the first run)."""

from __future__ import annotations

from slurmsky.core.state.db import write
from slurmsky.core.state.records import _RAW, JobRecord

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


# What differs from run to run; the rest (name, user, script, ...) is the job's own.
ATTEMPT_COLUMNS = (
    "state",
    "reason",
    "partition",
    "submit_time",
    "eligible_time",
    "start_time",
    "end_time",
    "exit_code",
    "exit_signal",
    "nodelist",
    "batch_host",
    "num_nodes",
    "num_cpus",
    "cpus_per_node",
    "tasks_per_node",
    "result",
)


class Attempt(JobRecord):
    """An earlier run of a job: its record as that run ended (a finished record, whatever
    its state: REQUEUED is a state only a run that was requeued ends in)."""

    @property
    def finished(self) -> bool:
        return True


def keep_attempt(conn: Connection, job: JobRecord, **ended) -> None:
    """Keep the run of `job` that a requeue ends: its columns, with `ended`'s (its state,
    end, ...) over them. Kept once per run: a second call for the same run changes nothing."""
    import json  # here: squeue and sbatch load this package and never call it

    values = {k: getattr(job, k) for k in ATTEMPT_COLUMNS}
    values.update((k, v) for k, v in ended.items() if k in ATTEMPT_COLUMNS)
    text = json.dumps(values)  # ASCII: text that is not UTF-8 (surrogates) as \udcXX
    with write(conn):
        conn.execute(
            "INSERT INTO attempts (job_id, restarts, record) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (job.job_id, job.restarts, text),
        )


def attempts_of(conn: Connection, jobs: list[JobRecord]) -> dict[int, list[Attempt]]:
    """The earlier runs of these jobs, first first, each the job's record with its run's
    columns: {job id: [Attempt, ...]} (a job never requeued is not there)."""
    import json

    by_id = {j.job_id: j for j in jobs if not j.virtual}
    found: dict[int, list[Attempt]] = {}
    if not by_id:
        return found
    rows = conn.execute(
        f"SELECT job_id, record FROM attempts WHERE job_id IN ({conn.dialect.id_list()}) "
        "ORDER BY job_id, restarts",
        (json.dumps(sorted(by_id)),),
    )
    for job_id, text in rows:
        attempt = object.__new__(Attempt)
        values = attempt.__dict__
        values.update(by_id[job_id].__dict__)  # a listing's: the rest of its row on demand
        for key, value in json.loads(text).items():
            values.pop(_RAW + key, None)
            values[key] = value
        found.setdefault(job_id, []).append(attempt)
    return found
