"""A team's members and accounts (what sacctmgr keeps), and who may change which job.

A state on PostgreSQL becomes a team's once `sacctmgr add user` has made a member: from then
on each member's commands and agent connect as that member's own PostgreSQL role (named as
the member's login), row-level security lets a role read every job but change only its own
(db._TEAM_RLS), a job's `--account` must be one of its user's associations (none given: the
user's default account), and each member's agent runs that member's jobs only. The role that
owns the schema (who ran `slurmsky db init`) is the team's administrator: the security does
not bind it, and it alone runs sacctmgr's changes. A state no member was ever added to (and
every SQLite state) is one person's, as before.
"""

from __future__ import annotations

import os

from slurmsky.core.state import engine
from slurmsky.core.state.db import write
from slurmsky.errors import SlurmError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection

# slurmctld's words for a job whose user has no association with its account
INVALID_ACCOUNT = "Invalid account or account/partition combination specified"
ROOT_ACCOUNT = ("root", "default root account", "root")  # every Slurm database has it

# What a member's role may do with the tables (row-level security narrows it to its own rows).
_GRANTS = (
    "GRANT SELECT ON meta, submissions, blobs, jobs, signals, attempts, accounts, members, "
    "associations TO {role}",
    "GRANT INSERT, UPDATE, DELETE ON submissions, blobs, jobs, signals, attempts TO {role}",
    "GRANT UPDATE ON meta TO {role}",  # job ids, the change counter
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
)


def is_team(conn: Connection, *, fresh: bool = False) -> bool:
    """Whether the state is a team's (PostgreSQL's, with members): asked once per connection
    (a command's), or again when `fresh` (the agent's, each pass)."""
    if not is_postgres(conn):
        return False
    known = getattr(conn, "team", None)
    if known is None or fresh:
        known = conn.team = conn.execute("SELECT EXISTS (SELECT 1 FROM members)").fetchone()[0]
    return known


def login() -> str:
    """This process's user as Slurm names it (and a member's role is named)."""
    from slurmsky.plan.runtime_spec import current_user

    return current_user()


def is_admin(conn: Connection) -> bool:
    """Whether this connection's role is the team's administrator: it owns the schema (or
    is a superuser, or bypasses row-level security). SQLite: root is, as on Slurm."""
    if not is_postgres(conn):
        return os.getuid() == 0
    known = getattr(conn, "admin", None)
    if known is None:
        known = conn.admin = _admin_role(conn)
    return known


def _admin_role(conn: Connection) -> bool:
    return conn.execute(
        "SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(c.relowner, 'MEMBER') "
        "FROM pg_roles AS r, pg_class AS c WHERE r.rolname = current_user "
        "AND c.oid = to_regclass('jobs')"
    ).fetchone()[0]


def is_postgres(conn: Connection) -> bool:
    return isinstance(conn.dialect, engine.PostgreSQL)


def may_change(conn: Connection, job_user: str, job_uid: int) -> bool:
    """Whether this process may change a job of that user: its own, or any as the
    administrator. A team's jobs are compared by user name (members' uids differ between
    machines); one person's by uid, root changing any."""
    if is_team(conn):
        return job_user == login() or is_admin(conn)
    uid = os.getuid()
    return uid == 0 or job_uid == uid


def account_for(conn: Connection, asked: str | None) -> str | None:
    """The account a new job of this user is charged to: the one asked, if the user has an
    association with it, else the user's default; on a team's state, anything else is
    slurmctld's INVALID_ACCOUNT. One person's state: the account as asked."""
    if not is_team(conn):
        return asked
    user = login()
    rows = conn.execute(
        "SELECT a.account, m.default_account FROM associations AS a JOIN members AS m "
        "ON m.name = a.user_name WHERE a.user_name = ?",
        (user,),
    ).fetchall()
    if not rows:
        if is_admin(conn):  # the administrator submits as itself, charged as it asks
            return asked
        raise SlurmError("Batch job submission failed: " + INVALID_ACCOUNT)
    account = asked or rows[0][1]
    if account not in {r[0] for r in rows}:
        raise SlurmError("Batch job submission failed: " + INVALID_ACCOUNT)
    return account


# --- sacctmgr's changes (the administrator's) -------------------------------------------------


def require_admin(conn: Connection, refusal: str = "") -> None:
    """Refuse a change of members and accounts with Slurm's words: one person's state keeps
    none (as Slurm without slurmdbd), a member is no administrator (`refusal`: what
    sacctmgr says for this change, else its words for a deletion)."""
    if not is_postgres(conn):
        raise SlurmError(
            "You are not running a supported accounting_storage plugin",
            "Only 'accounting_storage/slurmdbd' is supported.",
            bare=True,
        )
    if not is_admin(conn):
        raise SlurmError(
            *(
                [refusal]
                if refusal
                else [
                    "sacctmgr: error: Your user doesn't have privilege to perform this action",
                    " Error with request: Access/permission denied",
                ]
            ),
            bare=True,
        )


def add_account(conn: Connection, name: str, description: str, organization: str) -> bool:
    """Whether the account was new."""
    with write(conn):
        found = conn.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone()
        if found:
            return False
        conn.execute(
            "INSERT INTO accounts (name, description, organization, parent) VALUES (?, ?, ?, ?)",
            (name, description, organization, "root"),
        )
    return True


