"""Job state: one SQLite database (WAL) per state directory, shared by every command and the agent.

Every command opens it for a few short transactions; the agent is the only long-lived
writer. Writes take the write lock up front (BEGIN IMMEDIATE) and the busy timeout is long,
so concurrent commands queue instead of failing with `database is locked`.

Imports stay light (stdlib only): sbatch and squeue load this module on every call.

One `jobs` row per job, and per array element (its own `job_id`; `array_job_id` is the id
sbatch printed, and the element with the highest index carries that id itself, as the last
element to start does on Slurm). Rows move PENDING -> CONFIGURING -> RUNNING -> (COMPLETING)
-> a finished state; only the agent and the control functions in scheduler.py move them.
The read-side commands only read: `find_jobs`/`get_job` return `JobRecord`s."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager

from slurmsky.core.states import (
    ACTIVE_STATES,
    AGENT_REASONS,
    FINISHED_STATES,
    STARTED_STATES,
    STATE_CODES,
)
from slurmsky.errors import SlurmError

SCHEMA_VERSION = 3
BUSY_TIMEOUT = 120.0  # s a command waits for another's write lock before failing
MIN_JOB_AGE = 300  # seconds a finished job stays in `squeue -t all` (Slurm's MinJobAge)


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,          -- the job id sbatch printed (the array id for arrays)
    spec TEXT NOT NULL,              -- the node runtime's spec (JSON)
    task TEXT                        -- the SkyPilot task (JSON), for the sky executor
);
CREATE TABLE jobs (
    job_id INTEGER PRIMARY KEY,
    submission INTEGER NOT NULL REFERENCES submissions(id),
    array_job_id INTEGER,            -- NULL unless an array element
    array_task_id INTEGER,
    array_throttle INTEGER,          -- %p of --array; NULL: none
    array_rank INTEGER,              -- position of the element in the array (SKYPILOT_JOB_RANK)
    name TEXT NOT NULL,
    user TEXT NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    account TEXT,
    partition TEXT NOT NULL,
    num_nodes INTEGER NOT NULL,      -- the minimum asked, then the count allocated
    max_nodes INTEGER,               -- the maximum of --nodes as asked; NULL: none given
    num_cpus INTEGER NOT NULL,       -- whole job
    num_tasks INTEGER NOT NULL,
    cpus_per_task INTEGER,
    tasks_per_node TEXT NOT NULL,    -- JSON list, one entry per node
    cpus_per_node TEXT NOT NULL,     -- JSON list
    mem_per_node INTEGER,            -- MB; NULL: not asked
    mem_per_cpu INTEGER,             -- MB; NULL: not asked
    gpus_per_node INTEGER NOT NULL DEFAULT 0,
    gres TEXT,
    time_limit INTEGER,              -- minutes; NULL: UNLIMITED
    dependency_spec TEXT,            -- --dependency as given
    dependency TEXT,                 -- squeue %E now, e.g. afterok:7(unfulfilled); NULL once met
    kill_on_invalid_dep INTEGER NOT NULL DEFAULT 0,
    comment TEXT,
    command TEXT,                    -- script path (NULL for stdin/--wrap)
    submit_dir TEXT NOT NULL,
    workdir TEXT NOT NULL,
    stdout TEXT,
    stderr TEXT,
    stdin TEXT,
    requeue INTEGER NOT NULL DEFAULT 1,
    batch INTEGER NOT NULL DEFAULT 1, -- 0 for srun/salloc allocations
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT 'None',
    held TEXT,                       -- 'user' or 'admin' while held
    submit_time REAL NOT NULL,
    begin_time REAL,                 -- --begin (or requeue's delay)
    eligible_time REAL,
    start_time REAL,
    end_time REAL,
    exit_code INTEGER,
    exit_signal INTEGER,
    nodelist TEXT,
    batch_host TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,
    kill_action TEXT,                -- 'cancel' or 'requeue': a started job the agent must end
    kill_sent REAL,                  -- when the agent asked the executor to end it
    cancelled_by INTEGER,            -- uid
    executor TEXT NOT NULL,          -- local or sky
    executor_ref TEXT,               -- JSON the executor needs to find the job again
    result TEXT                      -- JSON: the node runtime's RESULT (the batch step's end)
);
CREATE INDEX jobs_reason ON jobs(state, reason);
CREATE INDEX jobs_executor ON jobs(executor, state);
CREATE INDEX jobs_array ON jobs(array_job_id, array_task_id);
CREATE INDEX jobs_user ON jobs(user);
CREATE INDEX jobs_name ON jobs(name);
CREATE INDEX jobs_end ON jobs(end_time);
CREATE INDEX jobs_submit ON jobs(submit_time);
CREATE INDEX jobs_pending ON jobs(state, submission, IFNULL(array_task_id, 0));
CREATE TABLE signals (             -- scancel --signal requests, for the agent to deliver
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    signal INTEGER NOT NULL,
    scope TEXT NOT NULL              -- batch, steps or full
);
"""


