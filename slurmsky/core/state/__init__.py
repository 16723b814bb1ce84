"""Job state: one SQLite database (WAL) per state directory, shared by every command and the agent.

One `jobs` row per job. An array is, as on Slurm, one pending record until its elements
start: the row with the array's id holds the indices not yet split off (`array_pending`,
runtime.indexset's text: `0-99999` costs what `0` does). An element becomes its own row
when it is split off (`split_element`: it starts, or is held, updated or requeued alone),
with the id reserved for its rank at submission (array id + 1 + rank), or the array's own
id when it is the last to leave the record, which then is that element. Rows move PENDING
-> CONFIGURING -> RUNNING -> (COMPLETING) -> a finished state; only the agent and the
control functions in scheduler.py move them. The read-side commands only read:
`find_jobs`/`get_job` return `JobRecord`s (`PendingElement`s for the pending record's
elements named by index).

One module a seam, lowest first (each imports only those before it): `db` (the directory,
schema, migrations, connect, the write lock), `records` (a row as a JobRecord and back),
`submissions` (ids, specs, signals), `arrays` (a pending record's elements), `attempts` (a
requeued job's earlier runs), `queries` (the
read commands'), `agent` (the agent's pass), `handed` (a backend's jobs handed on to an
outside queue). Callers use the names below, as `state.NAME`.
Imports stay light (stdlib only): sbatch and squeue load this package on every call."""

from slurmsky.core.state.agent import (
    PASS_COLUMNS,
    active_executors,
    active_jobs,
    active_jobs_exist,
    needs_agent,
    nice_pending,
    pass_position,
    pending_jobs,
    started_jobs,
)
from slurmsky.core.state.arrays import (
    element_id,
    remove_pending_tasks,
    set_array_throttle,
    split_element,
)
from slurmsky.core.state.attempts import Attempt, attempts_of, keep_attempt
from slurmsky.core.state.db import (
    BUSY_TIMEOUT,
    RAW_TEXT_MARK,
    SCHEMA_VERSION,
    administer,
    busy_timeout,
    connect,
    ensure_home,
    home,
    seconds_per_minute,
    unusable,
    write,
)
from slurmsky.core.state.engine import StateError, location
from slurmsky.core.state.handed import (
    array_elements_out,
    cancelled_unsent,
    handed_jobs_exist,
    jobs_with_ref,
    killed_refs,
    lane_kept,
    name_lane_nodes,
    refs_with_token,
)
from slurmsky.core.state.queries import (
    MIN_JOB_AGE,
    arrays_exist,
    computes_sacct_listing,
    find_jobs,
    generation,
    het_sets,
    job_figures,
    list_rows,
    query_jobs,
    submitted_since,
    timeless,
    user_has_jobs,
)
from slurmsky.core.state.records import (
    LIST_COLUMNS,
    MAX_INTEGER,
    JobRecord,
    PendingElement,
    bindable,
    element_path,
    get_job,
    pending_element,
    update_job,
)
from slurmsky.core.state.submissions import (
    add_signal,
    add_submission,
    allocate_ids,
    blob,
    get_spec,
    latest_with_task,
    next_job_id,
    take_signals,
)

__all__ = [
    "BUSY_TIMEOUT",
    "StateError",
    "location",
    "RAW_TEXT_MARK",
    "SCHEMA_VERSION",
    "administer",
    "busy_timeout",
    "connect",
    "ensure_home",
    "home",
    "seconds_per_minute",
    "unusable",
    "write",
    "LIST_COLUMNS",
    "MAX_INTEGER",
    "JobRecord",
    "PendingElement",
    "bindable",
    "element_path",
    "get_job",
    "pending_element",
    "update_job",
    "add_signal",
    "add_submission",
    "allocate_ids",
    "blob",
    "get_spec",
    "latest_with_task",
    "next_job_id",
    "take_signals",
    "Attempt",
    "attempts_of",
    "keep_attempt",
    "element_id",
    "remove_pending_tasks",
    "set_array_throttle",
    "split_element",
    "MIN_JOB_AGE",
    "arrays_exist",
    "computes_sacct_listing",
    "find_jobs",
    "generation",
    "het_sets",
    "job_figures",
    "list_rows",
    "query_jobs",
    "submitted_since",
    "timeless",
    "user_has_jobs",
    "PASS_COLUMNS",
    "active_executors",
    "active_jobs",
    "active_jobs_exist",
    "handed_jobs_exist",
    "jobs_with_ref",
    "needs_agent",
    "pass_position",
    "nice_pending",
    "pending_jobs",
    "started_jobs",
    "array_elements_out",
    "cancelled_unsent",
    "killed_refs",
    "lane_kept",
    "name_lane_nodes",
    "refs_with_token",
]
