"""``srun`` inside a job: launch a step over the allocation, as Slurm 22.05's srun does.

Options are resolved like srun's (command line over SLURM_NTASKS / SLURM_NNODES /
SLURM_NTASKS_PER_NODE from the job's environment, with srun's warnings), node 0 lays the
step out and starts it, and this process prints what the tasks write (line-buffered per task
unless -u, ``N: `` labels with -l, or into --output/--error files) and the task-exit errors,
then exits with srun's code: the largest exit code, or 128+signal.
"""

import os
import re
import signal
import threading
import time

from . import (
    SLURM_VERSION,
    attach,
    channel,
    filepattern,
    het,
    hostlist,
    launch,
    multiprog,
    pmi,
    rundir,
)
from .getopt_long import UsageError as GetoptError
from .getopt_long import getopt_long
from .launch import undo_locale_coercion
from .options import GRES_FLAGS, REFUSED, SRUN, SRUN_USAGE, defined_block, help_text, lookups

FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
TERMINATING = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class UsageError(Exception):
    """A command line srun refuses; the message is srun's stderr, exit_code its status
    (255 for what getopt or the option table refuses, as Slurm's srun)."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


class Done(Exception):
    """--help, --usage, --version: printed; srun exits 0."""


def _say(text):
    os.write(2, (text + "\n").encode(errors="replace"))


def _int(value, what):
    try:
        return int(value)
    except ValueError:
        raise UsageError("srun: error: Invalid %s: %s" % (what, value)) from None


def _options(argv, environ):
    """getopt_long over the option table's srun rows; options end at the command.

    -> ({key: value}, command, warnings). A row the step honours keeps its value; the
    allocation-level rest have no effect on a step (the allocation exists), as in Slurm's
    srun; a refused row is an error."""
    by_long, by_short, longopts, shortopts = lookups(SRUN)
    try:
        opts, command = getopt_long("srun", argv, shortopts, longopts, permute=False)
    except GetoptError as e:
        raise UsageError("\n".join(e.lines), 255) from None
    values, warnings, defined = {}, [], {}
    level = 3  # srun's log level, info: one up for each -v, one down for each -Q
    for name, value in opts:
        opt = by_short[name] if len(name) == 1 else by_long[name]
        if opt.step == REFUSED:
            _refuse(opt, value)
        values[opt.key] = opt.flag if value is None else value
        level += {"verbose": 1, "quiet": -1}.get(opt.key, 0)
        defined[opt.long] = "set" if value is None else value
        if opt.key == "gres_flags" and value.lower() not in GRES_FLAGS:
            raise UsageError("srun: error: Invalid --gres-flags specification", 255)
    values[DEBUG_LEVEL] = level
    if "verbose" in defined:
        defined["verbose"] = str(level - 3)
    values[DEFINED] = defined
    for key, text in (("help", help_text(SRUN)), ("usage", SRUN_USAGE)):
        if key in values:
            print(text)
            raise Done
    if values.get("mpi") == "list":
        print(pmi.TYPES)
        raise Done
    if "version" in values:
        print("slurm-wlm %s" % SLURM_VERSION)
        raise Done
    job = values.get("jobid")
    if job is not None and job != environ.get("SLURM_JOB_ID"):
        raise UsageError(
            "srun: error: Unable to confirm allocation for job %s: Invalid job id specified\n"
            "srun: Check SLURM_JOB_ID environment variable. Expired or invalid job %s" % (job, job)
        )
    if not command:
        raise UsageError("srun: fatal: No command given to execute.")
    return values, command, warnings


def _het_groups(value, environ):
    """--het-group's components; in a job that is not heterogeneous, Slurm's errors."""
    size = environ.get("SLURM_HET_SIZE")
    if not size:
        first = value.split(",")[0].split("-")[0]
        if first.isdigit() and int(first) > 0:
            raise UsageError(
                "srun: error: Requested het-group offset exceeds highest hetjob index "
                "(%s > 0)" % first
            )
        raise UsageError(
            "srun: error: No directives to start application on any available hetjob components"
        )
    try:
        return het.parse_groups(value, int(size))
    except het.HetGroupError as e:
        raise UsageError(str(e)) from None


def _refuse(opt, value):
    """A refused option, as the front end refuses it."""
    raise UsageError(
        "srun: error: --%s is not supported by slurmsky: %s" % (opt.long, opt.note), 255
    )


def parse(argv, environ):
    """-> (request fields, output settings, warnings) per srun's option rules (opt.c)."""
    o, command, warnings = _options(argv, environ)
    het_groups = _het_groups(o["het_group"], environ) if "het_group" in o else None
    ntasks = o.get("ntasks", environ.get("SLURM_NTASKS"))
    nodes = o.get("nodes", environ.get("SLURM_NNODES"))
    tpn = o.get("ntasks_per_node", environ.get("SLURM_NTASKS_PER_NODE"))
    cpt = o.get("cpus_per_task", environ.get("SRUN_CPUS_PER_TASK"))
    ntasks = _int(ntasks, "number of tasks") if ntasks is not None else None
    nnodes = _int(nodes.split("-")[0], "node count") if nodes is not None else None
    tpn = _int(tpn, "ntasks-per-node") if tpn is not None else None
    try:
        names = hostlist.expand(o["nodelist"]) if "nodelist" in o else []
        exclude = hostlist.expand(o["exclude"]) if "exclude" in o else []
    except ValueError as e:
        raise UsageError("srun: error: %s" % e) from None
    relative = _int(o["relative"], "relative") if "relative" in o else None
    if relative is not None and (names or exclude):
        raise UsageError(
            "srun: error: -r,--relative not allowed with -w,--nodelist or -x,--exclude."
        )
    if names:
        nnodes = max(len(set(names)), nnodes or 0)
    if nnodes is not None and ntasks is None:
        ntasks = nnodes * (tpn or 1)
    elif nnodes is not None:
        if ntasks < nnodes:
            warnings.append(
                "srun: Warning: can't run %d processes on %d nodes, setting nnodes "
                "to %d" % (ntasks, nnodes, ntasks)
            )
            nnodes = ntasks
        if tpn is not None and tpn != ntasks // nnodes:
            if ntasks > tpn:
                warnings.append(
                    "srun: Warning: can't honor --ntasks-per-node set to %d which "
                    "doesn't match the requested tasks %d with the number of "
                    "requested nodes %d. Ignoring --ntasks-per-node." % (tpn, ntasks, nnodes)
                )
            tpn = None
    allocated = environ.get("SLURM_JOB_NUM_NODES", environ.get("SLURM_NNODES"))
    if relative is not None and allocated and relative + (nnodes or 0) > int(allocated):
        raise UsageError(
            "srun: error: --relative and %s option incompatible with count of "
            "allocated nodes (%d+%d>%s)"
            % (
                "--nodes" if "nodes" in o else "SLURM_JOB_NUM_NODES",
                relative,
                nnodes or 0,
                allocated,
            )
        )
    ntasks = ntasks or 1
    try:
        programs = multiprog.programs(command, ntasks) if "multi_prog" in o else None
        mpi, warning = pmi.mpi_type(o.get("mpi", environ.get("SLURM_MPI_TYPE", "none")))
    except (multiprog.MultiProgError, pmi.MpiTypeError) as e:
        raise UsageError(str(e)) from None
    if warning:
        warnings.append(warning)
    request = {
        "argv": command,
        "programs": programs,
        "ntasks": ntasks,
        "nnodes": nnodes,
        "nodelist": names,
        "exclude": exclude,
        "ntasks_per_node": tpn,
        "cpus_per_task": _int(cpt, "cpus-per-task") if cpt else 1,
        "cpus_per_task_set": cpt is not None,
        "overcommit": "overcommit" in o or "SLURM_OVERCOMMIT" in environ,  # a -O job's
        "job_name": o.get("job_name"),
        "relative": relative or 0,
        "preserve_env": "preserve_env" in o,
        "label": "label" in o,
        # a step gets the job's CPUs on its nodes unless --exact (which -c and --exclusive imply)
        "exact": "exact" in o or "cpus_per_task" in o or "exclusive" in o,
        "cwd": os.path.abspath(o.get("chdir", os.getcwd())),
        "env": _export(
            o.get("export", environ.get("SRUN_EXPORT_ENV", "ALL")),
            _srun_env(environ, o[DEBUG_LEVEL]),
        ),
        "gpus": _gpus(o, environ),
        "mpi": mpi,
        "het_groups": het_groups,
        "ntasks_set": "ntasks" in o,
        "stdin": _stdin(o.get("input", environ.get("SLURM_STDINMODE")), environ),
        "stdin_to": _stdin_to(o.get("input", environ.get("SLURM_STDINMODE"))),
        "rlimits": launch.soft_limits(),  # PropagateResourceLimits=ALL, Slurm's default
        "debugger_test": "debugger_test" in o,
        "task_prolog": o.get("task_prolog", environ.get("SLURM_TASK_PROLOG")),
        "task_epilog": o.get("task_epilog", environ.get("SLURM_TASK_EPILOG")),
        "stepd_level": _stepd_level(o.get("slurmd_debug", environ.get("SLURMD_DEBUG")), warnings),
    }
    mode = o.get("open_mode", environ.get("SLURM_OPEN_MODE", "t"))  # sbatch's --open-mode
    output = {
        "label": "label" in o,
        "unbuffered": "unbuffered" in o,
        "quiet": "quiet" in o,
        # srun's input variables for -o and -e (the man page's SLURM_STDOUTMODE, ...)
        "stdout": o.get("output", environ.get("SLURM_STDOUTMODE")),
        "stderr": o.get("error", environ.get("SLURM_STDERRMODE")),
        "append": mode[:1] in ("a", "A"),
        "kill_on_bad_exit": o.get("kill_on_bad_exit", "0") != "0",
        "wait": _int(o.get("wait", environ.get("SLURM_WAIT", "0")), "wait"),
        "verbose": o[DEBUG_LEVEL] - 3,  # -v's: Slurm's verbose lines of the step
        "defined": o[DEFINED],
        "exact_implied": "cpus_per_task" in o,
        "debugger_test": "debugger_test" in o,
        "quit_on_interrupt": "quit_on_interrupt" in o,
        "no_status": "disable_status" in o,
    }
    return request, output, warnings


