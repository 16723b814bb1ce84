"""The one declarative table of sbatch/srun/salloc options (Slurm 22.05).

Every option of the three commands' man pages is one row. The row drives argv parsing
(getopt_long semantics, see parse/argv.py), `#SBATCH` directives, `SBATCH_*` input
variables, validation (its value parser, parse/argv.py's PARSERS), `--help`, the README's
compatibility matrix, and the srun inside every job (runtime/srun.py): standard library
only, Python 3.8, because it ships with the node runtime.

A row's *fate* says what slurmsky does with it:
  supported  behaves as on Slurm (the scheduler core, the node runtime or the command);
  mapped     translated to a SkyPilot task field (and honoured by the local backend);
  ignored    accepted, one warning line on stderr, no effect;
  refused    a clear error: accepting it silently would run something else than asked.

An srun row's *step* says what the srun inside an allocation does with it: supported (the
step honours it), ignored (an allocation-level option: no effect on a step, as the job's
resources are already there; silent, as Slurm's srun is) or refused.
"""

from __future__ import annotations

from functools import lru_cache

NO_ARG, REQUIRED, OPTIONAL = "none", "required", "optional"
SUPPORTED, MAPPED, IGNORED, REFUSED = "supported", "mapped", "ignored", "refused"

SBATCH, SRUN, SALLOC = "sbatch", "srun", "salloc"
ALL3 = frozenset({SBATCH, SRUN, SALLOC})
SB = frozenset({SBATCH})
SR = frozenset({SRUN})
SA = frozenset({SALLOC})
SB_SA = frozenset({SBATCH, SALLOC})
SB_SR = frozenset({SBATCH, SRUN})
SR_SA = frozenset({SRUN, SALLOC})


# The options a heterogeneous job's components do not share (slurm_opt.c 22.05: the rows
# with reset_each_pass): each component has its own or none. Every other option a
# component leaves unset it takes from the component before it, and component 0 from
# the whole command line (sbatch's first pass reads every `:` group; the last one wins).
PER_COMPONENT = frozenset(
    {
        "accel-bind", "bcast", "bcast-exclude", "bb", "compress", "constraint", "contiguous",
        "core-spec", "cores-per-socket", "cpu-bind", "cpu-freq", "cpus-per-gpu",
        "cpus-per-task", "distribution", "exclusive", "extra-node-info", "gpu-bind",
        "gpu-freq", "gpus", "gpus-per-node", "gpus-per-socket", "gpus-per-task", "gres",
        "gres-flags", "hint", "licenses", "mail-type", "mail-user", "mem-bind",
        "mem-per-cpu", "mem-per-gpu", "mincpus", "network", "nodefile", "nodelist", "nodes",
        "ntasks", "ntasks-per-core", "ntasks-per-node", "ntasks-per-socket",
        "ntasks-per-gpu", "overcommit", "oversubscribe", "partition", "power", "relative",
        "resv-ports", "send-libs", "sockets-per-node", "spread-job", "switches",
        "tasks-per-node", "thread-spec", "threads-per-core", "tmp", "use-min-nodes",
    }
)  # fmt: skip


class Option:
    """One option row.

    ``parse`` names a value parser (argv.PARSERS: ``parse_<name>``) called as
    ``parse(text, "--long")``; None keeps the text. ``flag`` is the value an option
    without an argument (or an optional one given bare) stores. ``env`` lists the input
    variables (``SBATCH_*``) that set it, lowest priority first. ``step`` is the in-job
    srun's fate (srun rows only).
    """

    __slots__ = (
        "long",
        "short",
        "arg",
        "fate",
        "note",
        "commands",
        "parse",
        "env",
        "dest",
        "flag",
        "step",
    )
    long: str
    short: str | None
    arg: str
    fate: str
    note: str
    commands: frozenset
    parse: str | None
    env: tuple[str, ...]
    dest: str | None
    flag: object
    step: str | None

    def __init__(self, long, short, arg, fate, note, commands, parse, env, dest, flag, step):
        self.long, self.short, self.arg, self.fate, self.note = long, short, arg, fate, note
        self.commands, self.parse, self.env, self.dest, self.flag = commands, parse, env, dest, flag
        self.step = step

    def __repr__(self):
        return "Option(--%s, %s)" % (self.long, self.fate)

    @property
    def key(self) -> str:
        """The JobRequest field (or ignored-option key) this option sets."""
        return self.dest or self.long.replace("-", "_")