# version -> the statements that bring a state database from it to the next version
_MIGRATIONS = {
    1: ("ALTER TABLE jobs ADD COLUMN max_nodes INTEGER",),
    2: (
        "CREATE INDEX IF NOT EXISTS jobs_pending "  # an agent of version 2 may have made it
        "ON jobs(state, submission, IFNULL(array_task_id, 0))",
        "CREATE INDEX IF NOT EXISTS jobs_reason ON jobs(state, reason)",
        "CREATE INDEX IF NOT EXISTS jobs_executor ON jobs(executor, state)",
        "DROP INDEX IF EXISTS jobs_state",
    ),
}


def seconds_per_minute(environ=os.environ) -> float:
    """How long Slurm's minute lasts: 60 s, or $SLURMSKY_SECONDS_PER_MINUTE, which only tests
    set, to see --time limits and the requeue delay pass quickly."""
    return float(environ.get("SLURMSKY_SECONDS_PER_MINUTE") or 60)


def home(environ=os.environ) -> str:
    """The state directory: $SLURMSKY_HOME, default ~/.local/state/slurmsky."""
    path = environ.get("SLURMSKY_HOME")
    if not path:
        path = os.path.join(
            environ.get("HOME") or os.path.expanduser("~"), ".local", "state", "slurmsky"
        )
    return path


def busy_timeout(environ=os.environ) -> float:
    """Seconds to wait for the write lock: BUSY_TIMEOUT, or $SLURMSKY_BUSY_TIMEOUT, which only
    tests set, to see a lock held for longer fail quickly."""
    return float(environ.get("SLURMSKY_BUSY_TIMEOUT") or BUSY_TIMEOUT)


def ensure_home(environ=os.environ) -> str:
    """Create the state directory, private (0700) since jobs' environments are stored in it,
    and make it private again when it is found more open (made by hand, or by an older
    slurmsky)."""
    path = home(environ)
    os.makedirs(path, mode=0o700, exist_ok=True)
    _keep_private(path, 0o700)
    return path


def _keep_private(path: str, mode: int) -> None:
    """chmod path to mode if group or others may use it. Not ours to change (a state dir
    another user shares with us on purpose), or gone: left as it is."""
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, mode)
    except OSError:
        pass


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
        if self.array_job_id is None or self.array_task_id is None:
            return str(self.job_id)
        return f"{self.array_job_id}_{self.array_task_id}"

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
)


def _record(row: sqlite3.Row | tuple, columns: tuple[str, ...] = _COLUMNS) -> JobRecord:
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


def _encode(values: dict) -> dict:
    import json

    out = dict(values)
    for key in _JSON_COLUMNS:
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key])
    for key in _TEXT_COLUMNS.intersection(out):
        out[key] = bindable(out[key])
    return out


# Text the user gave as bytes that are not UTF-8 (a job name, a path, a comment) is kept as
# those bytes, as Slurm keeps it: stored as TEXT holding them (CAST of the bytes), read back
# with undecodable bytes as surrogates (surrogateescape), as Python's os and argv give them.
# Reading so costs ~1 us a value, so a connection does it only once the state holds such
# text (RAW_TEXT_MARK, made before the first such row is written) or when it lives long.
RAW_TEXT_MARK = "raw-text"
_TEXT_COLUMNS = frozenset(  # those that may hold the user's text (names, paths, options)
    ("name", "comment", "command", "submit_dir", "workdir", "stdout", "stderr", "stdin")
    + ("gres", "account", "partition", "dependency_spec", "dependency", "reason")
)


def _raw_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def bindable(value):
    """A value for a `CAST(? AS TEXT)` parameter: text that UTF-8 cannot encode (it holds
    surrogates) as its bytes."""
    if value.__class__ is str and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


def _note_raw_text(conn: sqlite3.Connection, values) -> None:
    """Before bytes that are not UTF-8 are first stored: mark the state, and read it so."""
    if any(v.__class__ is bytes for v in values):
        mark = os.path.join(home(), RAW_TEXT_MARK)
        if not os.path.exists(mark):
            os.close(os.open(mark, os.O_WRONLY | os.O_CREAT, 0o600))
        conn.text_factory = _raw_text


