"""The state database: where it lives, its schema and the migrations from older ones,
connecting, and the write lock, on either engine (engine.py: SQLite or PostgreSQL).

Every command opens it for a few short transactions; the agent is the only long-lived
writer. Writes take the write lock up front (SQLite's BEGIN IMMEDIATE, a transaction lock
on PostgreSQL) and SQLite's busy timeout is long, so concurrent commands queue instead of
failing with `database is locked`."""

from __future__ import annotations

import os
from contextlib import contextmanager

from slurmsky.core.state import engine
from slurmsky.errors import SlurmError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 12
BUSY_TIMEOUT = 120.0  # s a command waits for another's write lock before failing


def index_sql(dialect: engine.Dialect) -> str:
    """A job's place in a submission: its index, or a pending record's lowest."""
    return f"coalesce(array_task_id, {dialect.first_index}, 0)"


# A pending job a pass has nothing to do for: held, with no dependency to follow, its reason
# already the hold's (it waits for `scontrol release`, which wakes the agent).
_IDLE = (
    "held IS NOT NULL AND dependency_spec IS NULL AND "
    "reason = CASE held WHEN 'admin' THEN 'JobHeldAdmin' ELSE 'JobHeldUser' END"
)


def _waiting(dialect: engine.Dialect) -> str:
    """The pending jobs a pass reads (pending_jobs), in its order: a partial index that
    holds no _IDLE job, so a pass over 100 000 held jobs reads none."""
    return (
        f"CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs(state, submission, "
        f"{index_sql(dialect)}) WHERE state = 'PENDING' AND NOT ({_IDLE})"
    )


