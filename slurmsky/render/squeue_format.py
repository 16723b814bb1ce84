"""squeue's output: its `%`-codes and `-O` fields over jobs, its sort (`P,t,-p` after a
reverse start-time sort, as squeue does), the listing SQLite prints for its usual formats,
and `--json` / `--yaml`.
"""

from __future__ import annotations

import re

from slurmsky import SLURM_VERSION
from slurmsky.core.state.engine import SQLITE_DIALECT
from slurmsky.core.states import STATE_CODES
from slurmsky.display import format_elapsed, format_limit
from slurmsky.render.common import Item, clock, cluster_name, group_name, iso, printf_sql
from slurmsky.render.jobview import ID_TEXT_SQL, PRIORITY_TOP, Job, tres
from slurmsky.runtime.filepattern import NO_VAL
from slurmsky.runtime.getopt_long import UsageError

_QUOTED = re.compile(r"('(?:[^']|'')*')")  # SQL's quoted text (its '' a quote)
_TIME = re.compile(r"\{(now|later)\}")  # the time a listing is made, and 100 s after


def _state_name(job: Job) -> str:
    return job.rec.state


def _compact(job: Job) -> str:
    return STATE_CODES.get(job.rec.state, job.rec.state)


def _nodes(job: Job) -> str:
    return job.rec.nodelist or ""


def _het(job: Job, value: int | None) -> str:
    """A heterogeneous job's id or offset; N/A for any other job (print.c)."""
    return "N/A" if job.rec.het_job_id is None else str(value)


def _cpus_per_task(job: Job) -> str:
    return str(job.rec.cpus_per_task) if job.rec.cpus_per_task else "N/A"