def connect(environ=os.environ, *, long_lived: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the state database; autocommit, transactions are explicit.
    A state that cannot be used raises `unusable`'s SlurmError. A long-lived connection
    (the agent's, an allocation's) reads text that is not UTF-8 even if none was stored
    when it opened."""
    try:
        path = os.path.join(ensure_home(environ), "state.db")
    except OSError as exc:
        raise unusable(exc, environ) from None
    timeout = busy_timeout(environ)
    for suffix in ("", "-wal", "-shm"):  # SQLite gives the -wal and -shm the database's mode
        _keep_private(path + suffix, 0o600)
    try:
        if not os.path.exists(path):
            _create(path)
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            _migrate(conn, path)
        conn.execute("PRAGMA synchronous = NORMAL")
    except (sqlite3.Error, OSError) as exc:
        raise unusable(exc, environ) from None
    if long_lived or os.path.exists(os.path.join(os.path.dirname(path), RAW_TEXT_MARK)):
        conn.text_factory = _raw_text
    return conn


def _create(path: str) -> None:
    """A new state database, made whole beside `path` and linked into place: commands that
    start at once on a new state never see it half made (nor race to switch it to WAL, which
    fails one of them with `database is locked` at once)."""
    aside = f"{path}.new.{os.getpid()}"
    if os.path.exists(aside):
        os.unlink(aside)  # left by a process of this number that died making it
    try:
        os.close(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # not the umask's
        conn = sqlite3.connect(aside, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            with write(conn):
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO meta VALUES ('next_job_id', 1)")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            conn.close()  # the last connection: its WAL is folded in and removed
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another command made it first: use that one
    finally:
        os.unlink(aside)


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    with write(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process won?
        if version == SCHEMA_VERSION:
            return
        if version in _MIGRATIONS:
            for v in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[v]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        if version > SCHEMA_VERSION:
            raise SlurmError(
                f"slurmsky state {path} has schema version {version}, newer than "
                f"this slurmsky's {SCHEMA_VERSION}; use the slurmsky that wrote "
                "it, or move it aside to start afresh"
            )
        raise SlurmError(
            f"slurmsky state {path} is a database slurmsky did not write "
            f"(schema version {version}); move it aside to start afresh"
        )


def unusable(exc: sqlite3.Error | OSError, environ=os.environ) -> SlurmError:
    """What a command says when the state fails it (`<command>: error: ...`): the file,
    SQLite's or the system's words, and what to do."""
    where = home(environ)
    if isinstance(exc, OSError):
        return SlurmError(
            f"slurmsky state directory {where} cannot be used "
            f"({exc.strerror or exc}); make it a writable directory or set "
            "SLURMSKY_HOME to one"
        )
    path = os.path.join(where, "state.db")
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        advice = (
            "is not a database ({}); move it aside (with any state.db-wal and "
            "state.db-shm) to start afresh"
        )
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        advice = (
            f"is locked by another process for over {busy_timeout(environ):g} s ({{}}); "
            f"end the process holding it (fuser {path}) or try again later"
        )
    elif name == "SQLITE_FULL" or _full(where):
        advice = "cannot be written ({}): its filesystem is full; free space on it"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        advice = (
            "cannot be written ({}); make it and its directory writable or set "
            "SLURMSKY_HOME to another directory"
        )
    else:
        advice = "failed ({})"
    return SlurmError(f"slurmsky state {path} " + advice.format(exc))


def _full(path: str) -> bool:
    try:
        return os.statvfs(path).f_bavail == 0
    except OSError:
        return False


@contextmanager
def write(conn: sqlite3.Connection):
    """A short write transaction holding the write lock from its start (no upgrade deadlocks)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def allocate_ids(conn: sqlite3.Connection, count: int) -> int:
    """Reserve `count` consecutive job ids and return the first; ids are never reused."""
    with write(conn):
        first = conn.execute("SELECT value FROM meta WHERE key = 'next_job_id'").fetchone()[0]
        conn.execute("UPDATE meta SET value = ? WHERE key = 'next_job_id'", (first + count,))
    return first


def add_submission(
    conn: sqlite3.Connection, submission: int, spec: dict, task: dict | None, jobs: list[dict]
) -> None:
    """Store one submission and its job rows (one per array element) in one transaction."""
    if not jobs:
        return
    import json

    rows = [_encode(j) for j in jobs]
    cols = list(rows[0])
    marks = ", ".join("CAST(? AS TEXT)" if c in _TEXT_COLUMNS else "?" for c in cols)
    sql = f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({marks})"
    values = [tuple(r[c] for c in cols) for r in rows]
    _note_raw_text(conn, values[0])
    with write(conn):
        conn.execute(
            "INSERT INTO submissions VALUES (?, ?, ?)",
            (submission, json.dumps(spec), json.dumps(task) if task else None),
        )
        conn.executemany(sql, values)


def update_job(
    conn: sqlite3.Connection, job_id: int, *, where_state: tuple | None = None, **values
) -> bool:
    """Set columns of one job; with `where_state`, only if its state is one of those.

    Returns whether the row changed: the compare-and-set that keeps the agent and the
    commands from overwriting each other's transitions.
    """
    values = _encode(values)
    _note_raw_text(conn, values.values())
    sets = ", ".join(f"{k} = CAST(? AS TEXT)" if k in _TEXT_COLUMNS else f"{k} = ?" for k in values)
    sql = f"UPDATE jobs SET {sets} WHERE job_id = ?"
    args = list(values.values()) + [job_id]
    if where_state:
        sql += f" AND state IN ({', '.join('?' * len(where_state))})"
        args += list(where_state)
    with write(conn):
        return conn.execute(sql, args).rowcount > 0


def remove_pending_tasks(conn: sqlite3.Connection, array_job_id: int, indices) -> int | None:
    """Take never-started pending elements out of an array, as `scancel ID_INDEX` does on
    Slurm: they leave the array's pending record, and nothing lists or accounts them after.

    The array's own id passes to the highest remaining such element (the last to start).
    When none remains, Slurm cancels the pending record itself, shown by the array's id alone:
    one row stays, with that id and no index, and its id is returned for the caller to
    cancel; otherwise None.
    """
    indices = set(indices)
    with write(conn):
        rows = conn.execute(
            "SELECT job_id, array_task_id FROM jobs WHERE array_job_id = ? AND state = "
            "'PENDING' AND start_time IS NULL AND restarts = 0 AND array_task_id IS NOT NULL "
            "ORDER BY array_task_id",
            (array_job_id,),
        ).fetchall()
        gone = [job_id for job_id, index in rows if index in indices]
        kept = [job_id for job_id, index in rows if index not in indices]
        if not gone:
            return None
        record = None
        if not kept:  # the pending record itself: the row with the array's id, if pending
            record = array_job_id if array_job_id in gone else gone[-1]
            gone.remove(record)
        conn.execute(f"DELETE FROM jobs WHERE job_id IN ({', '.join('?' * len(gone))})", gone)
        if record is not None:
            conn.execute("UPDATE jobs SET array_task_id = NULL WHERE job_id = ?", (record,))
        elif array_job_id in gone:
            conn.execute("UPDATE jobs SET job_id = ? WHERE job_id = ?", (array_job_id, kept[-1]))
        return record


def add_signal(conn: sqlite3.Connection, job_id: int, signal: int, scope: str) -> None:
    with write(conn):
        conn.execute(
            "INSERT INTO signals (job_id, signal, scope) VALUES (?, ?, ?)", (job_id, signal, scope)
        )


def take_signals(conn: sqlite3.Connection) -> list[tuple[int, int, str]]:
    """The queued scancel --signal requests, removed from the queue."""
    with write(conn):
        rows = conn.execute("SELECT job_id, signal, scope FROM signals ORDER BY id").fetchall()
        conn.execute("DELETE FROM signals")
    return [tuple(r) for r in rows]


_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"


MAX_INTEGER = 2**63 - 1  # SQLite's largest INTEGER: a larger job id or index names no job


def get_job(conn: sqlite3.Connection, job_id: int) -> JobRecord | None:
    if job_id > MAX_INTEGER:
        return None
    row = conn.execute(_SELECT + " WHERE job_id = ?", (job_id,)).fetchone()
    return _record(row) if row else None


def get_spec(conn: sqlite3.Connection, submission: int) -> tuple[dict, dict | None]:
    """A submission's runtime spec and SkyPilot task."""
    import json

    spec, task = conn.execute(
        "SELECT spec, task FROM submissions WHERE id = ?", (submission,)
    ).fetchone()
    return json.loads(spec), (json.loads(task) if task else None)


def find_jobs(
    conn: sqlite3.Connection,
    *,
    ids=None,
    tasks=None,
    states=None,
    users=None,
    names=None,
    partitions=None,
    active_or_ended_after: float | None = None,
    submitted_after: float | None = None,
    light: bool = False,
) -> list[JobRecord]:
    """Jobs matching every given filter, by job id.

    ids: job ids; an array's id matches all its elements (as `squeue -j 7` does).
    tasks: (array id, index) pairs (`7_3`). ids and tasks together: either matches.
    active_or_ended_after: active jobs plus those that ended at or after this time
    (`squeue -t all` passes now - MIN_JOB_AGE).
    light: a listing's records, with LIST_COLUMNS only until another column is read.
    """
    where_text, args = _where(
        ids, tasks, states, users, names, partitions, active_or_ended_after, submitted_after
    )
    if not light:
        return [_record(r) for r in conn.execute(_SELECT + where_text + " ORDER BY job_id", args)]
    sql = f"SELECT {', '.join(LIST_COLUMNS)} FROM jobs{where_text} ORDER BY job_id"
    records = [_record(r, LIST_COLUMNS) for r in conn.execute(sql, args)]
    for record in records:
        record.__dict__[_CONN] = conn
    return records


def list_rows(
    conn: sqlite3.Connection,
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
) -> list[tuple]:
    """A listing as plain rows: `columns` (SQL expressions over `jobs`, their `?`s bound to
    `column_args`) of the jobs find_jobs would return with the same filters, in `order_by`'s
    order (its `?`s bound to `order_args`). No record per job: a long queue costs what SQLite
    computes and Python prints."""
    where_text, args = _where(
        ids, tasks, states, users, names, partitions, active_or_ended_after, None
    )
    sql = f"SELECT {', '.join(columns)} FROM jobs{where_text} ORDER BY {order_by}"
    return conn.execute(sql, [*column_args, *args, *order_args]).fetchall()


def _where(
    ids, tasks, states, users, names, partitions, active_or_ended_after, submitted_after
) -> tuple[str, list]:
    """find_jobs' filters as a WHERE clause and its arguments."""
    where, args = [], []

    def one_of(column: str, values) -> str:
        values = [bindable(v) for v in values]
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
        if tasks:  # one row-value list: an OR per pair would overflow SQLite's expression depth
            alts.append(
                "(array_job_id, array_task_id) IN (VALUES "
                + ", ".join(["(?, ?)"] * len(tasks))
                + ")"
            )
            args.extend(value for pair in tasks for value in pair)
        where.append("(" + (" OR ".join(alts) or "0") + ")")
    if states is not None:
        where.append(one_of("state", states))
    if users is not None:
        where.append(one_of("user", users))
    if names is not None:
        where.append(one_of("name", names))
    if partitions is not None:
        where.append(one_of("partition", partitions))
    if active_or_ended_after is not None:
        where.append("(end_time IS NULL OR end_time >= ?)")
        args.append(active_or_ended_after)
    if submitted_after is not None:
        where.append("submit_time >= ?")
        args.append(submitted_after)
    return (" WHERE " + " AND ".join(where) if where else ""), args


def active_jobs(conn: sqlite3.Connection) -> list[JobRecord]:
    """Jobs not yet finished (what the agent works on), in submission order: an array's
    elements by index, as Slurm starts them (the element with the highest index holds the
    array's own id, which is the lowest, yet starts last)."""
    jobs = find_jobs(conn, states=ACTIVE_STATES)
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
    "name",
    "user",
    "partition",
    "num_nodes",
    "max_nodes",
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
)
_PASS_ORDER = "submission, IFNULL(array_task_id, 0), job_id"
# after (submission, index, job_id), within the submission: the form the index can seek
_AFTER = (
    "state = 'PENDING' AND submission = ? AND IFNULL(array_task_id, 0) >= ? "
    "AND (IFNULL(array_task_id, 0), job_id) > (?, ?)"
)
# The columns that make the pending elements of an array wait alike (scheduler._release).
_ALIKE_COLUMNS = (
    "executor",
    "partition",
    "num_nodes",
    "max_nodes",
    "cpus_per_node",
    "mem_per_node",
    "mem_per_cpu",
    "gpus_per_node",
    "array_throttle",
    "dependency_spec",
    "kill_on_invalid_dep",
)
_ALIKE = (
    "held IS NULL AND reason != 'PartitionConfig' AND (begin_time IS NULL OR "
    f"begin_time <= ?) AND ({', '.join(_ALIKE_COLUMNS)}) IS "
    f"(SELECT {', '.join(_ALIKE_COLUMNS)} FROM jobs WHERE job_id = ?)"
)


