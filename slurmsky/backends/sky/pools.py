"""Partitions backed by SkyPilot pools: warm workers (`sky.jobs.pool_apply`) that a
partition's jobs run on without provisioning (`sky.jobs.launch(task, pool=NAME)`).

A pool's jobs get no workdir upload, file mounts or setup of their own (SkyPilot ignores
them; a local file mount would need a cloud bucket), so each job carries the node runtime
in its `run` (bootstrap(): unpacked once per worker and runtime version) and starts in
SkyPilot's run directory on the worker, or in -D where that is a path on the cluster.
A pool worker is one node: multi-node jobs are refused at submission.

What sinfo shows. The agent asks SkyPilot for the pools of the configured partitions as it
asks for the queue (`sky.jobs.pool_status`, watcher.PoolWatcher) and records the answer in
POOLS_FILE (record()); sinfo and scontrol read that file (worker_nodes()), never SkyPilot.
Each worker is a node named as SkyPilot names its cluster (`POOL-REPLICA_ID`, e.g.
`slurmsky-warm-1`: unique across pools, stable while the worker lives, a fresh name for a
replacement, and `scontrol show hostnames` expands `slurmsky-warm-[1-2]`), in Slurm's word
for its state: READY idle / mix / alloc by the CPUs its jobs use; coming up (PENDING,
PROVISIONING, STARTING) idle#, a cloud node powering up, which Slurm counts idle and will
run jobs on once up (SkyPilot keeps a pool's jobs until a worker is READY); NOT_READY not
responding (idle*, mix*, alloc*); SHUTTING_DOWN idle%, powering down; failed or preempted
down. Its CPUs, memory and GPU are SkyPilot's account of the worker (resources_str_full,
made by the API server from the worker's launched resources), else the partition's.

Which server. A pool lives on one SkyPilot API server: `slurmsky pool up` makes it on the
server its own environment names and records that server with the pool (SERVERS_FILE); its
jobs (sbatch records the pool's server with them), `pool down/status` and the agent's
status queries go there, whatever their own environment names.

Standard library only: `slurmsky pool up/down/status` call SkyPilot through client.CLIENT.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import time

from slurmsky.backends import NodeState
from slurmsky.backends.sky.server import Server
from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.runtime import PACKAGE_PARENT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from slurmsky.config import Config
    from slurmsky.core.state import JobRecord

SERVERS_FILE = (
    "sky-pool-servers.json"  # {pool name: Server.record()} (0600: URLs may hold credentials)
)
POOLS_FILE = "sky-pools.json"  # {"pools": {name: {"status", "at", "workers"}}, "asked": {name: at}}
# SkyPilot's ReplicaStatus -> the node's state; None: idle, mix or alloc by the CPUs in use,
# "*": that, not responding. Any other status (FAILED*, PREEMPTED, UNKNOWN) is down.
WORKER_STATES = {
    "READY": None,
    "NOT_READY": "*",
    "PENDING": "idle#",
    "PROVISIONING": "idle#",
    "STARTING": "idle#",
    "SHUTTING_DOWN": "idle%",
}
_RESOURCE = r"\b{}=([0-9.]+)"  # in resources_str_full: "1x(gpus=H100:1, cpus=8, mem=32, ...)"
_GPUS = r"\bgpus=([^,\s)]+)"

BOOTSTRAP_EOF = "SLURMSKY_RUNTIME_EOF"
# Reads the base64 tarball on stdin; argv = where the package goes, the version marker.
UNPACK = (
    "import base64, io, os, shutil, sys, tarfile, tempfile\n"
    "home, marker = sys.argv[1], sys.argv[2]\n"
    "os.makedirs(home, exist_ok=True)\n"
    "tmp = tempfile.mkdtemp(dir=home)\n"
    "tarfile.open(fileobj=io.BytesIO(base64.b64decode(sys.stdin.read()))).extractall(tmp)\n"
    "shutil.rmtree(os.path.join(home, 'slurmsky'), ignore_errors=True)\n"
    "os.rename(os.path.join(tmp, 'slurmsky'), os.path.join(home, 'slurmsky'))\n"
    "os.rmdir(tmp)\n"
    "open(os.path.join(home, marker), 'w').close()\n"
)


def pool_of(part_name: str, part: dict) -> str | None:
    """The SkyPilot pool a partition runs on (None: every job is a managed job of its own)."""
    pool = part.get("pool")
    if pool is None:
        return None
    name = pool.get("name") or "slurmsky-" + re.sub(r"[^a-z0-9-]+", "-", part_name.lower())
    return name.strip("-")[:40]


def refuse_shape(part_name: str, num_nodes: int) -> None:
    """A pool worker is one node."""
    if num_nodes > 1:
        raise SlurmError(
            "Batch job submission failed: Requested node configuration is not available "
            f"(partition {part_name} runs on SkyPilot pool workers of one node each; "
            f"-N {num_nodes} needs a partition without a pool)"
        )


@functools.lru_cache(maxsize=1)
def _payload() -> tuple[str, str]:
    """(version, base64 tar.gz) of the node runtime: slurmsky/__init__.py and runtime/*.py."""
    import base64
    import hashlib
    import io
    import tarfile

    root = os.path.join(PACKAGE_PARENT, "slurmsky")
    names = ["__init__.py"] + sorted(
        os.path.join("runtime", n)
        for n in os.listdir(os.path.join(root, "runtime"))
        if n.endswith(".py")
    )
    digest, buf = hashlib.sha256(), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for name in names:
            with open(os.path.join(root, name), "rb") as fh:
                data = fh.read()
            digest.update(name.encode() + b"\0" + data)
            info = tarfile.TarInfo(os.path.join("slurmsky", name))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return digest.hexdigest()[:16], base64.b64encode(buf.getvalue()).decode()


def bootstrap(runtime_home: str) -> str:
    """Shell lines that put this node runtime under `runtime_home` (a `~/` path) unless the
    worker has this version already."""
    version, data = _payload()
    home = '"$HOME' + runtime_home[1:] + '"'
    marker = f".version-{version}"
    lines = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    return (
        f"if [ ! -e {home}/{marker} ]; then\n"
        f"  python3 -c {_quote(UNPACK)} {home} {marker} <<'{BOOTSTRAP_EOF}' || exit 1\n"
        f"{lines}\n"
        f"{BOOTSTRAP_EOF}\n"
        "fi\n"
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def partition_resources(part: dict) -> dict:
    """The resources of a partition's pool workers (what its jobs get when they ask none)."""
    keys = ("infra", "cpus", "memory", "use_spot", "image_id", "disk_size", "labels")
    resources = {k: part[k] for k in keys if part.get(k) is not None}
    if part.get("accelerators"):
        accelerators = part["accelerators"]
        resources["accelerators"] = (
            accelerators if isinstance(accelerators, str) else next(iter(accelerators))
        )
    return resources


def pool_task(part_name: str, part: dict) -> dict:
    """The task `sky.jobs.pool_apply` takes for a partition: its resources, the pool's
    workers and setup."""
    pool = part["pool"]
    task: dict = {"name": pool_of(part_name, part), "pool": {"workers": pool.get("workers", 1)}}
    resources = partition_resources(part)
    if resources:
        task["resources"] = resources
    if pool.get("setup"):
        task["setup"] = pool["setup"]
    return task


def named_pool(cfg, part_name: str) -> tuple[str, dict]:
    """The pool of the partition `part_name`, and the partition (a SlurmError if none)."""
    part = cfg.partitions.get(part_name)
    if part is None:
        raise SlurmError(f"invalid partition specified: {part_name}")
    name = pool_of(part_name, part)
    if name is None:
        raise SlurmError(
            f"partition {part_name} has no pool (set partitions.{part_name}.pool in {cfg.path})"
        )
    return name, part


def server_of(name: str | None) -> Server | None:
    """The server pool `name` was made on (None: no pool, or no `pool up` recorded one)."""
    import json

    if not name:
        return None
    try:
        with open(os.path.join(state.home(), SERVERS_FILE)) as fh:
            found = json.load(fh).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return Server.of(found) if isinstance(found, dict) and found.get("url") else None


def _remember(name: str, where: Server | None) -> None:
    """Record (None: forget) the server pool `name` is on."""
    import json

    state.ensure_home()
    path = os.path.join(state.home(), SERVERS_FILE)
    try:
        with open(path) as fh:
            known = dict(json.load(fh))
    except (OSError, ValueError, TypeError):
        known = {}
    if where is None:
        known.pop(name, None)
    else:
        known[name] = where.record()
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        json.dump(known, fh)
    os.replace(tmp, path)


def by_server(names: list[str], default: Server) -> list[tuple[Server, list[str]]]:
    """Pools grouped by the server each is on (`default` for those none was recorded for)."""
    groups: dict[str, tuple[Server, list[str]]] = {}
    for name in names:
        where = server_of(name) or default
        groups.setdefault(where.name, (where, []))[1].append(name)
    return list(groups.values())


def up(cfg, part_name: str, where: Server) -> str:
    """Create the partition's pool on `where` (the command's server), or apply its config
    again (its workers count); `where` is recorded as the pool's server."""
    name, part = named_pool(cfg, part_name)
    from slurmsky.backends.sky.client import CLIENT

    task = pool_task(part_name, part)
    workers = task["pool"]["workers"]
    CLIENT.pool_apply(where, task, name)
    _remember(name, where)
    return f"pool {name} of partition {part_name}: {workers} worker(s) applied"


def down(cfg, part_name: str, where: Server, wait: float = 600.0) -> str:
    """Take the partition's pool down on `where` (its server) and wait (at most `wait` s)
    until SkyPilot lists it no more: its workers are gone then. SkyPilot leaves a pool up
    while a job in it has not ended (saying so only in its request's log), so the request
    is made again while the jobs end (a scancel just made takes a while); a SlurmError if
    they never do."""
    name, _ = named_pool(cfg, part_name)
    deadline = time.monotonic() + wait
    said = False
    while (jobs := _down(where, name)) and time.monotonic() < deadline:
        if not said:
            print(
                f"slurmsky pool: waiting for {len(jobs)} job(s) in pool {name} to end",
                file=sys.stderr,
            )
            said = True
        time.sleep(5)
    if jobs:
        raise SlurmError(
            f"pool {name} of partition {part_name} is still up: SkyPilot jobs "
            f"{','.join(jobs)} in it have not ended; scancel them, then pool down again"
        )
    while (found := _found(where, name)) and time.monotonic() < deadline:
        time.sleep(3)
    with contextlib.suppress(OSError):  # what sinfo shows; the pool is down either way
        record([found] if found else [], [name], time.time())
    if found:
        return f"pool {name} of partition {part_name}: {_value(found.get('status'))}, still going"
    with contextlib.suppress(OSError):
        _remember(name, None)
    return f"pool {name} of partition {part_name}: down"


def _down(where: Server, name: str) -> list[str]:
    """Ask SkyPilot to take the pool down: the ids of the pool's jobs that keep it up."""
    from slurmsky.backends.sky.client import CLIENT

    held = re.search(r"has \d+ nonterminal jobs: ([\d,]+)", CLIENT.pool_down(where, name))
    return held.group(1).split(",") if held else []


def _found(where: Server, name: str) -> dict | None:
    from slurmsky.backends.sky.client import CLIENT

    return next((p for p in CLIENT.pool_status(where, [name]) if p.get("name") == name), None)


def status(cfg, part_name: str, where: Server) -> list[str]:
    """One line for the pool, one per worker (SkyPilot's statuses), as `where` has it."""
    name, _ = named_pool(cfg, part_name)

    pool = _found(where, name)
    with contextlib.suppress(OSError):  # sinfo shows it at once
        record([pool] if pool else [], [name], time.time())
    if pool is None:
        return [f"pool {name} of partition {part_name}: not up (`slurmsky pool up {part_name}`)"]
    lines = [f"pool {name} of partition {part_name}: {_value(pool.get('status'))}"]
    for worker in pool.get("replica_info") or []:
        used = worker.get("used_by") or []
        jobs = ", ".join(str(j) for j in ([used] if isinstance(used, (int, str)) else used))
        lines.append(
            f"  worker {worker.get('replica_id')}: {_value(worker.get('status'))}"
            + (f", running SkyPilot job {jobs}" if jobs else "")
        )
    return lines


def _value(status) -> str:
    return getattr(status, "value", status) or "?"


# --- what sinfo shows: the agent records SkyPilot's answer, the readers read it ---------------


def configured_pools(cfg: Config) -> list[str]:
    """The pool names of the configured partitions that have one."""
    names = (pool_of(name, part) for name, part in (cfg.partitions or {}).items())
    return sorted({name for name in names if name})


def record(answer: list[dict], names: list[str], at: float) -> None:
    """Keep what `sky.jobs.pool_status` answered (at `at`) for the pools `names`: each one
    the answer holds replaces its record, each one it lacks is not up (its record goes);
    the other pools' records stay. Written atomically, as sync.record_sync does."""
    import json

    found = {rec.get("name"): rec for rec in answer}
    pools, asked = _read()
    for name in names:
        if at < asked.get(name, 0.0):  # a newer answer is recorded (`pool down` saw it gone)
            continue
        asked[name] = at
        rec = found.get(name)
        if rec is None:
            pools.pop(name, None)
            continue
        pools[name] = {
            "status": _value(rec.get("status")),
            "at": at,
            "workers": [_worker(info) for info in rec.get("replica_info") or []],
        }
    state.ensure_home()
    path = os.path.join(state.home(), POOLS_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"  # the agent and `slurmsky pool` may both write
    with open(tmp, "w") as fh:
        json.dump({"pools": pools, "asked": asked}, fh)
    os.replace(tmp, path)


def recorded() -> dict:
    """pool name -> its last record (none for a pool not up, or never asked about)."""
    return _read()[0]


def _read() -> tuple[dict, dict]:
    """(the records, pool name -> when the answer recorded for it was asked)."""
    try:
        with open(os.path.join(state.home(), POOLS_FILE)) as fh:
            text = fh.read()
    except OSError:
        return {}, {}
    import json

    try:
        data = json.loads(text)
        return dict(data.get("pools") or {}), dict(data.get("asked") or {})
    except (ValueError, AttributeError, TypeError):
        return {}, {}


def _worker(info: dict) -> dict:
    """One worker of SkyPilot's record (replica_info), JSON-able: what sinfo needs of it."""
    import re

    used = info.get("used_by")
    used = [] if used is None else [used] if isinstance(used, (int, str)) else list(used)
    text = info.get("resources_str_full") or info.get("resources_str") or ""
    cpus = re.search(_RESOURCE.format("cpus"), text)
    mem = re.search(_RESOURCE.format("mem"), text)
    gpus = re.search(_GPUS, text)
    return {
        "id": info.get("replica_id"),
        "name": info.get("name"),
        "status": _value(info.get("status")),
        "used_by": [int(j) for j in used if str(j).isdigit()],
        "launched_at": info.get("launched_at"),
        "cpus": float(cpus.group(1)) if cpus else None,
        "mem_gb": float(mem.group(1)) if mem else None,
        "gpus": gpus.group(1) if gpus else None,
    }


def worker_nodes(pool: str, part: dict, running: list[JobRecord]) -> list[NodeState] | None:
    """The pool's workers as the partition's nodes, from the last record; None when there is
    none (the pool is not up, or the agent never asked)."""
    rec = recorded().get(pool)
    if rec is None:
        return None
    by_sky_id = {
        (job.executor_ref or {}).get("sky_job_id"): job
        for job in running
        if (job.executor_ref or {}).get("sky_job_id") is not None
    }
    nodes = []
    part_cpus, part_mem = partition_shape(part)
    for worker in rec.get("workers") or []:
        cpus = _count(worker.get("cpus")) or part_cpus
        mem_gb = worker.get("mem_gb")
        mem = part_mem if mem_gb is None else round(mem_gb * 1024)
        used = 0
        for sky_id in worker.get("used_by") or []:
            job = by_sky_id.get(sky_id)
            # a job of SkyPilot's that slurmsky does not show running (yet): the whole worker
            used += job.cpus_per_node[0] if job is not None else cpus
        used = min(used, cpus)
        word = WORKER_STATES.get(worker.get("status"), "down")
        if word == "*":
            word = ("idle" if not used else "alloc" if used >= cpus else "mix") + "*"
        name = worker.get("name") or f"{pool}-{worker.get('id')}"
        nodes.append(
            NodeState(
                name,
                cpus,
                used if word is None or word.endswith("*") else 0,
                mem,
                gres=_gres(worker.get("gpus") or _partition_gpus(part)),
                state=word,
                remote=True,
                boot_time=worker.get("launched_at"),
            )
        )
    return nodes


def partition_shape(part: dict) -> tuple[int, int]:
    """CPUs and MB of memory of a partition's node as its config asks them (1 CPU, 0 MB
    where it asks none)."""
    return _count(part.get("cpus")) or 1, (_count(part.get("memory")) or 0) * 1024


def _count(value) -> int | None:
    """The whole number a SkyPilot count starts with ('4+', '8', 2.0), if any."""
    import re

    found = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", str(value)) if value is not None else None
    return int(float(found.group(1))) if found else None


def _partition_gpus(part: dict) -> str | None:
    accelerators = part.get("accelerators") or []
    return str(accelerators[0]) if accelerators else None


def _gres(gpus: str | None) -> str | None:
    """Slurm's typed GRES of a SkyPilot accelerator spec: H100:2 -> gpu:H100:2 (one if no
    count is given)."""
    if not gpus:
        return None
    kind, _, count = gpus.partition(":")
    return f"gpu:{kind}:{_count(count) or 1}"
