"""The optional configuration file ($SLURMSKY_CONFIG, default ~/.config/slurmsky/config.yaml).

No file is needed for the local backend; without one, PyYAML is never imported. The
schema (every key, its type and meaning) is SCHEMA below and docs/configuration.md.
"""

from __future__ import annotations

import os

from slurmsky.backends import REGISTRY as BACKENDS
from slurmsky.errors import SlurmError


class Kind:
    """A value's kind beyond its Python type: its test, and its name in the error."""

    def __init__(self, name: str, test):
        self.__name__, self.test = name, test


POSITIVE = Kind("a positive int", lambda v: type(v) is int and v > 0)
LANES = Kind("a positive int or false", lambda v: v is False or POSITIVE.test(v))


PRIORITY_TYPES = ("multifactor", "basic")

# key -> (type, what it means[, the value that turns a mapping off]); nested dicts describe
# sub-keys; "*" matches any name.
PARTITION_SCHEMA = {
    "default": (bool, "the partition used when a job names none (marked * by sinfo)"),
    "infra": (
        (str, list, dict),
        "SkyPilot infra: aws, gcp/us-central1, k8s/<context>, slurm/<cluster>/<partition>, ...; "
        "a list: tried in its order (SkyPilot's `ordered`); a set {aws, gcp}: any (`any_of`)",
    ),
    "accelerators": (
        (list, str, dict),
        "candidate GPU types for untyped --gres=gpu:N / --gpus=N: a list [A100, H100] in "
        "order of preference, a set {A100, H100} in any order, or one type",
    ),
    "use_spot": (bool, "run on spot instances (SkyPilot recovers preempted jobs)"),
    "spot_fallback": (
        bool,
        "sky backend: try spot instances first, then on-demand ones (each infra in turn)",
    ),
    "image_id": (str, "SkyPilot image_id, e.g. docker:nvcr.io/nvidia/pytorch:24.05-py3"),
    "cpus": (str, "SkyPilot cpus when the job asks less, e.g. '4+'"),
    "memory": (str, "SkyPilot memory when the job asks less, e.g. '16+'"),
    "disk_size": (int, "disk size in GB"),
    "labels": (dict, "SkyPilot resource labels"),
    "file_mounts": (dict, "SkyPilot file_mounts added to every job of this partition"),
    "volumes": (dict, "SkyPilot volumes added to every job of this partition"),
    "envs": (dict, "environment variables set for every job of this partition"),
    "pool": (
        {
            "workers": (int, "how many warm workers the pool keeps (default 1)"),
            "name": (str, "the SkyPilot pool's name (default slurmsky-PARTITION)"),
            "setup": (str, "shell lines each worker runs once, when it comes up"),
        },
        "sky backend: the partition's jobs run on a SkyPilot pool of warm one-node workers "
        "(`slurmsky pool up PARTITION`); no workdir upload, file mounts or per-job setup",
    ),
    "size": (
        POSITIVE,
        "sky backend: the most SkyPilot nodes the partition's jobs hold at once (as a Slurm "
        "partition has nodes; default 8, a pool's workers); a job or lane beyond it pends "
        "(Resources), a job asking more nodes is refused",
    ),
    "lanes": (
        LANES,
        "sky backend: an array of one-node elements with more elements than free nodes runs "
        "in lanes (default): managed jobs each running elements one after another (on "
        "Slurm infra the next one none has taken, elsewhere its dealt share), at most the "
        "free nodes (and a %p throttle); N: always in lanes, at most N; false: one managed "
        "job per element",
    ),
    "files_home": (
        {
            "cap_mb": (
                POSITIVE,
                "the most MB of files a job sends home (default 10); past it a "
                "file stays on the node, named in the job's error file and Comment",
            ),
            "exclude": (
                list,
                "patterns of files not sent home, .skyignore style (*.tmp, scratch/, /top-only)",
            ),
            "interval": (POSITIVE, "seconds between sends while the job runs (default 60)"),
        },
        "sky backend: the files a job creates or changes in its workdir come home to it "
        "through the job's log, while it runs and at its end; false: they stay on the node",
        False,
    ),
    "max_time": (str, "the partition's MaxTime as sinfo shows it (informational)"),
    "def_mem_per_cpu": (
        int,
        "Slurm's DefMemPerCPU for this partition: MB per CPU of a job that asks no memory",
    ),
    "nodes": (int, "local backend: how many nodes the partition has (default 4)"),
    "cpus_per_node": (int, "local backend: CPUs of each node (default: this machine's)"),
    "mem_per_node": (int, "local backend: MB of memory of each node (default: this machine's)"),
    "tmp_disk_per_node": (
        int,
        "local backend: MB of --tmp disk of each node (default: $TMPDIR's size)",
    ),
    "oversubscribe": (
        bool,
        "local backend: jobs share the nodes' CPUs and memory (Slurm's OverSubscribe=FORCE)",
    ),
    "features": (
        list,
        "local backend: the features of the partition's nodes (Slurm's Features), which "
        "-C/--constraint may name; default none",
    ),
    "gpus": (
        int,
        "local backend: GPUs of each node of this partition, device indices 0..N-1 "
        "(a node's Gres=gpu:N); default: the machine's GPUs, on the first node",
    ),
}
MODULE_SCHEMA = {
    "setup": (str, "shell lines added to the SkyPilot task's setup"),
    "image_id": (str, "an image that provides the module instead"),
    "envs": (dict, "environment variables the module sets"),
}
SCHEMA = {
    "backend": (str, "local (default) or sky"),
    "cluster_name": (str, "SLURM_CLUSTER_NAME and sacct's Cluster (default: slurmsky)"),
    "state": (
        str,
        "where the job state lives: sqlite (default: a file under $SLURMSKY_HOME) or a team's "
        "PostgreSQL, postgresql://[user@]host[:port]/dbname (credentials from ~/.pgpass, "
        "PGSERVICE, ...; never here); $SLURMSKY_STATE overrides it",
    ),
    "partitions": ({"*": PARTITION_SCHEMA}, "partition name -> resources"),
    "modules": (
        {"*": MODULE_SCHEMA},
        "module name (cuda/12.1, or cuda for every version) -> setup",
    ),
    "export": (
        {
            "allow": (list, "glob patterns shipped to clouds even if denied below"),
            "deny": (
                list,
                "glob patterns never shipped to clouds (added to the built-in secret list)",
            ),
        },
        "environment export policy for cloud jobs",
    ),
    "requeue": (
        {
            "max_restarts_on_errors": (int, "restarts of a --requeue job that failed (default 3)"),
        },
        "SkyPilot job_recovery for --requeue",
    ),
    "kill_wait": (int, "seconds between SIGTERM and SIGKILL at cancel and time limit (default 30)"),
    "max_array_size": (int, "Slurm's MaxArraySize: array indices must be below it (default 1001)"),
    "def_mem_per_cpu": (
        int,
        "Slurm's DefMemPerCPU: MB per CPU of a job that asks no memory (default: none, "
        "ReqMem 0); a partition's own overrides it",
    ),
    "constrain_devices": (
        bool,
        "local backend: a job holding no GPUs sees none of the machine's (Slurm's "
        "ConstrainDevices; default true); false: it sees what the machine shows",
    ),
    "purge_run_dirs_after": (
        int,
        "seconds a finished job's run directory (RESULT, runtime logs) and its stored "
        "environment are kept (default 86400)",
    ),
    "purge_job_after": (
        int,
        "days a finished job's accounting is kept for sacct (Slurm's PurgeJobAfter; "
        "default 0: for ever)",
    ),
    "agent_log_max_mb": (int, "agent.log is rotated to agent.log.1 past this size (default 10)"),
    "acct_gather_frequency": (
        int,
        "Slurm's JobAcctGatherFrequency: seconds between samples of each step's memory and "
        "CPU (default 30; 0: only at each task's end)",
    ),
    "strict_env": (
        bool,
        "sky backend: what a script needs that the nodes lack (paths outside the workdir, "
        "conda environments; docs/sky-backend.md) refuses the job instead of a warning",
    ),
    "priority_type": (
        Kind(" or ".join(PRIORITY_TYPES), lambda v: v in PRIORITY_TYPES),
        "the order of a team's pending jobs: multifactor (the default on a team's PostgreSQL: "
        "age and fair share, docs/team.md) or basic (submission order; always on SQLite)",
    ),
    "priority_weight_age": (int, "Slurm's PriorityWeightAge (default 1000)"),
    "priority_weight_fairshare": (int, "Slurm's PriorityWeightFairshare (default 10000)"),
    "priority_max_age": ((str, int), "Slurm's PriorityMaxAge: the age factor's 1 (default 7-0)"),
    "priority_decay_half_life": (
        (str, int),
        "Slurm's PriorityDecayHalfLife: usage counts half after it (default 7-0; 0: no decay)",
    ),
    "priority_calc_period": (
        (str, int),
        "Slurm's PriorityCalcPeriod: how often an agent recomputes usage and priorities "
        "(default 5 minutes; 0:10 is ten seconds)",
    ),
    "upload_max_mb": (
        int,
        "sky backend: the most MB of a job's workdir (the submit directory) uploaded to the "
        "cloud (default 1024); a larger one is refused at submission",
    ),
}
MAX_ARRAY_SIZE = 1001  # Slurm's default MaxArraySize: every array index is below it