# Slurm's log levels, by number (log.h): what --slurmd-debug names
LOG_LEVELS = "quiet fatal error info verbose debug debug2 debug3 debug4 debug5".split()


def _stepd_level(value, warnings):
    """--slurmd-debug (a level's name or number; anything else counts as over the most, as
    on the peer): the step's log level on stderr, two above it (srun's increment over the
    error level, at most 4)."""
    if value is None:
        return 0
    text = str(value).strip().lower()
    level = int(text) if text.isdigit() else (LOG_LEVELS.index(text) if text in LOG_LEVELS else 9)
    if level > 4:
        warnings.append("srun: Using srun's max debug increment of 4")
        level = 4
    return level + 2


def _stdin_to(mode):
    """Which tasks read srun's own stdin (-i/--input): "all" (the default), one task id,
    or None (`none`, or a file: _stdin)."""
    if mode is None or mode.lower() == "all":
        return "all"
    return int(mode) if mode.isdigit() else None


def _forward_stdin(conn):
    """srun's own stdin to the step's tasks that read it (the node runtime routes it), then
    its end (an empty payload)."""
    while True:
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        try:
            conn.send({"t": "in"}, data)
        except OSError:
            return
        if not data:
            return


def _stdin(mode, environ):
    """-i/--input: what the tasks read, as (path, per_task), or None: a pipe from srun's
    own stdin (`all`, a task id: _stdin_to) or /dev/null (`none`). A file name (srun's %j
    %u ... expanded) is opened here, as srun opens it, and every task reads it; one with
    %t, %n or %N is each task's own (the node expands it, as slurmstepd does)."""
    if mode is None or mode.lower() in ("all", "none") or mode.isdigit():
        return None
    if PER_TASK.search(mode.replace("%%", "")):
        return os.path.abspath(mode), True
    path = filepattern.expand_in_job(mode, environ, node_name=environ.get("SLURMD_NODENAME", ""))
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as e:
        raise UsageError("srun: error: Could not open stdin file: %s" % e.strerror) from None
    return os.path.abspath(path), False


