"""squeue: the queue, as Slurm 22.05 prints it.

Called in polling loops (snakemake, dask, users' `watch`), so it imports only the standard
library and slurmsky's light modules: one SQLite read, one format pass.
"""

from __future__ import annotations

import os
import sys
import time

from slurmsky import backends
from slurmsky.commands.common import run
from slurmsky.core import state, states
from slurmsky.display import format_elapsed, format_limit
from slurmsky.render import common, jobview, listing_cache, squeue_format
from slurmsky.render.jobview import Job
from slurmsky.runtime.getopt_long import UsageError, getopt_long

SHORT = "A:ahi:j::lL:n:M:O:o:p:Pq:R:rs::S:t:u:U:vVw:"
LONG = {
    "accounts": ("A", 1),
    "all": ("a", 0),
    "array": ("r", 0),
    "array-unique": ("array-unique", 0),
    "Format": ("O", 1),
    "format": ("o", 1),
    "federation": ("federation", 0),
    "help": ("help", 0),
    "hide": ("hide", 0),
    "iterate": ("i", 1),
    "jobs": ("j", 2),
    "json": ("json", 0),
    "local": ("local", 0),
    "long": ("l", 0),
    "licenses": ("L", 1),
    "cluster": ("M", 1),
    "clusters": ("M", 1),
    "me": ("me", 0),
    "name": ("n", 1),
    "noconvert": ("noconvert", 0),
    "node": ("w", 1),
    "nodes": ("w", 1),
    "nodelist": ("w", 1),
    "noheader": ("h", 0),
    "partitions": ("p", 1),
    "priority": ("P", 0),
    "qos": ("q", 1),
    "reservation": ("R", 1),
    "sib": ("sib", 0),
    "sibling": ("sib", 0),
    "sort": ("S", 1),
    "start": ("start", 0),
    "steps": ("s", 2),
    "states": ("t", 1),
    "usage": ("usage", 0),
    "user": ("u", 1),
    "users": ("u", 1),
    "verbose": ("v", 0),
    "version": ("V", 0),
    "yaml": ("yaml", 0),
}

# Slurm's job_state_string order, for the "Valid job states include" list.
STATE_LIST = (
    "PENDING,RUNNING,SUSPENDED,COMPLETED,CANCELLED,FAILED,TIMEOUT,NODE_FAIL,"
    "PREEMPTED,BOOT_FAIL,DEADLINE,OUT_OF_MEMORY,COMPLETING,CONFIGURING,RESIZING,"
    "RESV_DEL_HOLD,REQUEUED,REQUEUE_FED,REQUEUE_HOLD,REVOKED,SIGNALING,"
    "SPECIAL_EXIT,STAGE_OUT,STOPPED"
)
STATE_ALIASES = {
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
    "CG": "COMPLETING",
    "CF": "CONFIGURING",
    "RQ": "REQUEUED",
    "RS": "RESIZING",
    "RV": "REVOKED",
    "SE": "SPECIAL_EXIT",
    "SO": "STAGE_OUT",
    "ST": "STOPPED",
    "SI": "SIGNALING",
    "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED",
    "RD": "RESV_DEL_HOLD",
}

USAGE = """\
Usage: squeue [-A account] [--clusters names] [-i seconds] [--job jobid]
              [-n name] [-o format] [-p partitions] [--qos qos]
              [--reservation reservation] [--sort fields] [--start]
              [--step step_id] [-t states] [-u user_name] [--usage]
              [-L licenses] [-w nodes] [--federation] [--local] [--sibling]
	      [-ahjlrsv]"""  # noqa: E101 (squeue's own usage text has this tab)


def parse_states(text: str) -> set[str]:
    """`-t`: names or compact codes, any case; `all`."""
    if text.lower() == "all":
        return set(STATE_LIST.split(",")) | set(states.STATE_CODES)
    chosen = set()
    for word in filter(None, text.split(",")):
        upper = word.upper()
        name = STATE_ALIASES.get(upper, upper)
        if name not in STATE_LIST.split(","):
            raise UsageError(
                f"squeue: error: Invalid job state specified: {word}",
                f"squeue: error: Valid job states include: {STATE_LIST}\n",
            )
        chosen.add(name)
    return chosen


def parse_job_list(text: str) -> list[tuple[int, int | None]]:
    """`-j 12,7_3`: (id, task or None); Slurm reads each item with strtol, so `7_[3-5]`
    names task 0 of... nothing it can match (no rows, as on Slurm)."""
    items = []
    for word in filter(None, text.split(",")):
        digits = len(word) - len(word.lstrip("0123456789"))
        job_id = int(word[:digits]) if digits else 0
        if job_id <= 0:
            raise UsageError(f"squeue: error: Invalid job id: {word}")
        rest = word[digits:]
        task = None
        if rest.startswith("_"):
            tail = rest[1:]
            tdigits = len(tail) - len(tail.lstrip("0123456789"))
            task = int(tail[:tdigits]) if tdigits else -1
        items.append((job_id, task))
    return items


