"""A job's row and its record: `JobRecord` (what the commands show of a job), the columns
a listing or a pass reads, a pending record's elements named by index (`PendingElement`),
and the values a write binds (`_bind`: JSON, the user's text as it came)."""

from __future__ import annotations

import os

from slurmsky.core.state.db import RAW_TEXT_MARK, _raw_text, home, write
from slurmsky.core.states import FINISHED_STATES, STATE_CODES

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


class JobRecord:
    """One row of `jobs`: what the commands show about a job (or one array element).

    A plain class, not a dataclass: dataclasses imports inspect (~10 ms), and squeue reads
    this module on every call of a polling loop.
    """

    job_id: int
    submission: int
    array_job_id: int | None
    array_task_id: int | None
    array_throttle: int | None
    array_rank: int | None
    array_pending: str | None
    name: str
    user: str
    uid: int
    gid: int
    account: str | None
    partition: str
    num_nodes: int
    max_nodes: int | None
    num_cpus: int
    num_tasks: int
    cpus_per_task: int | None
    tasks_per_node: list
    cpus_per_node: list
    mem_per_node: int | None
    mem_per_cpu: int | None
    gpus_per_node: int
    gres: str | None
    time_limit: int | None
    dependency_spec: str | None
    dependency: str | None
    kill_on_invalid_dep: bool
    comment: str | None
    command: str | None
    submit_dir: str
    workdir: str
    stdout: str | None
    stderr: str | None
    stdin: str | None
    requeue: bool
    batch: bool
    state: str
    reason: str
    held: str | None
    submit_time: float
    begin_time: float | None
    eligible_time: float | None
    start_time: float | None
    end_time: float | None
    exit_code: int | None
    exit_signal: int | None
    nodelist: str | None
    batch_host: str | None
    restarts: int
    kill_action: str | None
    kill_sent: float | None
    cancelled_by: int | None
    executor: str
    executor_ref: dict | None
    result: dict | None
    het_job_id: int | None
    het_job_offset: int | None
    priority: int | None
    deadline: float | None
    nice: int
    oversubscribe: str | None

    def __init__(self, **values):
        self.__dict__.update((name, values[name]) for name in _COLUMNS)

    def __getattr__(self, name: str):
        """What a record read from the state holds but has not made an attribute yet: a JSON
        column, decoded when first read, or, for a listing's record (`find_jobs(light=True)`),
        a column it did not select, read with the rest of its row when first needed."""
        values = self.__dict__
        if _RAW + name in values:
            import json  # here: a listing that reads no JSON column never imports json (nor re)

            value = values[name] = json.loads(values.pop(_RAW + name))
            return value
        conn = values.pop(_CONN, None)
        if conn is None or name not in _COLUMN_SET:
            raise AttributeError(name)
        row = conn.execute(_SELECT + " WHERE job_id = ?", (values["job_id"],)).fetchone()
        for key, value in _record(row).__dict__.items():
            values.setdefault(key, value)
        return getattr(self, name)

    @property
    def display_id(self) -> str:
        """`12` or, for an array element, `ARRAYID_INDEX` (`7_3`); an array whose pending
        elements were all cancelled by index is its id alone."""
        if self.het_job_id is not None:
            return f"{self.het_job_id}+{self.het_job_offset}"
        if self.array_job_id is None or self.array_task_id is None:
            return str(self.job_id)
        return f"{self.array_job_id}_{self.array_task_id}"

    @property
    def virtual(self) -> bool:
        """An element still inside its array's pending record (not a row of its own)."""
        return False

    @property
    def state_code(self) -> str:
        return STATE_CODES[self.state]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def exit_text(self) -> str:
        """ExitCode as Slurm shows it: `code:signal`, `0:0` before the end."""
        return f"{self.exit_code or 0}:{self.exit_signal or 0}"


_COLUMNS = tuple(JobRecord.__annotations__)
_JSON_COLUMNS = ("tasks_per_node", "cpus_per_node", "executor_ref", "result")
_BOOL_COLUMNS = ("kill_on_invalid_dep", "requeue", "batch")


_COLUMN_SET = frozenset(_COLUMNS)
_RAW = "_json_"  # the prefix a JSON column's text is kept under until it is read
_CONN = "_conn"  # a listing's record: the connection that reads the rest of its row
# What squeue's and sacct's listings read of every job; selecting only these makes a
# listing of 10 000 jobs ~3x cheaper to fetch (each further column costs as much).
LIST_COLUMNS = (
    "job_id",
    "submission",
    "array_job_id",
    "array_task_id",
    "array_throttle",
    "array_pending",
    "name",
    "user",
    "uid",
    "partition",
    "num_nodes",
    "num_cpus",
    "time_limit",
    "state",
    "reason",
    "held",
    "submit_time",
    "begin_time",
    "start_time",
    "end_time",
    "nodelist",
    "executor",
    "exit_code",
    "exit_signal",
    "batch",
    "restarts",
    "account",
    "result",
    "cpus_per_node",
    "het_job_id",
    "het_job_offset",
    "priority",
    "nice",
    "oversubscribe",
)


def _record(row: tuple, columns: tuple[str, ...] = _COLUMNS) -> JobRecord:
    record = object.__new__(JobRecord)
    values = record.__dict__
    values.update(zip(columns, row))
    for key in _JSON_COLUMNS:
        if values.get(key) is not None:
            values[_RAW + key] = values.pop(key)
    for key in _BOOL_COLUMNS:
        if key in values:
            values[key] = bool(values[key])
    return record