PER_TASK = re.compile(r"%\d*[tnN]")  # the file patterns slurmstepd opens per task
DEBUG_LEVEL = " debug level"  # _options' key for srun's log level (no option's key)
DEFINED = " defined"  # and for the options given: {long name: value, "set" for a flag}


def _srun_env(environ, level):
    """srun's environment as it hands it to the tasks: Slurm's srun first sets
    SLURM_PRIO_PROCESS to its own nice value (opt.c _set_prio_process_env), whatever its
    caller left (snakemake's jobstep plugin strips SLURM_*), and SRUN_DEBUG to its log level
    (3, as the peer's tasks see it; -v 4, -Q 2)."""
    try:
        prio = os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):  # no getpriority: as a process nobody reniced
        prio = 0
    return dict(environ, SLURM_PRIO_PROCESS=str(prio), SRUN_DEBUG=str(level))


def _gpus(o, environ):
    """The step's GPU request: --gres=gpu:N or --gpus-per-node (per node), --gpus (in all),
    --gpus-per-task, --cpus-per-gpu; the allocation's SLURM_GPUS_PER_NODE/_PER_TASK and
    SLURM_CPUS_PER_GPU stand in for options."""

    def count(text, what):
        return _int(text.split(":")[-1], what) if text else None

    per_node = count(o.get("gpus_per_node", environ.get("SLURM_GPUS_PER_NODE")), "gpus")
    for item in (o.get("gres") or "").split(","):
        name = item.split(":")[0]
        if name == "gpu":
            per_node = count(item, "gres") if ":" in item else 1
    cpus = o.get("cpus_per_gpu", environ.get("SLURM_CPUS_PER_GPU"))
    return {
        "per_node": per_node,
        "gpus": count(o.get("gpus"), "gpus"),
        "per_task": count(o.get("gpus_per_task", environ.get("SLURM_GPUS_PER_TASK")), "gpus"),
        "cpus_per_gpu": _int(cpus, "cpus-per-gpu") if cpus else None,
    }