# name -> (header, value, cut): value(job) -> str or None (printed "(null)").
SQUEUE_FIELDS: dict = {
    "account": ("ACCOUNT", lambda j: j.rec.account),
    "accruetime": ("ACCRUE_TIME", lambda j: iso(j.rec.submit_time if not j.rec.held else 0, "N/A")),
    "admin_comment": ("ADMIN_COMMENT", lambda j: None),
    "allocnodes": ("ALLOC_NODES", lambda j: "localhost"),
    "allocsid": ("ALLOC_SID", lambda j: "0"),
    "arrayjobid": ("ARRAY_JOB_ID", lambda j: j.array_job_text),
    "arraytaskid": ("ARRAY_TASK_ID", lambda j: j.task_text),
    "associd": ("ASSOC_ID", lambda j: "0"),
    "batchflag": ("BATCH_FLAG", lambda j: "1" if j.rec.batch else "0"),
    "batchhost": ("EXEC_HOST", lambda j: j.rec.batch_host or "n/a"),
    "cluster": ("CLUSTER", lambda j: cluster_name()),
    "command": ("COMMAND", lambda j: j.rec.command),
    "comment": ("COMMENT", lambda j: j.rec.comment),
    "contiguous": ("CONTIGUOUS", lambda j: "0"),
    "cores": ("CORES_PER_SOCKET", lambda j: "*"),
    "corespec": ("CORE_SPEC", lambda j: "N/A"),
    "cpus-per-task": ("CPUS_PER_TASK", _cpus_per_task),
    "cpuspertask": ("CPUS_PER_TASK", _cpus_per_task),
    "deadline": ("DEADLINE", lambda j: "N/A"),
    "dependency": ("DEPENDENCY", lambda j: j.rec.dependency),
    "derivedec": ("DERIVED_EC", lambda j: "0"),
    "eligibletime": ("ELIGIBLE_TIME", lambda j: iso(j.rec.eligible_time, "N/A")),
    "endtime": ("END_TIME", Job.end_shown),
    "excnodes": ("EXC_NODES", lambda j: ""),
    "exit_code": (
        "EXIT_CODE",
        lambda j: str(((j.rec.exit_code or 0) << 8) | (j.rec.exit_signal or 0)),
    ),
    "feature": ("FEATURES", lambda j: None),
    "groupid": ("GROUP", lambda j: str(j.rec.gid)),
    "groupname": ("GROUP", lambda j: group_name(j.rec.gid)),
    "hetjobid": ("HET_JOB_ID", lambda j: _het(j, j.rec.het_job_id)),
    "hetjoboffset": ("HET_JOB_OFFSET", lambda j: _het(j, j.rec.het_job_offset)),
    "hetjobidset": ("HET_JOB_ID_SET", lambda j: j.het_set or "N/A"),
    "jobarrayid": ("JOBID", lambda j: j.id_text),
    "jobid": ("JOBID", lambda j: str(j.job_id)),
    "lastschedeval": (
        "LAST_SCHED_EVAL",
        lambda j: iso(j.rec.start_time or j.rec.submit_time, "N/A"),
    ),
    "licenses": ("LICENSES", lambda j: None),
    "maxcpus": ("MAX_CPUS", lambda j: "0"),
    "maxnodes": ("MAX_NODES", lambda j: "0"),
    "mcslabel": ("MCSLABEL", lambda j: "N/A"),
    "mincpus": ("MIN_CPUS", lambda j: str(j.rec.cpus_per_task or 1)),
    "minmemory": ("MIN_MEMORY", lambda j: j.min_memory),
    "mintime": ("MIN_TIME", lambda j: "0:00"),
    "mintmpdisk": ("MIN_TMP_DISK", lambda j: "0"),
    "name": ("NAME", lambda j: j.rec.name),
    "network": ("NETWORK", lambda j: None),
    "nice": ("NICE", lambda j: str(j.rec.nice or 0)),
    "nodelist": ("NODELIST", _nodes, False),
    "numcpus": ("CPUS", lambda j: str(j.rec.num_cpus)),
    "numnodes": ("NODES", lambda j: str(j.rec.num_nodes)),
    "numtasks": ("TASKS", lambda j: str(j.rec.num_tasks)),
    "oversubscribe": ("OVER_SUBSCRIBE", lambda j: j.rec.oversubscribe or "OK"),
    "shared": ("OVER_SUBSCRIBE", lambda j: j.rec.oversubscribe or "OK"),
    "partition": ("PARTITION", lambda j: j.rec.partition),
    "pendingtime": (
        "PENDING_TIME",
        lambda j: str(int((j.rec.start_time if j.started else j.now) - j.rec.submit_time)),
    ),
    "priority": ("PRIORITY", lambda j: "%16.14f" % (j.priority / 0xFFFFFFFF)),
    "prioritylong": ("PRIORITY", lambda j: str(j.priority)),
    "qos": ("QOS", lambda j: "normal"),
    "reason": ("REASON", lambda j: j.rec.reason),
    "reasonlist": ("NODELIST(REASON)", lambda j: j.reason_list, None),
    "reboot": ("REBOOT", lambda j: "0"),
    "reqnodes": ("REQ_NODES", lambda j: ""),
    "requeue": ("REQUEUE", lambda j: "1" if j.rec.requeue else "0"),
    "reservation": ("RESERVATION", lambda j: None),
    "restartcnt": ("RESTARTCNT", lambda j: str(j.rec.restarts)),
    "schednodes": ("SCHEDNODES", lambda j: None, False),
    "sct": ("S:C:T", lambda j: "*:*:*"),
    "sockets": ("SOCKETS_PER_NODE", lambda j: "*"),
    "starttime": ("START_TIME", lambda j: iso(j.start_shown(), "N/A")),
    "state": ("STATE", _state_name),
    "statecompact": ("ST", _compact),
    "stderr": ("STDERR", lambda j: j.std_path("err")),
    "stdin": ("STDIN", lambda j: j.std_path("in")),
    "stdout": ("STDOUT", lambda j: j.std_path("out")),
    "submittime": ("SUBMIT_TIME", lambda j: iso(j.rec.submit_time, "N/A")),
    "system_comment": ("SYSTEM_COMMENT", lambda j: None),
    "threads": ("THREADS_PER_CORE", lambda j: "*"),
    "timeleft": ("TIME_LEFT", Job.time_left, False),
    "timelimit": ("TIME_LIMIT", lambda j: format_limit(j.rec.time_limit), False),
    "timeused": ("TIME", lambda j: format_elapsed(j.used()), False),
    "tres-alloc": ("TRES_ALLOC", lambda j: tres(j) if j.started else None),
    "tres": ("TRES_ALLOC", lambda j: tres(j) if j.started else None),
    "tres-per-job": ("TRES_PER_JOB", lambda j: "N/A"),
    "tres-per-node": ("TRES_PER_NODE", lambda j: j.tres_per_node),
    "gres": ("TRES_PER_NODE", lambda j: j.tres_per_node),
    "tres-per-task": ("TRES_PER_TASK", lambda j: "N/A"),
    "userid": ("UID", lambda j: str(j.rec.uid)),
    "username": ("USER", lambda j: j.rec.user),
    "wckey": ("WCKEY", lambda j: None),
    "workdir": ("WORK_DIR", lambda j: j.rec.workdir),
}