def parse_step_list(text: str) -> list[tuple[int, int]]:
    """`-s 12.0,13.1`: (job, step); Slurm reads each part with strtol (`12.batch` is step 0)
    and refuses an item without a job id or a step."""
    items = []
    for word in filter(None, text.split(",")):
        job, dot, step = word.partition(".")
        if not job.isdigit() or int(job) <= 0:
            raise UsageError(f"squeue: error: Invalid job_step id: {word}")
        if not dot:
            raise UsageError(f"squeue: error: Invalid job_step id: {word}.??")
        digits = len(step) - len(step.lstrip("0123456789"))
        items.append((int(job), int(step[:digits]) if digits else 0))
    return items


def body(argv: list[str]) -> int:
    opts, rest = getopt_long("squeue", argv, SHORT, LONG)
    environ = os.environ
    o = {
        "states": None,
        "jobs": None,
        "users": None,
        "names": None,
        "partitions": None,
        "nodes": None,
        "accounts": None,
        "format": None,
        "format_long": None,
        "steps": None,
    }
    noheader = long = array = steps = start = False
    job_flag = as_json = as_yaml = False
    iterate = 0
    sort = environ.get("SQUEUE_SORT")
    override = False
    warnings: list[str] = []
    array = bool(environ.get("SQUEUE_ARRAY"))
    for key, value in opts:
        if key == "h":
            noheader = True
        elif key == "j":
            job_flag = True
            if value is not None:
                o["jobs"] = parse_job_list(value)
        elif key == "l":
            long = override = True
        elif key == "n":
            o["names"] = [n for n in value.split(",") if n]
        elif key == "O":
            if o["format"] is not None:
                raise UsageError("squeue: error: -O (--Format) is incompatible with -o (--format)")
            o["format_long"] = value
            override = True
        elif key == "o":
            if o["format_long"] is not None:
                raise UsageError("squeue: error: -o (--format) is incompatible with -O (--Format)")
            o["format"] = value
            override = True
        elif key == "p":
            o["partitions"] = [p for p in value.split(",") if p]
        elif key == "r":
            array = True
        elif key == "s":
            steps = override = True
            if value is not None:
                o["steps"] = parse_step_list(value)
        elif key == "S":
            sort = value
        elif key == "t":
            o["states"] = parse_states(value)
        elif key in ("u", "me"):
            o["users"] = value if key == "u" else str(os.geteuid())
        elif key in ("A", "U"):
            o["accounts"] = [a for a in value.split(",") if a]
        elif key == "w":
            from slurmsky.runtime.hostlist import expand

            try:
                o["nodes"] = set(expand(value))
            except ValueError as exc:
                raise UsageError(
                    exc.log("squeue") + f"squeue: error: '{value}' invalid entry for --nodelist"
                ) from None
        elif key == "V":
            print(common.version_line())
            return 0
        elif key == "help":
            print(USAGE)
            return 0
        elif key == "usage":
            print(USAGE)
            return 0
        elif key == "start":
            start = override = True
        elif key == "json":
            as_json = True
        elif key == "yaml":
            as_yaml = True
        elif key == "i":
            if not value.strip().isdigit() or int(value) <= 0:
                raise UsageError(f"squeue: error: --iterate={value}\n")
            iterate = int(value)
    if long and o["format"] is not None:
        raise UsageError(
            "squeue: fatal: Options -o(--format) and -l(--long) are mutually "
            "exclusive. Please remove one and retry."
        )
    if not override:
        if environ.get("SQUEUE_FORMAT"):
            o["format"] = environ["SQUEUE_FORMAT"]
        elif environ.get("SQUEUE_FORMAT2"):
            o["format_long"] = environ["SQUEUE_FORMAT2"]
    if rest:
        if job_flag and o["jobs"] is None:
            o["jobs"] = parse_job_list(rest.pop(0))
        elif steps and o["steps"] is None:
            o["steps"] = parse_step_list(rest.pop(0))
        if rest:
            print(USAGE)
            raise UsageError(f"squeue: error: Unrecognized option: {rest[0]}")
    for name, env in (
        ("names", "SQUEUE_NAMES"),
        ("partitions", "SQUEUE_PARTITION"),
        ("accounts", "SQUEUE_ACCOUNT"),
    ):
        if o[name] is None and environ.get(env):
            o[name] = [v for v in environ[env].split(",") if v]
    if o["states"] is None and environ.get("SQUEUE_STATES"):
        o["states"] = parse_states(environ["SQUEUE_STATES"])
    if o["users"] is None and environ.get("SQUEUE_USERS"):
        o["users"] = environ["SQUEUE_USERS"]
    if start and not steps:
        o["format"] = o["format"] or squeue_format.SQUEUE_START
        sort = sort or "S"
        if o["states"] is None:
            o["states"] = {"PENDING"}

    out = sys.stdout
    conn = state.connect()
    if o["users"] is not None:
        o["users"] = _users(conn, o["users"], warnings)
    for line in warnings:
        sys.stderr.write(line)
    _revive(conn)
    now = common.clock()

    if as_json or as_yaml:  # 22.05 ignores the filters here and dumps every job it holds
        records = state.find_jobs(conn, active_or_ended_after=now - state.MIN_JOB_AGE)
        jobs = squeue_format.squeue_sort(jobview.collapse(records, now=now), "i")
        document = squeue_format.openapi_document(jobs)
        if as_yaml:
            out.write(squeue_format.to_yaml(document))
        else:
            import json

            out.write(json.dumps(document, indent=2) + "\n")
        return 0

    errors: list[str] = []
    items: list = []
    if steps:
        pass  # the step format is parsed by _steps
    elif o["format_long"] is not None:
        items = common.parse_long_format(o["format_long"], squeue_format.SQUEUE_FIELDS, errors)
    else:
        fmt = o["format"] or (squeue_format.SQUEUE_LONG if long else squeue_format.SQUEUE_DEFAULT)
        items = common.parse_percent_format(
            fmt, squeue_format.SQUEUE_FIELDS, squeue_format.PERCENT_CODES, errors
        )
    for bad in errors:
        sys.stderr.write(f"squeue: error: Invalid job format specification: {bad}\n")
    settings = dict(
        noheader=noheader, long=long, array=array, steps=steps, sort=sort, items=items, argv=argv
    )
    while True:
        _print_queue(conn, o, settings, now, out)
        if not iterate:
            return 0
        out.write("\n")
        out.flush()
        time.sleep(iterate)
        now = common.clock()