def _export(spec, environ):
    """--export for a step: ALL (default), NONE (SLURM_* only), or names and NAME=value."""
    items = [item for item in spec.split(",") if item]
    base = (
        dict(environ)
        if items and items[0].upper() == "ALL"
        else {k: v for k, v in environ.items() if k.startswith("SLURM")}
    )
    for item in items:
        name, eq, value = item.partition("=")
        if eq:
            base[name] = value
        elif name.upper() not in ("ALL", "NONE") and name in environ:
            base[name] = environ[name]
    return base


class Output:
    """Where task output goes: our stdout/stderr (-o all, the default; -o N: task N's alone,
    the others' nowhere), or --output/--error files per task (`none`: /dev/null)."""

    def __init__(self, settings, step, environ):
        self.label, self.unbuffered = settings["label"], settings["unbuffered"]
        self.width = len(str(max(sum(len(t) for t in step["tasks"]) - 1, 0)))
        self.partial = {}
        self.targets = {}  # (gid, fd) -> file descriptor
        self.opened = {}  # path -> file descriptor
        node_of = {gid: i for i, gids in enumerate(step["tasks"]) for gid in gids}
        patterns = {1: settings["stdout"], 2: settings["stderr"] or settings["stdout"]}
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if settings["append"] else os.O_TRUNC)
        for gid, pos in node_of.items():
            for fd, pattern in patterns.items():
                mode = (pattern or "all").lower()
                if mode == "all":
                    self.targets[gid, fd] = fd
                elif mode.isdigit():  # one task's to srun's own, the others' nowhere
                    self.targets[gid, fd] = fd if int(mode) == gid else None
                else:
                    path = os.devnull if mode == "none" else pattern
                    self.targets[gid, fd] = self._open(path, flags, environ, step, gid, pos)

    def _open(self, pattern, flags, environ, step, gid, pos):
        path = filepattern.expand_in_job(
            pattern,
            environ,
            node_name=step["names"][pos],
            node_id=pos,
            task_id=gid,
            step_id=step["id"],
        )
        if path not in self.opened:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self.opened[path] = os.open(path, flags, 0o666)
        return self.opened[path]

    def write(self, gid, fd, data):
        if self.unbuffered:
            self._emit(gid, fd, data)
            return
        data = self.partial.pop((gid, fd), b"") + data
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            self.partial[gid, fd] = data[cut:]
        if cut:
            self._emit(gid, fd, data[:cut])

    def flush(self, gids):
        for gid in gids:
            for fd in (1, 2):
                rest = self.partial.pop((gid, fd), b"")
                if rest:
                    self._emit(gid, fd, rest)

    def _emit(self, gid, fd, data):
        if self.label:  # Slurm's write_labelled_message: every line labelled, last one ended
            label = ("%*d: " % (self.width, gid)).encode()
            lines = data.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            data = b"".join(label + line + b"\n" for line in lines)
        target = self.targets[gid, fd]
        while data and target is not None:
            try:
                data = data[os.write(target, data) :]
            except OSError:
                return

    def close(self):
        for fd in self.opened.values():
            os.close(fd)


