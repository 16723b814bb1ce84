"""SPEC.json, the front end's instructions to every node, and the facts a node derives from it.

The translator writes one SPEC.json per job; every node of the job runs
``python3 -m slurmsky.runtime node --spec SPEC.json`` with it. Format (version 1; keys marked
optional may be missing, and ``null`` always means "not given")::

    {"version": 1,
     "job_id": int,                  # SLURM_JOB_ID (for arrays: see "array")
     "command": "sbatch"|"srun"|"salloc",  # optional (sbatch): what made the job; in srun's
                                     # own allocation the batch script is that srun
     "job_name": str, "partition": str, "cluster_name": str,
     "partition_infra": [[str|null, str]],  # optional: a job over several partitions
                                     # (-p a,b): (infra, partition) in order; the node's is
                                     # the first whose infra SKYPILOT_CLUSTER_INFO matches
     "job_name_unset": bool,         # optional (false): no name was given (script on stdin):
                                     # SLURM_JOB_NAME is empty and %x is "(null)"
     "account": str|null, "qos": str|null,                  # optional
     "user": str, "uid": int, "gid": int, "submit_dir": str, "submit_host": str,
     "workdir": str|null,            # null: the directory the node runtime was started in
     "script": str,                  # the batch script text, run through its own shebang
     "script_args": [str],           # optional
     "num_nodes": int,
     "ntasks": int|null, "ntasks_per_node": int|null, "cpus_per_task": int|null,  # as asked
     "tasks_per_node": [int, ...],   # per node, block layout (SLURM_TASKS_PER_NODE)
     "cpus_per_node": [int, ...],    # per node (SLURM_JOB_CPUS_PER_NODE, SLURM_CPUS_ON_NODE)
     "mem_per_node": int|null, "mem_per_cpu": int|null,                         # MB, optional
     "gpus": int|null, "gpus_per_node": int|null, "gpus_per_task": int|null,
     "gpu_types": {str: str},        # optional: the GPU type each of those three names
     "gres": str|null,               # optional, e.g. "gpu:2" or "gpu:a100:1"
     "cpus_per_gpu": int|null, "mem_per_gpu": int|null, "exclusive": bool,  # optional
     "gpu_ids": [[str]|null]|null,   # optional, per node: the GPU devices the job holds there
                                     # ([]: none, on a node that has GPUs); null: the node's
                                     # own CUDA_VISIBLE_DEVICES tells (SkyPilot)
     "hide_gpus": bool,              # optional (false): where gpu_ids is [], hide the node's
                                     # devices (CUDA_VISIBLE_DEVICES=""), as ConstrainDevices
     "time_limit": int|null,         # seconds; null = unlimited
     "kill_wait": int,               # optional (30): seconds between SIGTERM and SIGKILL
     "acct_gather_frequency": int|float,  # optional (30): seconds between usage samples
     "signal": null | {"signum": int, "seconds": int, "batch": bool, "full": bool},
     "output": str, "error": str|null, "input": str|null,    # patterns, relative to workdir
     "stdin_relay": str|null,        # optional: an srun-made allocation on the submitting
                                     # machine: the path of that srun's stdin (/proc/PID/fd/0),
                                     # its batch's (the job's srun's) stdin if it opens
     "open_mode": "truncate"|"append",                         # optional (truncate)
     "environment": {str: str}|null, # the job's base environment (--export resolved);
                                     # null: the node's own environment (SkyPilot task envs)
     "extra_env": {str: str},        # optional: SLURM_* the front end fixes, set last
     "login_environment": bool,      # optional, read by the local executor, not here: it
                                     # puts the user's login environment under "environment"
     "node_names": [str]|null,       # optional; null: the node IPs are the names
     "array": null | {"job_id": int, "ranges": str (indexset), "count": int, "throttle": int|null,
                      "step": int,  # step: SLURM_ARRAY_TASK_STEP
                      "task_id": int, "task_job_id": int,  # these two: this element's
                      "lane": [[int, int]]},  # or: a lane's (task_id, job_id), in its order
               # (without them, element SKYPILOT_JOB_RANK of a launch in index order, whose
               # id is job_id + 1 + rank, the last one's job_id; with "lane", element
               # SLURMSKY_LANE_SEQ of it)
     "het": null | [{"job_id": int, "job_name": str, "partition": str,  # optional: a
                      "nodes": [int, int],  # heterogeneous job's components, in order: the
                      "ntasks": int,        # first of the job's nodes that is theirs, and
                      "cpus_per_task": int|null,  # how many; the job's top-level fields are
                      "tasks_per_node": [int], "cpus_per_node": [int],  # component 0's
                      "gpus_per_node": int,  # (a node's partition: the executor's)
                      "mem_per_node": int|null, "mem_per_cpu": int|null,  # (runtime/het.py)
                      "gpus": int|null, "account": str|null, "qos": str|null}],
     "het_component": int|null,      # optional: the component a SkyPilot job group's task
                                     # runs (its nodes join the whole job: het.join_group)
     "requested": {...},             # optional, read by scontrol, not here: the job as
                                     # asked (plan.layout.requested)
     "restart_count": int,           # optional (0): the job's requeues before this run
     "count_runs": bool,             # optional (false): add the earlier runs of this task
                                     # to restart_count (SkyPilot reruns a recovered task:
                                     # node 0 counts its runs: see runs_file)
     "umask": str|null,              # optional, octal ("0022"): umask of the batch script
     "first_step": int,              # optional (0): the id of the job's first srun step (a
                                     # step of an allocation held elsewhere, run alone here)
     "startup_timeout": int|null,    # optional (300): seconds node 0 waits for every agent
     "files_home": null | {"cap_mb": int, "exclude": [str], "interval": int, "left": str}}
                                     # optional (null): the files the job writes in its
                                     # workdir go home through the log (filesync.py); left
                                     # (optional): what becomes of a file past the cap and
                                     # how to fetch it, {path} its shell-quoted path,
                                     # {worker} "-workerN" on node N > 0 (SkyPilot's ssh)

A node's identity comes from SkyPilot's variables (``SKYPILOT_NODE_RANK``,
``SKYPILOT_NODE_IPS``, ``SKYPILOT_NUM_GPUS_PER_NODE``, ``SKYPILOT_JOB_RANK``), exactly as
SkyPilot sets them; without them the node is the only one, on 127.0.0.1.
"""

