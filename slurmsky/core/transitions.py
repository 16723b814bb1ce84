"""The columns a job's row takes when it ends or is requeued: one place for both the agent's
own executors and the backends that follow an outside queue."""

from __future__ import annotations

import signal as signals

from slurmsky.core import state
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES, STARTED_STATES
from slurmsky.runtime import hostlist

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


REQUEUE_DELAY = 2  # minutes before a requeued job is eligible again (Slurm's BeginTime)


def _final_fields(job: JobRecord, result: dict, now: float) -> dict:
    """The columns of a started job that has ended, from the runtime's RESULT."""
    if job.kill_action == "requeue" or result.get("requeue"):  # scontrol requeue, either side
        return requeued_fields(job, now, asked=job.end_time)
    end_state, reason = result.get("state") or "FAILED", result.get("reason")
    if job.kill_action == "cancel":
        # scancel was taken while it ran: CANCELLED, as slurmctld marks it at once, even if
        # the job ended on its own (or its runtime died of the SIGTERM) before the kill landed
        end_state, reason = "CANCELLED", None
    code, sig = int(result.get("exit_code") or 0), int(result.get("signal") or 0)
    start = job.start_time or result.get("start")
    if job.state == "REQUEUED":  # recovered elsewhere, ended before it was seen running again
        start = result.get("start") or start
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
        start_time=start,
        end_time=result.get("end") or now,
        result=result,
        kill_action=None,
    )


def finish(
    conn: Connection,
    job_id: int,
    result: dict,
    now: float,
    where_state: tuple = STARTED_STATES,
    **extra,
) -> dict | None:
    """End a started job with its RESULT (and `extra` columns), its row read afresh in the
    transaction that ends it, so a scancel or requeue that landed since the caller read it
    decides the state. The columns written, or None if the job had left `where_state`."""
    with state.write(conn):
        job = state.get_job(conn, job_id)
        if job is None or job.state not in where_state:
            return None
        fields = dict(extra, **_final_fields(job, result, now))
        if fields["state"] == "PENDING":  # requeued: the run it ends is kept
            keep_run(conn, job, fields["submit_time"], result)
        het = (
            state.get_spec(conn, job.submission)[0].get("het") if job.het_job_offset == 0 else None
        )
        shares = het_results(fields["result"], het, (job.executor_ref or {}).get("names"))
        if het and shares:  # each component's row its own steps (the others follow the state)
            fields["result"] = shares[0]
            for comp, share in zip(het[1:], shares[1:]):
                state.update_job(conn, comp["job_id"], result=share)
        state.update_job(conn, job_id, **fields)
    return fields


def keep_run(
    conn: Connection,
    job: JobRecord,
    now: float,
    result: dict | None = None,
    ended: str = "REQUEUED",
) -> None:
    """Keep the run of `job` that a requeue (or a recovery on new nodes) ends `now`, as
    slurmdbd keeps it (`sacct -D`): in state `ended`. A run still going ends 0:0 with the
    steps its RESULT holds; a finished one keeps its exit code and steps."""
    if job.finished:
        state.keep_attempt(conn, job, state=ended, reason="None", end_time=now)
        return
    if ended == "REQUEUED":  # the requeue killed it: a batch step its RESULT does not
        result = dict(result or {}, exit_code=0, signal=signals.SIGTERM.value)  # show: 0:15
    elif job.batch:  # its nodes were lost: slurmdbd closes the batch step CANCELLED, no code
        batch = {"id": "batch", "name": "batch", "state": "CANCELLED", "exit_code": None}
        steps = [s for s in (result or {}).get("steps") or () if s.get("id") != "batch"]
        result = dict(result or {}, steps=[batch, *steps])
    state.keep_attempt(
        conn,
        job,
        state=ended,
        reason="None",
        start_time=job.start_time or (result or {}).get("start") or now,
        end_time=now,
        exit_code=0,
        exit_signal=0,
        result=result,
    )


def het_results(result: dict | None, het: list | None, names: list | None) -> list[dict]:
    """A heterogeneous job's RESULT shared out to its components, as sacct lists them on
    Slurm: the batch step in component 0's, every other step in the components whose nodes
    it ran on, with those nodes, their CPUs and the tasks there (the peer: step 0 of
    `srun --het-group=0,1` is J+0.0 with 1 CPU and J+1.0 with 2). [] for any other job."""
    if not het or result is None or not names:
        return []
    shares = []
    for offset, comp in enumerate(het):
        first, count = comp["nodes"]
        mine = names[first : first + count]
        steps = []
        for step in result.get("steps") or ():
            if not isinstance(step, dict):
                continue
            if step.get("id") == "batch":
                if offset == 0:
                    steps.append(step)
                continue
            ranks = [r for r in step.get("ranks") or () if first <= r < first + count]
            if not ranks:
                continue
            usage = [u for u in step.get("usage") or () if u.get("node") in mine]
            steps.append(
                dict(
                    step,
                    ranks=ranks,
                    nodes=hostlist.compress([names[r] for r in ranks]),
                    cpus=sum(comp["cpus_per_node"][r - first] for r in ranks),
                    ntasks=len(usage) or step.get("ntasks"),
                    usage=usage,
                )
            )
        shares.append(dict(result, steps=steps))
    return shares


def pend_again(conn: Connection, job_id: int, **fields) -> bool:
    """A job handed to an outside queue that is to go out again (its launch never got
    there, or cannot reach it now; a lane cut before it): pending, with no ref."""
    return state.update_job(
        conn,
        job_id,
        where_state=ACTIVE_STATES,
        state="PENDING",
        executor_ref=None,
        start_time=None,
        **fields,
    )


def requeued_fields(job: JobRecord, now: float, asked: float | None = None) -> dict:
    """A job pending again after a requeue: eligible REQUEUE_DELAY later, as on Slurm; its
    new run's record submitted when the requeue was `asked` (scontrol requeue of a running
    job: the time it took) or now (the old run's record is kept: keep_run)."""
    delay = REQUEUE_DELAY * state.seconds_per_minute()
    return dict(
        state="PENDING",
        reason="BeginTime",
        submit_time=asked or now,
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
