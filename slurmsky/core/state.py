"""Job state: one SQLite database (WAL) per state directory, shared by every command and the agent.

Every command opens it for a few short transactions; the agent is the only long-lived
writer. Writes take the write lock up front (BEGIN IMMEDIATE) and the busy timeout is long,
so concurrent commands queue instead of failing with `database is locked`.

Imports stay light (stdlib only): sbatch and squeue load this module on every call.

One `jobs` row per job. An array is, as on Slurm, one pending record until its elements
start: the row with the array's id holds the indices not yet split off (`array_pending`,
runtime.indexset's text: `0-99999` costs what `0` does). An element becomes its own row
when it is split off (`split_element`: it starts, or is held, updated or requeued alone),
with the id reserved for its rank at submission (array id + 1 + rank), or the array's own
id when it is the last to leave the record, which then is that element. Rows move PENDING
-> CONFIGURING -> RUNNING -> (COMPLETING) -> a finished state; only the agent and the
control functions in scheduler.py move them. The read-side commands only read:
`find_jobs`/`get_job` return `JobRecord`s (`PendingElement`s for the pending record's
elements named by index)."""

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

SCHEMA_VERSION = 6
BUSY_TIMEOUT = 120.0  # s a command waits for another's write lock before failing
MIN_JOB_AGE = 300  # seconds a finished job stays in `squeue -t all` (Slurm's MinJobAge)


