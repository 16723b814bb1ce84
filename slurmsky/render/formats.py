"""Slurm 22.05's output formats, for squeue, sacct, scontrol and sinfo.

Everything here turns `JobRecord`s (and the configured partitions and nodes) into text that
reads byte for byte as Slurm's, quirks included (the quirks are what scripts parse):

* squeue: `%`-codes with `%.N` (right) / `%N` (left) widths, a prefix before the first `%`,
  text after a code kept as its suffix, `-O Field[:[.]N][suffix]` (20 wide by default),
  values cut to the width except node lists and times (src/squeue/print.c `_print_str`);
  pending array elements collapsed into one `N_[3-7%2]` record as slurmctld keeps them;
  sort `P,t,-p` after a reverse start-time sort, as squeue does.
* sacct: columns from a table of Slurm's names and widths (negative = left-justified),
  values longer than the column cut with `+`, `--parsable` (trailing `|`) and
  `--parsable2`; one `.batch` row per started batch job.
* scontrol: `show job` blocks (multi-line, 3-space indent, or `-o` on one line), `show
  config` / `partition` / `node`.
* sinfo: `%`-formats over partitions and nodes, grouped as sinfo groups them.

Imports stay standard-library and light: squeue runs in polling loops.
"""

from __future__ import annotations

import os
import time

from slurmsky import SLURM_VERSION, backends
from slurmsky.display import format_array, format_elapsed, format_hms, format_limit, format_mem
from slurmsky.runtime.getopt_long import UsageError, getopt_long  # noqa: F401 (the commands' API)
from slurmsky.core.states import STATE_CODES

NO_VAL = 4294967294
PRIORITY_TOP = 0xFFFF0000  # basic priority of the first job; each later one gets one less


# getopt_long and UsageError live in runtime/getopt_long.py (shared with argv.py).


def clock() -> float:
    """The time the commands show things at: $SLURMSKY_NOW (epoch seconds, for reproducible
    output in tests and docs) or the clock."""
    fixed = os.environ.get("SLURMSKY_NOW")
    return float(fixed) if fixed else time.time()


def version_line() -> str:
    return f"slurm-wlm {SLURM_VERSION}"


# --- small values ---------------------------------------------------------------------------

def iso(when: float | None, none: str = "Unknown") -> str:
    """Slurm's time stamps: local `YYYY-MM-DDTHH:MM:SS`."""
    if not when:
        return none
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))


_USERS: dict = {}
_GROUPS: dict = {}


def user_name(uid: int) -> str:
    if uid not in _USERS:
        import pwd

        try:
            _USERS[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _USERS[uid] = str(uid)
    return _USERS[uid]


def group_name(gid: int) -> str:
    if gid not in _GROUPS:
        import grp

        try:
            _GROUPS[gid] = grp.getgrgid(gid).gr_name
        except KeyError:
            _GROUPS[gid] = str(gid)
    return _GROUPS[gid]


def uid_of(text: str) -> int | None:
    """A user name or number as Slurm's uid_from_string takes it; None if unknown."""
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):  # ValueError: a NUL byte, which names no user
        pass
    if text.isdigit():
        return int(text)
    return None


def pad(text: str | None, width: int, right: bool, cut: bool = True) -> str:
    """squeue/sinfo `_print_str`: `%Ns` (right) or `%.Ns` then padding (left); a right-justified
    value is cut to the width only when `cut`; NULL prints as `(null)`."""
    if text is None:
        text = "(null)"
    if width <= 0:
        return text
    if right:
        text = text.rjust(width)
        return text[:width] if cut else text
    return text[:width].ljust(width)


# --- the job as the commands show it ------------------------------------------------------

FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE")


class Job:
    """One job as slurmctld holds it: a record, or (`tasks` set) the elements of an array
    that have not started, collapsed into one record `N_[1-7%2]` whose id is the array's.

    `rec` is the record the fields come from (for a group: its lowest index)."""

    __slots__ = ("rec", "tasks", "now")

    def __init__(self, rec, tasks: list[int] | None = None, now: float | None = None):
        self.rec = rec
        self.tasks = tasks
        self.now = clock() if now is None else now

    # ids
    @property
    def job_id(self) -> int:
        return self.rec.array_job_id if self.tasks is not None else self.rec.job_id

    @property
    def task_string(self) -> str:
        return format_array(self.tasks, self.rec.array_throttle)

    @property
    def id_text(self) -> str:
        """%i / JobArrayID / sacct JobID: `12`, `7_3`, `7_[1-3%2]`."""
        rec = self.rec
        if self.tasks is not None:
            return f"{rec.array_job_id}_[{self.task_string}]"
        if rec.array_job_id is not None and rec.array_task_id is not None:
            return f"{rec.array_job_id}_{rec.array_task_id}"
        return str(rec.job_id)

    @property
    def array_job_text(self) -> str:
        rec = self.rec
        return str(rec.array_job_id if rec.array_job_id is not None else rec.job_id)

    @property
    def task_text(self) -> str:
        if self.tasks is not None:
            return self.task_string
        if self.rec.array_task_id is not None:
            return str(self.rec.array_task_id)
        return "N/A"

    # state and times
    @property
    def started(self) -> bool:
        return self.rec.start_time is not None and self.rec.state != "PENDING"

    @property
    def priority(self) -> int:
        rec = self.rec
        if rec.held:
            return 0
        return max(PRIORITY_TOP - rec.submission, 1)

    def used(self) -> int:
        """Seconds run so far (squeue's job_time_used)."""
        rec = self.rec
        if not self.started:
            return 0
        end = rec.end_time or self.now
        return max(int(end - rec.start_time), 0)

    def start_shown(self) -> float:
        """squeue's start time: the expected start of a pending job, 0 when unknown."""
        rec = self.rec
        if rec.state == "PENDING":
            return rec.begin_time or 0
        return rec.start_time or 0

    def end_shown(self) -> str:
        rec = self.rec
        limit = rec.time_limit
        if rec.state in FINISHED:
            return iso(rec.end_time, "N/A")
        base = rec.start_time if self.started else (
            rec.begin_time if rec.state == "PENDING" else None)
        if not base:
            return "N/A"
        if limit is None:
            return "NONE"
        return iso(base + limit * 60, "N/A")

    def time_left(self) -> str:
        limit = self.rec.time_limit
        if limit is None:
            return "UNLIMITED"
        left = limit * 60 - self.used()
        return format_elapsed(left)

    @property
    def reason_list(self) -> str:
        """%R: `(Reason)` for pending/failed/timed-out jobs, else the node list."""
        rec = self.rec
        if rec.state in ("PENDING", "TIMEOUT", "FAILED", "OUT_OF_MEMORY", "DEADLINE"):
            return f"({rec.reason})"
        return rec.nodelist or ""

    @property
    def min_memory(self) -> str:
        rec = self.rec
        if rec.mem_per_cpu is not None:
            return format_mem(rec.mem_per_cpu)
        if rec.mem_per_node is not None:
            return format_mem(rec.mem_per_node)
        return "0"

    @property
    def total_mem(self) -> int:
        rec = self.rec
        if rec.mem_per_node is not None:
            return rec.mem_per_node * rec.num_nodes
        if rec.mem_per_cpu is not None:
            return rec.mem_per_cpu * rec.num_cpus
        return 0

    @property
    def gres(self) -> str | None:
        rec = self.rec
        if rec.gres:
            return rec.gres
        if rec.gpus_per_node:
            return f"gpu:{rec.gpus_per_node}"
        return None

    @property
    def tres_per_node(self) -> str:
        gres = self.gres
        return f"gres:{gres}" if gres else "N/A"

    def std_path(self, which: str) -> str:
        """StdOut/StdErr/StdIn as scontrol shows them. A record holds its own paths, expanded
        at submission (with `%N` left for the node); an array's pending record shows the
        pattern expanded for the array itself (`slurm-7_4294967294.out`), from the spec."""
        rec = self.rec
        key = {"out": "output", "err": "error", "in": "input"}[which]
        if self.tasks is not None and which != "in":
            spec = SPECS(rec.submission) if SPECS else {}
            pattern = spec.get(key) or (spec.get("output") if which == "err" else None)
            return self._expand(pattern or "slurm-%A_%a.out", None)
        path = {"out": rec.stdout, "err": rec.stderr or rec.stdout, "in": rec.stdin}[which]
        if which == "in":
            return path or "/dev/null"
        if not path:
            default = "slurm-%A_%a.out" if rec.array_job_id is not None else "slurm-%j.out"
            return self._expand(default, rec.array_task_id)
        if "%N" in path and rec.batch_host and self.started:
            path = path.replace("%N", rec.batch_host)
        return os.path.join(rec.workdir, path)

    def _expand(self, pattern: str, task: int | None) -> str:
        from slurmsky.runtime.filepattern import expand

        rec = self.rec
        name = expand(pattern, job_id=self.job_id, array_job_id=rec.array_job_id,
                      array_task_id=task, job_name=rec.name, user=rec.user, node_name="%N")
        return os.path.join(rec.workdir, name)