import json
import os
import socket
import time

from . import indexset

DEFAULTS: dict = {
    "command": "sbatch",
    "account": None,
    "qos": None,
    "job_name_unset": False,
    "script_args": [],
    "workdir": None,
    "ntasks": None,
    "ntasks_per_node": None,
    "cpus_per_task": None,
    "mem_per_node": None,
    "mem_per_cpu": None,
    "gpus": None,
    "gpus_per_node": None,
    "gpus_per_task": None,
    "gpu_types": {},
    "gres": None,
    "cpus_per_gpu": None,
    "mem_per_gpu": None,
    "exclusive": False,
    "gpu_ids": None,
    "hide_gpus": False,
    "time_limit": None,
    "kill_wait": 30,
    "acct_gather_frequency": 30,
    "signal": None,
    "error": None,
    "input": None,
    "stdin_relay": None,
    "open_mode": "truncate",
    "environment": None,
    "extra_env": {},
    "node_names": None,
    "array": None,
    "het": None,
    "het_component": None,
    "restart_count": 0,
    "count_runs": False,
    "umask": None,
    "first_step": 0,
    "startup_timeout": 300,
    "files_home": None,
}
REQUIRED = (
    "job_id",
    "job_name",
    "partition",
    "cluster_name",
    "user",
    "uid",
    "gid",
    "submit_dir",
    "submit_host",
    "script",
    "num_nodes",
    "tasks_per_node",
    "cpus_per_node",
    "output",
)
# Variables of SkyPilot's own Slurm allocation (on Slurm infra) and of the runtime itself: they
# must not reach a job whose environment is taken from the node.
NODE_PRIVATE_PREFIXES = ("SLURM_", "SLURMD_", "SRUN_", "SBATCH_", "SALLOC_")
SECRET_VAR = "SLURMSKY_STEP_SECRET"


class SpecError(Exception):
    """SPEC.json or SkyPilot's variables do not describe a job this node can run."""


