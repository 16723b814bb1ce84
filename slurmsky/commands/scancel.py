"""scancel: cancel or signal jobs, with Slurm 22.05's (mostly silent) error handling.

Unknown and finished ids are silent (printed with -v); with --signal they are errors (exit
1); another user's job is `Access/permission denied`, exit 210 (ESLURM_ACCESS_DENIED & 0xff).
The work is done by control.cancel / control.signal, which wake the agent.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from slurmsky.commands.common import plugin_lines, run
from slurmsky.commands.read_options import REQUIRED, Opt, Table, answered, words
from slurmsky.core import jobcontrol as control
from slurmsky.core import state
from slurmsky.core.states import CANCELLABLE_STATES, STATE_CODES
from slurmsky.record import Factory, Record
from slurmsky.render import common
from slurmsky.runtime.getopt_long import UsageError

MAX_CANCEL_RETRY = 10  # scancel.c: tries of a signal to a job that is still pending
# -t takes these states, by name or code
STATE_WORDS = {
    word: name for name in ("PENDING", "RUNNING", "SUSPENDED") for word in (STATE_CODES[name], name)
}
ACCESS_DENIED_EXIT = 2002 & 0xFF  # ESLURM_ACCESS_DENIED, as scancel truncates it
MISSING_STEP_EXIT = 2017 & 0xFF  # ESLURM_INVALID_JOB_ID: scancel J.S, a running job without S
USAGE = """\
Usage: scancel [-A account] [--batch] [--full] [--interactive] [-n job_name]
               [-p partition] [-Q] [-q qos] [-R reservation] [-s signal | integer]
               [-t PENDING | RUNNING | SUSPENDED] [--usage] [-u user_name]
               [--hurry] [-V] [-v] [-w hosts...] [--wckey=wckey]
               [job_id[_array_id][.step_id]]"""


class ScancelArgs(Record, frozen=False):
    """What scancel's options ask; the filters select jobs (None: not given)."""

    signum: int | None = None
    scope: str = "steps"
    verbose: bool = False
    quiet: bool = False
    interactive: bool = False
    nodes_text: str | None = None  # -w as given, for -v's filter report
    names: list | None = None
    users: list | None = None
    partitions: list | None = None
    accounts: list | None = None
    nodes: set | None = None
    states: list | None = None
    q: str | None = None
    R: str | None = None
    wckey: str | None = None
    action: str | None = None


FILTERS = ("names", "users", "partitions", "accounts", "nodes", "states", "q", "R", "wckey")


def _signal(text: str, ns: object = None) -> int:
    from slurmsky.parse.signals import signal_number

    signum = signal_number(text)
    if signum is None or not 0 < signum < 65:
        raise UsageError(f"scancel: error: Invalid job signal: {text}")
    return signum


def _nodes(text: str, ns: ScancelArgs | None = None) -> set[str]:
    from slurmsky.runtime.hostlist import expand

    if ns is not None:
        ns.nodes_text = text
    try:
        return set(expand(text))
    except ValueError:  # Slurm's hostset_intersects: no job is on such a list
        return set()


def _states(text: str, ns: object = None) -> list[str]:
    chosen = []
    for word in filter(None, text.split(",")):
        name = STATE_WORDS.get(word.upper())
        if name is None:
            raise UsageError(
                f"scancel: error: Invalid job state specified: {word}",
                "scancel: error: Valid job states are PENDING, RUNNING, and SUSPENDED",
            )
        chosen.append(name)
    return chosen


