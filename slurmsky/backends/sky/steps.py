"""srun in salloc's SkyPilot cluster (clusters.py): each step is one job on the cluster
(`sky.exec`) running the node runtime on every node, whose batch script is the node's own
srun with this srun's options and command (`exec srun "$@"`). So the step's layout, its
environment and srun's messages and exit code are the runtime's, as in a batch job; its
step id (`first_step`) comes from a counter in the allocation's ref, and its time limit is
what is left of the allocation's.

The step's output comes back as node 0's emitter writes it into the job's log
(output.EMITTER), followed with `sky.tail_logs` onto this terminal, stdout and stderr
apart; its RESULT gives srun's exit code and the step's sacct record, which is added to the
allocation's. The files the step creates or changes in the cluster's workdir come home
into the allocation's directory through the same log (a snapshot at the step's start: what
earlier steps wrote is not sent again). Ctrl-C, SIGTERM and SIGHUP cancel the step's job on the cluster (`sky.cancel`).

Every call goes to the allocation's SkyPilot server (the one its salloc named, recorded with
its task), whatever srun's own environment names. Runs in the srun process (SkyPilot is
imported here, not on any read path).
"""

from __future__ import annotations

import copy
import os
import secrets
import signal
import sys
import threading
import time

from slurmsky.backends.sky.output import LogReader, sky_run
from slurmsky.backends.sky.server import Server
from slurmsky.backends.sky.sync import named_steps
from slurmsky.backends.sky.task import cluster_workdir
from slurmsky.core import state
from slurmsky.core.state import JobRecord
from slurmsky.errors import SlurmError
from slurmsky.runtime.spec import SECRET_VAR

STEP_SCRIPT = '#!/bin/bash\nexec srun "$@"\n'
STEP_FILES = ".slurmsky/steps"  # where a step's output files are, in the workdir on the node
TAIL_TRIES = 3  # reads of a step's log that ended before its RESULT came


class Terminal(LogReader):
    """The step's output onto this process's stdout and stderr, each byte once (a read of
    the log again after a broken stream skips what was written); the files the step
    writes into allocation `job`'s directory, as a batch job's (files_home.py)."""

    def __init__(self, job: JobRecord):
        super().__init__(job, append=False)
        self.sinks = {"o": sys.stdout.buffer, "e": sys.stderr.buffer}
        self.written = {"o": 0, "e": 0}

    def _marker(self, kind: str, offset: int, data: bytes, tag: str | None = None) -> None:
        if kind == "r":
            super()._marker(kind, offset, data)
        elif kind in self.sinks and offset + len(data) > self.written[kind]:
            self.sinks[kind].write(data[max(self.written[kind] - offset, 0) :])
            self.sinks[kind].flush()
            self.written[kind] = offset + len(data)


def next_step(conn, job_id: int) -> int:
    """The allocation's next step id (the counter lives in its ref)."""
    with state.write(conn):
        job = state.get_job(conn, job_id)
        assert job is not None and job.executor_ref is not None
        sid = int(job.executor_ref.get("next_step") or 0)
        state.update_job(conn, job_id, executor_ref=dict(job.executor_ref, next_step=sid + 1))
    return sid


def step_task(
    task: dict, spec: dict, ref: dict, argv: list[str], step_id: int, now: float, start: float
) -> dict:
    """The cluster job of one step: the node runtime on every node of the allocation, its
    batch script the node's srun with `argv`."""
    node = dict(
        spec,
        script=STEP_SCRIPT,
        script_args=list(argv),
        first_step=step_id,
        node_names=ref["nodes"],
        environment=None,
        output=f"{STEP_FILES}/{step_id}.out",  # its own: steps share the cluster's workdir
        error=f"{STEP_FILES}/{step_id}.err",
        input=None,
        open_mode="truncate",
        signal=None,
    )
    if spec.get("files_home"):  # a file past the cap stays on the cluster until salloc ends
        fetch = f"rsync -Pavz {ref['cluster']}{{worker}}:sky_workdir/{{path}} {{path}}"
        left = f"left on the node until salloc ends; fetch it from here with: {fetch}"
        node["files_home"] = dict(spec["files_home"], left=left)
    if spec.get("time_limit"):  # what is left of the allocation's (seconds)
        node["time_limit"] = max(1, int(spec["time_limit"] - (now - start)))
    step: dict = {"name": f"{task.get('name') or 'interactive'}-step{step_id}"}
    for key in ("workdir", "envs", "resources"):
        if key in task:
            step[key] = copy.deepcopy(task[key])
    step.get("resources", {}).pop("job_recovery", None)
    step["num_nodes"] = len(ref["ips"])
    step["secrets"] = {SECRET_VAR: secrets.token_hex(32)}
    step["run"] = sky_run(node, cluster_workdir(task, spec))
    return step


