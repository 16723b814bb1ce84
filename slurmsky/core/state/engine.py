"""Which database engine holds the state, and the few things each does its own way.

SQLite (a file under $SLURMSKY_HOME, one person's, the default) or PostgreSQL (a team's:
`state: postgresql://[user@]host[:port]/dbname` in the config, or $SLURMSKY_STATE). Every
query is written once; a connection's `dialect` supplies the fragments that differ (a JSON
field, a list of ids bound as JSON, the first index of a pending record, how a write
transaction takes the write lock) and the schema's rendering. A PostgreSQL connection is
wrapped to look like sqlite3's (`?` parameters, `execute` returning a cursor), so the code
above this module does not know which engine answers.

PostgreSQL's credentials are libpq's business, never the config's: ~/.pgpass (PGPASSFILE),
PGSERVICE, sslmode and client certificates all work as for psql. The driver is psycopg2
(`pip install "slurmsky[postgres]"`; SkyPilot brings it too), imported only on that path.
"""

from __future__ import annotations

import os
import sys

from slurmsky.errors import SlurmError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Connection(Protocol):
        """What the state's code calls on a connection, either engine's."""

        dialect: Dialect
        text_factory: Any
        in_transaction: bool
        team: bool | None  # PostgreSQL's: what state/team.py found once
        admin: bool | None

        def execute(self, sql: str, params: Any = ..., /) -> Any: ...
        def executemany(self, sql: str, rows: Any, /) -> Any: ...
        def create_function(self, *args: Any, **kwargs: Any) -> Any: ...
        def close(self) -> None: ...


SQLITE = "sqlite"


def location(environ=os.environ) -> str:
    """Where the state is: $SLURMSKY_STATE, else the config's `state:`, else "sqlite".
    A plain `state: VALUE` line is read without YAML (squeue and sbatch read no config
    otherwise); anything else there, through the config's loader."""
    found = environ.get("SLURMSKY_STATE")
    if found:
        return found
    from slurmsky.config import config_path

    try:
        with open(config_path(environ), "rb") as fh:
            text = fh.read()
    except OSError:
        return SQLITE
    if not (text.startswith(b"state") or b"\nstate" in text):
        return SQLITE
    for line in text.splitlines():
        key, colon, value = line.partition(b":")
        if colon and key.rstrip() == b"state":
            value = value.split(b" #")[0].strip()
            if value and value.isascii() and not value.startswith((b"'", b'"', b"{", b"[")):
                return value.decode()
            break
    from slurmsky.config import load_config

    return load_config(environ).state


def origin(environ=os.environ) -> str:
    """Where location() found the state, as an error names it."""
    if environ.get("SLURMSKY_STATE"):
        return "SLURMSKY_STATE"
    from slurmsky.config import config_path

    return f"{config_path(environ)}: 'state'"


def is_postgres(where: str) -> bool:
    return where.startswith(("postgresql://", "postgres://"))


def check_location(where: str, origin: str) -> None:
    """A state location that is neither `sqlite` nor a postgresql:// URL is refused, naming
    where it came from; so is a password in the URL."""
    if where == SQLITE:
        return
    if not is_postgres(where):
        raise SlurmError(
            f"{origin}: the state must be 'sqlite' or a postgresql://[user@]host[:port]/dbname "
            f"URL, got {where!r}"
        )
    netloc, _, rest = where.split("://", 1)[1].partition("/")
    query = rest.partition("?")[2]
    if (":" in netloc.split("@")[0] and "@" in netloc) or "password=" in query:
        raise SlurmError(
            f"{origin}: the state URL holds a password; keep it in ~/.pgpass (or PGPASSFILE, "
            "PGSERVICE) instead, as psql reads it"
        )