# A job's place in a submission: its index, or a pending record's lowest
_INDEX = "coalesce(array_task_id, CAST(array_pending AS INTEGER), 0)"
# A pending job a pass has nothing to do for: held, with no dependency to follow, its reason
# already the hold's (it waits for `scontrol release`, which wakes the agent).
_IDLE = (
    "held IS NOT NULL AND dependency_spec IS NULL AND "
    "reason = CASE held WHEN 'admin' THEN 'JobHeldAdmin' ELSE 'JobHeldUser' END"
)
# The pending jobs a pass reads (pending_jobs), in its order: a partial index that holds no
# _IDLE job, so a pass over 100 000 held jobs reads none.
_WAITING = (
    f"CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs(state, submission, {_INDEX}) "
    f"WHERE state = 'PENDING' AND NOT ({_IDLE})"
)


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,          -- the job id sbatch printed (the array id for arrays)
    spec TEXT NOT NULL,              -- the runtime's spec (JSON), or with `shared` its job id
    task TEXT,                       -- the SkyPilot task (JSON), for the sky executor
    shared INTEGER REFERENCES blobs(id),      -- the spec but its ids and environment
    environment INTEGER REFERENCES blobs(id)  -- the spec's environment
);
CREATE TABLE blobs (                 -- what submissions share, each stored once: the jobs of a
    id INTEGER PRIMARY KEY,          -- loop of sbatch from one shell share their spec and
    text TEXT NOT NULL UNIQUE        -- environment (JSON): a job costs its rows, not copies
);
CREATE TABLE jobs (
    job_id INTEGER PRIMARY KEY,
    submission INTEGER NOT NULL REFERENCES submissions(id),
    array_job_id INTEGER,            -- NULL unless an array element
    array_task_id INTEGER,
    array_throttle INTEGER,          -- %p of --array; NULL: none
    array_rank INTEGER,              -- position of the element in the array (SKYPILOT_JOB_RANK)
    array_pending TEXT,              -- a pending record: its elements not split off (indexset)
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
    stdout TEXT,                     -- a pending record: the patterns (split_element expands)
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
CREATE INDEX jobs_pending ON jobs(state, submission,
    coalesce(array_task_id, CAST(array_pending AS INTEGER), 0));
-- and jobs_waiting (_WAITING), and _GENERATION's triggers
CREATE TABLE signals (             -- scancel --signal requests, for the agent to deliver
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    signal INTEGER NOT NULL,
    scope TEXT NOT NULL              -- batch, steps or full
);
"""


# meta's `generation` moves on with every change to a job's row (slurmctld's last_job_update):
# a listing made at one generation is the listing until the next (render/listing_cache.py).
# It starts at a random number, so a state made afresh does not repeat an old one's.
_GENERATION = (
    "INSERT OR IGNORE INTO meta VALUES ('generation', abs(random() % 1000000000000))",
    *(
        f"CREATE TRIGGER IF NOT EXISTS jobs_{change.lower()} AFTER {change} ON jobs "
        "BEGIN UPDATE meta SET value = value + 1 WHERE key = 'generation'; END"
        for change in ("INSERT", "UPDATE", "DELETE")
    ),
)


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
    3: (
        "ALTER TABLE submissions ADD COLUMN shared INTEGER REFERENCES blobs(id)",
        "ALTER TABLE submissions ADD COLUMN environment INTEGER REFERENCES blobs(id)",
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)",
        "ALTER TABLE jobs ADD COLUMN array_pending TEXT",
        "collapse_pending_arrays",
        "DROP INDEX jobs_pending",
        "CREATE INDEX jobs_pending ON jobs(state, submission, "
        "coalesce(array_task_id, CAST(array_pending AS INTEGER), 0))",
    ),
    4: (_WAITING,),
    5: _GENERATION,
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


def _bind(conn: sqlite3.Connection, values: dict) -> dict:
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
                for statement in [*_SCHEMA.split(";\n"), _WAITING, *_GENERATION]:
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
                    if statement == "collapse_pending_arrays":
                        _collapse_pending_arrays(conn)
                    else:
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

    rows = [_bind(conn, j) for j in jobs]
    cols = list(rows[0])
    sql = f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join(map(_mark, cols))})"
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
            "INSERT INTO submissions VALUES (?, ?, ?, ?, ?)",
            (
                submission,
                json.dumps(own),
                json.dumps(task) if task else None,
                blob(conn, json.dumps(shared)),
                None if environment is None else blob(conn, json.dumps(environment)),
            ),
        )
        conn.executemany(sql, values)


def blob(conn: sqlite3.Connection, text: str) -> int:
    """The id of this text in `blobs`, stored there if new."""
    conn.execute("INSERT OR IGNORE INTO blobs (text) VALUES (?)", (text,))
    return conn.execute("SELECT id FROM blobs WHERE text = ?", (text,)).fetchone()[0]


def update_job(
    conn: sqlite3.Connection, job_id: int, *, where_state: tuple | None = None, **values
) -> bool:
    """Set columns of one job; with `where_state`, only if its state is one of those.

    Returns whether the row changed: the compare-and-set that keeps the agent and the
    commands from overwriting each other's transitions.
    """
    values = _bind(conn, values)
    sets = ", ".join(f"{k} = {_mark(k)}" for k in values)
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

    When none remains, Slurm cancels the pending record itself, shown by the array's id
    alone: its id is returned for the caller to cancel; otherwise None.
    """
    from slurmsky.runtime import indexset

    with write(conn):
        row = conn.execute(
            "SELECT array_pending FROM jobs WHERE job_id = ? AND state = 'PENDING' "
            "AND array_pending IS NOT NULL",
            (array_job_id,),
        ).fetchone()
        if row is None:
            return None
        items = indexset.parse(row[0])
        for index in indices:
            items = indexset.remove(items, index)
        conn.execute(
            "UPDATE jobs SET array_pending = ? WHERE job_id = ?",
            (indexset.text(items) or None, array_job_id),
        )
        return None if items else array_job_id


def element_id(array: dict, record_id: int, index: int, last: bool) -> int | None:
    """The id an element split off a pending record takes: the record's own when it is the
    last to leave it, else the id reserved for its rank at submission (array id + 1 + rank;
    the highest index's reserved id is the array's: None, a fresh id is needed)."""
    if last:
        return record_id
    from slurmsky.runtime import indexset

    rank = indexset.rank(indexset.parse(array["ranges"]), index)
    return record_id + 1 + rank if rank < array["count"] - 1 else None


def split_element(
    conn: sqlite3.Connection,
    record_id: int,
    index: int,
    spec: dict,
    *,
    job_id: int | None = None,
    unheld: bool = False,
    **fields,
) -> JobRecord | None:
    """Split element `index` off the pending record `record_id` into a row of its own, with
    `fields` set (a compare-and-set: None if the record is no longer pending, or no longer
    holds that index, or, with `unheld`, is held). `job_id`: element_id's, or None to have
    it chosen here. Returns the element's record."""
    from slurmsky.runtime import indexset

    array = spec["array"]
    with write(conn):
        row = conn.execute(
            "SELECT array_pending, held FROM jobs WHERE job_id = ? AND state = 'PENDING'",
            (record_id,),
        ).fetchone()
        if row is None or row[0] is None or (unheld and row[1]):
            return None
        items = indexset.parse(row[0])
        if not indexset.contains(items, index):
            return None
        rest = indexset.remove(items, index)
        if job_id is None:
            job_id = element_id(array, record_id, index, not rest)
            if job_id is None:
                job_id = allocate_ids(conn, 1)
        record = get_job(conn, record_id)
        assert record is not None
        element = pending_element(record, index)
        name = "(null)" if spec.get("job_name_unset") else spec.get("job_name") or record.name
        values: dict = {
            key: element_path(pattern, element, job_id, name) if pattern else None
            for key, pattern in element.__dict__["_patterns"].items()
        }
        values.update(
            array_task_id=index,
            array_pending=None,
            array_rank=indexset.rank(indexset.parse(array["ranges"]), index),
            **fields,
        )
        values = _bind(conn, values)
        if rest:
            conn.execute(
                "UPDATE jobs SET array_pending = ? WHERE job_id = ?",
                (indexset.text(rest), record_id),
            )
            values["job_id"] = job_id
            cols = ", ".join(_mark(c) if c in values else c for c in _COLUMNS)
            conn.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) SELECT {cols} FROM jobs "
                "WHERE job_id = ?",
                [*(values[c] for c in _COLUMNS if c in values), record_id],
            )
        else:
            sets = ", ".join(f"{k} = {_mark(k)}" for k in values)
            conn.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", [*values.values(), record_id])
        return get_job(conn, job_id)


