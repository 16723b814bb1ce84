"""sreport: Slurm's usage reports over a period, from the jobs the state keeps: `cluster
AccountUtilizationByUser` and `cluster UserUtilizationByAccount` (render/sreport_format.py),
with their conditions start=, end=, users= and accounts=, -t seconds|minutes|hours and -T
TRES, among them slurmsky's `cost` (what a backend says a job cost: a sky job's dollars).

The command comes on the command line (Slurm's interactive mode, no command, is not here);
usage is each job's last run, counted where it overlaps the period.
"""

from __future__ import annotations

import sys
import time

from slurmsky.commands.common import run
from slurmsky.commands.read_options import EXTEND, REQUIRED, Opt, Table, answered, words
from slurmsky.errors import SlurmError
from slurmsky.record import Factory, Record
from slurmsky.render import sacct_format, sreport_format
from slurmsky.runtime.getopt_long import UsageError

USAGE = "Usage: sreport [OPTIONS] cluster AccountUtilizationByUser|UserUtilizationByAccount"
PERCENT = ("secper", "minper", "hourper")


class SreportArgs(Record, frozen=False):
    """What sreport's options ask."""

    noheader: bool = False
    parsable: int = 0
    units: str = "minutes"
    tres: list = Factory(list)
    action: str | None = None


def units(text: str, ns: object = None) -> str:
    """-t: Slurm's time formats, each name or a prefix of it (the percentages whole);
    another is said, and minutes it stays (as sreport does)."""
    lower = text.lower()
    per = any(len(lower) >= 6 and p.startswith(lower) for p in PERCENT)
    if per or (lower and "percent".startswith(lower) and lower[0] == "p"):
        raise UsageError(
            f"sreport: error: -t {text}: slurmsky has no cluster capacity to take a percentage of"
        )
    found = next((u for u in sreport_format.UNITS if lower and u.startswith(lower)), None)
    if found is None:
        sys.stderr.write(f"unknown time format {text}")
        return getattr(ns, "units", "minutes")
    return found


# fmt: off
OPTIONS = Table("sreport", (
    Opt("a", ("all_clusters",), help="accepted: the one cluster"),
    Opt("", ("federation",), help="accepted: the one cluster"),
    Opt("h", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("local",), help="accepted: the one cluster"),
    Opt("M", ("cluster",), REQUIRED, help="accepted: the one cluster"),
    Opt("n", ("noheader",), dest="noheader", help="no header lines"),
    Opt("p", ("parsable",), dest="parsable", const=1, help="|-separated, a | at the end"),
    Opt("P", ("parsable2",), dest="parsable", const=2, help="|-separated"),
    Opt("Q", ("quiet",), help="accepted, no effect"),
    Opt("t", (), REQUIRED, "units", convert=units, help="seconds, minutes or hours"),
    Opt("T", ("tres",), REQUIRED, "tres", convert=words, action=EXTEND,
        help="these TRES (slurmsky's `cost`: US dollars)"),
    Opt("v", ("verbose",), help="accepted, no effect"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("usage",), dest="action", const="help", stop=True, help="Slurm's help text"),
))
# fmt: on
TRES = ("cpu", "mem", "node", "billing", "gres/gpu", sreport_format.COST)


def _named(word: str, name: str) -> bool:
    """Slurm's match of a command word: a prefix of the name, case aside, 2 letters at least."""
    return len(word) >= 2 and name.lower().startswith(word.lower())


def _conditions(words_: list[str], now: float) -> dict:
    """start=, end=, users=, accounts= (each a prefix of its name); "bad": the others."""
    from slurmsky.parse.times import TimeSpecError, parse_begin

    found: dict = {"users": None, "accounts": None, "start": None, "end": None}
    bad = []
    for word in words_:
        key, eq, value = word.partition("=")
        name = next((n for n in ("start", "end", "users", "accounts") if _named(key, n)), None)
        if not eq or name is None:
            bad.append(word)
        elif name in ("users", "accounts"):
            found[name] = set(words(value))
        else:
            try:
                found[name] = float(parse_begin(value, name, now))
            except TimeSpecError:
                bad.append(word)
    found["bad"] = bad
    return found


def body(argv: list[str]) -> int:
    o, rest = OPTIONS.parse(argv, SreportArgs())
    if answered(o, USAGE, "sreport"):
        return 0
    if not rest:
        raise SlurmError(f"{USAGE}: slurmsky's sreport takes its command on the command line")
    if not _named(rest[0], "cluster"):
        raise SlurmError(f"invalid keyword: {rest[0]}", bare=True)
    report = next((r for r in sreport_format.REPORTS if len(rest) > 1 and _named(rest[1], r)), None)
    if report is None:
        given = rest[1] if len(rest) > 1 else ""
        raise SlurmError(f"Not valid report {given}", sreport_format.VALID, bare=True)
    tres = [t.lower() for t in o.tres]
    if o.tres and not all(t in TRES for t in tres):
        raise SlurmError("sreport: fatal: No valid TRES given", bare=True)
    now = time.time()
    cond = _conditions(rest[2:], now)
    for word in cond["bad"]:  # said, and the report made without them (exit 1)
        sys.stderr.write(f" Unknown condition: {word}\nUse keyword set to modify value\n")
    start, end = sreport_format.period(cond["start"], cond["end"], now)
    from slurmsky.config import load_config

    cluster = load_config().cluster_name
    lines = [] if o.noheader else sreport_format.header(report, start, end, o.units, bool(tres))
    fields = sreport_format.fields(report, bool(tres))
    rows = sreport_format.rows(
        report,
        _runs(start, end, cond["users"], cond["accounts"], now),
        tres or ["cpu"],
        start,
        end,
        sreport_format.UNITS[o.units][1],
        cluster,
        _proper_name,
    )
    values = {name: (lambda row, name=name: row[name]) for name, _ in fields}
    lines += sacct_format.sacct_lines(
        rows, fields, header=not o.noheader, parsable=o.parsable, values=values
    )
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 1 if cond["bad"] else 0


def _runs(start: float, end: float, users, accounts, now: float) -> list[tuple]:
    """(account, user, run start, run end, TRES amounts) of each job that ran in the period."""
    from slurmsky import backends
    from slurmsky.core import state

    conn = state.connect()
    out = []
    for job in state.find_jobs(conn, active_or_ended_after=start, submitted_before=end):
        account = job.account or "root"
        if job.start_time is None or (users and job.user not in users):
            continue
        if accounts and account not in accounts:
            continue
        cost = backends.get(job.executor).cost(job) if job.executor else None
        ran = (job.start_time, job.end_time or now)
        out.append((account, job.user, *ran, sreport_format.amounts(job, cost)))
    return out


def _proper_name(user: str) -> str:
    """The user's name from the password database (its GECOS's first field), as Slurm's."""
    import pwd

    try:
        return pwd.getpwnam(user).pw_gecos.split(",")[0]
    except KeyError:
        return ""


def main() -> None:
    run("sreport", body)
