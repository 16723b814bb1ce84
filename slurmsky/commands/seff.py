"""seff JOBID: a job's CPU and memory efficiency, as Slurm's contribs/seff prints it."""

from __future__ import annotations

import sys

from slurmsky.commands.common import run
from slurmsky.commands.read_options import REQUIRED, Opt, Table
from slurmsky.core import state
from slurmsky.record import Record
from slurmsky.render.jobview import Job
from slurmsky.render.seff_format import seff_lines

USAGE = (
    "Usage: seff [Options] <Jobid>\n"
    "       Options:\n"
    "       -h    Help menu\n"
    "       -v    Version\n"
    "       -d    Debug mode: display raw Slurm data\n"
)


class SeffArgs(Record, frozen=False):
    """What seff's options ask (it answers -v before -h, wherever each is)."""

    help: bool = False
    version: bool = False
    debug: bool = False


# fmt: off
OPTIONS = Table("seff", (
    Opt("h", dest="help", help="the usage text"),
    Opt("v", dest="version", help="the version"),
    Opt("d", dest="debug", help="the raw data too"),
    Opt("f", (), REQUIRED, help="accepted, no effect"),
))
# fmt: on


def _find(text: str):
    """The job `N` or the array element `N_I` (Perl's step_list: N.STEP names N)."""
    head = text.partition(".")[0]
    job, underscore, task = head.partition("_")
    if not job.isdigit() or (underscore and not task.isdigit()):
        return None
    conn = state.connect()
    if underscore:
        found = state.find_jobs(conn, tasks=[(int(job), int(task))])
        return found[0] if found else None
    return state.get_job(conn, int(job))


def body(argv: list[str]) -> int:
    o, rest = OPTIONS.parse(argv, SeffArgs())
    if o.version:
        print("seff Version 2.1")
        return 1
    if o.help or len(rest) != 1:
        sys.stdout.write(USAGE)
        return 1
    rec = _find(rest[0])
    if rec is None:
        sys.stderr.write("Job not found.\n")
        return 2
    sys.stdout.write("".join(line + "\n" for line in seff_lines(Job(rec), debug=o.debug)))
    return 0


def main() -> None:
    run("seff", body)