def _print_queue(conn, o: dict, settings: dict, now: float, out) -> None:
    """One listing of the queue (squeue prints one per --iterate period)."""
    noheader, long, array = settings["noheader"], settings["long"], settings["array"]
    if o["jobs"] is not None and len(o["jobs"]) == 1:
        # A single id is loaded by id (slurm_load_job): unknown or purged is an error.
        job_id = o["jobs"][0][0]
        known = state.find_jobs(conn, ids=[job_id], active_or_ended_after=now - state.MIN_JOB_AGE)
        if not known:
            raise UsageError("slurm_load_jobs error: Invalid job id specified")

    if settings["steps"]:
        _steps(conn, o, noheader, long, now, out)
        return

    wanted_states = o["states"]
    ids = tasks = None
    if o["jobs"] is not None:  # selected in the query: `-j` is cheap however long the queue
        ids = sorted({j for j, t in o["jobs"] if t is None})
        tasks = sorted({(j, t) for j, t in o["jobs"] if t is not None})
    if wanted_states is None:
        filters = dict(
            ids=ids,
            tasks=tasks,
            states=states.ACTIVE_STATES,
            users=o["users"],
            names=o["names"],
            partitions=o["partitions"],
        )
    else:
        filters = dict(
            ids=ids,
            tasks=tasks,
            states=[s for s in states.STATE_CODES if s in wanted_states],
            users=o["users"],
            names=o["names"],
            partitions=o["partitions"],
            active_or_ended_after=now - state.MIN_JOB_AGE,
        )
    items = settings["items"]
    lines = []
    if long and not noheader:
        lines.append(time.ctime(now))
    if not noheader:
        lines.append(common.render(items, None))
    if (
        not tasks
        and o["accounts"] is None
        and o["nodes"] is None
        and squeue_format.Listing.fits(items, settings["sort"])
    ):
        # the common listing: SQLite computes the lines' cells and the order (squeue_format.Listing)
        listing = squeue_format.Listing(items, now, array)
        # the listing this call made before, if no job changed since (listing_cache); not
        # with -l, whose head tells the time
        answer = None
        if not long:
            answer = listing_cache.Answer.of(
                conn, out, "squeue", settings["argv"], [__file__, squeue_format.__file__], now
            )
        if answer and answer.replay():
            return
        rows = state.list_rows(
            conn, listing.columns, listing.args, listing.order_by, listing.order_args, **filters
        )
        common.write_lines(answer or out, lines, listing.lines(rows))
        if (
            answer
            and answer.lines() >= listing_cache.MIN_LINES
            and state.timeless(conn, now, **filters)
        ):
            answer.store()
        return
    else:
        records = state.find_jobs(conn, light=True, **filters)
        if o["accounts"] is not None:
            records = [r for r in records if r.account in o["accounts"]]
        if o["nodes"] is not None:
            from slurmsky.runtime.hostlist import expand

            records = [r for r in records if r.nodelist and o["nodes"] & set(expand(r.nodelist))]
        jobs = jobview.collapse(records, expand=array, now=now)
        jobs = squeue_format.squeue_sort(jobs, settings["sort"])
        common.write_lines(out, lines, map(common.renderer(items), jobs))