def _pass_records(conn: sqlite3.Connection, sql: str, args, limit: int = -1) -> list[JobRecord]:
    records = [
        _record(r, PASS_COLUMNS)
        for r in conn.execute(
            f"SELECT {', '.join(PASS_COLUMNS)} FROM jobs WHERE {sql} ORDER BY {_PASS_ORDER} LIMIT ?",
            (*args, limit),
        )
    ]
    for record in records:
        record.__dict__[_CONN] = conn
    return records


def started_jobs(conn: sqlite3.Connection) -> list[JobRecord]:
    """The started jobs, in active_jobs' order."""
    jobs = find_jobs(conn, states=STARTED_STATES)
    jobs.sort(key=lambda j: (j.submission, j.array_task_id or 0))
    return jobs


def active_executors(conn: sqlite3.Connection) -> list[str]:
    """The executors of the active jobs."""
    sql = (
        f"SELECT DISTINCT executor FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE_STATES))})"
    )
    return [r[0] for r in conn.execute(sql, ACTIVE_STATES)]


def pending_jobs(conn: sqlite3.Connection, after: tuple = (), limit: int = 64) -> list[JobRecord]:
    """Up to `limit` pending jobs (PASS_COLUMNS) in active_jobs' order, from after `after`:
    () from the first, (submission,) past that submission, or (submission, index, job_id)
    past that job."""
    if not after:
        return _pass_records(conn, "state = 'PENDING'", (), limit)
    if len(after) == 1:
        return _pass_records(conn, "state = 'PENDING' AND submission > ?", after, limit)
    submission, index, job_id = after
    jobs = _pass_records(conn, _AFTER, (submission, index, index, job_id), limit)
    if len(jobs) < limit:
        jobs += _pass_records(
            conn, "state = 'PENDING' AND submission > ?", (submission,), limit - len(jobs)
        )
    return jobs


