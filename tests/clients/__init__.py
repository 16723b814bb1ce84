"""Helpers for the real-client tests (tests/test_clients_*.py).

The clients (submitit, dask-jobqueue) run inside the test process and call `sbatch`,
`sacct`, `scancel`, ... through PATH, exactly as they would on a cluster. `use_cluster`
points this process at the test's private slurmsky (the `cluster` fixture's HOME,
SLURMSKY_HOME, config and PATH with bin/ first) and moves into its work directory.
Every wait here is bounded.
"""

from __future__ import annotations

import os
import time

import psutil

SLURM_PREFIXES = ("SLURM_", "SBATCH_", "SALLOC_", "SQUEUE_", "SACCT_", "SRUN_")


def use_cluster(cluster, monkeypatch) -> None:
    """This process (and the clients it drives) uses the test's slurmsky."""
    for key in list(os.environ):
        if key.startswith(SLURM_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(cluster.cwd)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """predicate()'s first truthy value, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def state_of(cluster, job_id: str) -> str | None:
    """A job's state as the state database has it (`N` or `N_i`)."""
    main, _, index = str(job_id).partition("_")
    where = (
        ("array_job_id = ? AND array_task_id = ?", int(main), int(index))
        if index
        else ("job_id = ?", int(main))
    )
    rows = cluster.jobs(*where)
    return rows[0][1] if rows else None


def restarts(cluster, job_id: int) -> int:
    with cluster.db() as conn:
        return conn.execute("SELECT restarts FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]


def _session(sid: int) -> list[int]:
    """Pids of every process in session `sid` (a node runtime leads one per job node)."""
    found = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                found.append(pid)
        except OSError:
            pass
    return found


def job_processes(cluster) -> list[psutil.Process]:
    """Every live process in the sessions of the node runtimes of the test's jobs."""
    found = []
    for leader in cluster.job_pids():
        for pid in _session(leader):
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                pass
    return found


def processes_matching(text: str) -> list[psutil.Process]:
    """Live processes whose command line contains `text`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if text in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found