def _say_launch(settings, step, environ, step_text):
    """-v: the allocation the step runs in and its launch on each node, as Slurm's srun says
    them (launch/slurm's lines)."""
    counts = []  # SLURM_JOB_CPUS_PER_NODE (2,1 or 1(x2)) as runs of CPUs(xNODES)
    for part in environ.get("SLURM_JOB_CPUS_PER_NODE", "").split(","):
        cpus, _, times = part.partition("(x")
        if cpus.isdigit():
            counts.append("%s(x%s)" % (cpus, times.rstrip(")") or "1"))
    _say(
        "srun: jobid %s: nodes(%s):`%s', cpu counts: %s"
        % (
            environ.get("SLURM_JOB_ID", "?"),
            environ.get("SLURM_JOB_NUM_NODES", environ.get("SLURM_NNODES", "?")),
            environ.get("SLURM_JOB_NODELIST", environ.get("SLURM_NODELIST", "?")),
            ",".join(counts),
        )
    )
    if settings["exact_implied"]:
        _say("srun: Implicitly setting --exact, because -c/--cpus-per-task given.")
    _say("srun: launch/slurm: launch_p_step_launch: CpuBindType=(null type)")
    for name, gids in zip(step["names"], step["tasks"]):
        ranges = _tasks_text(gids).split(" ", 1)[1]
        listed = "[%s]" % ranges if len(gids) > 1 else ranges
        _say("srun: launching %s on host %s, %d tasks: %s" % (step_text, name, len(gids), listed))
    _say("srun: route/default: init: route default plugin loaded")
    for name, gids in zip(step["names"], step["tasks"]):
        _say("srun: launch/slurm: _task_start: Node %s, %d tasks started" % (name, len(gids)))


def _say_exit(step_text, host, gids, status):
    """-v: the exit of some of the step's tasks (a failure's own line comes after)."""
    _say(
        "srun: launch/slurm: _task_finish: Received task exit notification for %d task%s of "
        "%s (status=0x%04x)." % (len(gids), "s" if len(gids) > 1 else "", step_text, status)
    )
    if status == 0:
        _say("srun: launch/slurm: _task_finish: %s: %s: Completed" % (host, _tasks_text(gids)))


