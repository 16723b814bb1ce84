"""SkyPilot's managed-job queue in Slurm's words, and how the read-side commands wait for it.

Standard library only: squeue, sacct and scontrol import this, never SkyPilot. The agent's
sky executor (executor.py, its QueueWatcher) queries `sky.jobs.queue_v2` and writes what it learns into
slurmsky's state with the functions here; the readers only read the state.

Freshness. Readers never wait for SkyPilot: they answer from the state and only say they
are there (`refresh()` touches REQUEST_FILE and wakes the agent if it is stale). The agent
queries every SYNC_INTERVAL s (one query costs ~2.5 s of API-server time) while slurmsky's
own SkyPilot jobs are active, and while readers came within READERS_IDLE s (then foreign jobs
are kept fresh too); with neither it stops querying and, with nothing else to do, exits. So
the state is at most SYNC_INTERVAL (+ one query) old while anything is active and read, and
the first read after a quiet spell shows the last state known (it wakes the agent).

Foreign jobs. A SkyPilot managed job this state directory did not submit (its
`_metadata.slurmsky.instance` is not ours) is shown as job FOREIGN_BASE + its SkyPilot id,
e.g. 1000000007 for SkyPilot job 7. slurmsky allocates its ids upward from 1 and would need a
billion submissions to reach that range, so the two never collide; `scontrol show job` prints
the SkyPilot id as SkyPilotJobId.
"""

from __future__ import annotations

import os
import time

from slurmsky.core import state

FOREIGN_BASE = 1_000_000_000
SYNC_INTERVAL = 5.0  # s between queries while own jobs are active or readers come
READERS_IDLE = 60.0  # s after the last read that the agent keeps foreign jobs fresh
SYNC_FILE = "sky-sync.json"  # {"attempt": t, "ok": t, "error": text|null, "servers": {name: ok t}}
REQUEST_FILE = "sky-sync.request"  # touched by readers that need a sync
INSTANCE_FILE = "sky-instance"  # this state directory's id in the tasks' _metadata

# SkyPilot ManagedJobStatus -> Slurm state, for jobs SkyPilot has not finished.
ACTIVE = {
    "PENDING": "PENDING",
    "SUBMITTED": "PENDING",
    "STARTING": "CONFIGURING",
    "RUNNING": "RUNNING",
    "RECOVERING": "REQUEUED",
    "WINDING_DOWN": "COMPLETING",
    "CANCELLING": "COMPLETING",
}
# Not yet being launched. From STARTING on the agent follows the log (tail_logs waits for
# the job to run), so a short job's output is live even when the queue answers late.
QUEUED_THERE = ("PENDING", "SUBMITTED")
# the reason of a job handed on whose launch SkyPilot does not list yet (Resources once it does)
LAUNCHING = "SkyPilotLaunching"
# ... and for finished ones; those in SHOW_REASON carry SkyPilot's failure_reason as Reason.
FINAL = {
    "SUCCEEDED": "COMPLETED",
    "CANCELLED": "CANCELLED",
    "FAILED": "FAILED",
    "FAILED_SETUP": "FAILED",
    "FAILED_PRECHECKS": "FAILED",
    "FAILED_NO_RESOURCE": "FAILED",
    "FAILED_CONTROLLER": "NODE_FAIL",
}
SHOW_REASON = ("FAILED_SETUP", "FAILED_PRECHECKS", "FAILED_NO_RESOURCE", "FAILED_CONTROLLER")

# Patterns for re's own cache: re (and json) are imported where used, never by squeue's and
# sacct's check of the sync file on the local backend.
_ANSI = r"\x1b\[[0-9;]*[A-Za-z]"
_EXIT_CODE = r"exit code (\d+)"
_NODES = r"^(\d+)x"
_CPUS = r"CPU:(\d+)"


def _path(name: str) -> str:
    return os.path.join(state.home(), name)


# --- freshness ------------------------------------------------------------------------------


def sync_status() -> dict:
    never = {"attempt": 0.0, "ok": 0.0, "error": None}
    try:
        with open(_path(SYNC_FILE)) as fh:
            text = fh.read()
    except OSError:
        return never  # (without importing json: squeue asks on the local backend too)
    import json

    try:
        return json.loads(text)
    except ValueError:
        return never