def _o(
    long, short, arg, fate, note, commands=ALL3, parse=None, env=(), dest=None, flag=True, step=None
):
    if isinstance(env, str):
        env = (env,)
    if SRUN in commands and step is None:
        step = REFUSED if fate == REFUSED else IGNORED
    return Option(long, short, arg, fate, note, commands, parse, tuple(env), dest, flag, step)


# --gres-flags values Slurm 22.05 takes, in any case (slurm_opt.c arg_set_gres_flags; 23.x
# added allow-task-sharing and others)
GRES_FLAGS = ("disable-binding", "enforce-binding")

_IGN_SITE = "site/scheduler policy; no SkyPilot equivalent"
_IGN_HW = "CPU/socket layout; SkyPilot picks instance types"

# One row per option: a table, kept as a table.
# fmt: off
OPTIONS: tuple[Option, ...] = (
    # --- what runs, where, how it is named -------------------------------------------
    _o("job-name", "J", REQUIRED, SUPPORTED, "job name (SkyPilot task name)", env="SBATCH_JOB_NAME", step=SUPPORTED),
    _o(
        "chdir",
        "D",
        REQUIRED,
        MAPPED,
        "working directory; SkyPilot workdir if local, else a chdir on the node",
        step=SUPPORTED,
    ),
    _o("wrap", None, REQUIRED, SUPPORTED, "run the command in a generated /bin/sh script", SB),
    _o("output", "o", REQUIRED, SUPPORTED, "stdout file pattern (%j %x %A %a %N %n %t %u %%)",
       SB, env="SBATCH_OUTPUT"),
    _o("output", "o", REQUIRED, SUPPORTED, "stdout file pattern (%j %x %A %a %N %n %t %u %%)",
       SR, env="SLURM_STDOUTMODE", step=SUPPORTED),
    _o("error", "e", REQUIRED, SUPPORTED, "stderr file pattern", SB, env="SBATCH_ERROR"),
    _o("error", "e", REQUIRED, SUPPORTED, "stderr file pattern", SR, env="SLURM_STDERRMODE",
       step=SUPPORTED),
    _o("input", "i", REQUIRED, SUPPORTED, "stdin file pattern", SB, env="SBATCH_INPUT"),
    _o("input", "i", REQUIRED, SUPPORTED,
       "a file (pattern: %t %n %N one per task) every task reads; srun's own stdin (all, "
       "none, a task id) is not forwarded: the tasks read /dev/null", SR,
       env="SLURM_STDINMODE", step=SUPPORTED),
    _o("open-mode", None, REQUIRED, SUPPORTED, "append or truncate output files", SB_SR,
       parse="open_mode", env="SBATCH_OPEN_MODE", step=SUPPORTED),
    _o("export", None, REQUIRED, SUPPORTED,
       "environment passed to the job; on SkyPilot secrets are never exported unless named",
       SB_SR, parse="export", env="SBATCH_EXPORT", step=SUPPORTED),
    _o("export-file", None, REQUIRED, REFUSED, "not supported; use --export", SB),
    _o("get-user-env", None, OPTIONAL, IGNORED, "the login environment is not re-read", SB_SA,
       env="SBATCH_GET_USER_ENV"),
    _o("comment", None, REQUIRED, SUPPORTED, "stored, shown by squeue %k and scontrol"),
    _o("container-image", None, REQUIRED, MAPPED, "Pyxis image; SkyPilot image_id docker:<image>",
       ALL3, dest="container_image"),
    _o("container-mounts", None, REQUIRED, IGNORED, "Pyxis mounts; use partition volumes in config"),
    _o("container-workdir", None, REQUIRED, IGNORED, "Pyxis option"),
    _o("container-name", None, REQUIRED, IGNORED, "Pyxis option"),
    _o("container-writable", None, NO_ARG, IGNORED, "Pyxis option"),
    _o("container-mount-home", None, NO_ARG, IGNORED, "Pyxis option"),
    _o("no-container-mount-home", None, NO_ARG, IGNORED, "Pyxis option"),
    _o("container-remap-root", None, NO_ARG, IGNORED, "Pyxis option"),
    _o("no-container-remap-root", None, NO_ARG, IGNORED, "Pyxis option"),
    _o("container-env", None, REQUIRED, IGNORED, "Pyxis option"),
    _o("container", None, REQUIRED, REFUSED, "OCI bundles are not supported; use --container-image",
       env="SBATCH_CONTAINER"),
    # --- resources ------------------------------------------------------------------
    _o("nodes", "N", REQUIRED, MAPPED, "node count (min[-max]); SkyPilot num_nodes (min)", parse="nodes", step=SUPPORTED),
    _o("ntasks", "n", REQUIRED, SUPPORTED, "task count; sizes cpus per node", parse="int", step=SUPPORTED),
    _o("ntasks-per-node", None, REQUIRED, SUPPORTED, "tasks per node", parse="int", step=SUPPORTED),
    _o("tasks-per-node", None, REQUIRED, SUPPORTED, "alias of --ntasks-per-node", parse="int",
       dest="ntasks_per_node", step=SUPPORTED),
    _o("cpus-per-task", "c", REQUIRED, MAPPED,
       "cpus per task (default 1, as Slurm; a GPU job asking none: its GPUs' node); "
       "cpus per node = this x tasks per node", parse="int", step=SUPPORTED),
    _o("mincpus", None, REQUIRED, MAPPED, "minimum cpus per node", parse="int"),
    _o("mem", None, REQUIRED, MAPPED, "memory per node (MB default, K/M/G/T); SkyPilot memory in GB",
       parse="mem", env="SBATCH_MEM_PER_NODE"),
    _o("mem-per-cpu", None, REQUIRED, MAPPED, "memory per cpu; SkyPilot memory = this x cpus",
       parse="mem", env="SBATCH_MEM_PER_CPU"),
    _o("mem-per-gpu", None, REQUIRED, MAPPED, "memory per gpu; SkyPilot memory = this x gpus",
       parse="mem", env="SBATCH_MEM_PER_GPU"),
    _o("gres", None, REQUIRED, MAPPED, "gpu[:type]:N; SkyPilot accelerators", parse="gres",
       env="SBATCH_GRES", step=SUPPORTED),
    _o("gpus", "G", REQUIRED, MAPPED, "[type:]N for the job; SkyPilot accelerators per node",
       parse="gpus", env="SBATCH_GPUS", step=SUPPORTED),
    _o("gpus-per-node", None, REQUIRED, MAPPED, "[type:]N; SkyPilot accelerators", parse="gpus",
       env="SBATCH_GPUS_PER_NODE", step=SUPPORTED),
    _o("gpus-per-task", None, REQUIRED, MAPPED, "[type:]N; accelerators = this x tasks per node",
       parse="gpus", env="SBATCH_GPUS_PER_TASK", step=SUPPORTED),
    _o("cpus-per-gpu", None, REQUIRED, MAPPED, "cpus = this x gpus per node", parse="int",
       env="SBATCH_CPUS_PER_GPU", step=SUPPORTED),
    _o("tmp", None, REQUIRED, MAPPED, "minimum disk: local nodes' TmpDisk ($TMPDIR's size); SkyPilot disk_size in GB", parse="mem"),
    _o("partition", "p", REQUIRED, MAPPED, "partition from config: infra, accelerators, spot, image; sky: -p a,b is one job over both, in order",
       env="SBATCH_PARTITION"),
    _o("time", "t", REQUIRED, SUPPORTED, "time limit, enforced by the node runtime", parse="time",
       env="SBATCH_TIMELIMIT"),
    _o("time-min", None, REQUIRED, SUPPORTED,
       "TimeMin: refused over the time limit or the deadline, as Slurm; the job runs for its "
       "--time (no backfill shortens it)", parse="time"),
    _o("exclusive", None, OPTIONAL, SUPPORTED,
       "whole nodes: the job gets all their CPUs (SkyPilot nodes are never shared)",
       flag="exclusive", env="SBATCH_EXCLUSIVE", step=SUPPORTED),
    _o("oversubscribe", "s", NO_ARG, SUPPORTED,
       "OverSubscribe=YES; nodes are shared only as the partition allows (SkyPilot's never)"),
    _o("overcommit", "O", NO_ARG, SUPPORTED,
       "more tasks than CPUs: the job takes one task's CPUs a node (no spread over nodes by "
       "CPUs), its tasks share them",
       env="SBATCH_OVERCOMMIT", step=SUPPORTED),
    _o("constraint", "C", REQUIRED, SUPPORTED,
       "node features: local backend, a feature no node of the partition has (its `features`) "
       "is refused as Slurm refuses it; sky backend: no effect (use partitions in config)",
       env="SBATCH_CONSTRAINT"),
    _o("prefer", None, REQUIRED, IGNORED, "node features; use partitions in config"),
    _o("cluster-constraint", None, REQUIRED, IGNORED, "no federation"),
    _o("nodelist", "w", REQUIRED, SUPPORTED,
       "local backend: the job gets these nodes (and others, as Slurm picks them); sky "
       "backend: refused as a name no node has (SkyPilot names nodes when it launches them); "
       "inside an allocation: the step's nodes", step=SUPPORTED),
    _o("exclude", "x", REQUIRED, SUPPORTED,
       "local backend: none of these nodes; sky backend: ignored with a warning (its nodes "
       "have no names before launch); inside an allocation: not the step's", step=SUPPORTED),
    _o("nodefile", "F", REQUIRED, IGNORED, "SkyPilot chooses the nodes"),
    _o("contiguous", None, NO_ARG, SUPPORTED,
       "local backend: consecutive nodes (Contiguous=1); sky backend: no effect (one "
       "SkyPilot cluster is its nodes)"),
    _o("switches", None, REQUIRED, IGNORED, _IGN_SITE, env="SBATCH_REQ_SWITCH"),
    _o("spread-job", None, NO_ARG, IGNORED, _IGN_SITE, env="SBATCH_SPREAD_JOB"),
    _o("use-min-nodes", None, NO_ARG, IGNORED, "the minimum node count is always used",
       env="SBATCH_USE_MIN_NODES"),
    _o("extra-node-info", "B", REQUIRED, IGNORED, _IGN_HW),
    _o("sockets-per-node", None, REQUIRED, IGNORED, _IGN_HW),
    _o("cores-per-socket", None, REQUIRED, IGNORED, _IGN_HW),
    _o("threads-per-core", None, REQUIRED, IGNORED, _IGN_HW, env="SBATCH_THREADS_PER_CORE"),
    _o("ntasks-per-core", None, REQUIRED, IGNORED, _IGN_HW, parse="int"),
    _o("ntasks-per-socket", None, REQUIRED, IGNORED, _IGN_HW, parse="int"),
    _o("ntasks-per-gpu", None, REQUIRED, IGNORED, "use --gpus-per-task"),
    _o("gpus-per-socket", None, REQUIRED, IGNORED, _IGN_HW),
    _o("core-spec", "S", REQUIRED, IGNORED, _IGN_HW, env="SBATCH_CORE_SPEC"),
    _o("thread-spec", None, REQUIRED, IGNORED, _IGN_HW, env="SBATCH_THREAD_SPEC"),
    _o("hint", None, REQUIRED, IGNORED, _IGN_HW, env="SBATCH_HINT"),
    _o("distribution", "m", REQUIRED, IGNORED, "tasks are always laid out block-wise",
       env="SBATCH_DISTRIBUTION"),
    _o("cpu-bind", None, REQUIRED, IGNORED, "no cpu binding", SR),
    _o("mem-bind", None, REQUIRED, IGNORED, "no memory binding", env="SBATCH_MEM_BIND"),
    _o("gpu-bind", None, REQUIRED, IGNORED, "no gpu binding", env="SBATCH_GPU_BIND"),
    _o("accel-bind", None, REQUIRED, IGNORED, "no accelerator binding", SR),
    _o("cpu-freq", None, REQUIRED, IGNORED, _IGN_HW),
    _o("gpu-freq", None, REQUIRED, IGNORED, _IGN_HW, env="SBATCH_GPU_FREQ"),
    _o("gres-flags", None, REQUIRED, IGNORED, _IGN_HW, parse="gres_flags", env="SBATCH_GRES_FLAGS"),
    _o("network", None, REQUIRED, IGNORED, _IGN_SITE, env="SBATCH_NETWORK"),
    _o("licenses", "L", REQUIRED, IGNORED, _IGN_SITE),
    _o("reservation", None, REQUIRED, IGNORED, _IGN_SITE, env="SBATCH_RESERVATION"),
    _o("power", None, REQUIRED, IGNORED, _IGN_SITE, env="SBATCH_POWER"),
    _o("reboot", None, NO_ARG, IGNORED, "cloud nodes are fresh"),
    _o("delay-boot", None, REQUIRED, IGNORED, "cloud nodes are fresh", env="SBATCH_DELAY_BOOT"),
    _o("wait-all-nodes", None, REQUIRED, IGNORED, "SkyPilot starts the job when all nodes are up",
       SB_SA, env="SBATCH_WAIT_ALL_NODES"),
    _o("bb", None, REQUIRED, IGNORED, "no burst buffers"),
    _o("bbf", None, REQUIRED, SUPPORTED,
       "the file's text goes into the script after its first line, as sbatch splices it (no "
       "burst buffers: its #BB lines do nothing)", SB),
    _o("bbf", None, REQUIRED, IGNORED, "no burst buffers", SR_SA),
    _o("batch", None, REQUIRED, IGNORED, "batch-step node features", SB, env="SBATCH_BATCH"),
    # --- accounting and scheduling policy -------------------------------------------
    _o("account", "A", REQUIRED, SUPPORTED, "on a team's state, one of the user's associations (docs/team.md); SLURM_JOB_ACCOUNT", env="SBATCH_ACCOUNT"),
    _o("qos", "q", REQUIRED, IGNORED, "no QOS", env="SBATCH_QOS"),
    _o("wckey", None, REQUIRED, IGNORED, "no accounting keys", env="SBATCH_WCKEY"),
    _o("acctg-freq", None, REQUIRED, IGNORED, "no accounting sampling", env="SBATCH_ACCTG_FREQ"),
    _o("profile", None, REQUIRED, IGNORED, "no profiling plugin", env="SBATCH_PROFILE"),
    _o("mail-type", None, REQUIRED, IGNORED, "no mail", parse="mail_type"),
    _o("mail-user", None, REQUIRED, IGNORED, "no mail"),
    _o("priority", None, REQUIRED, IGNORED, "jobs start in submission order"),
    _o("nice", None, OPTIONAL, SUPPORTED, "takes N (bare: 100) off the job's priority: later in the queue",
       parse="nice", flag=100),
    _o("deadline", None, REQUIRED, SUPPORTED,
       "end the job DEADLINE if it cannot end by then (a past one is refused)", parse="deadline"),
    _o("mcs-label", None, REQUIRED, IGNORED, _IGN_SITE),
    _o("clusters", "M", REQUIRED, SUPPORTED, "the one slurmsky cluster; --parsable prints id;cluster",
       SB, env=("SLURM_CLUSTERS", "SBATCH_CLUSTERS")),
    _o("clusters", "M", REQUIRED, IGNORED, "one cluster only", SR_SA),
    _o("propagate", None, OPTIONAL, IGNORED, "resource limits are the node's", SB_SR, flag="ALL"),
    _o("uid", None, REQUIRED, REFUSED, "jobs always run as the submitting user"),
    _o("gid", None, REQUIRED, REFUSED, "jobs always run as the submitting user"),
    _o("ignore-pbs", None, NO_ARG, SUPPORTED, "do not read #PBS and #BSUB lines", SB,
       env="SBATCH_IGNORE_PBS"),
    # --- job control (the scheduler core) -------------------------------------------
    _o("array", "a", REQUIRED, SUPPORTED, "job arrays: 1-100, 1-100:2, 1,5,7, 0-999%10", SB,
       parse="array", env="SBATCH_ARRAY_INX"),
    _o("dependency", "d", REQUIRED, SUPPORTED,
       "after, afterok, afternotok, afterany, aftercorr, singleton; ',' and '?'", parse="dependency"),
    _o("kill-on-invalid-dep", None, REQUIRED, SUPPORTED, "cancel a job whose dependency can't be met",
       SB, parse="bool_yes_no"),
    _o("begin", "b", REQUIRED, SUPPORTED, "earliest start time", SB_SR, parse="begin"),
    _o("begin", None, REQUIRED, SUPPORTED, "earliest start time", SA, parse="begin"),
    _o("hold", "H", NO_ARG, SUPPORTED, "submit held; scontrol release starts it"),
    _o("requeue", None, NO_ARG, MAPPED, "requeue allowed: a preempted sky job is recovered (RQ, Restarts+1); job_recovery restarts on errors",
       SB, env="SBATCH_REQUEUE"),
    _o("no-requeue", None, NO_ARG, MAPPED, "never requeue: a preempted sky job ends NODE_FAIL; job_recovery without restarts",
       SB, dest="requeue", flag=False, env="SBATCH_NO_REQUEUE"),
    _o("signal", None, REQUIRED, SUPPORTED, "[{R|B}:]SIG[@secs] before the time limit, by the node runtime",
       SB, parse="signal", env="SBATCH_SIGNAL"),
    _o("signal", None, REQUIRED, SUPPORTED, "[R:]SIG[@secs] (B: is sbatch's)", SR_SA,
       parse="step_signal", env="SBATCH_SIGNAL"),
    _o("no-kill", "k", OPTIONAL, IGNORED, "a failed node always ends the job", flag="on",
       env="SBATCH_NO_KILL"),
    _o("kill-on-bad-exit", "K", OPTIONAL, SUPPORTED, "end the step when a task fails", SR, flag="1", step=SUPPORTED),
    _o("kill-command", "K", OPTIONAL, IGNORED, "salloc's command gets SIGTERM on end", SA, flag="TERM"),
    _o("immediate", "I", OPTIONAL, SUPPORTED,
       "an allocation that cannot start at once fails (bare -I: 1 s), in N s is cancelled",
       SR_SA, parse="immediate", flag=1),
    _o("test-only", None, NO_ARG, SUPPORTED, "validate and print the plan; nothing runs", SB_SR,
       step=REFUSED),
    _o("wait", "W", NO_ARG, SUPPORTED, "wait for the job; exit with its exit code", SB, env="SBATCH_WAIT"),
    _o("wait", "W", REQUIRED, SUPPORTED,
       "seconds the other tasks get after the first one ends; then the step is terminated",
       SR, env="SBATCH_WAIT", step=SUPPORTED),
    _o("parsable", None, NO_ARG, SUPPORTED, "print the job id only", SB),
    _o("quiet", "Q", NO_ARG, SUPPORTED, "no informational messages", step=SUPPORTED),
    _o("verbose", "v", NO_ARG, SUPPORTED,
       "more messages (repeatable); srun -v: the options given, the job's nodes, each launch and task end as Slurm's",
       flag=1, env="SBATCH_DEBUG"),
    _o("help", "h", NO_ARG, SUPPORTED, "this help", step=SUPPORTED),
    _o("usage", None, NO_ARG, SUPPORTED, "print Slurm's option synopsis", step=SUPPORTED),
    _o("version", "V", NO_ARG, SUPPORTED, "print the Slurm version slurmsky matches", step=SUPPORTED),
    # --- srun steps ----------------------------------------------------------------
    _o("label", "l", NO_ARG, SUPPORTED, "prefix output lines with the task id", SR, step=SUPPORTED),
    _o("unbuffered", "u", NO_ARG, SUPPORTED, "do not line-buffer task output", SR, step=SUPPORTED),
    _o("pty", None, NO_ARG, IGNORED, "no pseudo-terminal; task 0 runs with pipes", SR),
    _o("overlap", None, NO_ARG, SUPPORTED, "steps may share resources (always true)", SR, step=SUPPORTED),
    _o("exact", None, NO_ARG, SUPPORTED, "steps use only what they ask for (always true)", SR, step=SUPPORTED),
    _o("jobid", None, REQUIRED, SUPPORTED, "run the step in this job's allocation", SR, step=SUPPORTED),
    _o("relative", "r", REQUIRED, SUPPORTED, "start the step at this node of the allocation", SR,
       parse="int", step=SUPPORTED),
    _o("multi-prog", None, NO_ARG, SUPPORTED, "the command is a config file: a program per task",
       SR, step=SUPPORTED),
    _o("mpi", None, REQUIRED, SUPPORTED,
       "pmi2: srun serves PMI-1/PMI-2 (MPICH family); pmix, cray_shasta warn: use mpirun", SR,
       env="SLURM_MPI_TYPE", step=SUPPORTED),
    _o("preserve-env", "E", NO_ARG, SUPPORTED, "keep SLURM_NNODES/NTASKS from the job", SR, step=SUPPORTED),
    _o("disable-status", "X", NO_ARG, SUPPORTED, "Ctrl-C goes to the tasks (no status)", SR,
       env="SLURM_DISABLE_STATUS", step=SUPPORTED),
    _o("quit-on-interrupt", None, NO_ARG, SUPPORTED, "one Ctrl-C ends the step", SR,
       step=SUPPORTED),
    _o("debugger-test", None, NO_ARG, SUPPORTED,
       "tasks start stopped (for a debugger to attach); srun prints their table (MPIR proctable)",
       SR, step=SUPPORTED),
    _o("task-prolog", None, REQUIRED, SUPPORTED,
       "run before each task, in its environment; its `export`/`unset`/`print` lines act",
       SR, env="SBATCH_TASK_PROLOG", step=SUPPORTED),
    _o("task-epilog", None, REQUIRED, SUPPORTED,
       "run after each task ends (5 s at most, then killed with what it started)",
       SR, env="SBATCH_TASK_EPILOG", step=SUPPORTED),
    _o("prolog", None, REQUIRED, REFUSED, "not supported", SR),
    _o("epilog", None, REQUIRED, REFUSED, "not supported", SR),
    _o("bcast", None, OPTIONAL, REFUSED, "no file broadcast; use SkyPilot file_mounts", SR),
    _o("bcast-exclude", None, REQUIRED, IGNORED, "no file broadcast", SR),
    _o("compress", None, OPTIONAL, IGNORED, "no file broadcast", SR),
    _o("send-libs", None, OPTIONAL, IGNORED, "no file broadcast", SR),
    _o("het-group", None, REQUIRED, REFUSED, "a step over a heterogeneous job's components, in one (outside a job: no heterogeneous steps)", SR, step=SUPPORTED),
    _o("msg-timeout", None, REQUIRED, IGNORED, "no slurmd messages", SR),
    _o("no-allocate", "Z", NO_ARG, REFUSED, "needs admin rights", SR),
    _o("resv-ports", None, OPTIONAL, IGNORED, "no MPI port reservation", SR),
    _o("slurmd-debug", None, REQUIRED, SUPPORTED,
       "the step's own log lines on srun's stderr, two levels up (its start, each task's "
       "start and exit; debug and debug2 lines of the runtime's own steps)", SR,
       env="SLURMD_DEBUG", step=SUPPORTED),
    _o("threads", "T", REQUIRED, IGNORED, "no fan-out threads", SR),
    _o("x11", None, OPTIONAL, REFUSED, "no X11 forwarding", SR_SA),
    _o("whole", None, NO_ARG, IGNORED, "a step gets the job's CPUs on its nodes (the default)",
       SR, step=SUPPORTED),
    _o("cpu_bind", None, REQUIRED, IGNORED, "old spelling of --cpu-bind", SR),
    _o("bell", None, NO_ARG, IGNORED, "no terminal bell", SA),
    _o("no-bell", None, NO_ARG, IGNORED, "no terminal bell", SA),
    _o("no-shell", None, NO_ARG, SUPPORTED, "allocate and exit", SA),
)
# fmt: on


