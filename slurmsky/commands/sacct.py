"""sacct: accounting of jobs and their steps, as Slurm 22.05's sacct (with slurmdbd) prints it.

slurmsky keeps every job in its state database, so sacct reads the same records squeue
does, with no lag and no purge: the window, user and state filters select among them.
"""

from __future__ import annotations

import os
import sys

from slurmsky import backends
from slurmsky.commands.common import run
from slurmsky.core import state
from slurmsky.core.states import FINISHED_STATES, STATE_CODES
from slurmsky.render import common, jobview, listing_cache, sacct_format
from slurmsky.render.sacct_format import Row
from slurmsky.runtime import indexset
from slurmsky.runtime.getopt_long import UsageError, getopt_long

SHORT = "aA:bBcC:dDeE:f:g:hi:I:j:k:K:lLM:nN:o:pPq:r:s:S:Ttu:vVW:x:X"
LONG = {
    "allusers": ("a", 0),
    "accounts": ("A", 1),
    "allocations": ("X", 0),
    "brief": ("b", 0),
    "batch-script": ("B", 0),
    "completion": ("c", 0),
    "constraints": ("C", 1),
    "delimiter": ("delimiter", 1),
    "dump": ("d", 0),
    "duplicates": ("D", 0),
    "federation": ("federation", 0),
    "helpformat": ("e", 0),
    "endtime": ("E", 1),
    "env-vars": ("env-vars", 0),
    "file": ("f", 1),
    "flags": ("F", 1),
    "gid": ("g", 1),
    "group": ("g", 1),
    "help": ("h", 0),
    "nnodes": ("i", 1),
    "ncpus": ("I", 1),
    "jobs": ("j", 1),
    "timelimit-min": ("k", 1),
    "timelimit-max": ("K", 1),
    "long": ("l", 0),
    "allclusters": ("L", 0),
    "cluster": ("M", 1),
    "clusters": ("M", 1),
    "nodelist": ("N", 1),
    "noheader": ("n", 0),
    "fields": ("o", 1),
    "format": ("o", 1),
    "parsable": ("p", 0),
    "parsable2": ("P", 0),
    "qos": ("q", 1),
    "partition": ("r", 1),
    "reason": ("R", 1),
    "state": ("s", 1),
    "starttime": ("S", 1),
    "truncate": ("T", 0),
    "uid": ("u", 1),
    "user": ("u", 1),
    "usage": ("U", 0),
    "verbose": ("v", 0),
    "version": ("V", 0),
    "wckeys": ("W", 1),
    "associations": ("x", 1),
    "name": ("name", 1),
    "local": ("local", 0),
    "noconvert": ("noconvert", 0),
    "units": ("units", 1),
    "use-local-uid": ("use-local-uid", 0),
    "whole-hetjob": ("whole-hetjob", 2),
    "array": ("array", 0),
    "json": ("json", 0),
    "yaml": ("yaml", 0),
}
STATES = {
    "PD": "PENDING",
    "R": "RUNNING",
    "S": "SUSPENDED",
    "CD": "COMPLETED",
    "CA": "CANCELLED",
    "F": "FAILED",
    "TO": "TIMEOUT",
    "NF": "NODE_FAIL",
    "PR": "PREEMPTED",
    "BF": "BOOT_FAIL",
    "DL": "DEADLINE",
    "OOM": "OUT_OF_MEMORY",
    "RQ": "REQUEUED",
    "RS": "RESIZING",
    "RV": "REVOKED",
}
USAGE = "Usage: sacct [OPTIONS]\n  Use --helpformat to see the fields --format takes."


def _time(text: str, what: str, now: float) -> float:
    """-S/-E: Slurm's time forms (parse_time); a time of day without a date is the last such
    time, not the next (sacct looks back)."""
    from slurmsky.parse.times import TimeSpecError, parse_begin

    try:
        when = parse_begin(text, what, now)
    except TimeSpecError as exc:
        if not exc.notes:  # nothing given: parse_time's 0, the epoch
            return 0.0
        raise UsageError(*exc.notes) from None  # parse_time's own line, as sacct exits with
    dated = any(c in text for c in "-/.T") or text.lower().startswith(("now", "uts", "tomorrow"))
    if when > now and not dated:
        when -= 86400
    return when


