"""squeue: the queue, as Slurm 22.05 prints it.

Called in polling loops (snakemake, dask, users' `watch`), so it imports only the standard
library and slurmsky's light modules: one SQLite read, one format pass.
"""

from __future__ import annotations

import os
import sys
import time

from slurmsky import backends
from slurmsky.commands.common import plugin_lines, run
from slurmsky.commands.read_options import OPTIONAL, REQUIRED, Opt, Table, answered, words
from slurmsky.core import state, states
from slurmsky.display import format_elapsed, format_limit
from slurmsky.record import Factory, Record
from slurmsky.render import common, jobview, listing_cache, squeue_format
from slurmsky.render.jobview import Job
from slurmsky.runtime.getopt_long import UsageError

STATE_LIST = ",".join(states.SLURM_STATES)  # squeue's "Valid job states include" list

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
        return set(states.SLURM_STATES) | set(states.STATE_CODES)
    chosen = set()
    for word in filter(None, text.split(",")):
        upper = word.upper()
        name = states.CODE_STATES.get(upper, upper)
        if name not in states.SLURM_STATES:
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


class SqueueArgs(Record, frozen=False):
    """What squeue's options ask (the `SQUEUE_*` variables fill in after)."""

    states: set | None = None
    jobs: list | None = None
    users: str | list[str] | None = None  # the -u text, then the names read from it
    names: list | None = None
    partitions: list | None = None
    nodes: set | None = None
    accounts: list | None = None
    format: str | None = None
    format_long: str | None = None
    step_list: list | None = None
    noheader: bool = False
    long: bool = False
    array: bool = False
    steps: bool = False
    start: bool = False
    job_flag: bool = False
    json: bool = False
    yaml: bool = False
    iterate: int = 0
    sort: str | None = None
    override: bool = False  # an option chose the format: SQUEUE_FORMAT{,2} do not apply
    action: str | None = None
    given: dict = Factory(dict)  # each option's texts as given (read_options.Table.parse)


def _states(text: str, ns: object = None) -> set[str]:
    return parse_states(text)


def _jobs(text: str, ns: object = None) -> list[tuple[int, int | None]]:
    return parse_job_list(text)


def _step_items(text: str, ns: object = None) -> list[tuple[int, int]]:
    return parse_step_list(text)


def _nodes(text: str, ns: object = None) -> set[str]:
    from slurmsky.runtime.hostlist import expand

    try:
        return set(expand(text))
    except ValueError as exc:
        raise UsageError(
            exc.log("squeue") + f"squeue: error: '{text}' invalid entry for --nodelist"
        ) from None


def _iterate(text: str, ns: object = None) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise UsageError(f"squeue: error: --iterate={text}\n")
    return int(text)


