"""The columns a job's row takes when it ends or is requeued: one place for both the agent's
own executors and the backends that follow an outside queue."""

from __future__ import annotations

import signal as signals

from slurmsky.core import state
from slurmsky.core.state import JobRecord

REQUEUE_DELAY = 2  # minutes before a requeued job is eligible again (Slurm's BeginTime)


def final_fields(job: JobRecord, result: dict, now: float) -> dict:
    """The columns of a started job that has ended, from the runtime's RESULT."""
    if job.kill_action == "requeue" or result.get("requeue"):  # scontrol requeue, either side
        return requeued_fields(job, now)
    end_state = result.get("state") or "FAILED"
    if job.kill_action == "cancel" and end_state == "NODE_FAIL":
        end_state = "CANCELLED"  # the runtime died of the SIGTERM before it could report
    code, sig = int(result.get("exit_code") or 0), int(result.get("signal") or 0)
    reason = result.get("reason")
    if end_state in ("CANCELLED", "TIMEOUT"):
        code = sig = 0
        reason = reason or ("TimeLimit" if end_state == "TIMEOUT" else job.reason)
    elif end_state == "FAILED" and not reason:
        reason = f"RaisedSignal:{sig}({signals.strsignal(sig)})" if sig else "NonZeroExitCode"
    return dict(
        state=end_state,
        reason=reason or "None",
        exit_code=code,
        exit_signal=sig,
        start_time=job.start_time or result.get("start"),
        end_time=result.get("end") or now,
        result=result,
        kill_action=None,
    )


def requeued_fields(job: JobRecord, now: float) -> dict:
    """A job pending again after a requeue: eligible REQUEUE_DELAY later, as on Slurm."""
    delay = REQUEUE_DELAY * state.seconds_per_minute()
    return dict(
        state="PENDING",
        reason="BeginTime",
        begin_time=now + delay,
        eligible_time=None,
        start_time=None,
        end_time=None,
        nodelist=None,
        batch_host=None,
        restarts=job.restarts + 1,
        kill_action=None,
        kill_sent=None,
        executor_ref=None,
        result=None,
        exit_code=None,
        exit_signal=None,
    )