class PendingElement(JobRecord):
    """An element still inside its array's pending record, named by its index (`squeue -r`,
    `7_3`): the record's values with its own index; its id is the array's, as Slurm shows
    it until the element is split off (`split_element`)."""

    @property
    def virtual(self) -> bool:
        return True

    def _path(self, key: str) -> str | None:
        pattern = self.__dict__["_patterns"].get(key)
        if pattern is None:
            return None
        return element_path(pattern, self, self.job_id, self.name)

    stdout = property(lambda self: self._path("stdout"))  # type: ignore[assignment]
    stderr = property(lambda self: self._path("stderr"))  # type: ignore[assignment]
    stdin = property(lambda self: self._path("stdin"))  # type: ignore[assignment]


def pending_element(record: JobRecord, index: int) -> PendingElement:
    """The element `index` of a pending record, as a record of its own."""
    element = object.__new__(PendingElement)
    values = element.__dict__
    values.update(record.__dict__)
    values.pop(_CONN, None)
    values["_patterns"] = {k: getattr(record, k) for k in ("stdout", "stderr", "stdin")}
    for key in ("stdout", "stderr", "stdin"):
        values.pop(key, None)
    values.update(array_task_id=index, array_pending=None)
    return element


def element_path(pattern: str, rec: JobRecord, job_id: int, job_name: str) -> str:
    """A pending record's --output/--error/--input pattern expanded for one of its elements
    (`%N` kept for the node), joined to the working directory."""
    from slurmsky.runtime.filepattern import expand

    name = expand(
        pattern,
        job_id=job_id,
        array_job_id=rec.array_job_id,
        array_task_id=rec.array_task_id,
        job_name=job_name,
        user=rec.user,
        node_name="%N",
    )
    return os.path.join(rec.workdir, name)


def _bind(conn: Connection, values: dict) -> dict:
    """Column values to write, each bound to its `_mark`: JSON columns as their text, the
    user's text that UTF-8 cannot encode as its bytes (the state marked before such bytes
    are first stored). Every write of a row's columns goes through here."""
    import json

    out = dict(values)
    for key in _JSON_COLUMNS:
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key])
    for key in _TEXT_COLUMNS.intersection(out):
        out[key] = bindable(out[key])
    _note_raw_text(conn, out.values())
    return out


def _mark(column: str) -> str:
    """The SQL parameter for a column's value from `_bind`: the user's text is CAST to TEXT
    (bytes bound as they are would be stored as a BLOB)."""
    return "CAST(? AS TEXT)" if column in _TEXT_COLUMNS else "?"


# Text the user gave as bytes that are not UTF-8 (a job name, a path, a comment) is kept as
# those bytes, as Slurm keeps it: stored as TEXT holding them (CAST of the bytes), read back
# with undecodable bytes as surrogates (surrogateescape), as Python's os and argv give them.
# Reading so costs ~1 us a value, so a connection does it only once the state holds such
# text (db.RAW_TEXT_MARK, made before the first such row is written) or when it lives long.
_TEXT_COLUMNS = frozenset(  # those that may hold the user's text (names, paths, options)
    ("name", "comment", "command", "submit_dir", "workdir", "stdout", "stderr", "stdin")
    + ("gres", "account", "partition", "dependency_spec", "dependency", "reason")
)


def bindable(value):
    """A value for a `CAST(? AS TEXT)` parameter: text that UTF-8 cannot encode (it holds
    surrogates) as its bytes."""
    if value.__class__ is str and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


def _note_raw_text(conn: Connection, values) -> None:
    """Before bytes that are not UTF-8 are first stored: mark the state, and read it so."""
    if any(v.__class__ is bytes for v in values):
        mark = os.path.join(home(), RAW_TEXT_MARK)
        if not os.path.exists(mark):
            os.close(os.open(mark, os.O_WRONLY | os.O_CREAT, 0o600))
        conn.text_factory = _raw_text


def names_sql(columns) -> str:
    """Columns as a SQL list (`user` quoted: PostgreSQL reserves the word)."""
    return ", ".join('"user"' if c == "user" else c for c in columns)


_SELECT = f"SELECT {names_sql(_COLUMNS)} FROM jobs"


MAX_INTEGER = 2**63 - 1  # SQLite's largest INTEGER: a larger job id or index names no job


def get_job(conn: Connection, job_id: int) -> JobRecord | None:
    if job_id > MAX_INTEGER:
        return None
    row = conn.execute(_SELECT + " WHERE job_id = ?", (job_id,)).fetchone()
    return _record(row) if row else None


def update_job(
    conn: Connection, job_id: int, *, where_state: tuple | None = None, **values
) -> bool:
    """Set columns of one job; with `where_state`, only if its state is one of those.

    Returns whether the row changed: the compare-and-set that keeps the agent and the
    commands from overwriting each other's transitions.
    """
    values = _bind(conn, values)
    sets = ", ".join(f"{names_sql([k])} = {_mark(k)}" for k in values)
    sql = f"UPDATE jobs SET {sets} WHERE job_id = ?"
    args = list(values.values()) + [job_id]
    if where_state:
        sql += f" AND state IN ({', '.join('?' * len(where_state))})"
        args += list(where_state)
    with write(conn):
        return conn.execute(sql, args).rowcount > 0
