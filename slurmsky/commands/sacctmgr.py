"""sacctmgr: a team's accounts and members (state/team.py), the subset a team needs, in Slurm
22.05's syntax and words:

    sacctmgr [-i] [-n] [-P] add|create account NAME[,NAME] [Description=D] [Organization=O]
    sacctmgr [-i] add|create user NAME[,NAME] Account=A [Fairshare=N] [DefaultAccount=A]
    sacctmgr [-i] delete|remove user NAME[,NAME] [Account=A]
    sacctmgr [-i] delete|remove account NAME[,NAME]
    sacctmgr [-n] [-P] show|list account|user|association [NAME...] [where user=U ...]
             [format=F,F]

Changes need the team's state on PostgreSQL and its administrator (the schema's owner); -i
is implied (nothing asks to commit). The cluster is the config's `cluster_name`.
"""

from __future__ import annotations

import sys

from slurmsky.commands.common import run
from slurmsky.core import state
from slurmsky.core.state import team
from slurmsky.errors import SlurmError

ENTITIES = (
    '"Account", "Association", "Cluster", "Configuration",\n'
    '"Event", "Federation", "Problem", "QOS", "Resource", "Reservation",\n'
    '"RunAwayJobs", "Stats", "Transaction", "TRES", "User", or "WCKey"'
)

# show association's columns, as Slurm 22.05 prints them: (title, width)
ASSOC_COLUMNS = (
    ("Cluster", 10), ("Account", 10), ("User", 10), ("Partition", 10), ("Share", 9),
    ("Priority", 10), ("GrpJobs", 7), ("GrpTRES", 13), ("GrpSubmit", 9), ("GrpWall", 11),
    ("GrpTRESMins", 13), ("MaxJobs", 7), ("MaxTRES", 13), ("MaxTRESPerNode", 14),
    ("MaxSubmit", 9), ("MaxWall", 11), ("MaxTRESMins", 13), ("QOS", 20), ("Def QOS", 9),
    ("GrpTRESRunMins", 13),
)  # fmt: skip
USER_COLUMNS = (("User", 10), ("Def Acct", 10), ("Admin", 9))
ACCOUNT_COLUMNS = (("Account", 10), ("Descr", 20), ("Org", 20))


def _entity(word: str, prog_line: str) -> str:
    """Slurm's entity names, abbreviated as sacctmgr takes them."""
    w = word.lower()
    for name, least in (("account", 3), ("association", 3), ("user", 1), ("cluster", 1)):
        if len(w) >= least and name.startswith(w):
            return name
    raise SlurmError(
        f"No valid entity in {prog_line} command", f"Input line must include {ENTITIES}", bare=True
    )


def _table(columns, rows, *, noheader: bool, parsable: str | None) -> str:
    """sacctmgr's output: right-aligned columns cut to their width (a cut one ends `+`), a
    space after each; -P: `|` between fields, -p: and at each line's end (`parsable`)."""
    lines = []
    if parsable is not None:
        if not noheader:
            lines.append("|".join(t for t, _ in columns))
        lines.extend("|".join(str(v) for v in row) for row in rows)
        return "".join(line + parsable + "\n" for line in lines)

    def cell(value, width):
        text = str(value)
        return (text[: width - 1] + "+" if len(text) > width else text.rjust(width)) + " "

    if not noheader:  # a title is cut without a `+`
        lines.append("".join(t[:w].rjust(w) + " " for t, w in columns))
        lines.append("".join("-" * w + " " for _, w in columns))
    lines.extend("".join(cell(v, w) for v, (_, w) in zip(row, columns)) for row in rows)
    return "".join(line + "\n" for line in lines)


def _settings(words: list[str]) -> tuple[list[str], dict[str, str]]:
    """Names and key=value settings (keys lowercased; `where` and `set` are skipped)."""
    names: list[str] = []
    settings: dict[str, str] = {}
    for word in words:
        if word.lower() in ("where", "set", "withassoc"):
            continue
        key, eq, value = word.partition("=")
        if eq:
            settings[key.lower()] = value
        else:
            names.extend(n for n in word.split(",") if n)
    if "name" in settings or "names" in settings:
        names.extend((settings.pop("name", "") or settings.pop("names", "")).split(","))
    return names, settings


def _cluster() -> str:
    from slurmsky.config import load_config

    return load_config().cluster_name


def _show(conn, entity: str, words: list[str], noheader: bool, parsable: str | None) -> int:
    names, settings = _settings(words)
    if entity == "account":
        rows = [r for r in team.accounts(conn) if not names or r[0] in names]
        columns, shown = ACCOUNT_COLUMNS, [list(r) for r in rows]
    elif entity == "user":
        rows = [r for r in team.members(conn) if not names or r[0] in names]
        columns, shown = USER_COLUMNS, [[n, d, "None"] for n, d in rows]
    else:
        users = names or [
            u for u in settings.get("user", settings.get("users", "")).split(",") if u
        ]
        accounts = [
            a for a in settings.get("account", settings.get("accounts", "")).split(",") if a
        ]
        cluster = _cluster()
        shown = [
            [cluster, a, u, "", share, *[""] * 12, "normal", "", ""]
            for a, u, share in team.associations(conn)
            if (not users or u in users) and (not accounts or a in accounts)
        ]
        columns = ASSOC_COLUMNS
    wanted = settings.get("format")
    if wanted:
        titles = [t.lower().replace(" ", "") for t, _ in columns]
        picked = []
        for field in wanted.split(","):
            f = field.lower()
            if f in ("share", "fairshare"):
                f = "share"
            hits = [i for i, t in enumerate(titles) if t.startswith(f)] if f else []
            if not hits:
                raise SlurmError(f"Unknown field '{field}'", bare=True)
            picked.append(hits[0])
        columns = tuple(columns[i] for i in picked)
        shown = [[row[i] for i in picked] for row in shown]
    sys.stdout.write(_table(columns, shown, noheader=noheader, parsable=parsable))
    return 0


