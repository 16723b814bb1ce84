"""Backends: where jobs run. The core and the commands know a backend only through this module.

A backend is a package under backends/ named in REGISTRY; its `__init__` defines BACKEND, an
instance of a `Backend` subclass. That module must stay cheap (standard library only): sbatch
and squeue load it on every call. The agent's side of a backend, its `Executor`, is built by
`Backend.executor()` and may import what it needs (psutil, SkyPilot).

Callers ask a backend what it can do (`supports(Feature.X)`, or `require`, which refuses in
Slurm's words) or for a view (`nodes`, `running_steps`, `remote_id`), never test its name: a
new backend is a new package and one REGISTRY line.

Executors know nothing of Slurm's output formats; they report a job's end as the node
runtime's RESULT dict: {"state", "exit_code", "signal", "start", "end", "reason"}.
"""

from __future__ import annotations

import sys

from slurmsky.errors import SlurmError
from slurmsky.record import Record

TYPE_CHECKING = False  # typing is not imported at run time: sbatch and squeue load this module
if TYPE_CHECKING:
    from typing import Iterator, Protocol

    import click

    from slurmsky.config import Config
    from slurmsky.core.planning import Plan
    from slurmsky.core.state import JobRecord
    from slurmsky.core.state.engine import Connection
    from slurmsky.parse.request import JobRequest
    from slurmsky.plan.layout import Layout

REGISTRY = {"local": "slurmsky.backends.local", "sky": "slurmsky.backends.sky"}


class BackendFeature:
    """One thing a backend may do (a member of `Feature`). `refusal` is the Slurm-style line a
    command prints when its backend does not ({backend}: its name; {reason}: the backend's
    own words); the features callers only branch on keep the generic one."""

    __slots__ = ("name", "doc", "refusal")

    def __init__(self, name: str, doc: str, refusal: str = ""):
        self.name = name
        self.doc = doc
        self.refusal = refusal or name + " is not available on the {backend} backend: {reason}"

    def __repr__(self) -> str:
        return f"Feature.{self.name.upper()}"


class _Closed(type):
    """Iterating the class gives its members, in the order declared (for the docs and tests)."""

    def __iter__(cls) -> Iterator[BackendFeature]:
        return (v for v in vars(cls).values() if isinstance(v, BackendFeature))


class Feature(metaclass=_Closed):
    """What a backend can do, a closed set (not the enum module: squeue must not import it):
    a misspelt member is an AttributeError, and `Backend.supports` takes only members.
    Each backend says which it lacks and why (`Backend.unsupported`)."""

    INTERACTIVE = BackendFeature(
        "interactive",
        "salloc: an allocation for a command or shell run here",
        "interactive allocations are not available on the {backend} backend; use srun or sbatch",
    )
    REMOTE_ALLOCATION = BackendFeature(
        "remote_allocation",
        "salloc's allocation is a cluster elsewhere: its SLURM_* come from the record "
        "(allocation_env), srun in it runs through run_step, and the agent ends it once salloc "
        'relinquishes it (kill_action "release")',
    )
    STEP_SIGNALS = BackendFeature(
        "step_signals",
        "scancel --signal reaches a running job's steps from here",
        "Requested operation is presently disabled",  # scancel's, per job (ESLURM_DISABLED)
    )
    SUSPEND = BackendFeature(
        "suspend",
        "scontrol suspend and resume: every process of a running job stops (SIGSTOP) and "
        "goes on (SIGCONT)",
        "Requested operation is presently disabled ({reason})",  # ESLURM_DISABLED
    )
    FOREIGN_JOBS = BackendFeature(
        "foreign_jobs", "jobs submitted outside slurmsky show in squeue and sacct"
    )
    QUEUE_SYNC = BackendFeature(
        "queue_sync",
        "the agent follows an outside queue: the executor's sync() moves its started jobs, "
        "and the agent runs while any is active",
    )
    LOGIN_AT_LAUNCH = BackendFeature(
        "login_at_launch",
        "--export=NONE: the login environment is read on the node when the job starts "
        "(as slurmd does)",
    )
    FIXED_NODES = BackendFeature(
        "fixed_nodes",
        "a known set of nodes: sinfo shows them idle too, and what no node can hold is "
        "refused at submission",
    )
    FILES_HOME = BackendFeature(
        "files_home",
        "the files a job writes in its workdir come home to it (its nodes share no filesystem "
        "with this machine): the partition's files_home, in the runtime spec",
    )
    PARTITION_LISTS = BackendFeature(
        "partition_lists",
        "sbatch -p a,b: one job whose resources are every listed partition's, in order; it "
        "pends as `a,b` and runs in the partition whose resources it got",
    )
    HET_JOBS = BackendFeature(
        "het_jobs",
        "heterogeneous jobs (#SBATCH hetjob, `:` between components): each component "
        "placed with its own shape, J+0, J+1 at home",
        "Heterogeneous jobs are not supported on the {backend} backend: {reason}",
    )
    STEP_IO = BackendFeature(
        "step_io",
        "sbcast and sattach: a running job's nodes see this machine's filesystem (a file copied "
        "here is on them) and its steps' output can be tapped from here (step_io_dir)",
        "the job's nodes cannot be reached from here on the {backend} backend: {reason}",
    )
    SPEC_ENVIRONMENT = BackendFeature(
        "spec_environment",
        "the node runtime takes the job's environment from the stored spec; without it the "
        "backend's task carries what may ship and the submit environment is not stored",
    )