@lru_cache(maxsize=None)  # the table never changes; every sbatch asks
def options_for(command: str) -> tuple[Option, ...]:
    """The rows a command accepts, in table order."""
    return tuple(o for o in OPTIONS if command in o.commands)


_HAS_ARG = {NO_ARG: 0, REQUIRED: 1, OPTIONAL: 2}


@lru_cache(maxsize=None)
def lookups(command: str) -> tuple[dict, dict, dict, str]:
    """A command's rows by long and short name, and getopt_long's longopts and optstring."""
    options = options_for(command)
    by_short = {o.short: o for o in options if o.short}
    return (
        {o.long: o for o in options},
        by_short,
        {o.long: (o.long, _HAS_ARG[o.arg]) for o in options},
        "".join(short + ":" * _HAS_ARG[o.arg] for short, o in by_short.items()),
    )


_ENV_PREFIX = {SBATCH: "SBATCH_", SALLOC: "SALLOC_", SRUN: "SLURM_"}


@lru_cache(maxsize=None)
def input_env(command: str) -> tuple[tuple[str, Option], ...]:
    """(variable, option) pairs a command reads from its environment, e.g. SBATCH_TIMELIMIT.

    The table names sbatch's variables; salloc reads SALLOC_* and srun SLURM_* for the same.
    """
    prefix = _ENV_PREFIX[command]
    pairs = []
    for opt in options_for(command):
        for name in opt.env:
            if name.startswith("SBATCH_"):
                name = prefix + name[len("SBATCH_") :]
            pairs.append((name, opt))
        if command == SRUN:
            pairs += [(name, opt) for name in SRUN_ONLY_ENV.get(opt.key, ())]
    return tuple(pairs)