def _collapse_pending_arrays(conn: sqlite3.Connection) -> None:
    """Schema 3 -> 4: an array's never-started pending elements (one row each before) that
    wait as the row with the array's id does become its pending record."""
    import json

    from slurmsky.runtime import indexset

    for submission, text in conn.execute(
        "SELECT id, spec FROM submissions WHERE spec LIKE '%\"indices\"%'"
    ).fetchall():
        spec = json.loads(text)
        array = spec.get("array")
        if array and "indices" in array:
            indices = array.pop("indices")
            array.pop("job_ids", None)
            array.update(ranges=indexset.compress(indices), count=len(indices))
            conn.execute(
                "UPDATE submissions SET spec = ? WHERE id = ?", (json.dumps(spec), submission)
            )
    heads = conn.execute(
        "SELECT job_id, submission, held, name, partition FROM jobs WHERE job_id = array_job_id "
        "AND state = 'PENDING' AND start_time IS NULL AND restarts = 0"
    ).fetchall()
    for job_id, submission, held, name, partition in heads:
        rows = conn.execute(
            "SELECT job_id, array_task_id FROM jobs WHERE array_job_id = ? AND state = 'PENDING' "
            "AND start_time IS NULL AND restarts = 0 AND held IS ? AND name = ? AND partition = ?"
            " ORDER BY array_task_id",
            (job_id, held, name, partition),
        ).fetchall()
        spec = json.loads(
            conn.execute("SELECT spec FROM submissions WHERE id = ?", (submission,)).fetchone()[0]
        )
        output = spec.get("output") or "slurm-%A_%a.out"
        conn.execute(
            f"DELETE FROM jobs WHERE job_id IN ({', '.join('?' * len(rows))}) AND job_id != ?",
            [*(r[0] for r in rows), job_id],
        )
        conn.execute(
            "UPDATE jobs SET array_task_id = NULL, array_rank = NULL, array_pending = ?, "
            "stdout = ?, stderr = ?, stdin = ? WHERE job_id = ?",
            (
                indexset.compress([r[1] for r in rows]),
                output,
                spec.get("error") or output,
                spec.get("input") or "/dev/null",
                job_id,
            ),
        )


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


