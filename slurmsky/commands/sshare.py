"""sshare: the team's associations with their shares, usage and fair-share factors, as
Slurm 22.05's sshare prints them (core/fairshare.py: Fair Tree; render/sshare_format.py).

Without -a it lists every account and the caller's own associations (-u: those users'),
as sshare does; -A narrows to those accounts' subtrees, -U to the user associations.
On one person's state (SQLite) there are no associations: sshare says what Slurm says
without slurmdbd.
"""

from __future__ import annotations

import sys
import time

from slurmsky.commands.common import run
from slurmsky.commands.read_options import (
    APPEND,
    EXTEND,
    REQUIRED,
    Opt,
    Table,
    answered,
    words,
)
from slurmsky.core import fairshare, state
from slurmsky.core.state import team
from slurmsky.errors import SlurmError
from slurmsky.record import Factory, Record
from slurmsky.render import sacct_format, sshare_format

USAGE = """\
Usage:  sshare [-A Accounts] [-a] [-l] [-m] [-M Clusters] [-o Format] [-p] [-P] [-u User]"""
NO_DATABASE = "You are not running a supported accounting_storage plugin"


class SshareArgs(Record, frozen=False):
    """What sshare's options ask."""

    all: bool = False
    accounts: list = Factory(list)
    users: list = Factory(list)
    users_only: bool = False
    long: bool = False
    noheader: bool = False
    parsable: int = 0
    fields: list = Factory(list)
    action: str | None = None


# fmt: off
OPTIONS = Table("sshare", (
    Opt("a", ("all",), dest="all", help="every user's associations"),
    Opt("A", ("accounts",), REQUIRED, "accounts", convert=words, action=EXTEND,
        help="these accounts' subtrees"),
    Opt("e", ("helpformat",), dest="action", const="helpformat", stop=True,
        help="the fields -o takes"),
    Opt("l", ("long",), dest="long", help="more fields"),
    Opt("m", ("partition",), help="accepted, no effect (no partition associations)"),
    Opt("M", ("clusters",), REQUIRED, help="accepted: the one cluster"),
    Opt("n", ("noheader",), dest="noheader", help="no header lines"),
    Opt("o", ("format",), REQUIRED, "fields", action=APPEND, help="the fields"),
    Opt("p", ("parsable",), dest="parsable", const=1, help="|-separated, a | at the end"),
    Opt("P", ("parsable2",), dest="parsable", const=2, help="|-separated"),
    Opt("u", ("users",), REQUIRED, "users", convert=words, action=EXTEND, help="these users"),
    Opt("U", ("Users",), dest="users_only", help="user associations only"),
    Opt("v", ("verbose",), help="accepted, no effect"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("usage",), dest="action", const="help", stop=True, help="Slurm's help text"),
))
# fmt: on


def _run_mins(conn, now: float) -> dict[tuple[str, str | None], dict[str, int]]:
    """Each association's running jobs' TRES-minutes left (TRESRunMins): CPUs, memory and
    nodes times the minutes to their time limit (none: not counted)."""
    out: dict[tuple[str, str | None], dict[str, int]] = {}
    for rec in state.find_jobs(conn, states=("RUNNING",)):
        if rec.time_limit is None or rec.start_time is None:
            continue
        left = max(int(rec.time_limit - (now - rec.start_time) / 60), 0)
        mem = rec.mem_per_node * rec.num_nodes if rec.mem_per_node else 0
        key = (rec.account or "root", rec.user)
        totals = out.setdefault(key, {})
        for tres, amount in (("cpu", rec.num_cpus), ("mem", mem), ("node", rec.num_nodes)):
            totals[tres] = totals.get(tres, 0) + amount * left
        totals["billing"] = totals["cpu"]
    return out


def body(argv: list[str]) -> int:
    from slurmsky.config import load_config

    o, rest = OPTIONS.parse(argv, SshareArgs())
    if o.action == "helpformat":
        sys.stdout.write(sacct_format.sacct_helpformat(sshare_format.NAMES))
        return 0
    if answered(o, USAGE, "sshare"):
        return 0
    default = sshare_format.LONG if o.long else sshare_format.DEFAULT
    fields = sacct_format.parse_sacct_fields(
        ",".join(o.fields) or default, "sshare", sshare_format.NAMES, sshare_format.WIDTHS
    )
    config = load_config()
    conn = state.connect()
    if not team.is_postgres(conn):
        raise SlurmError(NO_DATABASE, bare=True)
    settings = fairshare.Settings(config)
    now = time.time()
    factors = fairshare.Factors(conn, settings, now)
    users = None if o.all else set(o.users or [team.login()])
    rows = sshare_format.rows(
        factors.root,
        users=users,
        accounts=o.accounts,
        users_only=o.users_only,
        cluster=config.cluster_name,
        run_mins=_run_mins(conn, now),
    )
    lines = sacct_format.sacct_lines(
        rows, fields, header=not o.noheader, parsable=o.parsable, values=sshare_format.VALUES
    )
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def main() -> None:
    run("sshare", body)