# squeue -o letters -> field names.
PERCENT_CODES = {
    "a": "account",
    "A": "jobid",
    "b": "tres-per-node",
    "B": "batchhost",
    "c": "mincpus",
    "C": "numcpus",
    "d": "mintmpdisk",
    "D": "numnodes",
    "e": "endtime",
    "E": "dependency",
    "f": "feature",
    "F": "arrayjobid",
    "g": "groupname",
    "G": "groupid",
    "h": "oversubscribe",
    "H": "sockets",
    "i": "jobarrayid",
    "I": "cores",
    "j": "name",
    "J": "threads",
    "k": "comment",
    "K": "arraytaskid",
    "l": "timelimit",
    "L": "timeleft",
    "m": "minmemory",
    "M": "timeused",
    "n": "reqnodes",
    "N": "nodelist",
    "o": "command",
    "O": "contiguous",
    "p": "priority",
    "P": "partition",
    "q": "qos",
    "Q": "prioritylong",
    "r": "reason",
    "R": "reasonlist",
    "S": "starttime",
    "t": "statecompact",
    "T": "state",
    "u": "username",
    "U": "userid",
    "v": "reservation",
    "V": "submittime",
    "w": "wckey",
    "W": "licenses",
    "x": "excnodes",
    "X": "corespec",
    "y": "nice",
    "Y": "schednodes",
    "z": "sct",
    "Z": "workdir",
}

SQUEUE_DEFAULT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
SQUEUE_LONG = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
SQUEUE_START = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %20Y %R"
STEP_DEFAULT = "%.15i %.8j %.9P %.8u %.9M %N"
STEP_LONG = "%.15i %.8j %.9P %.8u %.9l %.9M %N"


