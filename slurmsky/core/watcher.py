"""The allocation's watcher: what Slurm's srun keeps alive with its controller. srun and
salloc start one (`python -m slurmsky.core.watcher PID JOB_ID`, in its own session) when
their allocation's job is stored; it waits for that client process to end, however it ends
(kill -9 too), and cancels the job if it has not finished. A client that ends the usual way
has seen its job end first: the watcher then only exits.
"""

from __future__ import annotations

import os
import select
import sys
import time

POLL = 0.5  # s between looks at a client the kernel cannot hand over as a pidfd


def wait_for_exit(pid: int) -> None:
    """Return once process `pid` has ended (at once when a pidfd says so, else polled)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # an old kernel, or it has gone already
        while _alive(pid):
            time.sleep(POLL)
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    import signal

    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # srun starts it holding signals off
    pid, job_id = int(argv[0]), int(argv[1])
    wait_for_exit(pid)
    from slurmsky.core import jobcontrol, state

    conn = state.connect()
    job = state.get_job(conn, job_id)
    if job is not None and not job.finished:
        jobcontrol.cancel(conn, [job])
    return 0


def start(job_id: int) -> None:
    """Watch this process for job `job_id` (the watcher outlives it, in its own session)."""
    import subprocess

    from slurmsky.runtime import PACKAGE_PARENT

    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    subprocess.Popen(
        [sys.executable, "-m", "slurmsky.core.watcher", str(os.getpid()), str(job_id)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