_NO_EFFECT = "accepted, no effect"
# fmt: off
OPTIONS = Table("scancel", (
    Opt("A", ("account",), REQUIRED, "accounts", convert=words, help="jobs of these accounts"),
    Opt("b", ("batch",), dest="scope", const="batch", help="signal the batch step only"),
    Opt("c", ("ctld",), help=_NO_EFFECT),
    Opt("f", ("full",), dest="scope", const="full", help="signal the batch shell too"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("H", ("hurry",), help=_NO_EFFECT),
    Opt("i", ("interactive",), dest="interactive", help="ask before each job"),
    Opt("M", ("cluster", "clusters"), REQUIRED, help=_NO_EFFECT),
    Opt("n", ("name", "jobname"), REQUIRED, "names", convert=words, help="jobs of these names"),
    Opt("w", ("nodelist",), REQUIRED, "nodes", convert=_nodes, help="jobs on these nodes"),
    Opt("p", ("partition",), REQUIRED, "partitions", convert=words,
        help="jobs in these partitions"),
    Opt("q", ("qos",), REQUIRED, "q", help="jobs of this QOS"),
    Opt("Q", ("quiet",), dest="quiet", help="no error messages"),
    Opt("R", ("reservation",), REQUIRED, "R", help="jobs in this reservation"),
    Opt("", ("sibling",), REQUIRED, help=_NO_EFFECT),
    Opt("s", ("signal",), REQUIRED, "signum", convert=_signal, help="the signal to send"),
    Opt("t", ("state", "states"), REQUIRED, "states", convert=_states,
        help="jobs in these states"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
    Opt("u", ("user",), REQUIRED, "users", convert=words, help="these users' jobs"),
    Opt("v", ("verbose",), dest="verbose", help="report each job"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("wckey",), REQUIRED, "wckey", help="jobs of this wckey"),
    Opt("", ("me",), dest="users", const=Factory(lambda: [common.user_name(os.geteuid())]),
        help="the caller's jobs"),
))
# fmt: on


def body(argv: list[str]) -> int:
    o, operands = OPTIONS.parse(argv, ScancelArgs())
    if answered(o, USAGE, "scancel"):
        return 0
    signum, scope, verbose, quiet = o.signum, o.scope, o.verbose, o.quiet
    filters = {k: v for k in FILTERS if (v := getattr(o, k)) is not None}
    targets = []
    steps: dict[str, int] = {}  # J.S as given: the step it names (a step, not the job)
    for word in operands:
        for item in _split_ids(word):
            text, dot, step = item.partition(".")
            if dot and not step.isdigit():  # J.batch: no step scancel can name
                raise UsageError(f"scancel: error: Invalid job id {item}")
            if dot:
                steps[item] = int(step)
            component = control.parse_het_id(text)
            if component is not None:
                targets.append((item, component))
                continue
            try:
                targets.append((item, control.parse_job_id(text)))
            except ValueError:
                raise UsageError(f"scancel: error: Invalid job id {item}") from None
    if not targets and not filters:
        raise UsageError("scancel: error: No job identification provided")

    conn = state.connect()
    status = 0
    loads = filters or signum is not None or scope == "batch" or o.interactive
    if verbose and (loads or any("." in text for text, _ in targets)):
        # scancel reads every job (slurm_load_jobs, which loads the select plugins) unless
        # it only has ids to cancel
        sys.stderr.write("".join(line + "\n" for line in plugin_lines("scancel")))
    if targets:
        work = []  # (text as given, records, named by array index)
        for text, (job_id, which) in targets:
            if isinstance(which, int):  # J+N: that component's row
                found = state.find_jobs(conn, ids=[job_id])
                records = [r for r in found if r.het_job_offset == which]
                work.append((text, records, False))
                continue
            work.append(
                (
                    text,
                    _filtered(control.select(conn, job_id, which), filters),
                    which is not None,
                )
            )
    else:
        records = state.find_jobs(
            conn,
            states=filters.get("states") or CANCELLABLE_STATES,
            users=filters.get("users"),
            names=filters.get("names"),
            partitions=filters.get("partitions"),
        )
        records = _filtered(records, filters)
        work = [(r.display_id, [r], False) for r in records]
    if (
        verbose
        and filters
        and not _filtered(state.find_jobs(conn, states=CANCELLABLE_STATES), filters)
    ):
        sys.stderr.write(
            "scancel: error: No active jobs match ALL job filters, including: %s\n"
            % _filter_text(o)
        )
    kind = {"batch": "batch ", "full": "full "}.get(scope, "")
    if o.interactive:  # scancel's passes: the pending jobs first
        work.sort(key=lambda w: not any(r.state == "PENDING" for r in w[1]))
    for text, records, by_index in work:
        if o.interactive and any(r.state in CANCELLABLE_STATES for r in records):
            records = _confirmed([r for r in records if r.state in CANCELLABLE_STATES], text)
            if not records:
                continue
        if verbose:
            if signum is None:
                sys.stderr.write(f"scancel: Terminating {kind}job {text}\n")
            else:
                sys.stderr.write(f"scancel: Signal {signum} to {kind}job {text}\n")
        live = [r for r in records if r.state in CANCELLABLE_STATES]
        whole = control.whole_jobs(live)
        if whole is None or (live and "+" in text.split(".")[0]):
            sys.stderr.write(
                f"scancel: error: Kill job error on job id {text}: {control.NOT_WHOLE_HET}\n"
            )
            status = control.NOT_WHOLE_HET_EXIT
            continue
        live = whole
        # scancel reads the jobs for a signal, -i or a step: an ended job is then unknown
        loaded = signum is not None or o.interactive or text in steps
        if not records:
            error = control.INVALID_ID
        elif not live:
            error = control.INVALID_ID if loaded else control.ALREADY_DONE
        else:
            if text in steps:
                kill = signum is None  # SIGKILL, `CANCELLED by` the caller in sacct
                errors = control.signal_step(
                    conn,
                    live,
                    steps[text],
                    signal.SIGKILL if kill else signum,
                    os.getuid() if kill else None,
                )
            elif signum is None:
                errors = control.cancel(conn, live, by_index=by_index)
            else:
                errors = _signal_when_started(conn, live, signum, scope, verbose)
            error = next(iter(errors.values()), None) if len(errors) == len(live) else None
            denied = [e for e in errors.values() if e == control.ACCESS_DENIED]
            if denied:
                error = control.ACCESS_DENIED
        if error is None:
            continue
        silent = error in (control.INVALID_ID, control.ALREADY_DONE) and not loaded
        if silent and not verbose:
            continue
        # a step a running job lacks: scancel names the job alone, and exits with the
        # error's number (ESLURM_INVALID_JOB_ID 2017 & 0xff), as the peer's
        missing_step = text in steps and live and error == control.INVALID_ID
        if not quiet or not silent:
            what = "job step id" if text in steps else "job id"
            name = text.partition(".")[0] if missing_step else text
            sys.stderr.write(f"scancel: error: Kill job error on {what} {name}: {error}\n")
        if error == control.ACCESS_DENIED:
            status = ACCESS_DENIED_EXIT
        elif missing_step:
            status = status or MISSING_STEP_EXIT
        elif not silent:
            status = status or 1
    return status


def _filter_text(o: ScancelArgs) -> str:
    """The filters given, as scancel -v reports that none matches: `job_name=x user_name=y `."""
    parts = [
        ("account", o.accounts and ",".join(o.accounts)),
        ("job_name", o.names and ",".join(o.names)),
        ("nodelist", o.nodes_text),
        ("partition", o.partitions and ",".join(o.partitions)),
        ("qos", o.q),
        ("reservation", o.R),
        ("state", o.states and ",".join(o.states)),
        ("user_name", o.users and ",".join(o.users)),
        ("wckey", o.wckey),
    ]
    return "".join(f"{name}={value} " for name, value in parts if value is not None)


def _confirmed(records: list, text: str) -> list:
    """--interactive: `Cancel job_id=N name=X partition=P [y/n]? ` on stdout for each job
    (`step_id=N.S` for a step named as `text`; pending first, as scancel's passes), read
    from stdin until y or n; the jobs answered y. End of input counts as n (Slurm's scancel
    asks again forever)."""
    kept = []
    for r in sorted(records, key=lambda r: r.state != "PENDING"):
        what = f"step_id={text}" if "." in text else f"job_id={r.display_id}"
        while True:
            sys.stdout.write(f"Cancel {what} name={r.name} partition={r.partition} [y/n]? ")
            sys.stdout.flush()
            answer = sys.stdin.readline()
            if not answer or answer[0] in "nN":
                break
            if answer[0] in "yY":
                kept.append(r)
                break
    return kept


def _signal_when_started(conn, jobs, signum: int, scope: str, verbose: bool) -> dict:
    """control.signal, tried again 5 s, 6 s, ... later (MAX_CANCEL_RETRY times in all) for
    the jobs still pending, as Slurm's scancel does on slurmctld's answer for those."""
    errors: dict[int, str] = {}
    for attempt in range(MAX_CANCEL_RETRY):
        for job in jobs:
            errors.pop(job.job_id, None)
        errors.update(control.signal(conn, jobs, signum, scope))
        jobs = [j for j in jobs if errors.get(j.job_id) == control.NOT_YET]
        if not jobs:
            break
        if verbose:
            sys.stderr.write("scancel: Job is in transitional state, retrying\n")
        time.sleep(5 + attempt)
        jobs = [state.get_job(conn, j.job_id) or j for j in jobs]
    return errors


def _split_ids(word: str) -> list[str]:
    """`1,2_[3,5]` -> `1`, `2_[3,5]`: commas inside brackets belong to the id."""
    items, depth, current = [], 0, ""
    for char in word:
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [i for i in items if i]


def _filtered(records, filters: dict):
    """The records that also pass scancel's filters (-n, -u, -t, -p, -A, -w)."""
    out = []
    for r in records:
        if "names" in filters and r.name not in filters["names"]:
            continue
        if (
            "users" in filters
            and r.user not in filters["users"]
            and str(r.uid) not in filters["users"]
        ):
            continue
        if "states" in filters and r.state not in filters["states"]:
            continue
        if "partitions" in filters and r.partition not in filters["partitions"]:
            continue
        if "accounts" in filters and r.account not in filters["accounts"]:
            continue
        if "nodes" in filters:
            from slurmsky.runtime.hostlist import expand

            if not r.nodelist or not filters["nodes"] & set(expand(r.nodelist)):
                continue
        out.append(r)
    return out


def main() -> None:
    run("scancel", body)