def _job_items(text: str) -> list[tuple[int, int | None, str | None]]:
    """`-j 12,7_3,9.batch,10_2.0` -> (id, task or None, step or None)."""
    items = []
    for word in filter(None, text.split(",")):
        job, dot, step = word.partition(".")
        head, underscore, task = job.partition("_")
        if not head.isdigit() or (underscore and not task.isdigit()) or (dot and not step):
            raise UsageError(f"sacct: error: Invalid job id: {word}")
        items.append((int(head), int(task) if underscore else None, step if dot else None))
    return items


def body(argv: list[str]) -> int:
    # slurmdbd keeps text as UTF-8: a byte that is not shows as "?" (n\xffx: n?x)
    if hasattr(sys.stdout, "reconfigure"):  # a test's StringIO has none
        sys.stdout.reconfigure(errors="replace")
    opts, rest = getopt_long("sacct", argv, SHORT, LONG)
    now = common.clock()
    jobs: list = []
    fields_text: list[str] = []
    users = names = states = partitions = accounts = None
    all_users = allocations = noheader = False
    parsable = 0
    delimiter = None
    start = end = None
    for key, value in opts:
        if key == "a":
            all_users = True
        elif key == "A":
            accounts = set(filter(None, value.split(",")))
        elif key == "b":
            fields_text.insert(0, sacct_format.SACCT_BRIEF)
        elif key == "l":
            fields_text.insert(0, sacct_format.SACCT_LONG)
        elif key == "e":
            sys.stdout.write(sacct_format.sacct_helpformat())
            return 0
        elif key == "E":
            end = _time(value, "endtime", now)
        elif key == "S":
            start = _time(value, "starttime", now)
        elif key == "j":
            jobs.extend(_job_items(value))
        elif key == "n":
            noheader = True
        elif key == "o":
            fields_text.append(value)
        elif key == "p":
            parsable = 1
        elif key == "P":
            parsable = 2
        elif key == "delimiter":
            delimiter = value
        elif key == "r":
            partitions = set(filter(None, value.split(",")))
        elif key == "s":
            states = set()
            for word in filter(None, value.split(",")):
                upper = word.upper()
                name = STATES.get(upper, upper)
                if name not in STATE_CODES:
                    raise UsageError(f"sacct: error: Invalid state: {word}")
                states.add(name)
        elif key == "u":
            users = set()
            for word in filter(None, value.split(",")):
                uid = common.uid_of(word)
                users.add(common.user_name(uid) if uid is not None else word)
            all_users = True
        elif key == "name":
            names = set(filter(None, value.split(",")))
        elif key == "X":
            allocations = True
        elif key == "V":
            print(common.version_line())
            return 0
        elif key in ("h", "U"):
            print(USAGE)
            return 0
    if rest:
        raise UsageError(f"sacct: error: Unknown arguments: {' '.join(rest)}")
    fields = sacct_format.parse_sacct_fields(",".join(fields_text or [sacct_format.SACCT_DEFAULT]))

    # The time window: with -j, all time; otherwise from today 00:00 (or -S) to now (or -E).
    # With -s and no -E the window is the single instant -S, as in Slurm (nothing matches).
    if start is None:
        start = 0.0 if jobs else _midnight(now)
    till_now = end is None and not (states and not jobs)
    if end is None:
        end = start if (states and not jobs) else now
    conn = state.connect()
    backends.refresh_all()  # an outside queue (SkyPilot's) fresh enough (bounded wait)
    uids = [os.geteuid()] if users is None and not all_users and os.geteuid() != 0 else None
    # selected in the query (indexes on user, submit and end times): the window as a
    # superset of _in_window's seconds, which decides
    filters = dict(
        users=users,
        names=names,
        partitions=partitions,
        active_or_ended_after=start - 1,
        submitted_before=end + 1,
    )
    if (
        not jobs
        and sacct_format.listing_fits(fields)
        and (delimiter is None or delimiter.isascii())
        and conn.text_factory is str  # no text that is not UTF-8 stored (SQLite counts bytes)
    ):
        # the common listing: SQLite computes the lines and their order, streamed
        header = sacct_format.sacct_lines(
            [], fields, header=not noheader, parsable=parsable, delimiter=delimiter
        )
        sql = sacct_format.listing_sql(
            fields,
            steps=not allocations,
            parsable=parsable,
            delimiter=delimiter,
            arrays=state.arrays_exist(conn),
        )
        # the listing this call made before, if no job changed since (listing_cache)
        window = [f"{start!r} {'now' if till_now else repr(end)}"]
        answer = listing_cache.Answer.of(
            conn, sys.stdout, "sacct", argv + window, [__file__, sacct_format.__file__], now
        )
        if answer and answer.replay():
            return 0
        condition = _window_sql(start, end, states is not None)
        rows = state.query_jobs(
            conn, sql, states=states, uids=uids, accounts=accounts, condition=condition, **filters
        )
        common.write_lines(answer or sys.stdout, header, (line for (line,) in rows))
        if (
            answer
            and answer.lines() >= listing_cache.MIN_LINES
            # SACCT_SQL's cells are the jobs' own (no running time); the window is fixed
            # but for `-E now`, which takes no job in later seconds if none was submitted since
            and not (till_now and state.submitted_since(conn, now))
        ):
            answer.store()
        return 0
    ids = sorted({j for j, t, s in jobs if t is None}) if jobs else None
    tasks = sorted({(j, t) for j, t, s in jobs if t is not None}) if jobs else None
    records = state.find_jobs(conn, ids=ids, tasks=tasks, light=True, **filters)
    if jobs:
        # `-j N` also names the array element whose own id is N
        own = {j for j, t, s in jobs}
        records = [
            r
            for r in records
            if r.job_id in own
            or r.array_job_id in own
            or (r.array_job_id, r.array_task_id) in set(tasks or ())
        ]
    if uids is not None:
        records = [r for r in records if r.uid in uids]
    if accounts is not None:
        records = [r for r in records if r.account in accounts]
    records = [r for r in records if _in_window(r, start, end, states)]

    views = jobview.collapse(records, now=now)
    # an array sorts at the highest id of its elements (those of its pending record are
    # reserved after the array's own: as many as it holds, beyond the split-off ones)
    top: dict = {}
    for view in views:
        if view.rec.array_job_id is not None:
            key = view.rec.array_job_id
            top[key] = max(top.get(key, 0), view.rec.job_id) + (
                indexset.count(indexset.parse(view.tasks)) if view.tasks is not None else 0
            )

    def order(view):
        rec = view.rec
        if rec.array_job_id is None:
            return (rec.job_id, 0, 0)
        return (top[rec.array_job_id], 1 if view.tasks is not None else 0, rec.array_task_id)

    views.sort(key=order)
    steps_only = {(j, t): s for j, t, s in jobs if s is not None}
    rows: list[Row] = []
    for view in views:
        rec = view.rec
        wanted = None
        if steps_only:
            for key in ((rec.job_id, None), (rec.array_job_id, rec.array_task_id)):
                if key in steps_only:
                    wanted = steps_only[key]
        if wanted is None:
            rows.append(Row(view))
        if not allocations:
            rows.extend(
                r for r in sacct_format.step_rows(view) if wanted is None or r.step == wanted
            )
    lines = sacct_format.sacct_lines(
        rows, fields, header=not noheader, parsable=parsable, delimiter=delimiter
    )
    common.write_lines(sys.stdout, lines, iter(()))
    return 0


