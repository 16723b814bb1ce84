"""Job rows for tests, built in one place: a row of the `jobs` table as `state.add_submission`
stores it (`job_row`), or a whole `state.JobRecord` as the commands read it (`job_record`).

Each gives a pending one-node, one-task, one-CPU batch job on the local backend; a test names
only the columns it is about (`job_row(3, state="RUNNING", nodelist="n1")`), and a test file
with its own defaults keeps them in one dict it passes first:
`job_row(job_id, **{**MINE, **fields})`.
"""

from __future__ import annotations

from slurmsky.core import state

# The columns add_submission needs (the rest take the table's defaults when stored).
ROW = dict(
    name="j",
    user="u",
    uid=1,
    gid=1,
    partition="local",
    num_nodes=1,
    num_cpus=1,
    num_tasks=1,
    tasks_per_node=[1],
    cpus_per_node=[1],
    submit_dir="/tmp",
    workdir="/tmp",
    state="PENDING",
    reason="None",
    submit_time=100.0,
    executor="local",
)
# A record's columns that are not None when a job is stored without them.
RECORD = dict(
    gpus_per_node=0, kill_on_invalid_dep=False, requeue=True, batch=True, restarts=0, nice=0
)


def job_row(job_id: int, submission: int | None = None, **fields) -> dict:
    """A row for state.add_submission: ROW, then `fields`; its submission is its own id
    unless given."""
    row = dict(job_id=job_id, submission=job_id if submission is None else submission, **ROW)
    row.update(fields)
    return row


def job_record(job_id: int, **fields) -> state.JobRecord:
    """A JobRecord with every column: job_row's, RECORD's, None for the rest, then `fields`."""
    row = dict.fromkeys(state.JobRecord.__annotations__)
    row.update(RECORD)
    row.update(job_row(job_id, **fields))
    return state.JobRecord(**row)