def squeue_sort(jobs: list[Job], spec: str | None, listed: bool = True) -> list[Job]:
    """squeue's order: a reverse start-time sort, then the keys of `spec` (default `P,t,-p`)
    applied from last to first as stable sorts; ties in slurmctld's list order (`listed`),
    or in the order `jobs` come in (slurm_load_job's, which the caller made)."""
    now = jobs[0].now if jobs else clock()

    def start_key(job: Job) -> float:
        start = int(job.start_shown())  # whole seconds, as Slurm keeps times: ties by list order
        if not start:
            return now + 100
        if job.rec.state == "PENDING" and start < now:
            return now
        return start

    def id_key(job: Job):
        rec = job.rec
        if rec.array_job_id is None:
            return (rec.job_id, 0)
        return (rec.array_job_id, NO_VAL if job.tasks is not None else rec.array_task_id)

    keys = {
        "i": id_key,
        "j": lambda j: j.rec.name,
        "u": lambda j: j.rec.user,
        "U": lambda j: j.rec.uid,
        "P": lambda j: j.rec.partition,
        "p": lambda j: j.priority,
        "Q": lambda j: j.priority,
        "t": _compact,
        "T": _state_name,
        "M": lambda j: j.used(),
        "D": lambda j: j.rec.num_nodes,
        "C": lambda j: j.rec.num_cpus,
        "l": lambda j: j.rec.time_limit or 2**32,
        "V": lambda j: j.rec.submit_time,
        "e": lambda j: j.rec.end_time or 0,
        "N": lambda j: j.rec.nodelist or "",
        "B": lambda j: j.rec.batch_host or "",
        "g": lambda j: group_name(j.rec.gid),
        "G": lambda j: j.rec.gid,
        "S": lambda j: start_key(j) if j.start_shown() else 2**40,
        "L": lambda j: (j.rec.time_limit * 60 - j.used()) if j.rec.time_limit else 2**40,
        "m": lambda j: j.total_mem,
    }

    def list_key(job: Job):
        # slurmctld's own list order, which decides ties: held jobs (priority 0) come newest
        # first, as the peer shows them; others oldest first, array tasks by index
        array_id, task = id_key(job)
        return (-array_id, task) if job.rec.held else (array_id, task)

    if listed:
        jobs = sorted(jobs, key=list_key)
    jobs = sorted(jobs, key=start_key, reverse=True)
    spec = spec or "P,t,-p"
    for i in range(len(spec) - 1, -1, -1):
        letter = spec[i]
        if letter in ",+-":
            continue
        key = keys.get(letter)
        if key is None:
            raise UsageError(f"squeue: error: Invalid sort specification: {letter}")
        jobs.sort(key=key, reverse=i > 0 and spec[i - 1] == "-")
    return jobs


def _elapsed_sql(s: str, d) -> str:
    """format_elapsed of the integer expression `s`, in SQL (dialect `d`)."""
    return (
        f"(CASE WHEN {s} < 0 OR {s} > {365 * 86400} THEN 'INVALID' "
        f"WHEN {s} >= 86400 THEN "
        + d.printf(
            "%d-%02d:%02d:%02d",
            [f"{s} / 86400", f"{s} % 86400 / 3600", f"{s} % 3600 / 60", f"{s} % 60"],
        )
        + f" WHEN {s} >= 3600 THEN "
        + d.printf("%d:%02d:%02d", [f"{s} / 3600", f"{s} % 3600 / 60", f"{s} % 60"])
        + " ELSE "
        + d.printf("%d:%02d", [f"{s} / 60", f"{s} % 60"])
        + " END)"
    )


_CODE_SQL = (
    "(CASE state "
    + " ".join(f"WHEN '{name}' THEN '{code}'" for name, code in STATE_CODES.items())
    + " ELSE state END)"
)
_STARTED_SQL = "(start_time IS NOT NULL AND state != 'PENDING')"  # Job.started
_REASON_STATES = ("PENDING", "TIMEOUT", "FAILED", "OUT_OF_MEMORY", "DEADLINE")


def _used_sql(d) -> str:
    """Job.used() of a started job."""
    return d.greatest(d.integer("coalesce(nullif(end_time, 0), {now}) - start_time"), "0")


def squeue_sql(d) -> dict[str, str]:
    """Each field's cell in SQL (dialect `d`), of a job's row."""
    return {
        "account": "coalesce(account, '(null)')",
        "arrayjobid": "CAST(coalesce(array_job_id, job_id) AS TEXT)",
        "arraytaskid": (
            "coalesce(CAST(array_task_id AS TEXT), array_tasks(array_pending, array_throttle), "
            "'N/A')"
        ),
        "jobarrayid": ID_TEXT_SQL,
        "jobid": "CAST(job_id AS TEXT)",
        "name": "name",
        "nodelist": "coalesce(nodelist, '')",
        "numcpus": "CAST(num_cpus AS TEXT)",
        "numnodes": "CAST(num_nodes AS TEXT)",
        "partition": "partition",
        "reason": "reason",
        "reasonlist": (
            f"(CASE WHEN state IN {_REASON_STATES} THEN '(' || reason || ')' "
            "ELSE coalesce(nodelist, '') END)"
        ),
        "state": "state",
        "statecompact": _CODE_SQL,
        "timelimit": (
            "(CASE WHEN time_limit IS NULL THEN 'UNLIMITED' ELSE "
            + _elapsed_sql("(time_limit * 60)", d)
            + " END)"
        ),
        "timeused": (
            f"(CASE WHEN NOT {_STARTED_SQL} THEN '0:00' ELSE "
            + _elapsed_sql(_used_sql(d), d)
            + " END)"
        ),
        "userid": "CAST(uid AS TEXT)",
        "username": '"user"',
    }