def _midnight(now: float) -> float:
    import time

    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def _window_sql(start: float, end: float, states: bool) -> str:
    """_in_window in SQL over a row (with -s, the states are selected beside it)."""
    submit, ended = "CAST(submit_time AS INTEGER)", "CAST(end_time AS INTEGER)"
    if states:
        finished = ", ".join(f"'{s}'" for s in FINISHED_STATES)
        return (
            f"CASE WHEN state IN ({finished}) THEN end_time IS NOT NULL AND "
            f"{ended} BETWEEN {start!r} AND {end!r} ELSE {submit} <= {end!r} END"
        )
    return f"{submit} <= {end!r} AND (end_time IS NULL OR {ended} >= {start!r})"


def _in_window(rec, start: float, end: float, states: set | None) -> bool:
    """Whether a job belongs in [start, end]: it was eligible or running in the window; with
    -s, it was in one of the states during it (a finished state: it ended in the window).
    Times are compared in whole seconds, as slurmdbd stores them (`-E now` is this second)."""
    submit = int(rec.submit_time)
    ended = int(rec.end_time) if rec.end_time is not None else None
    if states is not None:
        if rec.state not in states:
            return False
        if rec.state in FINISHED_STATES:
            return ended is not None and start <= ended <= end
        return submit <= end
    if submit > end:
        return False
    return ended is None or ended >= start


def main() -> None:
    run("sacct", body)