# submission -> its runtime spec (dict), for the few values only the spec holds; commands that
# have the state open set it (formats itself never opens the state).
SPECS = None


def collapse(records, *, keep_tasks=(), expand: bool = False, now: float | None = None
             ) -> list[Job]:
    """Jobs as slurmctld holds them: array elements that never started (pending, or cancelled
    while pending) are one record per array, unless `expand` (`squeue -r`) or the element was
    asked for by its task id (`keep_tasks`: (array id, index) pairs)."""
    now = clock() if now is None else now
    jobs: list[Job] = []
    groups: dict = {}
    for rec in records:
        if (not expand and rec.array_task_id is not None and rec.start_time is None
                and rec.restarts == 0 and rec.state in ("PENDING", "CANCELLED")
                and (rec.array_job_id, rec.array_task_id) not in keep_tasks):
            key = (rec.array_job_id, rec.state, rec.held, rec.name, rec.partition)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Job(rec, [], now)
                jobs.append(group)
            group.tasks.append(rec.array_task_id)
            if rec.array_task_id < group.rec.array_task_id:
                group.rec = rec
        else:
            jobs.append(Job(rec, None, now))
    return jobs


# --- squeue ---------------------------------------------------------------------------------

def _state_name(job: Job) -> str:
    return job.rec.state


def _compact(job: Job) -> str:
    return STATE_CODES.get(job.rec.state, job.rec.state)


def _nodes(job: Job) -> str:
    return job.rec.nodelist or ""


def _cpus_per_task(job: Job) -> str:
    return str(job.rec.cpus_per_task) if job.rec.cpus_per_task else "N/A"


# name -> (header, value, cut): value(job) -> str or None (printed "(null)").
SQUEUE_FIELDS: dict = {
    "account": ("ACCOUNT", lambda j: j.rec.account),
    "accruetime": ("ACCRUE_TIME", lambda j: iso(j.rec.submit_time if not j.rec.held else 0,
                                                 "N/A")),
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
    "exit_code": ("EXIT_CODE", lambda j: str(((j.rec.exit_code or 0) << 8)
                                             | (j.rec.exit_signal or 0))),
    "feature": ("FEATURES", lambda j: None),
    "groupid": ("GROUP", lambda j: str(j.rec.gid)),
    "groupname": ("GROUP", lambda j: group_name(j.rec.gid)),
    "jobarrayid": ("JOBID", lambda j: j.id_text),
    "jobid": ("JOBID", lambda j: str(j.job_id)),
    "lastschedeval": ("LAST_SCHED_EVAL", lambda j: iso(j.rec.start_time or j.rec.submit_time,
                                                        "N/A")),
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
    "nice": ("NICE", lambda j: "0"),
    "nodelist": ("NODELIST", _nodes, False),
    "numcpus": ("CPUS", lambda j: str(j.rec.num_cpus)),
    "numnodes": ("NODES", lambda j: str(j.rec.num_nodes)),
    "numtasks": ("TASKS", lambda j: str(j.rec.num_tasks)),
    "oversubscribe": ("OVER_SUBSCRIBE", lambda j: "OK"),
    "shared": ("OVER_SUBSCRIBE", lambda j: "OK"),
    "partition": ("PARTITION", lambda j: j.rec.partition),
    "pendingtime": ("PENDING_TIME", lambda j: str(int(
        (j.rec.start_time if j.started else j.now) - j.rec.submit_time))),
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
    "a": "account", "A": "jobid", "b": "tres-per-node", "B": "batchhost", "c": "mincpus",
    "C": "numcpus", "d": "mintmpdisk", "D": "numnodes", "e": "endtime", "E": "dependency",
    "f": "feature", "F": "arrayjobid", "g": "groupname", "G": "groupid", "h": "oversubscribe",
    "H": "sockets", "i": "jobarrayid", "I": "cores", "j": "name", "J": "threads",
    "k": "comment", "K": "arraytaskid", "l": "timelimit", "L": "timeleft", "m": "minmemory",
    "M": "timeused", "n": "reqnodes", "N": "nodelist", "o": "command", "O": "contiguous",
    "p": "priority", "P": "partition", "q": "qos", "Q": "prioritylong", "r": "reason",
    "R": "reasonlist", "S": "starttime", "t": "statecompact", "T": "state", "u": "username",
    "U": "userid", "v": "reservation", "V": "submittime", "w": "wckey", "W": "licenses",
    "x": "excnodes", "X": "corespec", "y": "nice", "Y": "schednodes", "z": "sct",
    "Z": "workdir",
}

SQUEUE_DEFAULT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
SQUEUE_LONG = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
SQUEUE_START = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %20Y %R"
STEP_DEFAULT = "%.15i %.8j %.9P %.8u %.9M %N"
STEP_LONG = "%.15i %.8j %.9P %.8u %.9l %.9M %N"

_CLUSTER: list = []


def cluster_name() -> str:
    if not _CLUSTER:
        from slurmsky.config import load_config

        _CLUSTER.append(load_config().cluster_name)
    return _CLUSTER[0]


def tres(job: Job) -> str:
    rec = job.rec
    text = f"cpu={rec.num_cpus},mem={format_mem(job.total_mem)},node={rec.num_nodes}," \
           f"billing={rec.num_cpus}"
    gres = job.gres
    if gres:
        count = gres.rsplit(":", 1)[-1]
        text += f",gres/gpu={int(count) * rec.num_nodes if count.isdigit() else rec.num_nodes}"
    return text


class Item:
    """One piece of a parsed format: a field (or an invalid one, `field=None`) with its width,
    justification and suffix; a prefix is a field-less item that prints only its suffix."""

    __slots__ = ("field", "width", "right", "suffix", "key")

    def __init__(self, field, width=0, right=False, suffix="", key=None):
        self.field, self.width, self.right, self.suffix = field, width, right, suffix
        self.key = key


