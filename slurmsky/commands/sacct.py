"""sacct: accounting of jobs and their steps, as Slurm 22.05's sacct (with slurmdbd) prints it.

slurmsky keeps every job in its state database, so sacct reads the same records squeue
does, with no lag and no purge: the window, user and state filters select among them.
"""

from __future__ import annotations

import os
import sys

from slurmsky import backends
from slurmsky.commands.common import run
from slurmsky.commands.read_options import (
    APPEND,
    EXTEND,
    OPTIONAL,
    PREPEND,
    REQUIRED,
    Opt,
    Table,
    answered,
    word_set,
)
from slurmsky.core import state
from slurmsky.core.states import CODE_STATES, FINISHED_STATES, STATE_CODES
from slurmsky.record import Factory, Record
from slurmsky.render import common, jobview, listing_cache, sacct_format
from slurmsky.render.sacct_format import Row
from slurmsky.runtime import indexset
from slurmsky.runtime.getopt_long import UsageError

# sacct's -s reads a state's name or code (but for these two codes, as slurmsky has had it)
STATES = {c: n for c, n in CODE_STATES.items() if c not in ("CG", "CF")}
USAGE = "Usage: sacct [options]\n\tUse --help for help"


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


class SacctArgs(Record, frozen=False):
    """What sacct's options ask; ``now`` is the clock the times are read against."""

    now: float
    jobs: list = Factory(list)
    fields_text: list = Factory(list)
    users: set | None = None
    names: set | None = None
    states: set | None = None
    partitions: set | None = None
    accounts: set | None = None
    all_users: bool = False
    allocations: bool = False
    duplicates: bool = False
    noheader: bool = False
    parsable: int = 0
    delimiter: str | None = None
    start: float | None = None
    end: float | None = None
    action: str | None = None


def _states(text: str, ns: object = None) -> set[str]:
    chosen = set()
    for word in filter(None, text.split(",")):
        upper = word.upper()
        name = STATES.get(upper, upper)
        if name not in STATE_CODES:
            raise UsageError(f"sacct: error: Invalid state: {word}")
        chosen.add(name)
    return chosen


def _users(text: str, ns: object = None) -> set[str]:
    users = set()
    for word in filter(None, text.split(",")):
        uid = common.uid_of(word)
        users.add(common.user_name(uid) if uid is not None else word)
    return users


def _jobs(text: str, ns: object = None) -> list[tuple[int, int | None, str | None]]:
    return _job_items(text)


def _end(text: str, ns: SacctArgs) -> float:
    return _time(text, "endtime", ns.now)


def _start(text: str, ns: SacctArgs) -> float:
    return _time(text, "starttime", ns.now)