def _tasks_text(gids):
    """Slurm's task list in exit messages: ``task 1`` / ``tasks 0-1,3``."""
    gids, runs = sorted(gids), []
    for gid in gids:
        if runs and runs[-1][1] == gid - 1:
            runs[-1][1] = gid
        else:
            runs.append([gid, gid])
    text = ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in runs)
    return ("tasks " if len(gids) > 1 else "task ") + text


class Interrupts:
    """srun's answer to signals (Slurm's srun_job.c, _handle_intr and job_force_termination).

    The first Ctrl-C prints the step's status; a second within a second sends Ctrl-C to the
    tasks and aborts the step (node 0 kills it), and their deaths by signal are reported
    only with -v. With --quit-on-interrupt the first Ctrl-C is that second one; with -X
    (--disable-status) each Ctrl-C goes to the tasks.
    SIGTERM, SIGHUP and SIGQUIT abort the step; SIGUSR1, SIGUSR2 and SIGALRM go to the
    tasks. A signal that comes before the step runs waits for it."""

    def __init__(self):
        self.early = []  # signals before the step runs; None once it does
        self.conn = self.name = None
        self.gids = []
        self.ended = {}  # task id -> wait status
        self.last_intr = self.last_intr_sent = self.last_said = float("-inf")
        self.cancelled = False
        self.aborts = 0
        self.quit = self.no_status = False  # --quit-on-interrupt, -X

    def install(self):
        for signum in (signal.SIGINT,) + FORWARDED + TERMINATING:
            signal.signal(signum, self.handle)
        signal.signal(signal.SIGCONT, lambda s, f: _say("srun: got SIGCONT"))

    def start(self, conn, name, gids):
        self.conn, self.name, self.gids = conn, name, sorted(gids)
        early, self.early = self.early, None
        for signum in early:
            self.handle(signum, None)

    def handle(self, signum, frame):
        if self.early is not None:
            self.early.append(signum)
        elif signum == signal.SIGINT:
            self._interrupt()
        elif signum in TERMINATING:
            self._abort()
        else:
            _request(self.conn, signum)

    def _interrupt(self):
        now = time.monotonic()
        if not self.quit and now - self.last_intr > 1 and self.no_status:
            _say("srun: sending Ctrl-C to %s" % self.name)
            _request(self.conn, signal.SIGINT)
            self.last_intr = now
            return
        if not self.quit and now - self.last_intr > 1:
            _say("srun: interrupt (one more within 1 sec to abort)")
            for line in self.status():
                _say(line)
            self.last_intr = now
            return
        self.cancelled = True
        if not self.aborts and now - self.last_intr_sent >= 1:
            _say("srun: sending Ctrl-C to %s" % self.name)
            self.last_intr_sent = now
            _request(self.conn, signal.SIGINT)
        self._abort()

    def _abort(self):
        now = time.monotonic()
        if not self.aborts:
            _say("srun: forcing job termination")
            try:
                self.conn.send({"t": "abort"})
            except OSError:
                pass
        elif now - self.last_said >= 1:
            _say("srun: job abort in progress")
            self.last_said = now
        self.aborts += 1

    def status(self):
        """srun's status lines (task_state_print): running, exited abnormally, exited."""
        groups = (
            ("running", [g for g in self.gids if g not in self.ended]),
            ("exited abnormally", [g for g in self.gids if self.ended.get(g, 0)]),
            ("exited", [g for g in self.gids if self.ended.get(g) == 0]),
        )
        return [
            "srun: %s %s: %s" % (self.name, _tasks_text(gids), what)
            for what, gids in groups
            if gids
        ]