def parse_percent_format(text: str, fields: dict, codes: dict,
                         errors: list[str]) -> list[Item]:
    """squeue/sinfo `-o`: prefix, then `%[.][width]<letter><suffix>` tokens; an unknown letter
    prints `%token` literally and reports `Invalid job format specification: <letter>`."""
    items: list[Item] = []
    every = text.lower() == "%all"
    if every:  # every letter Slurm knows, `|`-separated; unknown letters are skipped
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        text = "|".join("%" + c for c in letters if c in codes)
    first = text.find("%")
    if first < 0:
        return [Item(None, suffix=text)]
    if first > 0:
        items.append(Item(None, suffix=text[:first]))
    for token in filter(None, text[first:].split("%")):
        i, right = 0, False
        if token[0] == ".":
            right, i = True, 1
        width = 0
        while i < len(token) and token[i].isdigit():
            width = width * 10 + int(token[i])
            i += 1
        letter = token[i:i + 1]
        suffix = token[i + 1:]
        name = codes.get(letter)
        if name is None:
            errors.append(letter)
            items.append(Item(None, width, right, "%" + token))
        else:
            items.append(Item(fields[name], width, right, suffix, name))
    return items


def parse_long_format(text: str, fields: dict, errors: list[str]) -> list[Item]:
    """squeue/sinfo `-O`: `Field[:[.][width][suffix]]`, comma separated, 20 wide by default."""
    items = []
    for token in filter(None, text.split(",")):
        name, colon, spec = token.partition(":")
        right, width, suffix = False, 20, ""
        if colon:
            if spec.startswith("."):
                right, spec = True, spec[1:]
            digits = len(spec) - len(spec.lstrip("0123456789"))
            width = int(spec[:digits]) if digits else 0
            suffix = spec[digits:]
        field = fields.get(name.lower())
        if field is None:
            errors.append(name)
        items.append(Item(field, width, right, suffix))
    return items


_UNCUT_HEADERS = ("NODELIST", "NODELIST(REASON)", "SCHEDNODES")


def render(items: list[Item], obj) -> str:
    """One line: the header when `obj` is None."""
    if obj is not None:
        return renderer(items)(obj)
    out = []
    for item in items:
        field = item.field
        if field is not None:  # node list headers are not cut either
            out.append(pad(field[0], item.width, item.right, field[0] not in _UNCUT_HEADERS))
        out.append(item.suffix)
    return "".join(out)


def renderer(items: list[Item]):
    """render(items, obj) as one function of obj, its cells built once: the listing of
    10 000 jobs calls it 10 000 times."""
    cells = [_cell(item) for item in items]
    return lambda obj: "".join([cell(obj) for cell in cells])


def _cell(item: Item):
    """One item's text for an object: its field's value padded, then its suffix."""
    field, width, right, suffix = item.field, item.width, item.right, item.suffix
    if field is None:
        return lambda obj: suffix
    value_of = field[1]
    cut = field[2] if len(field) > 2 else True
    if cut is None:  # %R: the reason is cut, a node list is not
        return lambda obj: _cut_unless_nodes(value_of(obj), width, right) + suffix
    if right and cut and width > 0:  # most of squeue's columns: "%.8j"
        def right_cut(obj):
            value = value_of(obj)
            return ("(null)" if value is None else value).rjust(width)[:width] + suffix
        return right_cut
    return lambda obj: pad(value_of(obj), width, right, cut) + suffix


def _cut_unless_nodes(value: str, width: int, right: bool) -> str:
    return pad(value, width, right, value.startswith("("))


def squeue_sort(jobs: list[Job], spec: str | None) -> list[Job]:
    """squeue's order: a reverse start-time sort, then the keys of `spec` (default `P,t,-p`)
    applied from last to first as stable sorts."""
    now = jobs[0].now if jobs else clock()

    def start_key(job: Job) -> float:
        start = job.start_shown()
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
        "i": id_key, "j": lambda j: j.rec.name, "u": lambda j: j.rec.user,
        "U": lambda j: j.rec.uid, "P": lambda j: j.rec.partition,
        "p": lambda j: j.priority, "Q": lambda j: j.priority, "t": _compact,
        "T": _state_name, "M": lambda j: j.used(), "D": lambda j: j.rec.num_nodes,
        "C": lambda j: j.rec.num_cpus, "l": lambda j: j.rec.time_limit or 2**32,
        "V": lambda j: j.rec.submit_time, "e": lambda j: j.rec.end_time or 0,
        "N": lambda j: j.rec.nodelist or "", "B": lambda j: j.rec.batch_host or "",
        "g": lambda j: group_name(j.rec.gid), "G": lambda j: j.rec.gid,
        "S": lambda j: start_key(j) if j.start_shown() else 2**40,
        "L": lambda j: (j.rec.time_limit * 60 - j.used()) if j.rec.time_limit else 2**40,
        "m": lambda j: j.total_mem,
    }
    def list_key(job: Job):
        # slurmctld's own list order, which decides ties: held jobs (priority 0) come newest
        # first, as the peer shows them; array tasks by index
        array_id, task = id_key(job)
        return (-array_id, task) if job.rec.held else (array_id, task)

    jobs = sorted(jobs, key=list_key)
    jobs.sort(key=start_key, reverse=True)
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


# --- squeue straight from the state ----------------------------------------------------------
# A listing of 10 000 jobs was Python's per-job work: a record, a Job, a sort key, a call per
# cell. For the fields below SQLite computes the very text SQUEUE_FIELDS gives a job that is
# not a collapsed array record (never NULL: `(null)` is spelled out), and the default sort's
# keys; a line is then one `%` of a row. Anything else (other fields, sorts or filters) goes
# through Job. `{now}` in an expression is bound to the listing's time.

def _elapsed_sql(s: str) -> str:
    """format_elapsed of the integer expression `s`, in SQL."""
    return (f"(CASE WHEN {s} < 0 OR {s} > {365 * 86400} THEN 'INVALID' "
            f"WHEN {s} >= 86400 THEN printf('%d-%02d:%02d:%02d', {s} / 86400, "
            f"{s} % 86400 / 3600, {s} % 3600 / 60, {s} % 60) "
            f"WHEN {s} >= 3600 THEN printf('%d:%02d:%02d', {s} / 3600, {s} % 3600 / 60, "
            f"{s} % 60) ELSE printf('%d:%02d', {s} / 60, {s} % 60) END)")


_CODE_SQL = ("(CASE state " + " ".join(f"WHEN '{name}' THEN '{code}'" for name, code
                                      in STATE_CODES.items()) + " ELSE state END)")
_STARTED_SQL = "(start_time IS NOT NULL AND state != 'PENDING')"  # Job.started
_USED_SQL = ("max(CAST((CASE WHEN end_time THEN end_time ELSE {now} END) - start_time "
             "AS INTEGER), 0)")  # Job.used() of a started job
_REASON_STATES = ("PENDING", "TIMEOUT", "FAILED", "OUT_OF_MEMORY", "DEADLINE")

