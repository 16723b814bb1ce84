"""Executors: where the agent runs jobs. One module per backend, all with the same small shape.

The agent calls an executor with `JobRecord`s; what an executor needs to find a job again
(after an agent restart too) it returns as a JSON-able *ref*, which the agent stores in
`jobs.executor_ref`. Executors know nothing of Slurm's output formats; they report a job's
end as the node runtime's RESULT dict: {"state", "exit_code", "signal", "start", "end",
"reason"}.

An executor that follows an outside queue (sky: SkyPilot's managed jobs) also has
`sync(conn, now, wake) -> bool`, which the scheduler calls every pass; it then only places,
prepares and launches that executor's jobs, and sync() moves them from there (state, end,
scancel), so adopt/poll/poll_interval/cancel/cleanup are not used for it.
"""

from __future__ import annotations

from typing import Protocol

from slurmsky.core.state import JobRecord


class Executor(Protocol):
    name: str

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        """Where the job would run now (node indices), or the pending reason why not
        (`Resources`, `PartitionNodeLimit`)."""

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        """The ref stored *before* launching, so a restarted agent can find a half-started job."""

    def launch(self, job: JobRecord, spec: dict, ref: dict) -> dict:
        """Start the job from its prepared ref; returns the completed ref."""

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


def get_executor(name: str) -> Executor:
    if name == "local":
        from slurmsky.backends.local.executor import LocalExecutor

        return LocalExecutor()
    if name == "sky":
        from slurmsky.backends.sky.executor import SkyExecutor

        return SkyExecutor()
    raise ValueError(f"unknown executor {name!r}")