# Input variables srun alone reads for rows sbatch and salloc share (srun's opt.c env_vars):
# the task and node counts a job's environment carries (the srun inside a job reads them
# itself, runtime/srun.py)
SRUN_ONLY_ENV = {"ntasks": ("SLURM_NPROCS", "SLURM_NTASKS"), "nodes": ("SLURM_JOB_NUM_NODES",)}


def _names(opt: Option) -> str:
    arg = {NO_ARG: "", REQUIRED: "=value", OPTIONAL: "[=value]"}[opt.arg]
    short = f"-{opt.short}, " if opt.short else "    "
    return f"{short}--{opt.long}{arg}"


# `srun --usage`: Slurm 22.05's synopsis, verbatim.
SRUN_USAGE = """\
Usage: srun [-N nnodes] [-n ntasks] [-i in] [-o out] [-e err]
            [-c ncpus] [-r n] [-p partition] [--hold] [-t minutes]
            [-D path] [--immediate[=secs]] [--overcommit] [--overlap] [--no-kill]
            [--oversubscribe] [--label] [--unbuffered] [-m dist] [-J jobname]
            [--jobid=id] [--verbose] [--slurmd_debug=#] [--gres=list]
            [-T threads] [-W sec] [--gres-flags=opts]
            [--licenses=names] [--clusters=cluster_names]
            [--qos=qos] [--time-min=minutes]
            [--contiguous] [--mincpus=n] [--mem=MB] [--tmp=MB] [-C list]
            [--mpi=type] [--account=name] [--dependency=type:jobid[+time]]
            [--kill-on-bad-exit] [--propagate[=rlimits] [--comment=name]
            [--cpu-bind=...] [--mem-bind=...] [--network=type]
            [--ntasks-per-node=n] [--ntasks-per-socket=n] [reservation=name]
            [--ntasks-per-core=n] [--mem-per-cpu=MB] [--preserve-env]
            [--profile=...] [--exact]
            [--mail-type=type] [--mail-user=user] [--nice[=value]]
            [--prolog=fname] [--epilog=fname]
            [--task-prolog=fname] [--task-epilog=fname]
            [--ctrl-comm-ifhn=addr] [--multi-prog] [--mcs-label=mcs]
            [--cpu-freq=min[-max[:gov]]] [--power=flags] [--spread-job]
            [--switches=max-switches{@max-time-to-wait}] [--reboot]
            [--core-spec=cores] [--thread-spec=threads]
            [--bb=burst_buffer_spec] [--bbf=burst_buffer_file]
            [--bcast=<dest_path>] [--bcast-exclude=<NONE|path1,...,pathN>]
            [--send-libs[=y|n]] [--compress[=library]]
            [--acctg-freq=<datatype>=<interval>] [--delay-boot=mins]
            [-w hosts...] [-x hosts...] [--use-min-nodes]
            [--mpi-combine=yes|no] [--het-group=value]
            [--cpus-per-gpu=n] [--gpus=n] [--gpu-bind=...] [--gpu-freq=...]
            [--gpus-per-node=n] [--gpus-per-socket=n] [--gpus-per-task=n]
            [--mem-per-gpu=MB]
            executable [args...]"""


