"""sstat: the usage of running job steps, as Slurm 22.05's sstat prints it.

It reads what the job's nodes last sampled (Backend.step_usage: every acct_gather_frequency
seconds, Slurm's JobAcctGatherFrequency), so a step younger than one interval shows nothing
yet. `-j JOB` is the job's lowest numbered srun step, `-a` every running step (the batch
step's too), `-j JOB.STEP` that step.
"""

from __future__ import annotations

import sys

from slurmsky import backends
from slurmsky.commands.common import run
from slurmsky.commands.read_options import APPEND, EXTEND, REQUIRED, Opt, Table, answered
from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.record import Factory, Record
from slurmsky.render import sacct_format
from slurmsky.render.sstat_format import (
    SSTAT_DEFAULT,
    SSTAT_NAMES,
    SSTAT_VALUES,
    SSTAT_WIDTHS,
    StepRow,
)
from slurmsky.runtime.getopt_long import UsageError

USAGE = "Usage: sstat [options] -j <job(.stepid)>\n\tUse --help for help\n"
HELP = "sstat [<OPTION>] -j <job(.stepid)>                                          \n    Valid <OPTION> values are:                                              \n      -a, --allsteps:                                                       \n                   Print all steps for the given job(s) when no step is     \n                   specified.                                               \n      -e, --helpformat:                                                     \n\t           Print a list of fields that can be specified with the    \n\t           '--format' option                                        \n     -h, --help:   Print this description of use.                           \n     -i, --pidformat:                                                       \n                   Predefined format to list the pids running for each      \n                   job step.  (JobId,Nodes,Pids)                            \n     -j, --jobs:                                                            \n\t           Format is <job(.step)>. Stat this job step               \n                   or comma-separated list of job steps. This option is     \n                   required.  The step portion will default to the lowest   \n                   numbered (not batch, extern, etc) step running if not    \n                   specified, unless the --allsteps flag is set where not   \n                   specifying a step will result in all running steps       \n                   to be displayed. A step id of 'batch' will display the   \n                   information about the batch step. A step id of 'extern'  \n                   will display the information about the extern step       \n                   when using PrologFlags=contain.                          \n     -n, --noheader:                                                        \n\t           No header will be added to the beginning of output.      \n                   The default is to print a header.                        \n     --noconvert:  Don't convert units from their original type             \n\t\t   (e.g. 2048M won't be converted to 2G).                   \n     -o, --format:                                                          \n\t           Comma separated list of fields. (use \"--helpformat\"    \n                   for a list of available fields).                         \n     -p, --parsable: output will be '|' delimited with a '|' at the end     \n     -P, --parsable2: output will be '|' delimited without a '|' at the end \n     --usage:      Display brief usage message.                             \n     -v, --verbose:                                                         \n\t           Primarily for debugging purposes, report the state of    \n                   various variables during processing.                     \n     -V, --version: Print version.                                          \n\n"


def _targets(text: str) -> list[tuple[int, str | None]]:
    """`-j 12,7.batch,9.0` -> (job id, step or None)."""
    found = []
    for word in filter(None, text.split(",")):
        job, dot, step = word.partition(".")
        if not job.isdigit() or (dot and not step):
            raise UsageError(f"sstat: error: Invalid job id: {word}")
        found.append((int(job), step if dot else None))
    return found


def _order(step: str) -> tuple[int, int]:
    return (0, 0) if step == "batch" else (1, int(step) if step.isdigit() else 0)


class SstatArgs(Record, frozen=False):
    """What sstat's options ask."""

    targets: list = Factory(list)
    fields_text: list = Factory(list)
    all_steps: bool = False
    noheader: bool = False
    parsable: int = 0
    action: str | None = None


def _jobs(text: str, ns: object = None) -> list[tuple[int, str | None]]:
    return _targets(text)


def _pids(text: str, ns: object = None) -> list[str]:
    return ["JobID,Nodelist,Pids"]


# fmt: off
OPTIONS = Table("sstat", (
    Opt("a", ("allsteps",), dest="all_steps", help="every running step of a job"),
    Opt("e", ("helpformat",), dest="action", const="helpformat", stop=True,
        help="the fields -o takes"),
    Opt("h", ("help",), dest="action", const="help", stop=True, help="the help text"),
    # as slurmsky has had it: -i takes an argument (and drops it), --pidformat none
    Opt("i", (), REQUIRED, "fields_text", convert=_pids, help="the pids' fields"),
    Opt("", ("pidformat",), dest="fields_text", const=Factory(lambda: _pids("")),
        help="the pids' fields"),
    Opt("j", ("jobs",), REQUIRED, "targets", convert=_jobs, action=EXTEND, help="these steps"),
    Opt("n", ("noheader",), dest="noheader", help="no header lines"),
    Opt("", ("noconvert",), help="accepted, no effect"),
    Opt("o", ("format", "fields"), REQUIRED, "fields_text", action=APPEND, help="the fields"),
    Opt("p", ("parsable",), dest="parsable", const=1, help="|-separated, a | at the end"),
    Opt("P", ("parsable2",), dest="parsable", const=2, help="|-separated"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
    Opt("v", ("verbose",), help="accepted, no effect"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
))
# fmt: on


def body(argv: list[str]) -> int:
    o, rest = OPTIONS.parse(argv, SstatArgs())
    if o.action == "helpformat":
        sys.stdout.write(sacct_format.sacct_helpformat(SSTAT_NAMES))
        return 0
    if o.action == "help":
        sys.stdout.write(HELP)
        return 0
    if o.action == "usage":
        sys.stdout.write(USAGE)
        return 0
    if answered(o, ""):  # sstat has no --usage
        return 0
    targets, fields_text, all_steps, noheader = o.targets, o.fields_text, o.all_steps, o.noheader
    parsable = o.parsable
    targets.extend(_targets(",".join(rest)))
    if not targets:
        raise SlurmError("You didn't give me any jobs to stat.")
    fields = sacct_format.parse_sacct_fields(
        ",".join(fields_text) or SSTAT_DEFAULT, "sstat", SSTAT_NAMES, SSTAT_WIDTHS
    )
    conn = state.connect()
    rows, errors = [], []
    for job_id, wanted in targets:
        rec = state.get_job(conn, job_id)
        usage = backends.get(rec.executor).step_usage(rec) if rec and rec.executor else {}
        nodes = (
            {
                str(s.get("id")): s.get("nodes") or ""
                for s in backends.get(rec.executor).running_steps(rec)
            }
            if usage
            else {}
        )
        steps = sorted(usage, key=_order)
        if wanted is not None:
            steps = [s for s in steps if s == wanted]
            if not steps:
                errors.append(f"sstat: error: StepId={job_id}.{wanted} not found running.")
        else:
            if not all_steps:
                steps = [s for s in steps if s != "batch"][:1]
            if not steps:
                errors.append(
                    f"sstat: error: couldn't get steps for job {job_id}"
                    if rec is None
                    else f"sstat: error: No steps running for job {job_id}"
                )
        for step in steps:
            host = (rec.batch_host or "") if step == "batch" else nodes.get(step, "")
            rows.append(StepRow(f"{job_id}.{step}", step, host, usage[step]))
    lines = sacct_format.sacct_lines(
        rows, fields, header=not noheader, parsable=parsable, values=SSTAT_VALUES
    )
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    for line in errors:
        sys.stderr.write(line + "\n")
    return 0


def main() -> None:
    run("sstat", body)