def _users(conn, text: str, warnings: list[str]) -> list[str]:
    """`-u a,b`: names (or uids) of users this system or the job state knows; an unknown one
    is reported and matches nothing."""
    names = []
    for word in filter(None, text.split(",")):
        if word.isdigit():
            names.append(common.user_name(int(word)))
        elif common.uid_of(word) is not None or state.user_has_jobs(conn, word):
            names.append(word)
        else:
            warnings.append(f"squeue: error: Invalid user: {word}\n\n")
    return names


def _revive(conn) -> None:
    """Restart a dead agent if jobs still need one (cheap when none do); wait (bounded) for a
    fresh copy of an outside queue (SkyPilot's) a backend follows."""
    backends.refresh_all()
    if state.active_jobs_exist(conn):
        from slurmsky.core import daemon as agent

        agent.revive(conn)


class _Step:
    """One line of `squeue -s`: a job's batch step (`step` None) or a running srun step
    (`step`: the node runtime's record, from Backend.running_steps)."""

    def __init__(self, job: Job, step: dict | None, now: float):
        self.job, self.step, self.now = job, step, now
        self.rec = job.rec

    @property
    def id_text(self) -> str:
        return f"{self.job.id_text}.{'batch' if self.step is None else self.step.get('id')}"

    def name(self) -> str:
        return "batch" if self.step is None else str(self.step.get("name") or "")

    def used(self) -> int:
        if self.step is None:
            return self.job.used()
        return max(int(self.now - float(self.step.get("start") or self.now)), 0)

    def nodes(self) -> str:
        if self.step is None:
            return self.rec.batch_host or ""
        return str(self.step.get("nodes") or "")

    def start(self) -> float | None:
        return self.rec.start_time if self.step is None else self.step.get("start")

    def order(self) -> tuple:  # slurmctld's step ids: the batch step's is the largest
        return (
            self.rec.partition,
            self.rec.job_id,
            1 << 32 if self.step is None else int(self.step.get("id") or 0),
        )


def _steps(conn, o, noheader, long, now, out) -> int:
    """`squeue -s`: every running job's steps: `12.batch` for a batch job, and the srun
    steps the node runtime reports as running (`12.0`). `-j` and a step list select (as in
    22.05, `-n` and `-t` do not)."""
    ids = sorted({j for j, t in o["jobs"] if t is None}) if o["jobs"] is not None else None
    tasks = sorted({(j, t) for j, t in o["jobs"] if t is not None}) if o["jobs"] else None
    records = state.find_jobs(
        conn,
        ids=ids,
        tasks=tasks,
        states=("RUNNING", "COMPLETING"),
        users=o["users"],
        partitions=o["partitions"],
    )
    fields = {
        "i": ("STEPID", lambda s: s.id_text),
        "j": ("NAME", lambda s: s.name()),
        "P": ("PARTITION", lambda s: s.rec.partition),
        "u": ("USER", lambda s: s.rec.user),
        "M": ("TIME", lambda s: format_elapsed(s.used()), False),
        "l": ("TIME_LIMIT", lambda s: format_limit(s.rec.time_limit), False),
        "N": ("NODELIST", lambda s: s.nodes(), False),
        "S": ("START_TIME", lambda s: common.iso(s.start(), "N/A")),
        "U": ("UID", lambda s: str(s.rec.uid)),
    }
    errors: list[str] = []
    fmt = o["format"] or (squeue_format.STEP_LONG if long else squeue_format.STEP_DEFAULT)
    items = common.parse_percent_format(fmt, fields, {k: k for k in fields}, errors)
    for bad in errors:
        sys.stderr.write(f"squeue: error: Invalid job step format specification: {bad}\n")
    rows = []
    for rec in records:
        job = Job(rec, None, now)
        if rec.batch:
            rows.append(_Step(job, None, now))
        steps = backends.get(rec.executor).running_steps(rec) if rec.executor else []
        rows.extend(_Step(job, step, now) for step in steps)
    if o["steps"] is not None:  # a step list names srun steps only (`12.batch` reads as 12.0)
        wanted = set(o["steps"])
        rows = [
            r
            for r in rows
            if r.step is not None and (r.rec.job_id, int(r.step.get("id") or 0)) in wanted
        ]
    rows.sort(key=_Step.order)  # "P,i": own ids
    lines = [] if noheader else [common.render(items, None)]
    lines.extend(map(common.renderer(items), rows))
    out.write("".join(line + "\n" for line in lines))
    return 0


def main() -> None:
    run("squeue", body)