class Dialect:
    """SQLite's ways (the default); PostgreSQL's override them."""

    # SQL of the first index of a pending record's indices (array_pending's text, `3-7,9`)
    first_index = "CAST(array_pending AS INTEGER)"
    # the write lock, taken at a write transaction's start
    begin_write: tuple[str, ...] = ("BEGIN IMMEDIATE",)
    # one snapshot for a series of reads
    begin_read = "BEGIN"
    # whether sacct's listing (SQL over the RESULT's steps with json_each) runs here
    computes_sacct_listing = True

    def json_text(self, column: str, key: str) -> str:
        """SQL of a JSON column's top-level `key` (a literal name) as text."""
        return f"json_extract({column}, '$.{key}')"

    # What render's listings (squeue's lines computed in SQL) need beyond standard SQL.
    def printf(self, fmt: str, args: list[str]) -> str:
        """SQL of C's printf of `fmt` (SQLite's: `%!-N.Ns`, `%!N.Ns`, `%!Ns`, `%s`, `%d`,
        `%02d`, `%%`; `!` counts characters) over the SQL expressions `args`."""
        return _call("printf", fmt, args)

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

    def integer(self, expr: str) -> str:
        """A number's integer part (as C's cast: towards zero)."""
        return f"CAST({expr} AS INTEGER)"

    def byte(self, code: int) -> str:
        """SQL of the one-character text of this code."""
        return f"char({code})"

    def order_by(self, keys: list[str], texts: int) -> str:
        """ORDER BY's SQL for these keys, ascending: the first `texts` are text (sorted by
        their bytes, SQLite's order), the rest numbers."""
        return ", ".join(keys)

    def id_list(self) -> str:
        """A subquery of the ids in one parameter bound as a JSON list."""
        return "SELECT value FROM json_each(?)"

    def keys_beyond(self, document: str, kept: str) -> str:
        """Whether the JSON object `document` has a key outside `kept` (SQL list items);
        text that is no JSON counts as having one."""
        return (
            f"CASE WHEN json_valid({document}) THEN EXISTS (SELECT 1 FROM json_each({document}) "
            f"WHERE key NOT IN ({kept})) ELSE 1 END"
        )

    def blob_id(self, conn, text: str) -> int:
        conn.execute("INSERT INTO blobs (text) VALUES (?) ON CONFLICT DO NOTHING", (text,))
        return conn.execute("SELECT id FROM blobs WHERE text = ?", (text,)).fetchone()[0]

    def change_counter(self, conn) -> int:
        """A number that moves on when another connection commits a change."""
        return conn.execute("PRAGMA data_version").fetchone()[0]


