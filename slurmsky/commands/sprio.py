"""sprio: the factors of each pending job's priority, as Slurm 22.05's sprio prints them.

Only a team's state orders its jobs by priority/multifactor (core/fairshare.py); elsewhere
sprio says what Slurm's says under priority/basic. The factors are the current
PriorityCalcPeriod's, the ones every member's agent orders the jobs by.
"""

from __future__ import annotations

import sys
import time

from slurmsky.commands.common import run
from slurmsky.commands.read_options import EXTEND, REQUIRED, Opt, Table, answered, words
from slurmsky.core import fairshare, state
from slurmsky.errors import SlurmError
from slurmsky.record import Factory, Record
from slurmsky.render import sprio_format
from slurmsky.runtime.getopt_long import UsageError

USAGE = """\
Usage: sprio [-j jid[s]] [-u user_name[s]] [-o format] [-p partitions]
   [--federation] [--local] [--sibling] [--usage] [-hlnvVw]"""


def _job_ids(text: str, ns: object = None) -> list[int]:
    ids = []
    for word in words(text):
        if not word.isdigit() or int(word) <= 0:
            raise UsageError(f"sprio: error: Invalid job id: {word}")
        ids.append(int(word))
    return ids


class SprioArgs(Record, frozen=False):
    """What sprio's options ask."""

    jobs: list = Factory(list)
    users: list = Factory(list)
    partitions: list = Factory(list)
    fmt: str | None = None
    long: bool = False
    norm: bool = False
    noheader: bool = False
    weights: bool = False
    action: str | None = None


# fmt: off
OPTIONS = Table("sprio", (
    Opt("h", ("noheader",), dest="noheader", help="no header line"),
    Opt("j", ("jobs",), REQUIRED, "jobs", convert=_job_ids, action=EXTEND, help="these jobs"),
    Opt("l", ("long",), dest="long", help="every factor"),
    Opt("M", ("clusters",), REQUIRED, help="accepted: the one cluster"),
    Opt("n", ("norm",), dest="norm", help="the factors before their weights"),
    Opt("o", ("format",), REQUIRED, "fmt", help="the format"),
    Opt("p", ("partition",), REQUIRED, "partitions", convert=words, action=EXTEND,
        help="these partitions' jobs"),
    Opt("u", ("user",), REQUIRED, "users", convert=words, action=EXTEND, help="these users' jobs"),
    Opt("v", ("verbose",), help="accepted, no effect"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("w", ("weights",), dest="weights", help="the weights"),
    Opt("", ("federation",), help="accepted: the one cluster"),
    Opt("", ("local",), help="accepted: the one cluster"),
    Opt("", ("sibling",), help="accepted: the one cluster"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
))
# fmt: on


def body(argv: list[str]) -> int:
    from slurmsky.config import load_config

    o, _ = OPTIONS.parse(argv, SprioArgs())
    if answered(o, USAGE, "sprio"):
        return 0
    config = load_config()
    conn = state.connect()
    settings = fairshare.settings(config, conn)
    if settings is None:
        raise SlurmError(sprio_format.BASIC, bare=True)
    weights = {"age": settings.weight_age, "fairshare": settings.weight_fairshare}
    fmt = o.fmt or sprio_format.default_format(
        weights, users=bool(o.users), long=o.long, norm=o.norm
    )
    header = not o.noheader
    if o.weights:
        lines = sprio_format.lines([], fmt, header=header, weights=weights)
        sys.stdout.write("".join(line + "\n" for line in lines))
        return 0
    factors = fairshare.Factors(conn, settings, time.time())
    jobs = []
    for rec in state.find_jobs(
        conn, ids=o.jobs or None, states=("PENDING",), users=o.users or None
    ):
        if rec.held or (o.partitions and rec.partition not in o.partitions):
            continue
        priority, age, share = factors.of(rec)
        jobs.append(
            dict(
                job_id=rec.job_id,
                partition=rec.partition,
                user=rec.user,
                cluster=config.cluster_name,
                priority=priority,
                age=age,
                fairshare=share,
                weights=weights,
            )
        )
    if not jobs and (o.jobs or o.users):
        print(sprio_format.NOT_FOUND)
        return 0
    lines = sprio_format.lines(jobs, fmt, header=header, weights=None)
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def main() -> None:
    run("sprio", body)