def exit_code(result: dict | None) -> int:
    """srun's exit code from the step job's RESULT (the node's srun was its batch script)."""
    if not result:
        return 1
    if result.get("signal"):
        return 128 + int(result["signal"])
    return int(result.get("exit_code") or 0)


def run_step(conn, job: JobRecord, options: list[str], command: list[str], on_signals=None) -> int:
    """One step of allocation `job` on its cluster, output here; srun's exit code.
    `on_signals(where, cluster, cluster_job, step)` -> an Event set once a signal cancelled
    the step (default `cancel_on_signals`: Python's signal handlers, main thread only)."""
    ref = job.executor_ref or {}
    if "cluster" not in ref:  # a managed job: no way in from here
        raise SlurmError(f"Unable to create step for job {job.job_id}: Invalid job id specified")
    if job.state != "RUNNING" or not ref.get("nodes"):
        raise SlurmError(f"Unable to create step for job {job.job_id}: Job is not running")
    spec, task = state.get_spec(conn, job.submission)
    assert task is not None  # the sky backend stores a task with each submission
    sid = next_step(conn, job.job_id)
    now = time.time()
    body = step_task(task, spec, ref, options + command, sid, now, job.start_time or now)
    from slurmsky.backends.sky import server
    from slurmsky.backends.sky.client import CLIENT

    cluster = ref["cluster"]
    where = server.of_task(task) or server.current()  # the allocation's: its salloc named it
    try:
        cluster_job = CLIENT.exec(where, body, cluster)
    except Exception as exc:
        from slurmsky.backends.sky.sync import clean

        raise SlurmError(f"Unable to create step for job {job.job_id}: {clean(str(exc))}") from None
    cancelled = (on_signals or cancel_on_signals)(
        where, cluster, cluster_job, f"{job.job_id}.{sid}"
    )
    out = Terminal(job)
    for _ in range(TAIL_TRIES):
        CLIENT.tail_cluster(where, cluster, cluster_job, out.rewind())
        out.write("\n")
        if out.result is not None or cancelled.is_set():
            break
    _record(conn, job.job_id, sid, command, out.final(), now)
    if out.result is None and cancelled.is_set():
        return 128 + signal.SIGINT
    return exit_code(out.result)


def cancel_on_signals(where: Server, cluster: str, cluster_job: int, step: str) -> threading.Event:
    """Ctrl-C, SIGTERM, SIGHUP: cancel the step's job on the cluster (once)."""
    cancelled = threading.Event()

    def cancel(signum, frame):
        if cancelled.is_set():
            return
        cancelled.set()
        sys.stderr.write(f"srun: sending Ctrl-C to StepId={step}\n")
        threading.Thread(target=_cancel, args=(where, cluster, cluster_job), daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, cancel)
    return cancelled


def _cancel(where: Server, cluster: str, cluster_job: int) -> None:
    from slurmsky.backends.sky.client import CLIENT

    CLIENT.cancel_cluster_job(where, cluster, cluster_job)


def _record(conn, job_id: int, sid: int, command: list[str], result: dict | None, start: float):
    """The step's sacct record, added to the allocation's RESULT (its nodes named as the
    allocation's: the cluster's), with what of the step's files did not come home (the
    allocation's Comment)."""
    steps = [s for s in (result or {}).get("steps") or () if s.get("id") == sid]
    if not steps:  # cancelled before the runtime could report it
        name = os.path.basename(command[0]) if command else ""
        steps = [dict(id=sid, name=name, state="CANCELLED", signal=2, start=start, end=time.time())]
    with state.write(conn):
        job = state.get_job(conn, job_id)
        assert job is not None
        steps = named_steps({"steps": steps}, (job.executor_ref or {}).get("nodes") or [])["steps"]
        done = dict(job.result or {})
        done["steps"] = list(done.get("steps") or []) + steps
        notes = (result or {}).get("files_home")
        if notes:  # "files home: step 1: ...; step 3: ..."
            part = f"step {sid}: {notes.removeprefix('files home: ')}"
            done["files_home"] = (
                f"{done['files_home']}; {part}" if done.get("files_home") else f"files home: {part}"
            )
        state.update_job(conn, job_id, result=done)