def main(argv, node_dir):
    undo_locale_coercion()
    interrupts = Interrupts()
    interrupts.install()
    environ = dict(os.environ)
    try:
        request, settings, warnings = parse(argv, environ)
    except Done:
        return 0
    except UsageError as e:
        _say(str(e))
        return e.exit_code
    if not settings["quiet"]:
        for warning in warnings:
            _say(warning)
    interrupts.quit, interrupts.no_status = settings["quit_on_interrupt"], settings["no_status"]
    if settings["verbose"] > 0:
        _say("\n".join(defined_block("srun", settings["defined"])))
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        conn = rundir.connect(node_dir)
    except (OSError, channel.ChannelError) as e:
        _say("srun: error: cannot reach the job's node runtime: %s" % e)
        return 1
    host, port = conn.sock.getsockname()[:2]
    request.update(
        {
            "t": "launch",
            "umask": mask,
            "srun_host": host,
            "srun_port": port,
            "pid": os.getpid(),
            "bin_dir": os.path.join(node_dir, "bin"),
        }
    )
    conn.send(request)
    if settings["debugger_test"]:  # --multi-prog: each task's program, else the command
        settings["executables"] = request["programs"] or request["argv"]
    return _follow(conn, settings, environ, interrupts, os.path.dirname(node_dir))


def _follow(conn, settings, environ, interrupts, run_dir):
    job_id = environ.get("SLURM_JOB_ID", "?")
    try:
        step, _ = conn.recv()
    except channel.ChannelError:
        step = {"t": "error", "message": "Job/step already completing or completed"}
    if step["t"] == "error":
        _say("srun: error: Unable to create step for job %s: %s" % (job_id, step["message"]))
        return 1
    output = Output(settings, step, environ)
    if step.get("stdin_to") is not None:
        threading.Thread(target=_forward_stdin, args=(conn,), daemon=True).start()
    step_text = "StepId=%s.%d" % (job_id, step["id"])
    if settings["verbose"] > 0:
        _say_launch(settings, step, environ, step_text)
    taps = attach.Taps(run_dir, step["id"], step["names"], step["tasks"])
    node_names = {}
    for pos, gids in enumerate(step["tasks"]):
        for gid in gids:
            node_names[gid] = step["names"][pos]
    state = {"rc": 0, "signaled": False, "aborted": False, "killed_bad": False, "first_exit": None}
    pids = {}  # --debugger-test: each task's, as the nodes report them
    server = pmi.Server(step["pmi_jobid"], step["tasks"]) if step.get("pmi_jobid") else None
    interrupts.start(conn, step_text, node_names)
    try:
        while True:
            msg, payload = conn.recv()
            kind = msg["t"]
            if kind == "out":
                output.write(msg["task"], msg["fd"], payload)
                taps.write(msg["task"], msg["fd"], payload)
            elif kind == "exit":
                output.flush(msg["tasks"])
                if settings["verbose"] > 0:
                    _say_exit(step_text, node_names[msg["tasks"][0]], msg["tasks"], msg["status"])
                interrupts.ended.update(dict.fromkeys(msg["tasks"], msg["status"]))
                state["rc"] = _task_exit(
                    state["rc"],
                    node_names[msg["tasks"][0]],
                    msg["tasks"],
                    msg["status"],
                    interrupts.cancelled,
                    settings["verbose"] > 0,
                )
                state["signaled"] = state["signaled"] or os.WIFSIGNALED(msg["status"])
                if settings["wait"] and state["first_exit"] is None:
                    state["first_exit"] = _wait_timer(
                        settings, conn, interrupts, step_text, len(node_names)
                    )
                if settings["kill_on_bad_exit"] and msg["status"] != 0 and not state["killed_bad"]:
                    state["killed_bad"] = True
                    _say(
                        "srun: launch/slurm: _step_signal: Terminating StepId=%s.%d"
                        % (job_id, step["id"])
                    )
                    try:
                        conn.send({"t": "terminate"})
                    except OSError:
                        pass
            elif kind == "pids":
                pids.update(msg["pids"])
                if len(pids) == len(node_names):
                    _proctable(settings["executables"], node_names, pids)
            elif kind == "pmi" and server is not None:
                _serve_pmi(conn, server, msg["task"], payload)
            elif kind == "msg":
                state["aborted"] = state["aborted"] or bool(msg.get("aborted"))
                _say(msg["text"])
            elif kind == "end":
                break
    except channel.ChannelError:
        _say("srun: error: lost the job's node runtime")
        state["rc"] = state["rc"] or (1 << 8)
    output.flush(list(node_names))
    output.close()
    taps.close()
    conn.close()
    if state["signaled"] and not state["aborted"]:  # a task was killed, not the job ended
        _say("srun: Force Terminated StepId=%s.%d" % (job_id, step["id"]))
    rc = state["rc"]
    return os.WEXITSTATUS(rc) if os.WIFEXITED(rc) else 128 + os.WTERMSIG(rc)