class PostgreSQL(Dialect):
    first_index = "CAST(substring(array_pending from '^[0-9]+') AS BIGINT)"
    # Writers are serialized as SQLite's are (one write lock, held to the commit), so every
    # compare-and-set above keeps its all-or-nothing meaning; readers never wait for it.
    begin_write = ("BEGIN", "SELECT pg_advisory_xact_lock(7146)")
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    computes_sacct_listing = False

    def json_text(self, column: str, key: str) -> str:
        return f"(CAST({column} AS jsonb) ->> '{key}')"

    def printf(self, fmt: str, args: list[str]) -> str:
        """printf as PostgreSQL's format(): its %s takes a width and `-`; a precision is a
        left() of the argument, `%02d` an lpad."""
        out, values, rest, i = [], [], list(args), 0
        while i < len(fmt):
            if fmt[i] != "%":
                out.append(fmt[i])
                i += 1
                continue
            j = i + 1
            while fmt[j] not in "sd%":
                j += 1
            spec, kind, i = fmt[i + 1 : j].replace("!", ""), fmt[j], j + 1
            if kind == "%":
                out.append("%%")
                continue
            value = f"CAST({rest.pop(0)} AS TEXT)"
            if kind == "d" and spec.startswith("0"):
                value, spec = f"lpad({value}, {int(spec)}, '0')", ""
            width, _, precision = spec.partition(".")
            if precision:
                value = f"left({value}, {int(precision)})"
            out.append(f"%{width}s")
            values.append(value)
        return _call("format", "".join(out), values)

    def greatest(self, a: str, b: str) -> str:
        return f"greatest({a}, {b})"

    def integer(self, expr: str) -> str:
        return f"CAST(trunc({expr}) AS BIGINT)"

    def byte(self, code: int) -> str:
        return f"chr({code})"

    def order_by(self, keys: list[str], texts: int) -> str:
        """One key of them all, in byte order: PostgreSQL compares a row's many keys one by
        one (10 000 jobs that differ from the fifth key on: 65 ms), one text key with its
        abbreviated first bytes (~10 ms). Text as itself then \\x01; a number as 16 hex
        digits of its thousandths (past 2**62 apart: sortable as text)."""
        parts = [f"{k} || chr(1)" for k in keys[:texts]]
        parts += [
            f"lpad(to_hex(CAST(floor(({k}) * 1000) AS BIGINT) + {2**62}), 16, '0')"
            for k in keys[texts:]
        ]
        return "(" + " || ".join(parts) + ') COLLATE "C"'

    def id_list(self) -> str:
        return "SELECT CAST(jsonb_array_elements_text(CAST(? AS jsonb)) AS BIGINT)"

    def keys_beyond(self, document: str, kept: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM jsonb_object_keys(CAST({document} AS jsonb)) AS k "
            f"WHERE k NOT IN ({kept}))"
        )

    def blob_id(self, conn, text: str) -> int:
        # blobs are unique by md5(text): a long spec exceeds what a btree entry may hold
        conn.execute("INSERT INTO blobs (text) VALUES (?) ON CONFLICT DO NOTHING", (text,))
        sql = "SELECT id FROM blobs WHERE md5(text) = md5(?) AND text = ?"
        return conn.execute(sql, (text, text)).fetchone()[0]

    def change_counter(self, conn) -> int:
        return conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]

    def ddl(self, statement: str) -> str:
        """A schema statement written for SQLite, in PostgreSQL's types (its ids given by
        the database where SQLite's INTEGER PRIMARY KEY gives them: blobs, signals)."""
        import re

        if "CREATE TABLE blobs" in statement or "CREATE TABLE signals" in statement:
            statement = statement.replace(
                "id INTEGER PRIMARY KEY", "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
            )
        statement = re.sub(r" REFERENCES \w+\(\w+\)", "", statement)  # unchecked, as in SQLite
        statement = re.sub(r"\bINTEGER\b", "BIGINT", statement)
        statement = re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)
        statement = statement.replace("text TEXT NOT NULL UNIQUE", "text TEXT NOT NULL")
        return statement.replace(" user TEXT", ' "user" TEXT').replace("(user)", '("user")')


def _call(function: str, fmt: str, args: list[str]) -> str:
    """SQL of `function('fmt', args...)`."""
    quoted = "'" + fmt.replace("'", "''") + "'"
    return f"{function}({quoted}{''.join(', ' + a for a in args)})"


SQLITE_DIALECT = Dialect()
POSTGRESQL_DIALECT = PostgreSQL()