SQUEUE_SQL = {
    "account": "coalesce(account, '(null)')",
    "arrayjobid": "CAST(coalesce(array_job_id, job_id) AS TEXT)",
    "arraytaskid": "coalesce(CAST(array_task_id AS TEXT), 'N/A')",
    "jobarrayid": ("(CASE WHEN array_job_id IS NOT NULL AND array_task_id IS NOT NULL "
                   "THEN array_job_id || '_' || array_task_id ELSE CAST(job_id AS TEXT) END)"),
    "jobid": "CAST(job_id AS TEXT)",
    "name": "name",
    "nodelist": "coalesce(nodelist, '')",
    "numcpus": "CAST(num_cpus AS TEXT)",
    "numnodes": "CAST(num_nodes AS TEXT)",
    "partition": "partition",
    "reason": "reason",
    "reasonlist": (f"(CASE WHEN state IN {_REASON_STATES} THEN '(' || reason || ')' "
                   "ELSE coalesce(nodelist, '') END)"),
    "state": "state",
    "statecompact": _CODE_SQL,
    "timelimit": ("(CASE WHEN time_limit IS NULL THEN 'UNLIMITED' ELSE "
                  + _elapsed_sql("(time_limit * 60)") + " END)"),
    "timeused": (f"(CASE WHEN NOT {_STARTED_SQL} THEN '0:00' ELSE "
                 + _elapsed_sql(_USED_SQL) + " END)"),
    "userid": "CAST(uid AS TEXT)",
    "username": "user",
}

# The default sort ("P,t,-p" after the reverse start-time sort, ties in slurmctld's list
# order: squeue_sort) as ascending keys, then job_id (collapse()'s order); {collapsible}: the
# row is an element of a collapsed array, whose record sorts as an id's last task.
_HELD_SQL = "(held IS NOT NULL AND held != '')"
_SORT_SQL = (
    "partition", _CODE_SQL,
    f"(CASE WHEN {_HELD_SQL} THEN 0 ELSE -max({PRIORITY_TOP} - submission, 1) END)",
    # -start_key: Job.start_shown(), `now + 100` when unknown, `now` for a pending job's past
    "-(CASE WHEN state = 'PENDING' THEN (CASE WHEN begin_time IS NULL OR begin_time = 0 "
    "THEN {later} WHEN begin_time < {now} THEN {now} ELSE begin_time END) "
    "WHEN start_time IS NULL OR start_time = 0 THEN {later} ELSE start_time END)",
    f"coalesce(array_job_id, job_id) * (CASE WHEN {_HELD_SQL} THEN -1 ELSE 1 END)",
    "(CASE WHEN array_job_id IS NULL THEN 0 WHEN {collapsible} THEN %d "
    "ELSE coalesce(array_task_id, -1) END)" % NO_VAL,
    "job_id",
)
_COLLAPSIBLE_SQL = ("(array_task_id IS NOT NULL AND start_time IS NULL AND restarts = 0 "
                    "AND state IN ('PENDING', 'CANCELLED'))")  # as collapse() groups


class Listing:
    """squeue's default-sorted listing of `items` as rows SQLite computes (see SQUEUE_SQL):
    `columns`, `args`, `order_by` and `order_args` for state.list_rows, then
    `lines(rows, records)` renders them; a collapsed array's record is rendered through Job,
    from the record of its lowest index (`records(pairs)`: the records of these (array id,
    index) pairs, in one query).

    A row is two columns. For a job shown on its own: its whole line (SQLite's printf, the
    widths counted in characters as Python's), NULL. For an element of a collapsed array:
    NULL, then what collapse() groups by, joined by US (0x1f): its array's id, its index,
    its job id, its first five sort keys (partition and state code among them), its hold
    and its name. A long queue costs one string per job to fetch."""

    def __init__(self, items: list[Item], now: float, expand: bool):
        parts = []  # (printf spec, its cell's SQL or None for literal text)
        for item in items:
            if item.field is not None:
                parts.append((_printf_spec(item), SQUEUE_SQL[item.key]))
            parts.append((item.suffix.replace("%", "%%"), None))
        self.items, self.now = items, now
        collapsible = "0" if expand else _COLLAPSIBLE_SQL
        keys = [k.replace("{collapsible}", collapsible) for k in _SORT_SQL]
        packed = " || x'1f' || ".join(f"({k})" for k in (
            "array_job_id", "array_task_id", "job_id", *keys[:5], "coalesce(held, '')", "name"))
        columns = [f"(CASE WHEN NOT {collapsible} THEN {_printf(parts)} END)",
                   f"(CASE WHEN {collapsible} THEN {packed} END)"]
        self.columns, self.args = self._bind(columns, now)
        order, self.order_args = self._bind(keys, now)
        self.order_by = ", ".join(order)

    @staticmethod
    def _bind(columns: list[str], now: float) -> tuple[list[str], list[float]]:
        args = []
        for column in columns:
            for part in column.split("{")[1:]:
                args.append(now + 100 if part.startswith("later}") else now)
        return [c.replace("{now}", "?").replace("{later}", "?") for c in columns], args

    @staticmethod
    def fits(items: list[Item], sort: str | None) -> bool:
        """Whether SQLite can compute a listing of these items in this order."""
        return sort is None and all(
            item.field is None or (item.key in SQUEUE_SQL and (
                (item.field[2] if len(item.field) > 2 else True) is not None
                or item.width <= 0 or not item.right)) for item in items)

    def lines(self, rows: list[tuple], records) -> list[str]:
        out: list = []
        groups: dict = {}
        blocks: dict = {}  # a collapsed element's sort keys -> (where the first such row is, #)
        for line, packed in rows:
            if packed is None:
                out.append(line)
                continue
            fields = packed.split("\x1f", 9)
            key = (fields[0], fields[3], fields[4], fields[8], fields[9])
            index, job_id, block = int(fields[1]), int(fields[2]), tuple(fields[3:8])
            blocks.setdefault(block, (len(out), len(blocks)))
            group = groups.get(key)
            if group is None:  # [lowest index, its job id, its sort block, indices, lowest id]
                group = groups[key] = [index, job_id, block, [], job_id]
                out.append(group)
            elif index < group[0]:
                group[:3] = index, job_id, block
            group[3].append(index)
            group[4] = min(group[4], job_id)
        if not groups:
            return out
        # As squeue_sort: a group sorts as its lowest index's record (rows come in sort order,
        # and no other row sorts level with an element of a collapsed array but another such
        # element), ties between groups in collapse()'s order (its first member's job id).
        place = {id(e): (i, 1, 0, 0) for i, e in enumerate(out)}
        for group in groups.values():
            where, block = blocks[group[2]]
            place[id(group)] = (where, 0, block, group[4])
        out.sort(key=lambda e: place[id(e)])
        reps = records([(int(key[0]), g[0]) for key, g in groups.items()])
        by_id = {rec.job_id: rec for rec in reps}
        render = renderer(self.items)
        return [render(Job(by_id[e[1]], e[3], self.now)) if isinstance(e, list) else e
                for e in out]


def _printf(parts: list[tuple[str, str | None]]) -> str:
    """SQL for a line of (printf spec, cell SQL or None) parts: one printf per 100 cells
    (SQLite takes at most 127 arguments to a function)."""
    calls, fmt, args = [], "", []
    for spec, cell in parts:
        if cell is not None:
            if len(args) == 100:
                calls.append(f"printf({_quote(fmt)}, {', '.join(args)})")
                fmt, args = "", []
            args.append(cell)
        fmt += spec
    calls.append(f"printf({_quote(fmt)}{''.join(', ' + a for a in args)})")
    return " || ".join(calls)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _printf_spec(item: Item) -> str:
    """SQLite's printf conversion for pad(value, width, right, cut) (`!`: the width and
    precision count characters, as pad does, not bytes)."""
    cut = item.field[2] if len(item.field) > 2 else True
    if item.width <= 0:
        return "%s"
    if not item.right:
        return f"%!-{item.width}.{item.width}s"
    return f"%!{item.width}.{item.width}s" if cut else f"%!{item.width}s"