_WAITING = _waiting(engine.SQLITE_DIALECT)


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,          -- the job id sbatch printed (the array id for arrays)
    spec TEXT NOT NULL,              -- the runtime's spec (JSON), or with `shared` its job id
    task TEXT,                       -- the SkyPilot task (JSON), for the sky executor
    shared INTEGER REFERENCES blobs(id),      -- the spec but its ids and environment
    environment INTEGER REFERENCES blobs(id), -- the spec's environment
    user_name TEXT                   -- who submitted it (a team's member: the role)
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
    result TEXT,                     -- JSON: the node runtime's RESULT (the batch step's end)
    het_job_id INTEGER,              -- a heterogeneous job's component: its leader's id (J)
    het_job_offset INTEGER,          -- and its offset (J+N); NULL for any other job
    priority INTEGER,                -- priority/multifactor's, as its agent last computed it
    deadline REAL,                   -- --deadline (epoch seconds); NULL: none
    nice INTEGER NOT NULL DEFAULT 0, -- --nice: the priority it takes off
    oversubscribe TEXT               -- OverSubscribe: YES (-s), NO (--exclusive); NULL: OK
);
CREATE INDEX jobs_reason ON jobs(state, reason);
CREATE INDEX jobs_executor ON jobs(executor, state);
CREATE INDEX jobs_array ON jobs(array_job_id, array_task_id);
CREATE INDEX jobs_user ON jobs(user);
CREATE INDEX jobs_name ON jobs(name);
CREATE INDEX jobs_end ON jobs(end_time);
CREATE INDEX jobs_submit ON jobs(submit_time);
CREATE INDEX jobs_het ON jobs(het_job_id) WHERE het_job_id IS NOT NULL;
CREATE INDEX jobs_nice ON jobs(state, nice) WHERE nice != 0;
CREATE INDEX jobs_pending ON jobs(state, submission, {index});
-- and jobs_waiting (_WAITING), _GENERATION's triggers, _ATTEMPTS, _HET_FOLLOW and _TEAM
CREATE TABLE signals (             -- scancel --signal requests, for the agent to deliver
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    signal INTEGER NOT NULL,
    scope TEXT NOT NULL              -- batch, steps, full, job or step:S
);
"""


# meta's `generation` moves on with every change to a job's row (slurmctld's last_job_update):
# a listing made at one generation is the listing until the next (render/listing_cache.py).
# It starts at a random number (_first_values), so a state made afresh does not repeat
# an old one's.
_GENERATION = (
    "INSERT OR IGNORE INTO meta VALUES ('generation', abs(random() % 1000000000000))",
    *(
        f"CREATE TRIGGER IF NOT EXISTS jobs_{change.lower()} AFTER {change} ON jobs "
        "BEGIN UPDATE meta SET value = value + 1 WHERE key = 'generation'; END"
        for change in ("INSERT", "UPDATE", "DELETE")
    ),
)


# A requeued job's earlier runs (sacct -D), each the columns it ended with (attempts.py);
# they go with the job's row.
_ATTEMPTS = (
    "CREATE TABLE IF NOT EXISTS attempts (job_id INTEGER NOT NULL, restarts INTEGER NOT NULL, "
    "record TEXT NOT NULL, PRIMARY KEY (job_id, restarts))",
    "CREATE TRIGGER IF NOT EXISTS jobs_attempts AFTER DELETE ON jobs "
    "BEGIN DELETE FROM attempts WHERE job_id = old.job_id; END",
)


# A heterogeneous job runs as its component 0 (J+0, the leader, which the agent schedules and
# its executor runs on all the components' nodes); the other components' rows follow its
# state in the same write, whatever changed it (a pass, scancel, a hold, a requeue).
_HET_FOLLOW = (
    "CREATE TRIGGER IF NOT EXISTS jobs_het_follow AFTER UPDATE ON jobs "
    "WHEN NEW.het_job_offset = 0 BEGIN UPDATE jobs SET "
    + ", ".join(
        f"{c} = NEW.{c}"
        for c in (
            "state", "reason", "held", "dependency", "begin_time", "eligible_time",
            "start_time", "end_time", "exit_code", "exit_signal", "restarts", "kill_action",
            "cancelled_by",
        )
    )
    + " WHERE het_job_id = NEW.job_id AND het_job_offset > 0; END"
)  # fmt: skip


# `-j J` finds J's components by it (with job_id's and array_job_id's: PostgreSQL's plan
# for the three-way OR is then three index lookups, not a scan of the jobs)
_HET_INDEX = "CREATE INDEX jobs_het ON jobs(het_job_id) WHERE het_job_id IS NOT NULL"

# --deadline, --nice and -s (schema 12); a pass finds a pending --nice job by its index (none:
# the submission order, read a chunk at a time)
_OPTIONS_52 = (
    "ALTER TABLE jobs ADD COLUMN deadline REAL",
    "ALTER TABLE jobs ADD COLUMN nice INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN oversubscribe TEXT",
    "CREATE INDEX IF NOT EXISTS jobs_nice ON jobs(state, nice) WHERE nice != 0",
)

# A team's members and accounts, as sacctmgr keeps them (team.py); `root` is implied.
_TEAM = (
    "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, description TEXT NOT NULL, "
    "organization TEXT NOT NULL, parent TEXT)",
    "CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, default_account TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS associations (account TEXT NOT NULL, user_name TEXT NOT NULL, "
    "fairshare INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (account, user_name))",
)

# On PostgreSQL, what a member's role may change: every row is read, only its own written;
# a new submission needs a member with an association (sacctmgr delete user stops
# submitting, not running jobs). The schema's owner (the administrator) is not bound (no FORCE).
_OWN = 'USING ("user" = current_user)'
_TEAM_RLS = (
    "ALTER TABLE jobs ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY everyone_reads ON jobs FOR SELECT USING (true)",
    'CREATE POLICY own_insert ON jobs FOR INSERT WITH CHECK ("user" = current_user)',
    f"CREATE POLICY own_update ON jobs FOR UPDATE {_OWN}",
    f"CREATE POLICY own_delete ON jobs FOR DELETE {_OWN}",
    "ALTER TABLE submissions ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY everyone_reads ON submissions FOR SELECT USING (true)",
    "CREATE POLICY member_submits ON submissions FOR INSERT WITH CHECK (user_name = current_user "
    "AND EXISTS (SELECT 1 FROM associations WHERE user_name = current_user))",
    "CREATE POLICY own_update ON submissions FOR UPDATE USING (user_name = current_user)",
    "CREATE POLICY own_delete ON submissions FOR DELETE USING (user_name = current_user)",
    "ALTER TABLE signals ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY own_signals ON signals USING (EXISTS (SELECT 1 FROM jobs AS j "
    'WHERE j.job_id = signals.job_id AND j."user" = current_user))',
)

# On PostgreSQL, the members whose agent is connected (state/team.py): an agent's connection
# is named `slurmsky-agent:LOGIN`; it counts for a member only as that member's own role (no
# member can pass for another), for the administrator as any role that is no member's.
# A pending job whose member has none cannot start: any agent marks it FrontEndDown (as the
# schema's owner: the function decides, so no member can label another's job), and the
# member's agent, back, gives it its reason again.
_AGENTS = (
    """CREATE OR REPLACE FUNCTION slurmsky_agents() RETURNS SETOF TEXT LANGUAGE sql STABLE AS $$