def _rest_args(head: JobRecord) -> tuple:
    return head.submission, head.array_task_id or 0, head.array_task_id or 0, head.job_id


def pending_unlike(conn: sqlite3.Connection, head: JobRecord, now: float) -> list[JobRecord]:
    """The pending jobs of head's submission after it that do not wait alike with it: held,
    not yet at their begin time, in their first pass (PartitionConfig), or asking otherwise."""
    return _pass_records(
        conn, f"{_AFTER} AND NOT ({_ALIKE})", (*_rest_args(head), now, head.job_id)
    )


def pending_among(conn: sqlite3.Connection, ids, head: JobRecord) -> list[JobRecord]:
    """Those of the jobs `ids` that are still pending in head's submission after it."""
    ids = list(ids)
    return _pass_records(
        conn, f"job_id IN ({', '.join('?' * len(ids))}) AND {_AFTER}", (*ids, *_rest_args(head))
    )


KEEP = object()  # set_pending_alike: leave the column as it is


def set_pending_alike(
    conn: sqlite3.Connection,
    head: JobRecord,
    now: float,
    reason: str,
    dependency=KEEP,
    eligible: bool = False,
) -> int:
    """Give the pending jobs of head's submission after it that wait alike with it (not
    pending_unlike's) `reason`, and `dependency` (squeue's %E) unless KEEP; with `eligible`,
    an eligible time of `now` if they have none. Only rows that change are written; returns
    their count."""
    args: list
    sets, differs, args, cond = ["reason = ?"], ["reason IS NOT ?"], [reason], [reason]
    if dependency is not KEEP:
        sets.append("dependency = ?")
        differs.append("dependency IS NOT ?")
        args.append(dependency)
        cond.append(dependency)
    if eligible:
        sets.append("eligible_time = IFNULL(eligible_time, ?)")
        differs.append("eligible_time IS NULL")
        args.append(now)
    sql = (
        f"UPDATE jobs SET {', '.join(sets)} WHERE {_AFTER} AND {_ALIKE} "
        f"AND ({' OR '.join(differs)})"
    )
    with write(conn):
        return conn.execute(sql, (*args, *_rest_args(head), now, head.job_id, *cond)).rowcount


def needs_agent(conn: sqlite3.Connection, followed: tuple[str, ...] = ()) -> bool:
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


def active_jobs_exist(conn: sqlite3.Connection) -> bool:
    sql = f"SELECT 1 FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE_STATES))}) LIMIT 1"
    return conn.execute(sql, ACTIVE_STATES).fetchone() is not None