_SQL_FIELDS = frozenset(squeue_sql(SQLITE_DIALECT))  # the fields a Listing computes

# The default sort ("P,t,-p" after the reverse start-time sort, ties in slurmctld's list
# order: squeue_sort) as ascending keys, then job_id; {record}: an array's pending record's
# place among its array's elements (after them; with -r, at its lowest index).
_HELD_SQL = "(held IS NOT NULL AND held != '')"


def _sort_sql(d) -> tuple[str, ...]:
    def start(column: str) -> str:
        return f"coalesce({d.integer(column)}, 0)"

    return (
        "partition",  # (the first two are text)
        _CODE_SQL,
        f"(CASE WHEN {_HELD_SQL} THEN 0 ELSE "
        f"-coalesce(priority, {d.greatest(f'{PRIORITY_TOP} - submission - nice', '1')}) END)",
        # -start_key: Job.start_shown() in whole seconds, `now + 100` when unknown (0 too),
        # `now` for a pending job's past
        f"-(CASE WHEN state = 'PENDING' THEN (CASE WHEN {start('begin_time')} = 0 "
        f"THEN {{later}} WHEN {start('begin_time')} < {{now}} THEN {{now}} "
        f"ELSE {start('begin_time')} END) "
        f"WHEN {start('start_time')} = 0 THEN {{later}} "
        f"ELSE {start('start_time')} END)",
        f"coalesce(array_job_id, job_id) * (CASE WHEN {_HELD_SQL} THEN -1 ELSE 1 END)",
        "(CASE WHEN array_job_id IS NULL THEN 0 WHEN array_pending IS NOT NULL THEN {record} "
        "ELSE coalesce(array_task_id, -1) END)",
        "job_id",
    )


_ELEMENT = "\x1e"  # in a pending record's line with -r: where each element's own cell goes
_PER_ELEMENT = ("jobarrayid", "arraytaskid")  # the cells that differ from element to element