SELECT DISTINCT split_part(application_name, ':', 2) FROM pg_stat_activity
WHERE application_name LIKE 'slurmsky-agent:%' AND datname = current_database()
AND (usename = split_part(application_name, ':', 2) OR usename NOT IN (SELECT name FROM members))
$$""",
    """CREATE OR REPLACE FUNCTION slurmsky_mark_absent() RETURNS void LANGUAGE sql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
UPDATE jobs SET reason = 'FrontEndDown'
WHERE state = 'PENDING' AND reason IN ('None', 'Priority', 'Resources')
AND "user" IN (SELECT name FROM members) AND "user" NOT IN (SELECT slurmsky_agents())
$$""",
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
    6: _ATTEMPTS,
    7: (
        "ALTER TABLE jobs ADD COLUMN het_job_id INTEGER",
        "ALTER TABLE jobs ADD COLUMN het_job_offset INTEGER",
        _HET_FOLLOW,
    ),
    8: (_HET_INDEX,),
    9: (*_TEAM, "ALTER TABLE submissions ADD COLUMN user_name TEXT"),
    10: ("ALTER TABLE jobs ADD COLUMN priority INTEGER",),
    11: _OPTIONS_52,
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


# Text the user gave as bytes that are not UTF-8 is stored as those bytes (records.bindable);
# a connection reads it back with surrogates once the state holds such text (RAW_TEXT_MARK).
RAW_TEXT_MARK = "raw-text"


def _raw_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def connect(environ=os.environ, *, long_lived: bool = False, application: str = "slurmsky"):
    """Open the state database (creating it if needed: SQLite's file, or an empty
    PostgreSQL database's schema); autocommit, transactions are explicit. A state that
    cannot be used raises `unusable`'s SlurmError (on PostgreSQL, engine.StateError). A
    long-lived connection (the agent's, an allocation's) reads text that is not UTF-8 even
    if none was stored when it opened. PostgreSQL lists it under `application` (an agent's
    names its member: team.py)."""
    where = engine.location(environ)
    if where != engine.SQLITE:
        engine.check_location(where, engine.origin(environ))
        pg = engine.connect_postgres(where, environ, application)
        try:
            _check_postgres(pg, where)
        except BaseException:
            pg.close()
            raise
        return pg
    import sqlite3

    from slurmsky.core.state.sqlite import SQLiteConnection

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
        conn = sqlite3.connect(
            path,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
            factory=SQLiteConnection,
        )
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


def _schema(dialect: engine.Dialect) -> list[str]:
    """Every statement that makes the schema, in the dialect's SQL."""
    tables = [t for t in _SCHEMA.replace("{index}", index_sql(dialect)).split(";\n") if t.strip()]
    if dialect is engine.SQLITE_DIALECT:
        return [*tables, _WAITING, *_GENERATION[1:], *_ATTEMPTS, _HET_FOLLOW, *_TEAM]
    assert isinstance(dialect, engine.PostgreSQL)
    return [
        *map(dialect.ddl, tables),
        _waiting(dialect),
        "CREATE UNIQUE INDEX blobs_text ON blobs (md5(text))",
        dialect.ddl(_ATTEMPTS[0]),
        *_PG_OBJECTS,
        *map(dialect.ddl, _TEAM),
        *_TEAM_RLS,
        *_AGENTS,
    ]


def _first_values() -> list[tuple]:
    """meta's rows in a new state: the first job id, the generation's start."""
    import random

    return [("next_job_id", 1), ("generation", random.randrange(10**12))]


def _create(path: str) -> None:
    """A new state database, made whole beside `path` and linked into place: commands that
    start at once on a new state never see it half made (nor race to switch it to WAL, which
    fails one of them with `database is locked` at once)."""
    aside = f"{path}.new.{os.getpid()}"
    if os.path.exists(aside):
        os.unlink(aside)  # left by a process of this number that died making it
    try:
        os.close(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # not the umask's
        import sqlite3

        from slurmsky.core.state.sqlite import SQLiteConnection

        conn = sqlite3.connect(aside, isolation_level=None, factory=SQLiteConnection)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            with write(conn):
                for statement in _schema(conn.dialect):
                    conn.execute(statement)
                conn.executemany("INSERT INTO meta VALUES (?, ?)", _first_values())
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
                    elif not _has_column(conn, statement):
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


# What SQLite's triggers do, as PostgreSQL's, and the functions listings call (row triggers, as SQLite's: a statement that
# changes no row moves no generation on).
_PG_OBJECTS = (
    "CREATE FUNCTION slurmsky_generation() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE meta SET value = value + 1 WHERE key = 'generation'; RETURN NULL; END $$",
    "CREATE TRIGGER jobs_generation AFTER INSERT OR UPDATE OR DELETE ON jobs "
    "FOR EACH ROW EXECUTE FUNCTION slurmsky_generation()",
    "CREATE FUNCTION slurmsky_attempts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "DELETE FROM attempts WHERE job_id = OLD.job_id; RETURN NULL; END $$",
    "CREATE TRIGGER jobs_attempts AFTER DELETE ON jobs "
    "FOR EACH ROW EXECUTE FUNCTION slurmsky_attempts()",
    "CREATE FUNCTION slurmsky_het_follow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    + _HET_FOLLOW[_HET_FOLLOW.index("UPDATE jobs SET") : _HET_FOLLOW.rindex("; END")]
    + "; RETURN NULL; END $$",
    "CREATE TRIGGER jobs_het_follow AFTER UPDATE ON jobs FOR EACH ROW "
    "WHEN (NEW.het_job_offset = 0) EXECUTE FUNCTION slurmsky_het_follow()",
    # the functions SQLite's connections get from queries._add_functions (indexset's)
    """CREATE FUNCTION array_tasks(pending TEXT, throttle BIGINT) RETURNS TEXT
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    piece TEXT; part TEXT[]; lo BIGINT; hi BIGINT; step BIGINT; i BIGINT;
    a BIGINT; b BIGINT; run_lo BIGINT; run_hi BIGINT; runs TEXT[] := '{}';
BEGIN
    IF pending IS NULL THEN RETURN NULL; END IF;
    FOREACH piece IN ARRAY string_to_array(pending, ',') LOOP
        CONTINUE WHEN piece = '';
        part := regexp_match(piece, '^([0-9]+)(?:-([0-9]+))?(?::([0-9]+))?$');
        lo := part[1]; hi := coalesce(part[2], part[1]); step := coalesce(part[3], '1');
        i := lo;
        WHILE i <= hi LOOP
            a := i; b := CASE WHEN step = 1 THEN hi ELSE i END;
            IF run_hi IS NOT NULL AND run_hi = a - 1 THEN
                run_hi := b;
            ELSE
                IF run_hi IS NOT NULL THEN
                    runs := runs || CASE WHEN run_lo = run_hi THEN run_lo::TEXT
                        ELSE run_lo || '-' || run_hi END;
                END IF;
                run_lo := a; run_hi := b;
            END IF;
            i := b + step;
        END LOOP;
    END LOOP;
    IF run_hi IS NOT NULL THEN
        runs := runs || CASE WHEN run_lo = run_hi THEN run_lo::TEXT ELSE run_lo || '-' || run_hi END;
    END IF;
    RETURN array_to_string(runs, ',')
        || CASE WHEN coalesce(throttle, 0) <> 0 THEN '%' || throttle ELSE '' END;
END $$""",
    """CREATE FUNCTION array_count(pending TEXT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
SELECT coalesce(sum((coalesce(p[2], p[1])::BIGINT - p[1]::BIGINT) / coalesce(p[3], '1')::BIGINT
    + 1), 0)::BIGINT
FROM regexp_matches(coalesce(pending, ''), '([0-9]+)(?:-([0-9]+))?(?::([0-9]+))?', 'g') AS p
$$""",
)

# PostgreSQL's schema versions (meta's schema_version) -> the statements that bring a state
# from it to the next; it starts at PG_FIRST_VERSION.
PG_FIRST_VERSION = 8
_PG_MIGRATIONS: dict[int, tuple[str, ...]] = {
    8: (_HET_INDEX,),
    9: (
        *(engine.POSTGRESQL_DIALECT.ddl(t) for t in _TEAM),
        "ALTER TABLE submissions ADD COLUMN IF NOT EXISTS user_name TEXT",
        *(
            f"DROP POLICY IF EXISTS {s.split()[2]} ON {s.split()[4]}"
            for s in _TEAM_RLS
            if s.startswith("CREATE POLICY")
        ),
        *_TEAM_RLS,
    ),
    10: ("ALTER TABLE jobs ADD COLUMN IF NOT EXISTS priority INTEGER", *_AGENTS),
    11: tuple(
        engine.POSTGRESQL_DIALECT.ddl(s).replace("ADD COLUMN", "ADD COLUMN IF NOT EXISTS")
        for s in _OPTIONS_52
    ),
}


def schema_version(conn) -> int | None:
    """The PostgreSQL state's schema version; None for a database with no slurmsky schema."""
    if conn.in_transaction and conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
        return None  # (asked first: a failed statement would end the transaction)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except engine.StateError as exc:
        if exc.code == "42P01":  # undefined_table: an empty database
            return None
        raise
    return row[0] if row else None


def init_postgres(conn) -> bool:
    """Make the slurmsky schema in an empty PostgreSQL database; False if it had one."""
    with write(conn):
        if schema_version(conn) is not None:
            return False
        for statement in _schema(conn.dialect):
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [*_first_values(), ("schema_version", SCHEMA_VERSION)],
        )
    return True


def upgrade_postgres(conn) -> int:
    """Bring the PostgreSQL state's schema to SCHEMA_VERSION; the version it had."""
    with write(conn):
        version = schema_version(conn)
        if version is None or version > SCHEMA_VERSION:
            return version or 0
        if any(v not in _PG_MIGRATIONS for v in range(version, SCHEMA_VERSION)):
            raise SlurmError(
                f"slurmsky's schema on PostgreSQL began at version {PG_FIRST_VERSION}; "
                f"version {version} is not one it had: move the database aside"
            )
        for v in range(version, SCHEMA_VERSION):
            for statement in _PG_MIGRATIONS[v]:
                conn.execute(statement)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
    return version


def administer(action: str, environ=os.environ) -> tuple[str, int | None, str]:
    """`slurmsky db init|upgrade|check`: (where the state is, its schema version after the
    action, what was done). SQLite's file is made and upgraded by any command; PostgreSQL's
    schema by its owner, with these."""
    where = engine.location(environ)
    if where == engine.SQLITE:
        path = os.path.join(home(environ), "state.db")
        if action == "check" and not os.path.exists(path):
            return path, None, "absent: the first command makes it"
        connect(environ).close()  # makes the file, or brings it to this version
        return path, SCHEMA_VERSION, "current"
    engine.check_location(where, engine.origin(environ))
    conn = engine.connect_postgres(where, environ)
    try:
        if action == "init":
            done = "made" if init_postgres(conn) else "already made"
        elif action == "upgrade":
            before = upgrade_postgres(conn)
            done = f"upgraded from version {before}" if before != SCHEMA_VERSION else "current"
        else:
            done = ""
        version = schema_version(conn)
    finally:
        conn.close()
    if version is None:
        return where, None, done or "empty: run `slurmsky db init`"
    if version < SCHEMA_VERSION:
        return where, version, done or "older: run `slurmsky db upgrade`"
    if version > SCHEMA_VERSION:
        return where, version, "newer than this slurmsky's: use the slurmsky that wrote it"
    return where, version, done or "current"


def _check_postgres(conn, where: str) -> None:
    """A command's check of the PostgreSQL state's schema: made if the database is empty,
    said what to run if it is older or newer than this slurmsky's."""
    version = schema_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version is None:
        init_postgres(conn)
        return
    if version < SCHEMA_VERSION:
        raise SlurmError(
            f"slurmsky state {where} has schema version {version}, older than this "
            f"slurmsky's {SCHEMA_VERSION}; run `slurmsky db upgrade` (as its owner)"
        )
    raise SlurmError(
        f"slurmsky state {where} has schema version {version}, newer than this "
        f"slurmsky's {SCHEMA_VERSION}; use the slurmsky that wrote it"
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


def _has_column(conn, statement: str) -> bool:
    """Whether `ALTER TABLE t ADD COLUMN c ...` would add a column t has already (a state
    made by a slurmsky between two versions); False for any other statement."""
    words = statement.split()
    if words[:2] != ["ALTER", "TABLE"] or words[3:5] != ["ADD", "COLUMN"]:
        return False
    return any(row[1] == words[5] for row in conn.execute(f"PRAGMA table_info({words[2]})"))


@contextmanager
def write(conn):
    """A short write transaction holding the write lock from its start (no upgrade deadlocks)."""
    if conn.in_transaction:
        yield conn
        return
    for statement in conn.dialect.begin_write:
        conn.execute(statement)
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