def _select(conn: sqlite3.Connection, where: tuple[str, list], light: bool) -> list[JobRecord]:
    where_text, args = where
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
) -> sqlite3.Cursor:
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


def timeless(conn: sqlite3.Connection, now: float, **filters) -> bool:
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
    conn: sqlite3.Connection,
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
) -> sqlite3.Cursor:
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


def arrays_exist(conn: sqlite3.Connection) -> bool:
    """Whether any job is an array's (its record or an element)."""
    found = conn.execute("SELECT 1 FROM jobs WHERE array_job_id IS NOT NULL LIMIT 1")
    return found.fetchone() is not None


def _add_functions(conn: sqlite3.Connection) -> None:
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
    if submitted_before is not None:
        where.append("submit_time < ?")
        args.append(submitted_before)
    if uids is not None:
        where.append(f"uid IN ({', '.join('?' * len(uids))})")
        args.extend(uids)
    if accounts is not None:
        where.append(one_of("account", accounts))
    if condition is not None:
        where.append(f"({condition})")
    return (" WHERE " + " AND ".join(where) if where else ""), args


def active_jobs(conn: sqlite3.Connection, executor: str | None = None) -> list[JobRecord]:
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
)
_PASS_ORDER = f"submission, {_INDEX}, job_id"
# after (submission, index, job_id): the form the index can seek
_AFTER = f"state = 'PENDING' AND submission = ? AND {_INDEX} >= ? AND ({_INDEX}, job_id) > (?, ?)"


def pass_position(job: JobRecord) -> tuple[int, int, int]:
    """Where a pending job is in a pass's order (pending_jobs' `after`)."""
    if job.array_task_id is not None:
        return job.submission, job.array_task_id, job.job_id
    first = (
        int(job.array_pending.split(",")[0].split("-")[0].split(":")[0]) if job.array_pending else 0
    )
    return job.submission, first, job.job_id


def _pass_records(conn: sqlite3.Connection, sql: str, args, limit: int = -1) -> list[JobRecord]:
    records = [
        _record(r, PASS_COLUMNS)
        for r in conn.execute(
            f"SELECT {', '.join(PASS_COLUMNS)} FROM jobs WHERE {sql} AND NOT ({_IDLE}) "
            f"ORDER BY {_PASS_ORDER} LIMIT ?",
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


def pending_jobs(conn: sqlite3.Connection, after: tuple = (), limit: int = 64) -> list[JobRecord]:
    """Up to `limit` pending jobs (PASS_COLUMNS) in active_jobs' order, from after `after`:
    () from the first, (submission,) past that submission, or (submission, index, job_id)
    past that job. Held jobs with nothing to do (_IDLE) are left out: jobs_waiting holds
    none, so a pass over 100 000 held jobs reads none of them."""
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


def generation(conn: sqlite3.Connection) -> int:
    """The jobs' generation (_GENERATION): equal at two reads when no job changed between."""
    return conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]


def submitted_since(conn: sqlite3.Connection, when: float) -> bool:
    return (
        conn.execute("SELECT 1 FROM jobs WHERE submit_time > ? LIMIT 1", (when,)).fetchone()
        is not None
    )


def active_jobs_exist(conn: sqlite3.Connection) -> bool:
    sql = f"SELECT 1 FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE_STATES))}) LIMIT 1"
    return conn.execute(sql, ACTIVE_STATES).fetchone() is not None