def add_user(conn: Connection, name: str, account: str, fairshare: int, default: str | None) -> str:
    """Add the association (name, account): 'new' (a new member), 'added' (another account
    of a member), 'exists', or 'no account'. A new member gets a PostgreSQL role of that name
    (made if missing) with the grants a member needs."""
    with write(conn):
        known = conn.execute("SELECT 1 FROM accounts WHERE name = ?", (account,)).fetchone()
        if not known and account != "root":
            return "no account"
        if conn.execute(
            "SELECT 1 FROM associations WHERE account = ? AND user_name = ?", (account, name)
        ).fetchone():
            return "exists"
        member = conn.execute("SELECT 1 FROM members WHERE name = ?", (name,)).fetchone()
        if not member:
            conn.execute(
                "INSERT INTO members (name, default_account) VALUES (?, ?)",
                (name, default or account),
            )
            _make_role(conn, name)
        elif default:
            conn.execute("UPDATE members SET default_account = ? WHERE name = ?", (default, name))
        conn.execute(
            "INSERT INTO associations (account, user_name, fairshare) VALUES (?, ?, ?)",
            (account, name, fairshare),
        )
    return "added" if member else "new"


def _make_role(conn: Connection, name: str) -> None:
    role = _quoted(name)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (name,)).fetchone()
    if not exists:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    for grant in _GRANTS:
        conn.execute(grant.format(role=role))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def delete_users(conn: Connection, names: list[str], account: str | None) -> list[str]:
    """Remove these members (or only their association with `account`); the names removed.
    Their roles stay (their agents end the jobs they run); with no association they cannot
    submit (the security on `submissions`)."""
    gone: list[str] = []
    with write(conn):
        for name in names:
            if account:
                sql = "DELETE FROM associations WHERE user_name = ? AND account = ?"
                if conn.execute(sql, (name, account)).rowcount:
                    gone.append(name)
                continue
            conn.execute("DELETE FROM associations WHERE user_name = ?", (name,))
            if conn.execute("DELETE FROM members WHERE name = ?", (name,)).rowcount:
                gone.append(name)
    return gone


def delete_accounts(conn: Connection, names: list[str]) -> list[str]:
    """Remove these accounts and their associations (their users stay members)."""
    gone: list[str] = []
    with write(conn):
        for name in names:
            sql = "DELETE FROM accounts WHERE name = ?"
            if name != "root" and conn.execute(sql, (name,)).rowcount:
                conn.execute("DELETE FROM associations WHERE account = ?", (name,))
                gone.append(name)
    return gone


# --- sacctmgr's listings ----------------------------------------------------------------------


def accounts(conn: Connection) -> list[tuple[str, str, str]]:
    """(name, description, organization), root's too, by name."""
    rows = conn.execute("SELECT name, description, organization FROM accounts").fetchall()
    return sorted([ROOT_ACCOUNT, *map(tuple, rows)])


def members(conn: Connection) -> list[tuple[str, str]]:
    """(name, default account), by name."""
    return [
        tuple(r) for r in conn.execute("SELECT name, default_account FROM members ORDER BY name")
    ]


def associations(conn: Connection) -> list[tuple[str, str, int]]:
    """(account, user or '' for the account's own, fairshare) in sacctmgr's order: root's
    first, then each account by name; an account's own before its users'."""
    rows = conn.execute("SELECT account, user_name, fairshare FROM associations").fetchall()
    out: list[tuple[str, str, int]] = []
    for name, *_ in accounts(conn):
        out.append((name, "", 1))
        out.extend(sorted((r[0], r[1], r[2]) for r in rows if r[0] == name))
    root = [a for a in out if a[0] == "root"]
    return root + [a for a in out if a[0] != "root"]


# --- fair share (core/fairshare.py) -----------------------------------------------------------


def account_parents(conn: Connection) -> list[tuple[str, str]]:
    """(account, parent) of every account but root."""
    return [tuple(r) for r in conn.execute("SELECT name, COALESCE(parent, 'root') FROM accounts")]


def runs(conn: Connection) -> list[tuple[str, str, int, float, float | None]]:
    """(account, user, CPUs, start, end or None) of every job's run (its last: a requeued
    job's earlier runs are not counted); a job with no account is its user's default
    account's."""
    sql = (
        "SELECT COALESCE(j.account, m.default_account, 'root'), j.\"user\", j.num_cpus, "
        'j.start_time, j.end_time FROM jobs AS j LEFT JOIN members AS m ON m.name = j."user" '
        "WHERE j.start_time IS NOT NULL"
    )
    return [tuple(r) for r in conn.execute(sql)]


# What an agent's connection is named, with its member's login (daemon.py; db._AGENTS)
AGENT_APPLICATION = "slurmsky-agent"


def agents_connected(conn: Connection) -> set[str]:
    """The members with an agent connected to the team's database (PostgreSQL's own list of
    sessions: an agent that dies drops its connection)."""
    return {r[0] for r in conn.execute("SELECT * FROM slurmsky_agents()")}


def mark_absent(conn: Connection) -> None:
    """Mark FrontEndDown the pending jobs of members whose agent is not connected."""
    conn.execute("SELECT slurmsky_mark_absent()")