class Config:
    """The effective configuration: SCHEMA's keys and the file they came from. A plain class,
    not a dataclass: squeue imports this module, and dataclasses alone costs more than a
    listing."""

    def __init__(
        self,
        path: str,
        backend: str = "local",
        state: str = "sqlite",
        cluster_name: str = "slurmsky",
        partitions: dict | None = None,
        modules: dict | None = None,
        export: dict | None = None,
        requeue: dict | None = None,
        kill_wait: int = 30,
        max_array_size: int = MAX_ARRAY_SIZE,
        acct_gather_frequency: int = 30,
        def_mem_per_cpu: int | None = None,
        upload_max_mb: int = 1024,
        constrain_devices: bool = True,
        purge_run_dirs_after: int = 86400,
        purge_job_after: int = 0,
        agent_log_max_mb: int = 10,
        strict_env: bool = False,
        priority_type: str | None = None,
        priority_weight_age: int = 1000,
        priority_weight_fairshare: int = 10000,
        priority_max_age: str | int = "7-0",
        priority_decay_half_life: str | int = "7-0",
        priority_calc_period: str | int = "5",
    ):
        self.path, self.backend, self.cluster_name = path, backend, cluster_name
        self.state = state
        self.partitions, self.modules = partitions or {}, modules or {}
        self.export, self.requeue, self.kill_wait = export or {}, requeue or {}, kill_wait
        self.max_array_size = max_array_size
        self.upload_max_mb = upload_max_mb
        self.acct_gather_frequency = acct_gather_frequency
        self.def_mem_per_cpu = def_mem_per_cpu
        self.constrain_devices = constrain_devices
        self.purge_run_dirs_after = purge_run_dirs_after
        self.purge_job_after, self.agent_log_max_mb = purge_job_after, agent_log_max_mb
        self.strict_env = strict_env
        self.priority_type = priority_type  # None: multifactor on a team, else basic
        self.priority_weight_age = priority_weight_age
        self.priority_weight_fairshare = priority_weight_fairshare
        self.priority_max_age = priority_max_age
        self.priority_decay_half_life = priority_decay_half_life
        self.priority_calc_period = priority_calc_period

    def default_partition(self) -> str | None:
        for name, part in self.partitions.items():
            if part.get("default"):
                return name
        return next(iter(self.partitions), None)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in SCHEMA}


