"""Partitions backed by SkyPilot pools: warm workers (`sky.jobs.pool_apply`) that a
partition's jobs run on without provisioning (`sky.jobs.launch(task, pool=NAME)`).

A pool's jobs get no workdir upload, file mounts or setup of their own (SkyPilot ignores
them; a local file mount would need a cloud bucket), so each job carries the node runtime
in its `run` (bootstrap(): unpacked once per worker and runtime version) and starts in
SkyPilot's run directory on the worker, or in -D where that is a path on the cluster.
A pool worker is one node: multi-node jobs are refused at submission.

Standard library only, but for the SDK calls of `slurmsky pool up/down/status`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import time

from slurmsky.errors import SlurmError
from slurmsky.runtime import PACKAGE_PARENT

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
        resources["accelerators"] = part["accelerators"][0]
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


def _pool(cfg, part_name: str) -> tuple[str, dict]:
    part = cfg.partitions.get(part_name)
    if part is None:
        raise SlurmError(f"invalid partition specified: {part_name}")
    name = pool_of(part_name, part)
    if name is None:
        raise SlurmError(
            f"partition {part_name} has no pool (set partitions.{part_name}.pool in {cfg.path})"
        )
    return name, part


def up(cfg, part_name: str) -> str:
    """Create the partition's pool, or apply its config again (its workers count)."""
    name, part = _pool(cfg, part_name)
    import sky
    from sky.serve import serve_utils

    task = pool_task(part_name, part)
    workers = task["pool"]["workers"]
    with contextlib.redirect_stdout(sys.stderr):  # SkyPilot's table of the resources it chose
        request = sky.jobs.pool_apply(
            sky.Task.from_yaml_config(task), name, mode=serve_utils.UpdateMode.ROLLING
        )
        sky.get(request)
    return f"pool {name} of partition {part_name}: {workers} worker(s) applied"


def down(cfg, part_name: str, wait: float = 600.0) -> str:
    """Take the partition's pool down and wait (at most `wait` s) until SkyPilot lists it no
    more: its workers are gone then."""
    name, _ = _pool(cfg, part_name)
    import sky

    with contextlib.redirect_stdout(sys.stderr):
        sky.get(sky.jobs.pool_down(name))
    deadline = time.monotonic() + wait
    while (found := _found(name)) and time.monotonic() < deadline:
        time.sleep(3)
    if found:
        return f"pool {name} of partition {part_name}: {_value(found.get('status'))}, still going"
    return f"pool {name} of partition {part_name}: down"


def _found(name: str) -> dict | None:
    import sky

    return next((p for p in sky.get(sky.jobs.pool_status(name)) if p.get("name") == name), None)


def status(cfg, part_name: str) -> list[str]:
    """One line for the pool, one per worker (SkyPilot's statuses)."""
    name, _ = _pool(cfg, part_name)

    pool = _found(name)
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