_O_AND_o = "squeue: error: -O (--Format) is incompatible with -o (--format)"
_o_AND_O = "squeue: error: -o (--format) is incompatible with -O (--Format)"
# fmt: off
OPTIONS = Table("squeue", (
    Opt("A", ("accounts",), REQUIRED, "accounts", convert=words, help="accounts to list"),
    Opt("a", ("all",), help="all partitions (there are no hidden ones)"),
    Opt("r", ("array",), dest="array", help="one line per array element"),
    Opt("", ("array-unique",), help="accepted, no effect"),
    Opt("O", ("Format",), REQUIRED, "format_long", conflict=("format", _O_AND_o),
        marks=("override",), help="fields by name"),
    Opt("o", ("format",), REQUIRED, "format", conflict=("format_long", _o_AND_O),
        marks=("override",), help="fields as %-codes"),
    Opt("", ("federation",), help="accepted, no effect"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("hide",), help="accepted, no effect"),
    Opt("i", ("iterate",), REQUIRED, "iterate", convert=_iterate, help="repeat every N seconds"),
    Opt("j", ("jobs",), OPTIONAL, "jobs", convert=_jobs, marks=("job_flag",),
        help="jobs to list (or the first operand)"),
    Opt("", ("json",), dest="json", help="the OpenAPI document as JSON"),
    Opt("", ("local",), help="accepted, no effect"),
    Opt("l", ("long",), dest="long", marks=("override",), help="the long format"),
    Opt("L", ("licenses",), REQUIRED, help="accepted, no effect"),
    Opt("M", ("cluster", "clusters"), REQUIRED, help="accepted, no effect"),
    Opt("", ("me",), dest="users", const=Factory(lambda: str(os.geteuid())),
        help="the caller's jobs"),
    Opt("n", ("name",), REQUIRED, "names", convert=words, help="job names to list"),
    Opt("", ("noconvert",), help="accepted, no effect"),
    Opt("w", ("node", "nodes", "nodelist"), REQUIRED, "nodes", convert=_nodes,
        help="jobs on these nodes"),
    Opt("h", ("noheader",), dest="noheader", help="no header line"),
    Opt("p", ("partitions",), REQUIRED, "partitions", convert=words, help="partitions to list"),
    Opt("P", ("priority",), help="accepted, no effect"),
    Opt("q", ("qos",), REQUIRED, help="accepted, no effect"),
    Opt("R", ("reservation",), REQUIRED, help="accepted, no effect"),
    Opt("", ("sib", "sibling"), help="accepted, no effect"),
    Opt("S", ("sort",), REQUIRED, "sort", help="sort keys"),
    Opt("", ("start",), dest="start", marks=("override",), help="pending jobs' expected starts"),
    Opt("s", ("steps",), OPTIONAL, "step_list", convert=_step_items,
        marks=("steps", "override"), help="steps (these ones) instead of jobs"),
    Opt("t", ("states",), REQUIRED, "states", convert=_states, help="states to list"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
    Opt("u", ("user", "users"), REQUIRED, "users", help="users whose jobs to list"),
    Opt("U", (), REQUIRED, "accounts", convert=words, help="accounts to list"),
    Opt("v", ("verbose",), help="the settings first (-vv: and the lists read from them)"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("yaml",), dest="yaml", help="the OpenAPI document as YAML"),
))
# fmt: on


def body(argv: list[str]) -> int:
    environ = os.environ
    o, rest = OPTIONS.parse(
        argv, SqueueArgs(sort=environ.get("SQUEUE_SORT"), array=bool(environ.get("SQUEUE_ARRAY")))
    )
    if answered(o, USAGE, "squeue"):
        return 0
    warnings: list[str] = []
    if o.long and o.format is not None:
        raise UsageError(
            "squeue: fatal: Options -o(--format) and -l(--long) are mutually "
            "exclusive. Please remove one and retry."
        )
    if not o.override:
        if environ.get("SQUEUE_FORMAT"):
            o.format = environ["SQUEUE_FORMAT"]
        elif environ.get("SQUEUE_FORMAT2"):
            o.format_long = environ["SQUEUE_FORMAT2"]
    if rest:
        if o.job_flag and o.jobs is None:
            o.jobs = parse_job_list(rest.pop(0))
        elif o.steps and o.step_list is None:
            o.step_list = parse_step_list(rest.pop(0))
        if rest:
            print(USAGE)
            raise UsageError(f"squeue: error: Unrecognized option: {rest[0]}")
    if o.names is None and environ.get("SQUEUE_NAMES"):
        o.names = words(environ["SQUEUE_NAMES"])
    if o.partitions is None and environ.get("SQUEUE_PARTITION"):
        o.partitions = words(environ["SQUEUE_PARTITION"])
    if o.accounts is None and environ.get("SQUEUE_ACCOUNT"):
        o.accounts = words(environ["SQUEUE_ACCOUNT"])
    if o.states is None and environ.get("SQUEUE_STATES"):
        o.states = parse_states(environ["SQUEUE_STATES"])
    if o.users is None and environ.get("SQUEUE_USERS"):
        o.users = environ["SQUEUE_USERS"]
    if o.nodes is not None:
        o.nodes = _known_nodes(o.nodes)
    texts = {k: v[-1] for k, v in o.given.items()}  # each option's last text
    for key, name in (("n", "NAMES"), ("L", "LICENSES"), ("p", "PARTITION"), ("t", "STATES")):
        if texts.get(key) is None and environ.get("SQUEUE_" + name):
            texts[key] = environ["SQUEUE_" + name]
    if o.start and not o.steps:
        o.format = o.format or squeue_format.SQUEUE_START
        o.sort = o.sort or "S"
        if o.states is None:
            o.states = {"PENDING"}

    out = sys.stdout
    users_text = o.users if isinstance(o.users, str) else None
    conn = state.connect()
    if o.users is not None:
        o.users = _users(conn, o.users, warnings)
    if o.given.get("v"):
        _print_options(o, texts, users_text, environ, out)
        out.flush()
        sys.stderr.write("".join(line + "\n" for line in plugin_lines("squeue")))
    for line in warnings:
        sys.stderr.write(line)
    _revive(conn)
    now = common.clock()

    if o.json or o.yaml:  # 22.05 ignores the filters here and dumps every job it holds
        records = state.find_jobs(conn, active_or_ended_after=now - state.MIN_JOB_AGE)
        jobs = squeue_format.squeue_sort(jobview.collapse(records, now=now), "i")
        document = squeue_format.openapi_document(jobs)
        if o.yaml:
            out.write(squeue_format.to_yaml(document))
        else:
            import json

            out.write(json.dumps(document, indent=2) + "\n")
        return 0

    errors: list[str] = []
    items: list = []
    if o.steps:
        pass  # the step format is parsed by _steps
    elif o.format_long is not None:
        items = common.parse_long_format(o.format_long, squeue_format.SQUEUE_FIELDS, errors)
    else:
        fmt = o.format or (squeue_format.SQUEUE_LONG if o.long else squeue_format.SQUEUE_DEFAULT)
        items = common.parse_percent_format(
            fmt, squeue_format.SQUEUE_FIELDS, squeue_format.PERCENT_CODES, errors
        )
    for bad in errors:
        sys.stderr.write(f"squeue: error: Invalid job format specification: {bad}\n")
    while True:
        _print_queue(conn, o, items, argv, now, out)
        if not o.iterate:
            return 0
        out.write("\n")
        out.flush()
        time.sleep(o.iterate)
        now = common.clock()


def _print_queue(conn, o: SqueueArgs, items: list, argv: list[str], now: float, out) -> None:
    """One listing of the queue (squeue prints one per --iterate period)."""
    noheader, long, array = o.noheader, o.long, o.array
    single = o.jobs is not None and len(o.jobs) == 1
    if single and o.jobs is not None:
        # A single id is loaded by id (slurm_load_job): unknown or purged is an error.
        job_id = o.jobs[0][0]
        known = state.find_jobs(conn, ids=[job_id], active_or_ended_after=now - state.MIN_JOB_AGE)
        if not known:
            raise UsageError("slurm_load_jobs error: Invalid job id specified")

    if o.steps:
        _steps(conn, o, noheader, long, now, out)
        return

    wanted_states = o.states
    ids = tasks = None
    if o.jobs is not None:  # selected in the query: `-j` is cheap however long the queue
        ids = sorted({j for j, t in o.jobs if t is None})
        tasks = sorted({(j, t) for j, t in o.jobs if t is not None})
    if wanted_states is None:
        filters = dict(
            ids=ids,
            tasks=tasks,
            states=states.ACTIVE_STATES,
            users=o.users,
            names=o.names,
            partitions=o.partitions,
        )
    else:
        filters = dict(
            ids=ids,
            tasks=tasks,
            states=[s for s in states.STATE_CODES if s in wanted_states],
            users=o.users,
            names=o.names,
            partitions=o.partitions,
            active_or_ended_after=now - state.MIN_JOB_AGE,
        )
    lines = []
    if (long or o.given.get("v")) and not noheader:
        lines.append(time.ctime(now))
    if o.given.get("v"):  # what slurm_load_jobs gave: one job's load has no update time
        one = [o.jobs[0][0]] if single and o.jobs else None
        read = state.find_jobs(conn, ids=one, active_or_ended_after=now - state.MIN_JOB_AGE)
        lines.append(f"last_update_time={0 if one else int(now)} records={len(read)}")
    if not noheader:
        lines.append(common.render(items, None))
    # one array's id alone is loaded by id (slurm_load_job): its record first, then the
    # elements as slurmctld chains them, the last split off first (ties keep that order)
    loaded = o.jobs[0][0] if o.jobs is not None and len(o.jobs) == 1 and not tasks else None
    if (
        loaded is None
        and not tasks
        and o.accounts is None
        and o.nodes is None
        and squeue_format.Listing.fits(items, o.sort)
    ):
        # the common listing: SQLite computes the lines' cells and the order (squeue_format.Listing)
        listing = squeue_format.Listing(items, now, array, conn.dialect)
        # the listing this call made before, if no job changed since (listing_cache); not
        # with -l or -v, whose head tells the time
        answer = None
        if not long and not o.given.get("v"):
            answer = listing_cache.Answer.of(
                conn, out, "squeue", argv, [__file__, squeue_format.__file__], now
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
        if o.accounts is not None:
            records = [r for r in records if r.account in o.accounts]
        if o.nodes is not None:
            from slurmsky.runtime.hostlist import expand

            records = [r for r in records if r.nodelist and o.nodes & set(expand(r.nodelist))]
        if loaded is not None:
            # a heterogeneous job's components come together, the last first (the peer)
            records.sort(key=lambda r: (loaded not in (r.job_id, r.het_job_id), -r.job_id))
        jobs = jobview.collapse(records, expand=array, now=now)
        sets = state.het_sets(conn, {r.het_job_id for r in records if r.het_job_id is not None})
        for job in jobs:
            job.het_set = sets.get(job.rec.het_job_id)
        jobs = squeue_format.squeue_sort(jobs, o.sort, listed=loaded is None)
        common.write_lines(out, lines, map(common.renderer(items), jobs))


def _print_options(o: SqueueArgs, texts: dict, users: str | None, environ, out) -> None:
    """-v: squeue's settings (opts.c _print_options, on stdout before the listing); -vv:
    and the lists read from them."""
    from slurmsky.runtime.hostlist import compress

    verbose = len(o.given["v"])
    given = o.given

    def flag(*keys: str, env: str = "") -> str:
        return "true" if any(k in given for k in keys) or environ.get(env) else "false"

    def text(value) -> str:
        return "(null)" if value is None else str(value)

    steps = texts.get("s") if o.step_list is not None else None
    jobs = texts.get("j") if o.jobs is not None else None
    if o.jobs is not None and jobs is None:  # the operand
        jobs = ",".join(f"{j}" if t is None else f"{j}_{t}" for j, t in o.jobs)
    rows = [
        ("all", flag("a", "p", env="SQUEUE_ALL")),
        ("array", "true" if o.array else "false"),
        ("federation", flag("federation", env="SQUEUE_FEDERATION")),
        ("format", text(o.format)),
        ("iterate", str(o.iterate)),
        ("job_flag", str(int(o.job_flag and not (o.steps and o.jobs)))),
        ("jobs", text(jobs)),
        ("licenses", text(texts.get("L"))),
        ("local", flag("local", "M", env="SQUEUE_LOCAL")),
        ("names", text(texts.get("n"))),
        ("nodes", compress(sorted(o.nodes, key=_natural_key)) if o.nodes else ""),
        ("partitions", text(texts.get("p"))),
        ("priority", flag("P", env="SQUEUE_PRIORITY")),
        ("reservation", text(texts.get("R"))),
        ("sibling     ", flag("sib", env="SQUEUE_SIBLING")),  # (sic: one column more)
        ("sort", text(o.sort)),
        ("start_flag", str(int(o.start))),
        ("states", text(texts.get("t") or ("PD" if o.start and not o.steps else None))),
        ("step_flag", str(int(o.steps))),
        ("steps", text(steps)),
        ("users", text(users)),
        ("verbose", str(verbose)),
    ]
    lines = ["-----------------------------"]
    lines += [f"{name:<11} = {value}" for name, value in rows]
    if verbose > 1:
        for i, (job, task) in enumerate(o.jobs or ()):
            lines.append(f"job_list[{i}] = {job}" + ("" if task is None else f"_{task}"))
        for i, name in enumerate(o.names or ()):
            lines.append(f"name_list[{i}] = {ord(name[0])}")  # (sic: its first byte, %u)
        for i, name in enumerate(words(texts["L"]) if texts.get("L") else ()):
            lines.append(f"licenses_list[{i}] = {name}")
        for i, name in enumerate(o.partitions or ()):
            lines.append(f"part_list[{i}] = {name}")
        if texts.get("t", "").lower() == "all":
            lines.append("state_list = all")
        else:
            chosen = [
                states.CODE_STATES.get(w.upper(), w.upper()) for w in words(texts.get("t") or "")
            ]
            lines += [f"state_list[{i}] = {name}" for i, name in enumerate(chosen)]
        for i, (job, step) in enumerate(o.step_list or ()):
            lines.append(f"step_list[{i}] = {job}.{step}")
        for i, name in enumerate(o.users or ()):
            lines.append(f"user_list[{i}] = {common.uid_of(name)}")
    out.write("\n".join(lines) + "\n-----------------------------\n\n\n")


def _natural_key(name: str):
    from slurmsky.commands.sinfo import _natural

    return _natural(name)


def _known_nodes(names: set[str]) -> set[str]:
    """`-w`: each name as a node's name (or host name; `localhost` is this host), as
    squeue's _filter_nodes maps them; an unknown one ends squeue. The nodes known are the
    partitions' and those active jobs hold."""
    import socket

    from slurmsky.commands.sinfo import _natural, partitions
    from slurmsky.runtime.hostlist import expand

    conn = state.connect()
    known = {n.name for p in partitions(conn) for n in p["nodes"] if n.name}
    for rec in state.find_jobs(conn, light=True, states=states.ACTIVE_STATES):
        known.update(expand(rec.nodelist) if rec.nodelist else ())  # what a job holds is known
    mapped = set()
    for name in sorted(names, key=_natural):
        node = socket.gethostname().split(".")[0] if name.lower() == "localhost" else name
        if node not in known:
            raise UsageError(f"squeue: error: Invalid node name {name}")
        mapped.add(node)
    return mapped


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
    ids = sorted({j for j, t in o.jobs if t is None}) if o.jobs is not None else None
    tasks = sorted({(j, t) for j, t in o.jobs if t is not None}) if o.jobs else None
    records = state.find_jobs(
        conn,
        ids=ids,
        tasks=tasks,
        states=("RUNNING", "COMPLETING"),
        users=o.users,
        partitions=o.partitions,
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
    fmt = o.format or (squeue_format.STEP_LONG if long else squeue_format.STEP_DEFAULT)
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
    if o.step_list is not None:  # a step list names srun steps only (`12.batch` reads as 12.0)
        wanted = set(o.step_list)
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