class Listing:
    """squeue's default-sorted listing of `items` as rows SQLite computes (see SQUEUE_SQL):
    `columns`, `args`, `order_by` and `order_args` for state.list_rows, then `lines(rows)`
    renders them. A row is a job's whole line (SQLite's printf, the widths counted in
    characters as Python's); with `expand` (-r), a pending record's row is its line with
    the per-element cells left out, its id and its indices, and each element's line is
    made from it: a long queue costs one string per job to fetch."""

    def __init__(self, items: list[Item], now: float, expand: bool, dialect):
        cells = squeue_sql(dialect)
        parts = []  # (printf spec, its cell's SQL or None for literal text)
        template = []  # the same, a pending record's per-element cells left out
        self.cells = []  # those cells' items, in order
        for item in items:
            if item.field is not None:
                parts.append((_printf_spec(item), cells[item.key]))
                if item.key in _PER_ELEMENT:
                    template.append((_ELEMENT, None))
                    self.cells.append(item)
                else:
                    template.append(parts[-1])
            parts.append((item.suffix.replace("%", "%%"), None))
            template.append(parts[-1])
        self.items, self.now, self.expand = items, now, expand
        keys = [
            k.replace("{record}", dialect.first_index if expand else str(NO_VAL))
            for k in _sort_sql(dialect)
        ]
        columns = [printf_sql(parts, dialect)]
        if expand:  # and what places an element among the rows of its array that sort alike
            block = f" || {dialect.byte(0x1F)} || ".join(f"(CAST({k} AS TEXT))" for k in keys[:5])
            columns = [
                f"(CASE WHEN array_pending IS NULL THEN {printf_sql(parts, dialect)} "
                f"ELSE {printf_sql(template, dialect)} END)",
                "job_id",
                "array_pending",
                f"(CASE WHEN array_job_id IS NOT NULL THEN {block} END)",
                keys[5],
            ]
        self.columns, self.args = self._bind(columns, now)
        order, self.order_args = self._bind(keys, now)
        self.order_by = dialect.order_by(order, texts=2)

    @staticmethod
    def _bind(columns: list[str], now: float) -> tuple[list[str], list[float]]:
        """`{now}` and `{later}` outside the SQL's quoted text (which holds the format's own
        text: `-o '{now}'`) as parameters, and their values."""
        args, bound = [], []
        for column in columns:
            pieces = _QUOTED.split(column)
            for i in range(0, len(pieces), 2):
                for word in _TIME.findall(pieces[i]):
                    args.append(now + 100 if word == "later" else now)
                pieces[i] = _TIME.sub("?", pieces[i])
            bound.append("".join(pieces))
        return bound, args

    @staticmethod
    def fits(items: list[Item], sort: str | None) -> bool:
        """Whether SQLite can compute a listing of these items in this order."""
        return sort is None and all(
            item.field is None
            or (
                item.key in _SQL_FIELDS
                and (
                    (item.field[2] if len(item.field) > 2 else True) is not None
                    or item.width <= 0
                    or not item.right
                )
            )
            for item in items
        )

    def lines(self, rows):
        """The lines of `rows`, one by one."""
        if not self.expand:
            for (line,) in rows:
                yield line
            return
        # Rows of one array that sort alike come together, by index: a pending record's
        # elements take their places among them.
        group: list = []
        for row in rows:
            if group and row[3] != group[0][3]:
                yield from self._merged(group)
                group = []
            if row[3] is None:
                yield row[0]
            else:
                group.append(row)
        yield from self._merged(group)

    def _merged(self, group: list):
        import heapq

        from slurmsky.runtime import indexset

        records = [row for row in group if row[2] is not None]
        if not records:
            yield from (row[0] for row in group)
            return
        lines = [((row[4], row[0]) for row in group if row[2] is None)]
        for line, job_id, pending, _, _ in records:
            pieces = line.split("\x1e")
            indices = indexset.iterate(indexset.parse(pending))
            lines.append((i, self._element_line(pieces, job_id, i)) for i in indices)
        for _, line in heapq.merge(*lines, key=lambda pair: pair[0]):
            yield line

    def _element_line(self, pieces: list[str], array_id: int, index: int) -> str:
        from slurmsky.render.common import pad

        out = [pieces[0]]
        for item, piece in zip(self.cells, pieces[1:]):
            value = f"{array_id}_{index}" if item.key == "jobarrayid" else str(index)
            cut = item.field[2] if len(item.field) > 2 else True
            out.append(pad(value, item.width, item.right, bool(cut)))
            out.append(piece)
        return "".join(out)


def _printf_spec(item: Item) -> str:
    """SQLite's printf conversion for pad(value, width, right, cut) (`!`: the width and
    precision count characters, as pad does, not bytes)."""
    cut = item.field[2] if len(item.field) > 2 else True
    if item.width <= 0:
        return "%s"
    if not item.right:
        return f"%!-{item.width}.{item.width}s"
    return f"%!{item.width}.{item.width}s" if cut else f"%!{item.width}s"