def _add(conn, entity: str, words: list[str]) -> int:
    names, settings = _settings(words)
    team.require_admin(conn, f" Problem adding {entity}s: Access/permission denied")
    out = sys.stdout.write
    if entity == "account":
        description = settings.get("description")
        organization = settings.get("organization")
        added = [n for n in names if team.add_account(conn, n, description or n, organization or n)]
        if not added:
            out(" Nothing new added.\n")
            return 1
        out(" Adding Account(s)\n" + "".join(f"  {n}\n" for n in added) + " Settings\n")
        out(f"  Description     = {description or 'Account Name'}\n")
        out(f"  Organization    = {organization or 'Parent/Account Name'}\n")
        out(" Associations\n")
        cluster = _cluster()
        out("".join(f"  A = {n:<10} C = {cluster:<10}\n" for n in added))
        if description or organization:
            out(" Settings\n  Parent        = root\n")
        return 0
    if entity != "user":
        raise SlurmError(f" Adding {entity}s is not supported here", bare=True)
    account = settings.get("account") or settings.get("accounts")
    if not account:
        raise SlurmError(" Need name of account to add user to.", bare=True)
    try:
        fairshare = int(settings.get("fairshare", settings.get("share", "1")))
    except ValueError:
        raise SlurmError(f" Bad Fairshare value: {settings.get('fairshare')}", bare=True) from None
    default = settings.get("defaultaccount")
    results = {n: team.add_user(conn, n, account, fairshare, default) for n in names}
    if "no account" in results.values():
        raise SlurmError(
            f" This account '{account}' doesn't exist.",
            "        Contact your admin to add this account.",
            " No associations or wckeys created.",
            bare=True,
        )
    made = [n for n, r in results.items() if r in ("new", "added")]
    if not made:
        out(" Nothing new added.\n")
        return 1
    new = [n for n in made if results[n] == "new"]
    if new:
        out(" Adding User(s)\n" + "".join(f"  {n}\n" for n in new))
    if default:
        out(f" Settings =\n  Default Account = {default}\n")
    cluster = _cluster()
    out(" Associations =\n")
    out("".join(f"  U = {n:<9} A = {account:<10} C = {cluster:<10}\n" for n in made))
    out(" Non Default Settings\n")
    if fairshare != 1:
        out(f"  Fairshare     = {fairshare}\n")
    return 0


def _delete(conn, entity: str, words: list[str]) -> int:
    names, settings = _settings(words)
    team.require_admin(conn)
    out = sys.stdout.write
    if entity == "user":
        account = settings.get("account")
        gone = team.delete_users(conn, names, account)
        if gone and account:
            cluster = _cluster()
            out(" Deleting user associations...\n")
            out("".join(f"  C = {cluster:<10} A = {account:<10} U = {n:<9}\n" for n in gone))
            return 0
        heading = " Deleting users...\n"
    elif entity == "account":
        gone = team.delete_accounts(conn, names)
        heading = " Deleting accounts...\n"
    else:
        raise SlurmError(f" Deleting {entity}s is not supported here", bare=True)
    if not gone:
        out(" Nothing deleted\n")
        return 1
    out(heading + "".join(f"  {n}\n" for n in gone))
    return 0


def body(argv: list[str]) -> int:
    noheader = False
    parsable: str | None = None  # what ends each line: -P nothing, -p `|`
    words: list[str] = []
    for arg in argv:
        if arg in ("-i", "--immediate"):
            continue
        if arg in ("-n", "--noheader"):
            noheader = True
        elif arg in ("-P", "--parsable2"):
            parsable = ""
        elif arg in ("-p", "--parsable"):
            parsable = "|"
        elif arg in ("-V", "--version"):
            from slurmsky.render.common import version_line

            print(version_line())
            return 0
        elif arg in ("-h", "--help", "--usage") or (arg.lower() == "help" and not words):
            from slurmsky.runtime.help_texts import HELP

            sys.stdout.write(HELP["sacctmgr"])
            return 0
        else:
            words.append(arg)
    if not words:
        return 0
    action = words[0].lower()
    if len(words) < 2:
        raise SlurmError(
            f"No valid entity in {action} command", f"Input line must include {ENTITIES}", bare=True
        )
    verbs = {"add": "add", "create": "add", "delete": "delete", "remove": "delete",
             "show": "show", "list": "show"}  # fmt: skip
    verb = verbs.get(action)
    if verb is None:
        raise SlurmError(f"invalid keyword: {words[0]}", bare=True)
    entity = _entity(words[1], "list" if verb == "show" else verb)
    conn = state.connect()
    if entity == "cluster":
        if verb != "show":
            raise SlurmError(" Clusters are the config's cluster_name here", bare=True)
        cluster = _cluster()
        rows = [[cluster]]
        sys.stdout.write(_table((("Cluster", 10),), rows, noheader=noheader, parsable=parsable))
        return 0
    if not team.is_postgres(conn):
        team.require_admin(conn)  # says why: no accounting without the team's database
    if verb == "show":
        return _show(conn, entity, words[2:], noheader, parsable)
    if verb == "add":
        return _add(conn, entity, words[2:])
    return _delete(conn, entity, words[2:])


def main() -> None:
    run("sacctmgr", body)