def record_sync(started: float, error: str | None, server: str | None = None) -> None:
    """The agent, after each query (of `server`'s queue): when it started and whether it
    answered; `servers` holds when each server's last answered."""
    status = sync_status()
    status.update(attempt=started, error=error)
    if error is None:
        status["ok"] = started
        if server is not None:
            status.setdefault("servers", {})[server] = started
    import json

    tmp = _path(SYNC_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(status, fh)
    os.replace(tmp, _path(SYNC_FILE))


def last_read() -> float:
    """When a reader last came (0 if never)."""
    try:
        return os.stat(_path(REQUEST_FILE)).st_mtime
    except FileNotFoundError:
        return 0.0


def readers_recent(now: float) -> bool:
    return now - last_read() <= READERS_IDLE


def in_use() -> bool:
    """Whether this state directory follows SkyPilot (cheap: no YAML unless it must)."""
    backend = os.environ.get("SLURMSKY_BACKEND")
    if backend:
        return backend == "sky"
    if os.path.exists(_path(SYNC_FILE)):
        return True
    from slurmsky.config import config_path, load_config

    try:
        with open(config_path(), "rb") as fh:
            if b"sky" not in fh.read():  # cannot select it: spare squeue the YAML parser
                return False
    except OSError:
        return False
    return load_config().backend == "sky"


def refresh() -> None:
    """For squeue, sacct and scontrol: say a reader is here (the agent keeps the state fresh
    while readers come) and wake the agent when the state is older than SYNC_INTERVAL. Never
    waits, never imports SkyPilot."""
    if not in_use():
        return
    now = time.time()
    try:
        os.utime(_path(REQUEST_FILE))
    except FileNotFoundError:
        state.ensure_home()
        with open(_path(REQUEST_FILE), "w"):
            pass
    if now - sync_status()["attempt"] > SYNC_INTERVAL:
        from slurmsky.core.daemon import wake

        wake()


def instance_id() -> str:
    """This state directory's id, written into every task it launches (created once)."""
    path = _path(INSTANCE_FILE)
    state.ensure_home()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path) as fh:
            return fh.read().strip()
    import uuid

    with os.fdopen(fd, "w") as fh:
        fh.write(uuid.uuid4().hex)
    with open(path) as fh:
        return fh.read().strip()


# --- one SkyPilot record in Slurm's words -----------------------------------------------------


def clean(text: str | None) -> str:
    """SkyPilot's failure_reason without colour codes, on one line."""
    import re

    return " ".join(re.sub(_ANSI, "", text or "").split())


def job_view(records: list[dict]) -> dict:
    """One job's record out of its tasks' (pipelines have several): the first unfinished task,
    else the first that failed, else the last. A job group's (a heterogeneous job's) is its
    primary task's, task 0, which runs the batch script (SkyPilot cancels the others when it
    ends), with every task's record under "tasks"."""
    records = sorted(records, key=lambda r: r.get("task_id") or 0)
    meta = (records[0].get("metadata") or {}).get("slurmsky") or {}
    if meta.get("het_offset") is not None:
        return dict(records[0], tasks=records)
    for rec in records:
        if rec["status"] not in FINAL:
            return rec
    for rec in records:
        if rec["status"] not in ("SUCCEEDED", "CANCELLED"):
            return rec
    return records[-1]


def active_fields(rec: dict, job: state.JobRecord | None, now: float) -> dict:
    """Columns for a job SkyPilot still has: state, start time, nodes."""
    new = ACTIVE.get(rec["status"], "PENDING")
    fields: dict = {"state": new}
    if new == "PENDING":  # SkyPilot has its launch: it waits for nodes
        reason = "Resources" if job and job.reason == LAUNCHING else job.reason if job else "None"
        fields.update(start_time=None, reason=reason)
    elif job and job.state == "REQUEUED" and new != "REQUEUED":
        fields.update(reason="None", start_time=now)  # its run after a recovery starts now
    else:
        fields["reason"] = "None"
        started = job.start_time if job and job.state != "PENDING" else None
        fields["start_time"] = started or rec.get("start_at") or now
    fields.update(node_fields(rec))
    return fields