# --- squeue --json / --yaml ----------------------------------------------------------------

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
        "meta": {"plugin": {"type": "openapi/v0.0.38", "name": "Slurm OpenAPI v0.0.38"},
                 "Slurm": {"version": {"major": int(major), "micro": int(micro),
                                       "minor": int(minor)},
                           "release": SLURM_VERSION}},
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


# --- sacct ------------------------------------------------------------------------------------

# Slurm 22.05's sacct fields (its --helpformat order) and default column widths; a negative
# width is left-justified.
SACCT_WIDTHS = {
    "Account": 10, "AdminComment": 15, "AllocCPUS": 10, "AllocNodes": 10, "AllocTRES": 10,
    "AssocID": 7, "AveCPU": 10, "AveCPUFreq": 10, "AveDiskRead": 14, "AveDiskWrite": 14,
    "AvePages": 10, "AveRSS": 10, "AveVMSize": 10, "BlockID": 16, "Cluster": 10,
    "Comment": 14, "Constraints": 19, "ConsumedEnergy": 14, "ConsumedEnergyRaw": 17,
    "Container": 19, "CPUTime": 10, "CPUTimeRAW": 10, "DBIndex": 9, "DerivedExitCode": 15,
    "Elapsed": 10, "ElapsedRaw": 10, "Eligible": 19, "End": 19, "ExitCode": 8, "Flags": 19,
    "GID": 6, "Group": 9, "JobID": -12, "JobIDRaw": -12, "JobName": 10, "Layout": 9,
    "MaxDiskRead": 12, "MaxDiskReadNode": 15, "MaxDiskReadTask": 15, "MaxDiskWrite": 12,
    "MaxDiskWriteNode": 16, "MaxDiskWriteTask": 16, "MaxPages": 8, "MaxPagesNode": 12,
    "MaxPagesTask": 14, "MaxRSS": 10, "MaxRSSNode": 10, "MaxRSSTask": 10, "MaxVMSize": 10,
    "MaxVMSizeNode": 14, "MaxVMSizeTask": 14, "McsLabel": 12, "MinCPU": 10,
    "MinCPUNode": 10, "MinCPUTask": 10, "NCPUS": 10, "NNodes": 8, "NodeList": 15,
    "NTasks": 8, "Partition": 10, "Priority": 10, "QOS": 10, "QOSRAW": 6, "Reason": 22,
    "ReqCPUFreq": 10, "ReqCPUFreqGov": 13, "ReqCPUFreqMax": 13, "ReqCPUFreqMin": 13,
    "ReqCPUS": 8, "ReqMem": 10, "ReqNodes": 8, "ReqTRES": 10, "Reservation": 20,
    "ReservationId": 13, "Reserved": 10, "ResvCPU": 10, "ResvCPURAW": 10, "Start": 19,
    "State": 10, "Submit": 19, "SubmitLine": 20, "Suspended": 10, "SystemComment": 15,
    "SystemCPU": 10, "Timelimit": 10, "TimelimitRaw": 12, "TotalCPU": 10,
    "TRESUsageInAve": 14, "TRESUsageInMax": 14, "TRESUsageInMaxNode": 18,
    "TRESUsageInMaxTask": 18, "TRESUsageInMin": 14, "TRESUsageInMinNode": 18,
    "TRESUsageInMinTask": 18, "TRESUsageInTot": 14, "TRESUsageOutAve": 15,
    "TRESUsageOutMax": 15, "TRESUsageOutMaxNode": 19, "TRESUsageOutMaxTask": 19,
    "TRESUsageOutMin": 15, "TRESUsageOutMinNode": 19, "TRESUsageOutMinTask": 19,
    "TRESUsageOutTot": 15, "UID": 6, "User": 9, "UserCPU": 10, "WCKey": 10, "WCKeyID": 7,
    "WorkDir": 20,
}
SACCT_NAMES = sorted(SACCT_WIDTHS, key=str.lower)
SACCT_DEFAULT = "jobid,jobname,partition,account,alloccpus,state,exitcode"
SACCT_BRIEF = "jobid,state,exitcode"
SACCT_LONG = ("jobid,jobidraw,jobname,partition,maxvmsize,maxvmsizenode,maxvmsizetask,"
              "avevmsize,maxrss,maxrssnode,maxrsstask,averss,maxpages,maxpagesnode,"
              "maxpagestask,avepages,mincpu,mincpunode,mincputask,avecpu,ntasks,alloccpus,"
              "elapsed,state,exitcode,avecpufreq,reqcpufreqmin,reqcpufreqmax,reqcpufreqgov,"
              "reqmem,consumedenergy,maxdiskread,maxdiskreadnode,maxdiskreadtask,avediskread,"
              "maxdiskwrite,maxdiskwritenode,maxdiskwritetask,avediskwrite,reqtres,alloctres,"
              "tresusageinave,tresusageinmax,tresusageinmaxnode,tresusageinmaxtask,"
              "tresusageinmin,tresusageinminnode,tresusageinmintask,tresusageintot,"
              "tresusageoutmax,tresusageoutmaxnode,tresusageoutmaxtask,tresusageoutave,"
              "tresusageouttot")


def sacct_helpformat() -> str:
    out = []
    for n, name in enumerate(SACCT_NAMES):
        out.append(f"{name:<19}" + ("\n" if n % 4 == 3 else " "))
    text = "".join(out)
    return text if text.endswith("\n") else text[:-1] + "\n"


def parse_sacct_fields(text: str) -> list[tuple[str, int]]:
    """`JobID%20,state,NodeList%-30` -> [(Slurm's name, width)]; an unknown name is
    `Invalid field requested: "name"`."""
    fields = []
    for token in filter(None, text.split(",")):
        name, percent, width = token.partition("%")
        lower = name.lower()
        found = next((n for n in SACCT_NAMES if n.lower().startswith(lower)), None) \
            if lower else None
        if found is None:
            raise UsageError(f'sacct: error: Invalid field requested: "{name}"')
        size = SACCT_WIDTHS[found]
        if percent:
            try:
                size = int(width) or size
            except ValueError:
                pass
        fields.append((found, size))
    return fields