def load(path):
    """Read SPEC.json and fill the optional keys."""
    with open(path) as f:
        return complete(json.load(f))


def complete(spec):
    """A spec (a dict, changed in place) checked, with its optional keys filled."""
    if spec.get("version") != 1:
        raise SpecError("unsupported spec version %r" % spec.get("version"))
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise SpecError("spec lacks %s" % ", ".join(missing))
    for key, value in DEFAULTS.items():
        if spec.get(key) is None:
            spec[key] = value
    return spec


def on_node(spec, environ, run_dir, rank):
    """The spec as this run of the job sees it: the partition it runs in (of a job over
    several, by SKYPILOT_CLUSTER_INFO's cloud, region and zone) and, with count_runs, its
    restart count: the spec's plus the earlier runs of this task (SkyPilot reruns the same
    task after a recovery: node 0 counts its runs in runs_file)."""
    pairs = spec.get("partition_infra")
    if pairs:
        try:
            info = json.loads(environ.get("SKYPILOT_CLUSTER_INFO") or "{}")
        except ValueError:
            info = {}
        at = (info.get("cloud"), info.get("region"), info.get("zone"))
        spec["partition"] = next((p for i, p in pairs if infra_matches(i, *at)), pairs[0][1])
    if spec.get("count_runs") and run_dir and rank == 0:
        path = runs_file(run_dir, environ)
        try:
            with open(path) as f:
                runs = int(f.read().strip() or 0)
        except (OSError, ValueError):
            runs = 0
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _prune(os.path.dirname(path))
        with open(path, "w") as f:
            f.write("%d\n" % (runs + 1))
        spec["restart_count"] = (spec.get("restart_count") or 0) + runs
    return spec


RUNS_KEPT = 30 * 86400  # seconds a run count outlives its last run beside SkyPilot's clusters


def runs_file(run_dir, environ):
    """Where node 0 counts the runs of its task. On Slurm infra $HOME is SkyPilot's cluster
    home, BASE/.sky_clusters/<cluster>, which SkyPilot deletes with the allocation (a
    preemption too), while BASE is shared and stays: the count is BASE/.slurmsky/runs/<run
    dir under $HOME>. Elsewhere RUNDIR/runs (a recovered VM or pod starts afresh)."""
    home = (environ.get("HOME") or "").rstrip("/")
    clusters = os.path.dirname(home)
    if home and os.path.basename(clusters) == ".sky_clusters" and run_dir.startswith(home + "/"):
        key = os.path.relpath(run_dir, home).replace(os.sep, "+")
        return os.path.join(os.path.dirname(clusters), ".slurmsky", "runs", key)
    return os.path.join(run_dir, "runs")


def _prune(directory):
    """Forget the run counts of tasks that have not run for RUNS_KEPT (a shared BASE's)."""
    if not directory.endswith(os.path.join(".slurmsky", "runs")):
        return
    old = time.time() - RUNS_KEPT
    for entry in os.scandir(directory):
        try:
            if entry.stat().st_mtime < old:
                os.unlink(entry.path)
        except OSError:
            pass


def infra_matches(infra, cloud, region, zone):
    """Whether SkyPilot's infra string (aws, gcp/us-central1, k8s/<context>, slurm/c/p, *)
    names a cluster on `cloud` (SkyPilot's name: AWS, Kubernetes), `region`, `zone`."""
    if not infra:
        return True
    head, _, rest = infra.partition("/")
    head = {"k8s": "kubernetes"}.get(head.lower(), head.lower())
    if head not in ("*", (cloud or "").lower()):
        return False
    wanted = [rest] if head == "kubernetes" else rest.split("/")
    return all(w in ("", "*", got) for w, got in zip(wanted, (region, zone)))