class Cursor:
    """A psycopg2 cursor as sqlite3's: iterable, fetchone/fetchall, rowcount."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor):
        self._cursor = cursor

    def fetchone(self):
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self):
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self):
        return iter(self._cursor) if self._cursor.description else iter(())

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


_PG_SQL: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """sqlite3's `?` parameters as psycopg2's `%s` (outside quoted text), `%` doubled."""
    found = _PG_SQL.get(sql)
    if found is None:
        pieces = sql.replace("%", "%%").split("'")
        for i in range(0, len(pieces), 2):  # the even pieces are outside '...'
            pieces[i] = pieces[i].replace("?", "%s")
        found = _PG_SQL[sql] = "'".join(pieces)
    return found


def _pg_value(value, literal):
    """A bound value as SQLite takes it: text that UTF-8 cannot encode (bytes, from
    records.bindable) with those bytes replaced (PostgreSQL's text is UTF-8), a bool as 0/1,
    a float as a float (psycopg2's bare literal would be a numeric, slow to compare with the
    times' columns and to sort)."""
    if value.__class__ is float:
        return literal(f"CAST('{value!r}' AS DOUBLE PRECISION)")
    if value.__class__ is bytes:
        return value.decode("utf-8", "replace")
    if value.__class__ is bool:  # SQLite's booleans are integers; so are the columns here
        return int(value)
    return value


class PgConnection:
    """A psycopg2 connection (autocommit; transactions explicit, as the SQLite one's) that
    takes sqlite3's calls."""

    dialect = POSTGRESQL_DIALECT
    text_factory = str  # text comes back as str (no raw bytes are stored here)
    team: bool | None = None  # whether the state is a team's (team.is_team), once asked
    admin: bool | None = None  # whether the role is the team's administrator (team.is_admin)

    def __init__(self, raw, errors, where: str, environ, application: str):
        from psycopg2.extensions import AsIs

        self._raw = raw
        self._errors = errors  # psycopg2.Error
        self._literal = AsIs
        self._where, self._environ, self._application = where, environ, application

    def _cursor(self):
        """A cursor; a connection the server lost is made again first (the agent's lives
        through a restart of the server: the statement that met the loss failed, and its
        transaction with it, whole)."""
        if self._raw.closed:
            self._raw = connect_postgres(self._where, self._environ, self._application)._raw
        return self._raw.cursor()

    def execute(self, sql: str, params=()) -> Cursor:
        cursor = self._cursor()
        try:
            if params:
                cursor.execute(_pg_sql(sql), [_pg_value(v, self._literal) for v in params])
            else:
                cursor.execute(sql)
        except self._errors as exc:
            raise failure(exc) from None
        return Cursor(cursor)

    def executemany(self, sql: str, rows) -> None:
        cursor = self._cursor()
        try:
            rows = [[_pg_value(v, self._literal) for v in row] for row in rows]
            cursor.executemany(_pg_sql(sql), rows)
        except self._errors as exc:
            raise failure(exc) from None

    @property
    def in_transaction(self) -> bool:
        if self._raw.closed:
            return False  # the server's end of it is gone, and rolled back
        return self._raw.get_transaction_status() != 0  # not TRANSACTION_STATUS_IDLE

    def create_function(self, *args, **kwargs) -> None:
        """Listings are not computed here (dialect.computes_sacct_listing): nothing to add."""

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StateError(Exception):
    """The PostgreSQL state failed a statement or a connection: `unreachable` when the
    server could not be reached (or went away), as Slurm's commands meet a dead
    controller."""

    def __init__(self, message: str, unreachable: bool, code: str | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        self.code = code  # PostgreSQL's SQLSTATE, if it answered


def failure(exc) -> StateError:
    """psycopg2's error as a StateError: a lost or refused connection is `unreachable`."""
    import psycopg2

    message = " ".join(str(exc).split()) or type(exc).__name__
    code = getattr(exc, "pgcode", None)
    # no answer at all, or the server shutting down or starting (SQLSTATE classes 08, 57P)
    lost = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and (
        not code or code.startswith(("08", "57P"))
    )
    return StateError(message, unreachable=lost, code=code)


CONNECT_TIMEOUT = 10  # s libpq waits for the server before a command says it is unreachable


def _import_psycopg2():
    """psycopg2, imported without Python's ssl where that is not loaded yet: its module
    imports ssl (~15 ms, half its cost) only to leave OpenSSL's locking set-up to Python;
    without it libpq does that itself (OpenSSL 1.1 and later need none; psycopg2-binary's
    libpq has an OpenSSL of its own). Python's ssl imports as usual afterwards."""
    if "psycopg2" in sys.modules or "ssl" in sys.modules:
        import psycopg2

        return psycopg2
    sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl fails: libpq's own
    try:
        import psycopg2
    finally:
        del sys.modules["ssl"]
    return psycopg2


def connect_postgres(where: str, environ=os.environ, application: str = "slurmsky") -> PgConnection:
    """A connection to the PostgreSQL state at URL `where` (libpq's URL; its credentials
    from libpq's own files and variables), named `application` in the server's list of
    sessions (an agent's name says its member's agent is connected: state/team.py)."""
    try:
        psycopg2 = _import_psycopg2()
    except ImportError:
        raise SlurmError(
            f"the state is on PostgreSQL ({where}) and no PostgreSQL driver is installed: "
            'pip install "slurmsky[postgres]"'
        ) from None
    timeout = environ.get("SLURMSKY_CONNECT_TIMEOUT") or environ.get("PGCONNECT_TIMEOUT")
    try:
        raw = psycopg2.connect(
            where,
            connect_timeout=int(float(timeout or CONNECT_TIMEOUT)),
            application_name=application,
        )
        raw.autocommit = True
    except psycopg2.Error as exc:
        raise failure(exc) from None
    return PgConnection(raw, psycopg2.Error, where, environ, application)
