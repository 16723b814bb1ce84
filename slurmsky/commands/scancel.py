"""scancel: cancel or signal jobs, with Slurm 22.05's (mostly silent) error handling.

Unknown and finished ids are silent (printed with -v); with --signal they are errors (exit
1); another user's job is `Access/permission denied`, exit 210 (ESLURM_ACCESS_DENIED & 0xff).
The work is done by control.cancel / control.signal, which wake the agent.
"""

from __future__ import annotations

import os
import sys

from slurmsky.commands.common import run
from slurmsky.core import jobcontrol as control
from slurmsky.core import state
from slurmsky.core.states import CANCELLABLE_STATES
from slurmsky.render import common
from slurmsky.runtime.getopt_long import UsageError, getopt_long

SHORT = "A:bcfHiM:n:p:Qq:R:s:t:u:vVw:"
LONG = {
    "account": ("A", 1),
    "batch": ("b", 0),
    "ctld": ("c", 0),
    "full": ("f", 0),
    "help": ("help", 0),
    "hurry": ("H", 0),
    "interactive": ("i", 0),
    "cluster": ("M", 1),
    "clusters": ("M", 1),
    "name": ("n", 1),
    "jobname": ("n", 1),
    "nodelist": ("w", 1),
    "partition": ("p", 1),
    "qos": ("q", 1),
    "quiet": ("Q", 0),
    "reservation": ("R", 1),
    "sibling": ("sibling", 1),
    "signal": ("s", 1),
    "state": ("t", 1),
    "states": ("t", 1),
    "usage": ("usage", 0),
    "user": ("u", 1),
    "verbose": ("v", 0),
    "version": ("V", 0),
    "wckey": ("wckey", 1),
    "me": ("me", 0),
}
STATE_WORDS = {
    "PD": "PENDING",
    "PENDING": "PENDING",
    "R": "RUNNING",
    "RUNNING": "RUNNING",
    "S": "SUSPENDED",
    "SUSPENDED": "SUSPENDED",
}
ACCESS_DENIED_EXIT = 2002 & 0xFF  # ESLURM_ACCESS_DENIED, as scancel truncates it
USAGE = """\
Usage: scancel [-A account] [--batch] [--full] [--interactive] [-n job_name]
               [-p partition] [-Q] [-q qos] [-R reservation][-s signal | integer]
               [-t PENDING | RUNNING | SUSPENDED] [--usage] [-u user_name]
               [--hurry] [-V] [-v] [-w hosts...] [--wckey=wckey] [--me]
               [job_id[_array_id][.step_id]]"""


def body(argv: list[str]) -> int:
    opts, operands = getopt_long("scancel", argv, SHORT, LONG)
    signum = None
    scope = "steps"
    verbose = quiet = False
    filters: dict = {}
    for key, value in opts:
        if key == "s":
            from slurmsky.parse.signals import signal_number

            signum = signal_number(value)
            if signum is None or not 0 < signum < 65:
                raise UsageError(f"scancel: error: Invalid job signal: {value}")
        elif key == "b":
            scope = "batch"
        elif key == "f":
            scope = "full"
        elif key == "v":
            verbose = True
        elif key == "Q":
            quiet = True
        elif key == "n":
            filters["names"] = [n for n in value.split(",") if n]
        elif key == "u":
            filters["users"] = [n for n in value.split(",") if n]
        elif key == "me":
            filters["users"] = [common.user_name(os.geteuid())]
        elif key == "p":
            filters["partitions"] = [p for p in value.split(",") if p]
        elif key == "A":
            filters["accounts"] = [a for a in value.split(",") if a]
        elif key == "w":
            from slurmsky.runtime.hostlist import expand

            try:
                filters["nodes"] = set(expand(value))
            except ValueError:  # Slurm's hostset_intersects: no job is on such a list
                filters["nodes"] = set()
        elif key == "t":
            chosen = []
            for word in filter(None, value.split(",")):
                name = STATE_WORDS.get(word.upper())
                if name is None:
                    raise UsageError(
                        f"scancel: error: Invalid job state specified: {word}",
                        "scancel: error: Valid job states are PENDING, RUNNING, and SUSPENDED",
                    )
                chosen.append(name)
            filters["states"] = chosen
        elif key in ("q", "R", "wckey"):
            filters[key] = value
        elif key == "V":
            print(common.version_line())
            return 0
        elif key in ("help", "usage"):
            print(USAGE)
            return 0
    targets = []
    for word in operands:
        for item in _split_ids(word):
            text = item.split(".")[0]
            try:
                targets.append((item, control.parse_job_id(text)))
            except ValueError:
                raise UsageError(f"scancel: error: Invalid job id {item}") from None
    if not targets and not filters:
        raise UsageError("scancel: error: No job identification provided")

    conn = state.connect()
    status = 0
    if targets:
        work = []  # (text as given, records, named by array index)
        for text, (job_id, indices) in targets:
            work.append(
                (
                    text,
                    _filtered(control.select(conn, job_id, indices), filters),
                    indices is not None,
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
    for text, records, by_index in work:
        if verbose:
            if signum is None:
                sys.stderr.write(f"scancel: Terminating job {text}\n")
            else:
                sys.stderr.write(f"scancel: Signal {signum} to job {text}\n")
        live = [r for r in records if r.state in CANCELLABLE_STATES]
        if not records:
            error = control.INVALID_ID
        elif not live:
            error = control.INVALID_ID if signum is not None else control.ALREADY_DONE
        else:
            if signum is None:
                errors = control.cancel(conn, live, by_index=by_index)
            else:
                errors = control.signal(conn, live, signum, scope)
            error = next(iter(errors.values()), None) if len(errors) == len(live) else None
            denied = [e for e in errors.values() if e == control.ACCESS_DENIED]
            if denied:
                error = control.ACCESS_DENIED
        if error is None:
            continue
        silent = error in (control.INVALID_ID, control.ALREADY_DONE) and signum is None
        if silent and not verbose:
            continue
        if not quiet or not silent:
            sys.stderr.write(f"scancel: error: Kill job error on job id {text}: {error}\n")
        if error == control.ACCESS_DENIED:
            status = ACCESS_DENIED_EXIT
        elif not silent:
            status = status or 1
    return status


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