def job_json(job: Job) -> dict:
    """A job as `squeue --json` (openapi v0.0.38) shows it: the commonly read keys."""
    rec = job.rec
    group = job.tasks is not None
    array_id = rec.array_job_id or 0
    epoch = lambda t: int(t) if t else 0  # noqa: E731
    limit_end = (rec.start_time + rec.time_limit * 60) if job.started and rec.time_limit else 0
    return {
        "account": rec.account or "",
        "accrue_time": epoch(rec.submit_time),
        "array_job_id": array_id,
        "array_task_id": None if (group or rec.array_task_id is None) else rec.array_task_id,
        "array_max_tasks": rec.array_throttle or 0,
        "array_task_string": job.task_string if group else "",
        "batch_flag": bool(rec.batch),
        "batch_host": rec.batch_host or "",
        "cluster": cluster_name(),
        "command": rec.command or "",
        "comment": rec.comment or "",
        "cpus_per_task": rec.cpus_per_task,
        "current_working_directory": rec.workdir,
        "dependency": rec.dependency or "",
        "derived_exit_code": 0,
        "eligible_time": epoch(rec.eligible_time),
        "end_time": epoch(rec.end_time) or epoch(limit_end),
        "exit_code": ((rec.exit_code or 0) << 8) | (rec.exit_signal or 0),
        "group_id": rec.gid,
        "group_name": group_name(rec.gid),
        "job_id": job.job_id,
        "job_state": rec.state,
        "name": rec.name,
        "nodes": rec.nodelist or "",
        "cpus": rec.num_cpus,
        "node_count": rec.num_nodes,
        "tasks": rec.num_tasks,
        "partition": rec.partition,
        "memory_per_node": rec.mem_per_node,
        "memory_per_cpu": rec.mem_per_cpu,
        "priority": job.priority,
        "qos": "normal",
        "requeue": bool(rec.requeue),
        "restart_cnt": rec.restarts,
        "start_time": epoch(job.start_shown()),
        "state_reason": rec.reason,
        "standard_error": job.std_path("err") if rec.batch else "",
        "standard_input": job.std_path("in"),
        "standard_output": job.std_path("out") if rec.batch else "",
        "submit_time": epoch(rec.submit_time),
        "time_limit": rec.time_limit,
        "tres_per_node": job.tres_per_node if job.gres else "",
        "user_id": rec.uid,
        "user_name": rec.user,
    }


def openapi_document(jobs: list[Job]) -> dict:
    major, minor, micro = SLURM_VERSION.split(".")
    return {
        "meta": {
            "plugin": {"type": "openapi/v0.0.38", "name": "Slurm OpenAPI v0.0.38"},
            "Slurm": {
                "version": {"major": int(major), "micro": int(micro), "minor": int(minor)},
                "release": SLURM_VERSION,
            },
        },
        "errors": [],
        "jobs": [job_json(j) for j in jobs],
    }


def to_yaml(data) -> str:
    """Slurm's libyaml output: every scalar tagged (`!!str`, `!!int`, ...), empty strings null."""
    lines = ["%YAML 1.1", "--- !!map"]

    def scalar(value) -> str:
        if value is None or value == "":
            return "!!null null"
        if isinstance(value, bool):
            return "!!bool " + ("true" if value else "false")
        if isinstance(value, int):
            return f"!!int {value}"
        if isinstance(value, float):
            return f"!!float {value:f}"
        text = str(value)
        if any(c in text for c in ":#'\"{}[],&*!|>%@`\n") or text != text.strip():
            text = "'" + text.replace("'", "''") + "'"
        return "!!str " + text

    def emit_map(mapping: dict, indent: str) -> None:
        for key, value in mapping.items():
            head = f"{indent}!!str {key}:"
            if isinstance(value, dict):
                lines.append(head + " !!map")
                emit_map(value, indent + "  ")
            elif isinstance(value, list):
                if not value:
                    lines.append(head + " !!seq []")
                    continue
                lines.append(head + " !!seq")
                for element in value:
                    if isinstance(element, dict):
                        lines.append(indent + "- !!map")
                        emit_map(element, indent + "  ")
                    else:
                        lines.append(indent + "- " + scalar(element))
            else:
                lines.append(f"{head} {scalar(value)}")

    emit_map(data, "")
    return "\n".join(lines) + "\n"