def partition_infras(part: dict) -> list:
    """A partition's infra entries in order (a list's, a set's as written; [None]: any)."""
    infra = part.get("infra")
    if not infra:
        return [None]
    return [infra] if isinstance(infra, str) else list(infra)


def config_path(environ=os.environ) -> str:
    home = environ.get("HOME", os.path.expanduser("~"))
    return environ.get("SLURMSKY_CONFIG") or os.path.join(
        home, ".config", "slurmsky", "config.yaml"
    )


def _is(value, kind) -> bool:
    """isinstance, where a bool is no int."""
    return isinstance(value, kind) and not (isinstance(value, bool) and bool not in _kinds(kind))


def _kinds(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _check(path: str, where: str, data, schema: dict) -> None:
    if not isinstance(data, dict):
        raise SlurmError(
            f"{path}: {where or 'the file'} must be a mapping, got {type(data).__name__}"
        )
    for key, value in data.items():
        entry = schema.get(key, schema.get("*"))
        name = f"{where}.{key}" if where else str(key)
        if entry is None:
            known = ", ".join(k for k in schema if k != "*")
            raise SlurmError(f"{path}: unknown key '{name}' (expected one of: {known})")
        kind = entry[0] if isinstance(entry, tuple) else entry
        if isinstance(entry, tuple) and len(entry) > 2 and value is entry[2]:
            continue  # the value that turns the mapping off (files_home: false)
        if isinstance(kind, dict):
            _check(path, name, value, kind)
        elif not (kind.test(value) if isinstance(kind, Kind) else _is(value, kind)):
            named = " or ".join(k.__name__ for k in _kinds(kind))
            raise SlurmError(f"{path}: '{name}' must be {named} ({entry[1]}), got {value!r}")


def load_config(environ=os.environ) -> Config:
    """The effective configuration; SLURMSKY_BACKEND overrides the file's backend."""
    path = config_path(environ)
    data: dict = {}
    if os.path.exists(path):
        import yaml

        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except (OSError, ValueError, RecursionError, yaml.YAMLError) as exc:  # not UTF-8 text
            raise SlurmError(f"{path}: cannot read the configuration: {exc}") from None
        _check(path, "", data, SCHEMA)
    backend = environ.get("SLURMSKY_BACKEND") or data.get("backend", "local")
    if backend not in BACKENDS:
        raise SlurmError(f"{path}: 'backend' must be one of {', '.join(BACKENDS)}, got {backend!r}")
    data["backend"] = backend
    return Config(path=path, **data)


def dump_yaml(data: dict) -> str:
    """YAML with multi-line strings (a task's run script) as readable `|` blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def str_block(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, str_block)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)
