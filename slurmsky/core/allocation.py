"""Allocations for srun and salloc run outside a job: a job record whose batch script does
the interactive part, so the node runtime gives it the same environment, layout and
exit codes as any batch job.

srun's allocation runs `srun "$@"` (the runtime's srun, inside the job) with the step's
options and command, its output going to two files that srun streams to its own stdout and
stderr. salloc's allocation writes its environment for salloc to pick up, then waits on a
FIFO for the exit code of the command salloc ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time

from slurmsky.core import jobcontrol as control
from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.parse.request import JobRequest

POLL = 0.05  # s between looks at output files and the job's state
# How each command words a refused allocation (Slurm 22.05's srun and salloc differ).
ALLOCATE_FAILED = {
    "srun": "Unable to allocate resources: ",
    "salloc": "Job submit/allocate failed: ",
}
HELD = "Job is in held state, pending scheduler release"
BUSY = "Requested nodes are busy"
DEPENDENCY = "Job dependency problem"
# --immediate=1 (-I): a job slurmctld cannot start at once for these fails so, for others BUSY
DEPENDENCY_REASONS = ("Dependency", "JobHeldUser", "JobHeldAdmin")


class Allocation:
    """One interactive allocation: `with Allocation(prog) as alloc: alloc.submit(...)`; its
    private directory (output files, FIFO) is removed at the end."""

    def __init__(self, prog: str):
        self.prog = prog
        self.conn = state.connect(long_lived=True)  # an unusable state says why first
        try:
            self.dir = tempfile.mkdtemp(prefix=f"{prog}-", dir=state.ensure_home())
        except OSError as exc:  # a read-only or full state directory
            self.conn.close()
            raise state.unusable(exc) from None
        self.out = os.path.join(self.dir, "stdout")
        self.err = os.path.join(self.dir, "stderr")
        self.job_id = 0
        self.quiet = False  # -Q: none of the informational `<prog>: ...` lines
        self.signals: list[int] = []  # caught by relay_signals, not yet acted on
        self.immediate = 0  # --immediate: seconds (0: wait for as long as it takes)

    def __enter__(self) -> "Allocation":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def submit(
        self, req: JobRequest, script: str, script_args: list[str], *, output: bool, watch: bool
    ) -> int:
        """Store the allocation's job: `script` runs with `script_args`; with `output`, its
        stdout and stderr go to files `stream_until_done` follows; with `watch`, the job
        is cancelled when this process ends before it (core/watcher.py)."""
        from slurmsky.config import load_config
        from slurmsky.core.submit import store

        req = req.replace(
            script=script,
            script_args=tuple(script_args),
            input=None,
            output=self.out if output else "/dev/null",
            error=self.err if output else "/dev/null",
        )
        self.quiet = req.quiet
        self.immediate = req.immediate
        try:
            self.job_id = store(req, load_config(), batch=False)
        except SlurmError as exc:
            raise SlurmError(
                *[
                    line.replace("Batch job submission failed: ", ALLOCATE_FAILED[self.prog])
                    for line in exc.lines
                ],
                exit_code=exc.exit_code,
            ) from None
        if req.hold and self.immediate == 1:  # slurmctld cannot start a held job at once
            self.fail_immediate(DEPENDENCY)
        if watch:  # a client killed outright still ends its allocation
            from slurmsky.core import watcher

            watcher.start(self.job_id)
        if req.hold:  # the controller's answer to a held submission, before any waiting
            self.info(HELD)
        return self.job_id

    def info(self, text: str) -> None:
        """One of srun's or salloc's informational lines (`salloc: Granted job allocation
        N`) on stderr, unless -Q."""
        if not self.quiet:
            sys.stderr.write(f"{self.prog}: {text}\n")

    def record(self) -> state.JobRecord:
        rec = state.get_job(self.conn, self.job_id)
        assert rec is not None  # the allocation's own job (no array element: never removed)
        return rec

    def fail_immediate(self, reason: str) -> None:
        """--immediate=1: the job slurmctld could not start at once ends FAILED (exit 1) and
        the command says why, as the peer's srun and salloc do; a job that started after all
        meanwhile goes on."""
        now = time.time()
        with state.write(self.conn):
            failed = state.update_job(
                self.conn,
                self.job_id,
                where_state=("PENDING",),
                state="FAILED",
                reason="None",
                exit_code=1,
                exit_signal=0,
                start_time=now,
                end_time=now,
            )
        if failed:
            self._refuse(reason)

    def _refuse(self, reason: str) -> None:
        revoked = f"{self.prog}: Job allocation {self.job_id} has been revoked."
        if self.prog == "srun":
            lines = [f"srun: error: Unable to allocate resources: {reason}"]
        elif reason == DEPENDENCY:
            lines = [f"salloc: error: {ALLOCATE_FAILED['salloc']}{reason}", revoked]
        else:
            lines = [revoked, f"salloc: error: Unable to allocate resources: {reason}"]
        raise SlurmError(*lines, bare=True)

    def _immediate_over(self, rec: state.JobRecord, since: float) -> None:
        """--immediate: the pending job's time to start is up (=1: the agent's first look
        left it pending; N: N seconds passed)."""
        if self.immediate == 1 and rec.reason != "None":
            self.fail_immediate(DEPENDENCY if rec.reason in DEPENDENCY_REASONS else BUSY)
        elif self.immediate > 1 and time.monotonic() - since >= self.immediate:
            self.cancel()
            self._refuse(BUSY)

    def wait_started(self, pending_line: bool = False) -> state.JobRecord:
        """Block until the job has started (or ended); say so if it has to queue (salloc
        first says `Pending job allocation N`)."""
        from slurmsky.core.daemon import wake

        told = False
        last_wake = since = time.monotonic()
        while True:
            rec = self.record()
            if self.signals and rec.state == "PENDING":  # srun's Ctrl-C before it runs
                self.cancel()
                raise SlurmError(
                    f"{self.prog}: Job allocation {self.job_id} has been revoked",
                    f"{self.prog}: Force Terminated JobId={self.job_id}",
                    bare=True,
                )
            if rec.state != "PENDING":
                if told and rec.start_time is not None:
                    self.info(f"job {self.job_id} has been allocated resources")
                return rec
            if self.immediate:
                self._immediate_over(rec, since)
            if not told and rec.reason != "None":  # the agent looked and it must wait
                if rec.reason in ("PartitionConfig", "PartitionNodeLimit"):  # at submission
                    self.info("Requested partition configuration not available now")
                if pending_line:
                    self.info(f"Pending job allocation {self.job_id}")
                self.info(f"job {self.job_id} queued and waiting for resources")
                told = True
            if time.monotonic() - last_wake > 5:
                wake()  # an agent killed meanwhile is started again
                last_wake = time.monotonic()
            time.sleep(POLL)

    def wait_configured(self) -> state.JobRecord:
        """Block while the job's nodes are being set up (CONFIGURING: a cluster SkyPilot
        provisions) and until it runs, ends, or is being ended."""
        from slurmsky.core.daemon import wake

        last_wake = time.monotonic()
        while True:
            rec = self.record()
            if rec.state != "CONFIGURING" or rec.kill_action:
                return rec
            if time.monotonic() - last_wake > 5:
                wake()  # an agent killed meanwhile is started again
                last_wake = time.monotonic()
            time.sleep(POLL)

    def relinquish(self, code: int, wait: float) -> None:
        """Hand a running allocation back with its command's exit code (`code`, 0-255): the
        agent ends it as its executor does (a cluster: down) and records COMPLETED or
        FAILED; wait up to `wait` s for that."""
        from slurmsky.core.daemon import wake

        with state.write(self.conn):
            rec = self.record()
            result = dict(
                rec.result or {},
                state="FAILED" if code else "COMPLETED",
                exit_code=code,
                signal=0,
                end=time.time(),
            )
            state.update_job(
                self.conn,
                self.job_id,
                where_state=("CONFIGURING", "RUNNING"),
                state="COMPLETING",
                kill_action="release",
                result=result,
            )
        wake()
        deadline = time.monotonic() + wait
        while not self.record().finished and time.monotonic() < deadline:
            time.sleep(POLL)

    def cancel(self) -> None:
        control.cancel(self.conn, [self.record()])

    def _relay(self, rec: state.JobRecord, signum: int) -> None:
        """A signal to the srun inside the allocation (its batch process): at once over the
        job's channel where its run dir is on this machine (the gap between two Ctrl-C is
        what srun judges), else through the agent, as scancel --signal --batch."""
        from slurmsky.runtime import channel, rundir

        run_dir = (rec.executor_ref or {}).get("rundir")
        try:
            if run_dir:
                rundir.signal_job(run_dir, signum, "batch")
                return
        except (OSError, channel.ChannelError):
            pass
        control.signal(self.conn, [rec], signum, "batch")

    def stream_until_done(self) -> state.JobRecord:
        """Copy the job's stdout/stderr files to ours as they grow, until the job ends. What
        both gained since the last look goes out in the order of their last writes (srun's
        `launching StepId` lines before the output of the tasks it then started, unless a
        later srun line came in the same look), stdout first on a tie (the file clock's
        tick: a task's last line before srun's line on its exit)."""
        sinks = [(self.out, sys.stdout.buffer), (self.err, sys.stderr.buffer)]
        offsets = [0, 0]
        while True:
            rec = self.record()
            while self.signals and not rec.finished:  # to srun inside, which answers them
                self._relay(rec, self.signals.pop(0))
            fresh = []
            for k, (path, _) in enumerate(sinks):
                try:
                    with open(path, "rb") as fh:
                        written = os.fstat(fh.fileno()).st_mtime_ns
                        fh.seek(offsets[k])
                        data = fh.read()
                except FileNotFoundError:
                    continue
                if data:
                    offsets[k] += len(data)
                    fresh.append((written, k, data))
            for _, k, data in sorted(fresh):
                sinks[k][1].write(data)
                sinks[k][1].flush()
            if rec.finished:
                return rec
            time.sleep(POLL)


def exit_status(rec: state.JobRecord) -> int:
    """The exit code of what the allocation ran: its code, 128+signal, 1 if ended otherwise."""
    result = rec.result or {}
    if result.get("signal"):
        return 128 + int(result["signal"])
    code = int(result.get("exit_code") or 0)
    return code if rec.state in ("COMPLETED", "FAILED") else code or 1


def relay_signals(alloc: Allocation) -> None:
    """srun's SIGINT, SIGTERM and SIGHUP: before the allocation runs, it is revoked; then
    they go to the srun inside it, which answers them as Slurm's srun does (Ctrl-C once:
    the step's status; twice within a second: abort)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: alloc.signals.append(signum))