class Unsupported(SlurmError):
    """A command's refusal of a feature its backend lacks: the feature's Slurm-style line
    (exit code 1); the backend's reason is kept in `reason`."""

    def __init__(self, backend: Backend, feature: BackendFeature):
        self.backend, self.feature = backend.name, feature
        self.reason = backend.unsupported[feature]
        super().__init__(feature.refusal.format(backend=backend.name, reason=self.reason))


MAX_NODES = 65536  # nodes a job may ask where none are fixed (Slurm's hostlist MAX_RANGE)


class NodeState(Record):
    """A node as the backend sees it, for sinfo and scontrol show node."""

    name: str
    cpus: int
    alloc_cpus: int
    mem: int  # MB
    tmp: int = 0  # MB of temporary disk (TmpDisk)
    gres: str | None = None
    state: str | None = None  # None: from the CPUs in use (idle, mix, alloc); "n/a": no node
    remote: bool = False  # a machine elsewhere (a cloud worker): its arch, OS and load unknown
    boot_time: float | None = None  # when a remote node came up (None: unknown, or not yet)


if TYPE_CHECKING:  # the agent's side of a backend, described for the checker

    class Executor(Protocol):
        """The agent's side of a backend: it runs the backend's jobs.

        What an executor needs to find a job again (after an agent restart too) it returns as a
        JSON-able *ref*, which the agent stores in `jobs.executor_ref`. An executor of a backend
        with QUEUE_SYNC also has `sync(conn, now, wake) -> bool`, called every pass; the scheduler
        then only places, prepares and launches its jobs, and sync() moves them from there (state,
        end, scancel), so adopt/poll/poll_interval/cancel/cleanup are not used for it.
        """

        name: str

        def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
            """Where the job would run now (node indices), or the pending reason why not
            (`Resources`, `PartitionNodeLimit`)."""

        def place_again(
            self, job: JobRecord, placement: list[int], running: list[JobRecord]
        ) -> list[int] | str:
            """At a team's claim (under the write lock), the job placed this pass at
            `placement` placed again against every member's started jobs as they are now:
            another member's agent may have taken the room since."""

        def prepare(self, job: JobRecord, placement: list[int]) -> dict:
            """The ref stored *before* launching, so a restarted agent can find a half-started job."""

        def launch(self, job: JobRecord, spec: dict, ref: dict) -> dict:
            """Start the job from its prepared ref; returns the completed ref, whose non-empty
            `pids` marks the job started (a stored ref without it is half-started: `adopt`)."""

        def adopt(self, job: JobRecord) -> dict | None:
            """After an agent restart: the full ref of a job found running from its prepared ref,
            or None when it never started."""

        def poll(self, job: JobRecord) -> dict | None:
            """The RESULT once the job has ended (NODE_FAIL if it vanished), else None."""

        def poll_interval(self, job: JobRecord) -> float | None:
            """Seconds between polls of a running job; None when its end wakes the agent itself."""

        def cancel(self, job: JobRecord) -> None:
            """Ask the job to end (SIGCONT, SIGTERM, KillWait, SIGKILL, by the node runtime)."""

        def signal(self, job: JobRecord, signum: int, scope: str) -> None:
            """scancel --signal: deliver to the batch shell, the steps or both (`batch|steps|full`)."""

        def cleanup(self, job: JobRecord) -> None:
            """After the end: make sure nothing of the job is left running."""

    class QueueSyncExecutor(Executor, Protocol):
        """The executor of a backend with QUEUE_SYNC (for the type checker only)."""

        member: str | None  # on a team's state, the member whose jobs it follows

        def sync(self, conn: Connection, now: float, wake: list[float]) -> bool:
            """Called every pass; True when the state changed."""

        def handed(self, job: JobRecord, ref: dict) -> dict:
            """The columns a job takes once `launch` handed it on (its ref stored): e.g.
            PENDING with reason Resources while the outside queue finds it nodes; {} keeps
            it CONFIGURING. sync() moves it from there."""