_NO_EFFECT = "accepted, no effect"
# fmt: off
OPTIONS = Table("sacct", (
    Opt("a", ("allusers",), dest="all_users", help="every user's jobs"),
    Opt("A", ("accounts",), REQUIRED, "accounts", convert=word_set, help="these accounts' jobs"),
    Opt("X", ("allocations",), dest="allocations", help="no step lines"),
    Opt("b", ("brief",), dest="fields_text", action=PREPEND, const=sacct_format.SACCT_BRIEF,
        help="the brief fields"),
    Opt("B", ("batch-script",), help=_NO_EFFECT),
    Opt("c", ("completion",), help=_NO_EFFECT),
    Opt("C", ("constraints",), REQUIRED, help=_NO_EFFECT),
    Opt("", ("delimiter",), REQUIRED, "delimiter", help="the -p/-P delimiter"),
    Opt("d", ("dump",), help=_NO_EFFECT),
    Opt("D", ("duplicates",), dest="duplicates", help="every run of a requeued job"),
    Opt("", ("federation",), help=_NO_EFFECT),
    Opt("e", ("helpformat",), dest="action", const="helpformat", stop=True,
        help="the fields -o takes"),
    Opt("E", ("endtime",), REQUIRED, "end", convert=_end, help="the window's end"),
    Opt("", ("env-vars",), help=_NO_EFFECT),
    Opt("f", ("file",), REQUIRED, help=_NO_EFFECT),
    Opt("", ("flags",), REQUIRED, help=_NO_EFFECT),
    Opt("g", ("gid", "group"), REQUIRED, help=_NO_EFFECT),
    Opt("h", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("i", ("nnodes",), REQUIRED, help=_NO_EFFECT),
    Opt("I", ("ncpus",), REQUIRED, help=_NO_EFFECT),
    Opt("j", ("jobs",), REQUIRED, "jobs", convert=_jobs, action=EXTEND, help="these jobs"),
    Opt("k", ("timelimit-min",), REQUIRED, help=_NO_EFFECT),
    Opt("K", ("timelimit-max",), REQUIRED, help=_NO_EFFECT),
    Opt("l", ("long",), dest="fields_text", action=PREPEND, const=sacct_format.SACCT_LONG,
        help="the long fields"),
    Opt("L", ("allclusters",), help=_NO_EFFECT),
    Opt("M", ("cluster", "clusters"), REQUIRED, help=_NO_EFFECT),
    Opt("N", ("nodelist",), REQUIRED, help=_NO_EFFECT),
    Opt("n", ("noheader",), dest="noheader", help="no header lines"),
    Opt("o", ("fields", "format"), REQUIRED, "fields_text", action=APPEND, help="the fields"),
    Opt("p", ("parsable",), dest="parsable", const=1, help="|-separated, a | at the end"),
    Opt("P", ("parsable2",), dest="parsable", const=2, help="|-separated"),
    Opt("q", ("qos",), REQUIRED, help=_NO_EFFECT),
    Opt("r", ("partition",), REQUIRED, "partitions", convert=word_set,
        help="these partitions' jobs"),
    Opt("", ("reason",), REQUIRED, help=_NO_EFFECT),
    Opt("s", ("state",), REQUIRED, "states", convert=_states, help="jobs in these states"),
    Opt("S", ("starttime",), REQUIRED, "start", convert=_start, help="the window's start"),
    Opt("T", ("truncate",), help=_NO_EFFECT),
    Opt("u", ("uid", "user"), REQUIRED, "users", convert=_users, marks=("all_users",),
        help="these users' jobs"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
    Opt("v", ("verbose",), help=_NO_EFFECT),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("W", ("wckeys",), REQUIRED, help=_NO_EFFECT),
    Opt("x", ("associations",), REQUIRED, help=_NO_EFFECT),
    Opt("", ("name",), REQUIRED, "names", convert=word_set, help="jobs of these names"),
    Opt("", ("local",), help=_NO_EFFECT),
    Opt("", ("noconvert",), help=_NO_EFFECT),
    Opt("", ("units",), REQUIRED, help=_NO_EFFECT),
    Opt("", ("use-local-uid",), help=_NO_EFFECT),
    Opt("", ("whole-hetjob",), OPTIONAL, help=_NO_EFFECT),
    Opt("", ("array",), help=_NO_EFFECT),
    Opt("", ("json",), help=_NO_EFFECT),
    Opt("", ("yaml",), help=_NO_EFFECT),
    Opt("t", (), help=_NO_EFFECT),
))
# fmt: on


def body(argv: list[str]) -> int:
    # slurmdbd keeps text as UTF-8: a byte that is not shows as "?" (n\xffx: n?x)
    if hasattr(sys.stdout, "reconfigure"):  # a test's StringIO has none
        sys.stdout.reconfigure(errors="replace")
    o, rest = OPTIONS.parse(argv, SacctArgs(now=common.clock()))
    if o.action == "helpformat":
        sys.stdout.write(sacct_format.sacct_helpformat())
        return 0
    if answered(o, USAGE, "sacct"):
        return 0
    if rest:
        raise UsageError(f"sacct: error: Unknown arguments: {' '.join(rest)}")
    fields = sacct_format.parse_sacct_fields(
        ",".join(o.fields_text or [sacct_format.SACCT_DEFAULT])
    )

    # The time window: with -j, all time; otherwise from today 00:00 (or -S) to now (or -E).
    # With -s and no -E the window is the single instant -S, as in Slurm (nothing matches).
    if o.start is None:
        o.start = 0.0 if o.jobs else _midnight(o.now)
    till_now = o.end is None and not (o.states and not o.jobs)
    if o.end is None:
        o.end = o.start if (o.states and not o.jobs) else o.now
    conn = state.connect()
    backends.refresh_all()  # an outside queue (SkyPilot's) fresh enough (bounded wait)
    uids = [os.geteuid()] if o.users is None and not o.all_users and os.geteuid() != 0 else None
    # selected in the query (indexes on user, submit and end times): the window as a
    # superset of _in_window's seconds, which decides
    filters = dict(
        users=o.users,
        names=o.names,
        partitions=o.partitions,
        active_or_ended_after=o.start - 1,
        submitted_before=o.end + 1,
    )
    if (
        not o.jobs
        and not o.duplicates
        and sacct_format.listing_fits(fields)
        and (o.delimiter is None or o.delimiter.isascii())
        and conn.text_factory is str  # no text that is not UTF-8 stored (SQLite counts bytes)
        and state.computes_sacct_listing(conn)
    ):
        # the common listing: SQLite computes the lines and their order, streamed
        header = sacct_format.sacct_lines(
            [], fields, header=not o.noheader, parsable=o.parsable, delimiter=o.delimiter
        )
        sql = sacct_format.listing_sql(
            fields,
            steps=not o.allocations,
            parsable=o.parsable,
            delimiter=o.delimiter,
            arrays=state.arrays_exist(conn),
        )
        # the listing this call made before, if no job changed since (listing_cache)
        window = [f"{o.start!r} {'now' if till_now else repr(o.end)}"]
        answer = listing_cache.Answer.of(
            conn, sys.stdout, "sacct", argv + window, [__file__, sacct_format.__file__], o.now
        )
        if answer and answer.replay():
            return 0
        condition = _window_sql(o.start, o.end, o.states is not None)
        rows = state.query_jobs(
            conn,
            sql,
            states=o.states,
            uids=uids,
            accounts=o.accounts,
            condition=condition,
            **filters,
        )
        common.write_lines(answer or sys.stdout, header, (line for (line,) in rows))
        if (
            answer
            and answer.lines() >= listing_cache.MIN_LINES
            # SACCT_SQL's cells are the jobs' own (no running time); the window is fixed
            # but for `-E now`, which takes no job in later seconds if none was submitted since
            and not (till_now and state.submitted_since(conn, o.now))
        ):
            answer.store()
        return 0
    ids = sorted({j for j, t, s in o.jobs if t is None}) if o.jobs else None
    tasks = sorted({(j, t) for j, t, s in o.jobs if t is not None}) if o.jobs else None
    records = state.find_jobs(conn, ids=ids, tasks=tasks, light=True, **filters)
    if o.jobs:
        # `-j N` also names the array element whose own id is N
        own = {j for j, t, s in o.jobs}
        records = [
            r
            for r in records
            if r.job_id in own
            or r.array_job_id in own
            or r.het_job_id in own
            or (r.array_job_id, r.array_task_id) in set(tasks or ())
        ]
    if uids is not None:
        records = [r for r in records if r.uid in uids]
    if o.accounts is not None:
        records = [r for r in records if r.account in o.accounts]
    records = [r for r in records if _in_window(r, o.start, o.end, o.states)]

    views = jobview.collapse(records, now=o.now)
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
    steps_only = {(j, t): s for j, t, s in o.jobs if s is not None}
    # -D: a requeued job's earlier runs, each a record of its own before the last
    earlier = state.attempts_of(conn, [v.rec for v in views]) if o.duplicates else {}
    runs: list[tuple[jobview.Job, str | None]] = []  # (a record, the step asked of it)
    for view in views:
        rec = view.rec
        wanted = None
        if steps_only:
            for key in ((rec.job_id, None), (rec.array_job_id, rec.array_task_id)):
                if key in steps_only:
                    wanted = steps_only[key]
        runs.extend(
            (jobview.Job(attempt, now=o.now), wanted)
            for attempt in (earlier.get(rec.job_id, ()) if view.tasks is None else ())
            if _in_window(attempt, o.start, o.end, o.states)
        )
        runs.append((view, wanted))
    if earlier:  # every run's record, in slurmdbd's order: by the time each was submitted
        runs.sort(key=lambda run: run[0].rec.submit_time)
    rows: list[Row] = []
    for one, wanted in runs:
        if wanted is None:
            rows.append(Row(one))
        if not o.allocations:
            rows.extend(
                r for r in sacct_format.step_rows(one) if wanted is None or r.step == wanted
            )
    lines = sacct_format.sacct_lines(
        rows, fields, header=not o.noheader, parsable=o.parsable, delimiter=o.delimiter
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