def help_text(command: str) -> str:
    """`<command> --help`: Slurm's own text (help_texts.py), then every accepted option with
    what slurmsky does with it."""
    from .help_texts import HELP

    lines = [HELP[command] + "slurmsky: what it does with each option", ""]
    for fate in (SUPPORTED, MAPPED, IGNORED, REFUSED):
        rows = [o for o in options_for(command) if o.fate == fate]
        lines.append(f"{fate.capitalize()} options:")
        lines += [f"  {_names(o):<34} {o.note}" for o in rows]
        lines.append("")
    return "\n".join(lines)


# slurm_opt.c's common_options, the order `-v` lists the options set (its long names)
_SET_ORDER = (
    "accel-bind account acctg-freq array argv batch bcast bcast-exclude begin bell bb bbf "
    "cluster-constraint chdir cluster clusters comment compress container context contiguous "
    "constraint core-spec cores-per-socket cpu-bind cpu-freq cpus-per-gpu cpus-per-task "
    "deadline debugger-test delay-boot environment dependency disable-status distribution "
    "epilog error exact exclude exclusive export export-file extra-node-info get-user-env gid "
    "gpu-bind gpu-freq gpus gpus-per-node gpus-per-socket gpus-per-task gres gres-flags help "
    "het-group hint hold ignore-pbs immediate input interactive jobid job-name kill-command "
    "kill-on-bad-exit kill-on-invalid-dep label licenses mail-type mail-user threads "
    "mcs-label mem mem-bind mem-per-cpu mem-per-gpu mincpus mpi msg-timeout multi-prog "
    "network nice no-allocate no-bell no-kill no-shell no-requeue nodefile nodelist nodes "
    "ntasks ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket ntasks-per-tres "
    "open-mode output overcommit overlap oversubscribe pack-group parsable partition power "
    "prefer preserve-env priority profile prolog propagate pty qos quiet quit-on-interrupt "
    "reboot relative requeue reservation resv-ports send-libs signal slurmd-debug "
    "sockets-per-node spread-job switches task-epilog task-prolog tasks-per-node test-only "
    "thread-spec threads-per-core time time-min tmp uid unbuffered use-min-nodes verbose "
    "version usage wait wait-all-nodes wckey whole wrap x11"
).split()


def defined_block(prog, defined):
    """`-v`'s list of the options set (slurm_print_set_options): {long name: value text}
    -> the lines, in Slurm's table order."""
    rank = {name: i for i, name in reversed(list(enumerate(_SET_ORDER)))}
    rule = "%s: %s %s" % (prog, "-" * 20, "-" * 20)
    lines = ["%s: defined options" % prog, rule]
    for name in sorted(defined, key=lambda n: (rank.get(n, len(rank)), n)):
        lines.append("%s: %-20s: %s" % (prog, name, defined[name]))
    return lines + [rule, "%s: end of defined options" % prog]