class Backend:
    """A backend as the core and the commands see it. The defaults suit a backend whose nodes
    come and go with its jobs; subclasses override what differs."""

    name = ""
    # What the backend cannot do, and why (as a user reads it); it supports every other
    # Feature. A backend that declares nothing supports none.
    unsupported: dict[BackendFeature, str] = {
        feature: "the backend does not declare it" for feature in Feature
    }

    def supports(self, feature: BackendFeature) -> bool:
        """Whether the backend has `feature` (a member of Feature; anything else: TypeError)."""
        if not isinstance(feature, BackendFeature):
            raise TypeError(f"not a backend feature: {feature!r}")
        return feature not in self.unsupported

    def require(self, feature: BackendFeature) -> None:
        """Refuse (Unsupported, a SlurmError) unless the backend has `feature`."""
        if not self.supports(feature):
            raise Unsupported(self, feature)

    def executor(self) -> Executor:
        """The agent's executor for this backend (imports what it needs)."""
        raise NotImplementedError

    # --- submission (sbatch, srun, salloc) -----------------------------------------------------

    def unavailable(self) -> str | None:
        """Why this install cannot run the backend's jobs (a missing dependency), said by
        sbatch/srun/salloc before anything is stored; None when it can."""
        return None

    def node_cpus(self, part: dict | None = None) -> int | None:
        """CPUs of each node (of the partition `part`) when the nodes are known: tasks without
        --nodes spread over as many nodes as they need, as on Slurm. None: one node per
        --nodes (the default 1)."""
        return None

    def node_mem(self, part: dict | None = None) -> int | None:
        """MB of memory of each node (of the partition `part`) when the nodes are known
        (what --mem=0 asks), else None."""
        return None

    def max_nodes(self, part: dict | None = None) -> int:
        """The most nodes a job (of the partition `part`) can ever get here: a larger job is
        never laid out per node (plan.layout). MAX_NODES unless the backend knows its nodes."""
        return MAX_NODES

    def refusal(self, lay: Layout, req: JobRequest, part: dict) -> list[str] | None:
        """Slurm's submit-time error lines for a job (its layout, its request as asked) no
        node can ever hold, else None: by default, more nodes than max_nodes()."""
        if lay.num_nodes > self.max_nodes(part):
            return ["Batch job submission failed: Node count specification invalid"]
        return None

    def invalid(self, req: JobRequest, part: dict) -> str | None:
        """Why slurmctld refuses a job that names what this backend's nodes lack (a
        feature), before the job takes an id; None if it does not."""
        return None

    def submit_reason(self, lay: Layout, part: dict | None = None) -> str | None:
        """The pending reason a job gets at submission (before the first pass), if not None."""
        return None

    def node_names(self, count: int, part: dict | None = None) -> list[str]:
        """The first `count` node names a job could get (sbatch --test-only's estimate)."""
        return [f"127.0.0.{k + 1}" for k in range(count)]

    def unreachable(self) -> str | None:
        """Why no job can start now though the install is sound (the outside service does not
        answer; cheap: no SDK), with its remedy, else None: srun and salloc refuse, sbatch
        queues the job and warns."""
        return None

    def task(self, plan: Plan, cfg: Config) -> tuple[dict | None, list[str]]:
        """What the backend stores with a submission beside the runtime spec (SkyPilot's task),
        made from the plan core.planning hands it (its partition, layout and spec; its task
        None yet), and the warnings said of it where the job is submitted or translated."""
        return None, []

    def admit(self, plan: Plan, cfg: Config) -> list[str]:
        """Before a submission's plan is stored (not for --test-only or translate): the
        backend's own checks (SlurmError: refused) and preparations; warnings for stderr."""
        return []

    def describe(self, plan: Plan) -> str:
        """What `sbatch --test-only` prints after its estimate: the plan as this backend runs it."""
        return ""

    # --- allocations held elsewhere (REMOTE_ALLOCATION) ----------------------------------------

    def allocation_env(self, conn: Connection, job: JobRecord) -> dict[str, str]:
        """The environment a started allocation's batch shell would see on its first node
        (salloc keeps its SLURM_* variables)."""
        raise NotImplementedError

    def run_step(
        self, conn: Connection, job: JobRecord, options: list[str], command: list[str]
    ) -> int:
        """srun in the allocation `job`: one step with srun's `options` on its nodes, output
        on this terminal; returns srun's exit code."""
        raise NotImplementedError

    # --- reads (squeue, sacct, scontrol, sinfo) ------------------------------------------------

    def refresh(self) -> None:
        """Make what the state holds of an outside queue fresh enough to read (bounded wait)."""

    def nodes(self, partition: str, part: dict, running: list[JobRecord]) -> list[NodeState]:
        """The nodes of a partition, with the CPUs the running jobs use."""
        return []

    def running_steps(self, job: JobRecord) -> list[dict]:
        """The srun steps of a running job, as the node runtime records them."""
        return []

    def step_usage(self, job: JobRecord) -> dict[str, list[dict]]:
        """sstat's view: each running step's tasks' usage at the last sample (step id, or
        "batch" -> runtime/usage.py's task records); {} where the nodes cannot be read."""
        return {}

    def step_io_dir(self, job: JobRecord) -> str | None:
        """With STEP_IO: the folder of a running job's step taps (runtime/attach.py)."""
        return None

    def remote_id(self, job: JobRecord) -> tuple[str, int] | None:
        """The job's id in the engine underneath, and its name (scontrol show job prints
        `name=id`), if it has one."""
        return None

    def cost(self, job: JobRecord) -> float | None:
        """What the ended job cost in US dollars, where the backend knows (sreport)."""
        return None

    def admin_comment(self, job: JobRecord) -> str:
        """What the backend says of the job in its AdminComment (scontrol show job, sacct;
        users cannot set it in Slurm): "" for nothing."""
        return ""

    def cost_line(self, job: JobRecord) -> str | None:
        """seff's line of what the ended job cost, if the backend knows."""
        return None

    def add_commands(self, group: click.Group) -> None:
        """Add the backend's own subcommands to the `slurmsky` tool."""

    def doctor(self, cfg: Config) -> list[tuple[str, str, str | None]]:
        """`slurmsky doctor`'s lines for this backend: (what, finding, remedy or None)."""
        return []

    # --- the agent -----------------------------------------------------------------------------

    def needs_agent(self, conn: Connection) -> bool:
        """Whether the agent must run for this backend beyond jobs that wait or run locally."""
        return False


def get(name: str) -> Backend:
    """The backend registered as `name` (ValueError if none is)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}")
    __import__(REGISTRY[name])
    return sys.modules[REGISTRY[name]].BACKEND


def configured(cfg: Config) -> Backend:
    """The backend the configuration selects."""
    return get(cfg.backend)


def every() -> list[Backend]:
    """Every registered backend, in REGISTRY order."""
    return [get(name) for name in REGISTRY]


def supporting(feature: BackendFeature) -> list[Backend]:
    """Every registered backend that has `feature`."""
    return [b for b in every() if b.supports(feature)]


def refresh_all() -> None:
    """For the read commands: every backend's outside queue fresh enough to read."""
    for backend in every():
        backend.refresh()