def cpu_time_text(seconds: float) -> str:
    """sacct's TotalCPU/UserCPU/SystemCPU: `MM:SS.mmm` under an hour."""
    if not seconds:
        return "00:00:00"
    whole, micros = int(seconds), int(round((seconds - int(seconds)) * 1e6))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return "%d-%02d:%02d:%02d" % (days, hours, minutes, secs)
    if hours:
        return "%02d:%02d:%02d" % (hours, minutes, secs)
    return "%02d:%02d.%03d" % (minutes, secs, micros // 1000)


class Row:
    """One sacct line: a job (`step` None) or one of its steps (`batch`, `0`, ...)."""

    __slots__ = ("job", "step", "info")

    def __init__(self, job: Job, step: str | None = None, info: dict | None = None):
        self.job, self.step, self.info = job, step, info or {}


def step_rows(job: Job) -> list[Row]:
    """The steps sacct lists under a started job: `.batch` for a batch job (`.0` for an
    allocation made by srun/salloc), plus the steps the node runtime recorded in its RESULT
    (`result["steps"]`: [{"id", "name", "state", "exit_code", "signal", "start", "end",
    "nodes", "ntasks", "cpus"}], every key optional; an entry with id "batch" describes the
    batch step itself)."""
    rec = job.rec
    if job.tasks is not None or not job.started:
        return []
    recorded = [s for s in (rec.result or {}).get("steps") or () if isinstance(s, dict)]
    first = "batch" if rec.batch else "0"
    own = next((s for s in recorded if str(s.get("id")) == first), {})
    rows = [Row(job, first, own)]
    rows.extend(Row(job, str(s.get("id")), s) for s in recorded if s is not own)
    return rows


def _step_state(row: Row) -> tuple[str, str]:
    """(State, ExitCode) of a step row."""
    job, info = row.job, row.info
    rec = job.rec
    if info and ("exit_code" in info or "signal" in info or "state" in info):
        code, sig = int(info.get("exit_code") or 0), int(info.get("signal") or 0)
        state = info.get("state") or ("CANCELLED" if sig else "FAILED" if code else "COMPLETED")
        return state, f"{code}:{sig}"
    if rec.state not in FINISHED:
        return ("RUNNING" if rec.state != "COMPLETING" else "COMPLETING"), "0:0"
    result = rec.result or {}
    code, sig = int(result.get("exit_code") or 0), int(result.get("signal") or 0)
    if rec.state in ("CANCELLED", "TIMEOUT") and not sig and not code:
        sig = 15
    if rec.state == "OUT_OF_MEMORY":
        return "OUT_OF_MEMORY", f"0:{sig or 125}"
    if rec.state == "NODE_FAIL":
        return "NODE_FAIL", f"{code}:{sig}"
    if sig:
        return "CANCELLED", f"0:{sig}"
    if code:
        return "FAILED", f"{code}:0"
    return "COMPLETED", "0:0"


def derived_exit_code(rec) -> str:
    """Slurm's DerivedExitCode: the highest exit code of the job's steps (srun steps; the batch
    step's is the job's own ExitCode), signals not counted."""
    result = rec.result or {}
    if result.get("derived_exit_code"):
        return str(result["derived_exit_code"])
    codes = [int(s.get("exit_code") or 0) for s in result.get("steps") or ()
             if isinstance(s, dict) and str(s.get("id")) != "batch"]
    return f"{max(codes, default=0)}:0"


def _elapsed(row: Row) -> int:
    info = row.info
    if row.step is not None and info.get("start"):
        end = info.get("end") or row.job.rec.end_time or row.job.now
        return max(int(end - info["start"]), 0)
    return row.job.used()


def _sacct_state(row: Row) -> str:
    if row.step is not None:
        return _step_state(row)[0]
    rec = row.job.rec
    if rec.state == "CANCELLED" and rec.cancelled_by is not None:
        return f"CANCELLED by {rec.cancelled_by}"
    if rec.state == "CONFIGURING":
        return "RUNNING"  # a flag on a running job: accounting stores the base state only
    return rec.state


def _sacct_exit(row: Row) -> str:
    if row.step is not None:
        return _step_state(row)[1]
    rec = row.job.rec
    return rec.exit_text if rec.state in FINISHED else "0:0"


def _sacct_jobid(row: Row, raw: bool) -> str:
    job = row.job
    base = str(job.job_id) if raw else job.id_text
    return base if row.step is None else f"{base}.{row.step}"


def _sacct_start(row: Row) -> str:
    rec = row.job.rec
    if row.step is not None and row.info.get("start"):
        return iso(row.info["start"])
    if row.job.started:
        return iso(rec.start_time)
    if rec.state in FINISHED:
        return iso(rec.end_time)
    return "Unknown"


def _sacct_end(row: Row) -> str:
    rec = row.job.rec
    if row.step is not None and row.info.get("end"):
        return iso(row.info["end"])
    return iso(rec.end_time) if rec.state in FINISHED else "Unknown"


def _job_only(func):
    return lambda row: func(row) if row.step is None else None


def _cpu(key: str):
    def value(row: Row):
        source = row.info if row.step is not None and row.info else (row.job.rec.result or {})
        return cpu_time_text(float(source.get(key) or 0))
    return value


SACCT_VALUES = {
    "Account": lambda r: r.job.rec.account or "",
    "AllocCPUS": lambda r: str(r.job.rec.num_cpus if r.step is None else
                               r.info.get("cpus") or r.job.rec.cpus_per_node[0]),
    "AllocNodes": lambda r: str(r.job.rec.num_nodes if r.job.started else 0),
    "AllocTRES": lambda r: ("billing=%d,cpu=%d,mem=%s,node=%d" % (
        r.job.rec.num_cpus, r.job.rec.num_cpus, format_mem(r.job.total_mem),
        r.job.rec.num_nodes)) if r.job.started else "",
    "Cluster": lambda r: cluster_name(),
    "Comment": lambda r: "",  # AccountingStoreFlags=job_comment is not set, as by default
    "CPUTime": lambda r: format_hms(_elapsed(r) * r.job.rec.num_cpus),
    "CPUTimeRAW": lambda r: str(_elapsed(r) * r.job.rec.num_cpus),
    "DerivedExitCode": _job_only(lambda r: derived_exit_code(r.job.rec)),
    "Elapsed": lambda r: format_hms(_elapsed(r)),
    "ElapsedRaw": lambda r: str(_elapsed(r)),
    "Eligible": lambda r: iso(r.job.rec.eligible_time),
    "End": _sacct_end,
    "ExitCode": _sacct_exit,
    "GID": lambda r: str(r.job.rec.gid),
    "Group": lambda r: group_name(r.job.rec.gid),
    "JobID": lambda r: _sacct_jobid(r, False),
    "JobIDRaw": lambda r: _sacct_jobid(r, True),
    "JobName": lambda r: r.job.rec.name if r.step is None else (
        "batch" if r.step == "batch" else r.info.get("name") or r.job.rec.name),
    "NCPUS": lambda r: str(r.job.rec.num_cpus if r.step is None else
                           r.info.get("cpus") or r.job.rec.cpus_per_node[0]),
    "NNodes": lambda r: str(r.job.rec.num_nodes if r.step is None or r.step != "batch" else 1),
    "NodeList": lambda r: (r.job.rec.nodelist or "None assigned") if r.step is None else (
        r.job.rec.batch_host if r.step == "batch" else r.info.get("nodes")
        or r.job.rec.nodelist) or "",
    "NTasks": lambda r: None if r.step is None else str(r.info.get("ntasks") or (
        1 if r.step == "batch" else r.job.rec.num_tasks)),
    "Partition": _job_only(lambda r: r.job.rec.partition),
    "Priority": lambda r: str(r.job.priority),
    "QOS": lambda r: "normal",
    "QOSRAW": lambda r: "1",
    "Reason": _job_only(lambda r: r.job.rec.reason),
    "ReqCPUS": lambda r: str(r.job.rec.num_cpus),
    "ReqMem": _job_only(lambda r: format_mem(r.job.total_mem)),
    "ReqNodes": lambda r: str(r.job.rec.num_nodes),
    "ReqTRES": _job_only(lambda r: "billing=%d,cpu=%d,mem=%s,node=%d" % (
        r.job.rec.num_cpus, r.job.rec.num_cpus, format_mem(r.job.total_mem),
        r.job.rec.num_nodes)),
    "Start": _sacct_start,
    "State": _sacct_state,
    "Submit": lambda r: iso(r.job.rec.submit_time if r.step is None else
                            r.info.get("start") or r.job.rec.start_time),
    "Suspended": lambda r: "00:00:00",
    "SystemCPU": _cpu("system_cpu"),
    "Timelimit": _job_only(lambda r: "UNLIMITED" if r.job.rec.time_limit is None
                           else format_hms(r.job.rec.time_limit * 60)),
    "TimelimitRaw": _job_only(lambda r: "UNLIMITED" if r.job.rec.time_limit is None
                              else str(r.job.rec.time_limit)),
    "TotalCPU": _cpu("total_cpu"),
    "UID": lambda r: str(r.job.rec.uid),
    "User": _job_only(lambda r: r.job.rec.user),
    "UserCPU": _cpu("user_cpu"),
    "WorkDir": _job_only(lambda r: r.job.rec.workdir),
}


def sacct_lines(rows: list[Row], fields: list[tuple[str, int]], *, header: bool,
                parsable: int, delimiter: str | None = None) -> list[str]:
    """Lines of sacct output. parsable: 0 columns, 1 `--parsable` (trailing `|`),
    2 `--parsable2`."""
    sep = delimiter if delimiter is not None else "|"
    lines = []
    columns = [(abs(size), size > 0) for _, size in fields]

    def cells(values: list[str | None], is_header: bool) -> str:
        if parsable:
            text = sep.join(v or "" for v in values)
            return text + (sep if parsable == 1 else "")
        out = []
        for value, (width, right) in zip(values, columns):
            if value is None:
                value = " "
            elif len(value) > width:
                value = value[:width] if is_header else value[:width - 1] + "+"
            out.append(value.rjust(width) if right else value.ljust(width))
        out.append("")
        return " ".join(out)

    if header:
        lines.append(cells([name for name, _ in fields], True))
        if not parsable:
            lines.append("".join("-" * width + " " for width, _ in columns))
    funcs = [SACCT_VALUES.get(name) or _none for name, _ in fields]
    lines.extend(cells([func(row) for func in funcs], False) for row in rows)
    return lines


def _none(row) -> None:
    return None


# --- scontrol show job -----------------------------------------------------------------------

def _hms(seconds: int) -> str:
    return format_hms(seconds)


def show_job(job: Job, *, oneliner: bool = False, details: bool = False,
             spec: dict | None = None) -> str:
    """`scontrol show job`'s record of one job; `spec` (the submission's runtime spec, when
    known) gives the submit host and the --ntasks-per-node asked."""
    rec = job.rec
    spec = spec or {}
    submit_host = (spec.get("submit_host") or "localhost").split(".")[0]
    per_node = spec.get("ntasks_per_node") or 0
    group = job.tasks is not None
    first = f"JobId={job.job_id}"
    if rec.array_job_id is not None:
        first += f" ArrayJobId={rec.array_job_id} ArrayTaskId={job.task_text}"
        if rec.array_throttle:
            first += f" ArrayTaskThrottle={rec.array_throttle}"
    first += f" JobName={rec.name}"
    pending = rec.state == "PENDING"
    started = job.started
    if rec.held or group:
        eligible = "Unknown"
    elif rec.eligible_time:
        eligible = iso(rec.eligible_time)
    else:
        eligible = iso(rec.begin_time if pending else rec.submit_time)
    accrue = "Unknown" if rec.held else iso(rec.submit_time)
    if started:
        end = iso(rec.end_time) if rec.end_time else (
            iso(rec.start_time + rec.time_limit * 60) if rec.time_limit else "Unknown")
        start = iso(rec.start_time)
    elif rec.state in FINISHED:
        start = end = iso(rec.end_time)
    else:
        start = iso(rec.begin_time) if rec.begin_time and not rec.held else "Unknown"
        end = "Unknown"
    limit = "UNLIMITED" if rec.time_limit is None else _hms(rec.time_limit * 60)
    mem = (f"MinMemoryCPU={format_mem(rec.mem_per_cpu)}" if rec.mem_per_cpu is not None
           else f"MinMemoryNode={format_mem(rec.mem_per_node or 0)}")
    tres_text = tres(job)
    lines = [
        first,
        f"UserId={rec.user}({rec.uid}) GroupId={group_name(rec.gid)}({rec.gid}) MCS_label=N/A",
        f"Priority={job.priority} Nice=0 Account={rec.account or '(null)'} QOS=normal",
        f"JobState={rec.state} Reason={rec.reason} Dependency={rec.dependency or '(null)'}",
        f"Requeue={int(rec.requeue)} Restarts={rec.restarts} BatchFlag={int(rec.batch)} "
        f"Reboot=0 ExitCode={rec.exit_text if rec.state in FINISHED else '0:0'}",
    ]
    if details:
        lines.append(f"DerivedExitCode={derived_exit_code(rec)}")
    lines += [
        f"RunTime={_hms(job.used())} TimeLimit={limit} TimeMin=N/A",
        f"SubmitTime={iso(rec.submit_time)} EligibleTime={eligible}",
        f"AccrueTime={accrue}",
        f"StartTime={start} EndTime={end} Deadline=N/A",
        f"SuspendTime=None SecsPreSuspend=0 "
        f"LastSchedEval={iso(rec.start_time or rec.submit_time)} Scheduler=Main",
        f"Partition={rec.partition} AllocNode:Sid={submit_host}:0",
        "ReqNodeList=(null) ExcNodeList=(null)",
        f"NodeList={(rec.nodelist or '') if started else ''}",
    ]
    if started and rec.batch_host:
        lines.append(f"BatchHost={rec.batch_host}")
    # a pending job shows the count asked: `1-2` for --nodes=1-2, `2-2` for -N2 (none: `1`);
    # once started or ended (even cancelled while pending), one number
    num_nodes = (f"{rec.num_nodes}-{rec.max_nodes}" if rec.max_nodes and rec.state == "PENDING"
                 else rec.num_nodes)
    lines += [
        f"NumNodes={num_nodes} NumCPUs={rec.num_cpus} NumTasks={rec.num_tasks} "
        f"CPUs/Task={rec.cpus_per_task or 1} ReqB:S:C:T=0:0:*:*",
        f"TRES={tres_text}",
        f"Socks/Node=* NtasksPerN:B:S:C={per_node}:0:*:* CoreSpec=*",
    ]
    gres = job.gres
    if details and started:
        name, _, count = (gres or "").rpartition(":")
        each = int(count) if count.isdigit() else 0
        lines.append("JOB_GRES=" + (f"{name}:{each * rec.num_nodes}" if gres else "(null)"))
        cpus = rec.cpus_per_node[0] if rec.cpus_per_node else 1
        mem_each = (rec.mem_per_node if rec.mem_per_node is not None
                    else (rec.mem_per_cpu or 0) * cpus)
        lines.append(f"  Nodes={rec.nodelist} CPU_IDs={'0' if cpus == 1 else f'0-{cpus - 1}'}"
                     f" Mem={mem_each} GRES=" + (
                         f"{gres}(IDX:{'0' if each == 1 else f'0-{each - 1}'})" if gres
                         else ""))
    min_cpus = per_node * (rec.cpus_per_task or 1) if per_node else (rec.cpus_per_task or 1)
    lines += [
        f"MinCPUsNode={min_cpus} {mem} MinTmpDiskNode=0",
        "Features=(null) DelayBoot=00:00:00",
        "OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
        f"Command={rec.command or '(null)'}",
        f"WorkDir={rec.workdir}",
    ]
    if rec.comment:
        lines.append(f"Comment={rec.comment} ")
    if rec.batch:
        lines += [f"StdErr={job.std_path('err')}", f"StdIn={job.std_path('in')}",
                  f"StdOut={job.std_path('out')}"]
    remote = backends.get(rec.executor).remote_id(rec) if rec.executor else None
    if remote is not None:
        lines.append("%s=%s" % remote)
    lines.append("Power=")
    if gres:
        lines.append(f"TresPerNode={job.tres_per_node}")
    if oneliner:
        return " ".join(lines) + " \n"
    return "\n   ".join(lines) + "\n   \n\n"


# --- scontrol show config / partition / node ---------------------------------------------

def show_config(items: list[tuple[str, str]], now: float, host: str) -> str:
    lines = [f"Configuration data as of {iso(now)}"]
    lines += [f"{key:<23} = {value}" for key, value in items]
    return "\n".join(lines) + f"\n\nSlurmctld(primary) at {host} is UP\n"


def show_block(pairs: list[list[str]], oneliner: bool) -> str:
    """A `Key=Value` record whose first line is unindented (show partition/node)."""
    lines = [" ".join(p) for p in pairs]
    if oneliner:
        return " ".join(lines) + "\n"
    return "\n   ".join(lines) + "\n\n"


# --- sinfo ------------------------------------------------------------------------------------

class NodeView:
    """One node in one partition, as sinfo shows it."""

    __slots__ = ("name", "partition", "default", "cpus", "alloc_cpus", "memory", "gres",
                 "limit", "state")

    def __init__(self, name, partition, default, cpus, alloc_cpus, memory, gres, limit,
                 state=None):
        self.name, self.partition, self.default = name, partition, default
        self.cpus, self.alloc_cpus, self.memory = cpus, alloc_cpus, memory
        self.gres, self.limit = gres, limit
        self.state = state or ("idle" if not alloc_cpus else
                               "alloc" if alloc_cpus >= cpus else "mix")


LONG_STATES = {"idle": "idle", "mix": "mixed", "alloc": "allocated", "n/a": "n/a",
               "idle~": "idle~"}


def _limit_text(minutes: int | None) -> str:
    if minutes is None:
        return "infinite"
    return format_limit(minutes)


def _group_counts(nodes: list[NodeView]) -> str:
    alloc = sum(1 for n in nodes if n.state in ("alloc", "mix"))
    idle = sum(1 for n in nodes if n.state in ("idle", "idle~"))
    other = len(nodes) - alloc - idle
    return f"{alloc}/{idle}/{other}/{len(nodes)}"


# sinfo fields: letter -> (header, value(list of nodes) -> str, cut)
SINFO_FIELDS = {
    "a": ("AVAIL", lambda ns: "up"),
    "A": ("NODES(A/I)", lambda ns: _group_counts(ns).rsplit("/", 2)[0]),
    "c": ("CPUS", lambda ns: str(ns[0].cpus) if ns[0].cpus else "0"),
    "C": ("CPUS(A/I/O/T)", lambda ns: "%d/%d/0/%d" % (
        sum(n.alloc_cpus for n in ns), sum(n.cpus - n.alloc_cpus for n in ns),
        sum(n.cpus for n in ns))),
    "d": ("TMP_DISK", lambda ns: "0"),
    "D": ("NODES", lambda ns: str(len([n for n in ns if n.name]))),
    "e": ("FREE_MEM", lambda ns: str(ns[0].memory)),
    "E": ("REASON", lambda ns: "none"),
    "f": ("AVAIL_FEATURES", lambda ns: None),
    "F": ("NODES(A/I/O/T)", _group_counts),
    "G": ("GRES", lambda ns: ns[0].gres),
    "h": ("OVERSUBSCRIBE", lambda ns: "NO"),
    "l": ("TIMELIMIT", lambda ns: _limit_text(ns[0].limit)),
    "L": ("DEFAULTTIME", lambda ns: "n/a"),
    "m": ("MEMORY", lambda ns: str(ns[0].memory)),
    "n": ("HOSTNAMES", lambda ns: ",".join(n.name for n in ns)),
    "N": ("NODELIST", None, False),
    "o": ("NODE_ADDR", lambda ns: ",".join(n.name for n in ns)),
    "O": ("CPU_LOAD", lambda ns: "0.00"),
    "P": ("PARTITION", lambda ns: ns[0].partition + ("*" if ns[0].default else "")),
    "R": ("PARTITION", lambda ns: ns[0].partition),
    "s": ("JOB_SIZE", lambda ns: "1-infinite"),
    "t": ("STATE", lambda ns: ns[0].state),
    "T": ("STATE", lambda ns: LONG_STATES.get(ns[0].state, ns[0].state)),
    "w": ("WEIGHT", lambda ns: "1"),
    "z": ("S:C:T", lambda ns: "%d:%d:1" % (1, ns[0].cpus)),
    "X": ("SOCKETS", lambda ns: "1"),
    "Y": ("CORES", lambda ns: str(ns[0].cpus)),
    "Z": ("THREADS", lambda ns: "1"),
}
SINFO_DEFAULT = "%9P %.5a %.10l %.6D %.6t %N"
SINFO_SUMMARY = "%9P %.5a %.10l %.16F %N"
SINFO_LONG = "%9P %.5a %.10l %.10s %.4r %.8h %.10g %.6D %.11T %N"
SINFO_NODE = "%N %.6D %.9P %.6t"
SINFO_NODE_LONG = "%10N %.5D %.9P %.11T %4c %.8z %.6m %.8d %.6w %.8f %20E"


def sinfo_lines(nodes: list[NodeView], fmt: str, *, header: bool, by_node: bool,
                summary: bool, errors: list[str]) -> list[str]:
    """sinfo's table: nodes grouped (per partition, by every shown attribute) into lines."""
    from slurmsky.runtime.hostlist import compress

    fields = dict(SINFO_FIELDS)
    fields["r"] = ("ROOT", lambda ns: "no")
    fields["g"] = ("GROUPS", lambda ns: "all")
    items = parse_percent_format(fmt, fields, {k: k for k in fields}, errors)
    lines = []
    if header:
        lines.append(render(items, None))
    counted = ("N", "D", "F", "A", "C", "n", "o")
    shown = [it for it in items if it.field is not None and it.key not in counted]
    groups: dict = {}
    order = []
    for node in nodes:
        if by_node:
            key = (node.name, node.partition)
        elif summary:
            key = (node.partition,)
        else:
            key = (node.partition,) + tuple(it.field[1]([node]) for it in shown)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(node)
    for key in order:
        members = groups[key]
        real = [n for n in members if n.name]
        out = []
        for item in items:
            field = item.field
            if field is not None:
                if field[1] is None:  # the node list
                    value = compress([n.name for n in real])
                    out.append(pad(value, item.width, item.right, False))
                else:
                    out.append(pad(field[1](members), item.width, item.right, True))
            out.append(item.suffix)
        lines.append("".join(out))
    return lines