class Job:
    """What every node knows about the job: the spec plus this node's SkyPilot identity."""

    def __init__(self, spec, environ):
        self.spec = spec
        self.rank = int(environ.get("SKYPILOT_NODE_RANK") or 0)
        ips = environ.get("SKYPILOT_NODE_IPS") or "127.0.0.1"
        self.ips = [ip.strip() for ip in ips.splitlines() if ip.strip()]
        self.num_nodes = len(self.ips)
        if not 0 <= self.rank < self.num_nodes:
            raise SpecError("node rank %d outside SKYPILOT_NODE_IPS" % self.rank)
        for key in ("tasks_per_node", "cpus_per_node"):
            if len(spec[key]) != self.num_nodes:
                raise SpecError(
                    "%s has %d entries for %d nodes" % (key, len(spec[key]), self.num_nodes)
                )
        self.ip = self.ips[self.rank]
        self.names = list(spec["node_names"] or self.ips)  # node 0 settles them: settle_names
        self.skypilot_gpus = int(environ.get("SKYPILOT_NUM_GPUS_PER_NODE") or 0)
        array = spec["array"]
        # A task launched as `slurmsky translate` printed it has no Slurm ids: SkyPilot's
        # managed job id stands in (a num_jobs batch has consecutive ids, rank order).
        sky_id = int(environ.get("SKYPILOT_MANAGED_JOB_ID") or 0)
        if array:
            var = "SLURMSKY_LANE_SEQ" if "lane" in array else "SKYPILOT_JOB_RANK"
            element = int(environ.get(var) or 0)
            count = len(array["lane"]) if "lane" in array else array["count"]
            if element >= count:
                raise SpecError("%s %d: the array has %d elements" % (var, element, count))
            self.array_task_id, self.job_id = _element(array, element, sky_id)
            self.array_job_id = array["job_id"] if array["job_id"] is not None else sky_id - element
        else:
            self.array_job_id = self.array_task_id = None
            self.job_id = spec["job_id"] if spec["job_id"] is not None else sky_id
        self.workdir = spec["workdir"] or os.getcwd()
        self.kill_wait = spec["kill_wait"]

    @property
    def name(self):
        return self.names[self.rank]

    def gpu_ids(self):
        """The GPU devices the job holds on this node (a list, maybe empty), or None when the
        node's own environment tells (SkyPilot's nodes, local nodes without GPUs)."""
        ids = self.spec["gpu_ids"]
        return ids[self.rank] if ids else None

    def gpus_on_node(self):
        """GPUs of this node, or None when the job asked for none (SLURM_GPUS_ON_NODE)."""
        spec = self.spec
        if self.gpu_ids() is not None:
            return len(self.gpu_ids()) or None
        asked = _gres_gpus(spec["gres"])
        if not (spec["gpus"] or spec["gpus_per_node"] or spec["gpus_per_task"] or asked):
            return None
        if self.skypilot_gpus:
            return self.skypilot_gpus
        if spec["gpus_per_node"]:
            return spec["gpus_per_node"]
        if asked:
            return asked
        if spec["gpus"]:
            return -(-spec["gpus"] // self.num_nodes)
        return spec["gpus_per_task"] * spec["tasks_per_node"][self.rank]


def _element(array, rank, sky_id):
    """(index, job id) of an array's element (`sky_id` for a task with no Slurm ids)."""
    if "task_id" in array:
        return array["task_id"], array["task_job_id"]
    if "lane" in array:
        return tuple(array["lane"][rank])
    index = indexset.at(indexset.parse(array["ranges"]), rank)
    first = array["job_id"]
    if first is None:
        return index, sky_id
    return index, (first + 1 + rank if rank < array["count"] - 1 else first)


def _gres_gpus(gres):
    """GPUs per node in a --gres value (``gpu:2``, ``gpu:a100:1``, ``gpu``), else 0."""
    for item in (gres or "").split(","):
        parts = item.split(":")
        if parts[0] == "gpu":
            return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return 0


def settle_names(job):
    """The node names the job uses (node 0 decides, agents are told).

    Names become MASTER_ADDR, so they must resolve to their node on every node: the spec's
    names are kept only if each resolves to its node's IP here; otherwise the IPs are the
    names (always resolvable)."""
    wanted = job.spec["node_names"]
    if not wanted:
        return list(job.ips)
    for name, ip in zip(wanted, job.ips):
        if name != ip and ip not in _addresses(name):
            return list(job.ips)
    return list(wanted)


def _addresses(name):
    try:
        return {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return set()