def node_fields(rec: dict) -> dict:
    """The nodes SkyPilot names for a job (nodelist, batch host), if it names any."""
    if not rec.get("node_names"):
        return {}
    from slurmsky.runtime import hostlist

    names = rec["node_names"].split(",")
    return {"nodelist": hostlist.compress(names), "batch_host": names[0]}


def group_names(rec: dict) -> list[str] | None:
    """A job group's node names, every task's in task order (the heterogeneous job's nodes:
    its components' in order), once SkyPilot names them all; else None."""
    tasks = rec.get("tasks")
    if not tasks or not all(t.get("node_names") for t in tasks):
        return None
    return [n for t in tasks for n in t["node_names"].split(",")]


def named_steps(result: dict, names: list[str]) -> dict:
    """`result` with its steps' nodes named as SkyPilot names the job's nodes (rank -> name),
    as squeue and sacct name the job's, not by the IPs the job used inside."""
    from slurmsky.runtime import hostlist

    def named(step: dict) -> dict:
        ranks = [0] if step.get("id") == "batch" else step.get("ranks")
        if not ranks or max(ranks) >= len(names):  # a RESULT from before ranks, or no names
            return step
        return dict(step, nodes=hostlist.compress([names[r] for r in ranks]))

    if not result.get("steps"):
        return result
    return dict(result, steps=[named(step) for step in result["steps"]])


def result_of(rec: dict, marker: dict | None) -> dict:
    """The RESULT of a job SkyPilot finished: the node runtime's own (from the log marker) when
    there is one, else what SkyPilot's status and failure_reason say, with what of the job's
    files did not come home (`files_home`, from its log) either way."""
    status = rec["status"]
    end = rec.get("end_at") or time.time()
    if marker and marker.get("state") and status not in ("CANCELLED", "FAILED_CONTROLLER"):
        names = group_names(rec) or (rec.get("node_names") or "").split(",")
        if names != [""]:
            marker = named_steps(marker, names)
        return dict(marker, end=marker.get("end") or end)
    reason = clean(rec.get("failure_reason"))
    code = 0
    if status in ("FAILED", "FAILED_SETUP", "FAILED_PRECHECKS", "FAILED_NO_RESOURCE"):
        import re

        found = re.search(_EXIT_CODE, reason)
        code = int(found.group(1)) if found else 1
    result = {
        "state": FINAL[status],
        "exit_code": code,
        "signal": 0,
        "start": rec.get("start_at"),
        "end": end,
        "reason": reason if status in SHOW_REASON and reason else None,
    }
    if marker and marker.get("files_home"):
        result["files_home"] = marker["files_home"]
    return result


def foreign_row(rec: dict, own_user_hash: str | None) -> dict:
    """A `jobs` row for a SkyPilot job slurmsky did not submit (FOREIGN_BASE + its id)."""
    job_id = FOREIGN_BASE + int(rec["job_id"])
    import re

    nodes = re.match(_NODES, rec.get("resources") or "")
    cpus = re.search(_CPUS, rec.get("resources") or "")
    num_nodes = int(nodes.group(1)) if nodes else 1
    cpus_per_node = int(cpus.group(1)) if cpus else 1
    mine = own_user_hash is not None and rec.get("user_hash") == own_user_hash
    return dict(
        job_id=job_id,
        submission=job_id,
        name=rec.get("job_name") or "sky-job",
        user=rec.get("user_name") or "unknown",
        uid=os.getuid() if mine else -1,
        gid=os.getgid() if mine else -1,
        partition="skypilot",
        num_nodes=num_nodes,
        num_cpus=num_nodes * cpus_per_node,
        num_tasks=num_nodes,
        tasks_per_node=[1] * num_nodes,
        cpus_per_node=[cpus_per_node] * num_nodes,
        submit_dir="",
        workdir="",
        state="PENDING",
        submit_time=rec.get("submitted_at") or time.time(),
        executor="sky",
        requeue=False,
        executor_ref={"sky_job_id": int(rec["job_id"]), "foreign": True},
        comment="SkyPilot managed job not submitted by slurmsky",
    )