def _wait_timer(settings, conn, interrupts, step_text, ntasks):
    """srun -W N, at the first task's exit: N seconds on, the tasks still running are
    terminated, with srun's lines (the step's status, then its abort), as Slurm's
    _setup_max_wait_timer."""
    wait = settings["wait"]
    if settings["verbose"] > 0:
        _say(
            "srun: launch/slurm: _setup_max_wait_timer: First task exited. Terminating job "
            "in %ds" % wait
        )

    def expire():
        if len(interrupts.ended) >= ntasks:
            return
        _say("srun: First task exited %ds ago" % wait)
        for line in interrupts.status():
            _say(line)
        _say("srun: launch/slurm: _step_signal: Terminating %s" % step_text)
        try:
            conn.send({"t": "abort", "now": True})
        except OSError:
            pass

    timer = threading.Timer(wait, expire)
    timer.daemon = True
    timer.start()
    return timer


def _proctable(executables, node_names, pids):
    """srun --debugger-test: the step's MPIR proctable, a line per task (multi_prog.c
    mpir_dump_proctable): its node, pid and program (`executables`: the command's argv, or
    --multi-prog's argv per task id)."""
    for gid in sorted(node_names):
        argv = executables.get(str(gid)) if isinstance(executables, dict) else executables
        _say(
            "srun: task:%d, host:%s, pid:%s, executable:%s"
            % (gid, node_names[gid], pids.get(str(gid), 0), argv[0] if argv else "")
        )


def _serve_pmi(conn, server, gid, data):
    """What a task wrote on its PMI_FD -> the answers, through node 0; a PMI abort kills the
    step as Slurm's mpi/pmi2 does (node 0's abort, without srun's own line)."""
    aborted = server.aborted
    try:
        for task, answer in server.feed(gid, data):
            conn.send({"t": "pmi", "task": task}, answer)
        if server.aborted and not aborted:
            conn.send({"t": "abort", "pmi": True})
    except OSError:
        pass


def _request(conn, signum):
    try:
        conn.send({"t": "signal", "signum": int(signum)})
    except OSError:
        pass


def _task_exit(rc, host, gids, status, cancelled=False, verbose=False):
    """Print srun's line for a task exit; -> the new global rc (launch.c _task_finish): the
    largest exit code, but a task ended by a signal decides it whatever came before. After a
    double Ctrl-C (cancelled) deaths by signal are verbose lines (-v), not errors."""
    tasks = _tasks_text(gids)
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code:
            _say("srun: error: %s: %s: Exited with exit code %d" % (host, tasks, code))
        if os.WIFEXITED(rc) and code > os.WEXITSTATUS(rc):
            rc = status
    elif os.WIFSIGNALED(status):
        core = " (core dumped)" if os.WCOREDUMP(status) else ""
        if not cancelled or verbose:
            _say(
                "srun: %s%s: %s: %s%s"
                % (
                    "" if cancelled else "error: ",
                    host,
                    tasks,
                    signal.strsignal(os.WTERMSIG(status)),
                    core,
                )
            )
        if rc == 0 or os.WIFEXITED(rc):
            rc = status
    return rc
