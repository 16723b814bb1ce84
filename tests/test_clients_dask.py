"""dask-jobqueue's SLURMCluster, unchanged, drives slurmsky end to end on the local backend.

dask-jobqueue (PyPI) writes a worker script (`#!/usr/bin/env bash`, `#SBATCH -J/-e/-o/-n/
--cpus-per-task/--mem/-t`, `-e <dir>/dask-worker-%J.err`) to a temporary file, runs
`sbatch <file>`, takes the first digits of stdout as the job id and deletes the file at
once; it never polls: a job counts as up when its worker connects back to the scheduler,
which runs inside this test process. Scaling down and `close()` run `scancel <id>`.

Nothing below configures dask-jobqueue for slurmsky: the only thing that changes is PATH.
"""

from __future__ import annotations

import operator
import os

import pytest

dask_jobqueue = pytest.importorskip("dask_jobqueue")
distributed = pytest.importorskip("distributed")

from clients import job_processes, processes_matching, state_of, use_cluster, wait_until  # noqa: E402

WORKER_TIMEOUT = 90  # s for a worker job to start and connect back
# Tasks are standard-library callables: a worker cannot import this test module.


@pytest.fixture
def slurm_cluster(cluster, monkeypatch):
    """A SLURMCluster whose scheduler listens on 127.0.0.1 only; closed (bounded) at the end."""
    use_cluster(cluster, monkeypatch)
    logs = cluster.cwd / "logs"
    dc = dask_jobqueue.SLURMCluster(
        cores=1,
        processes=1,
        memory="1GB",
        walltime="00:05:00",
        queue="local",
        log_directory=str(logs),
        local_directory=str(cluster.cwd / "scratch"),
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        worker_extra_args=["--no-dashboard"],
    )
    try:
        yield dc
    finally:
        dc.close(timeout=30)


def test_slurmcluster_scales_computes_and_closes(slurm_cluster, cluster):
    dc = slurm_cluster
    script = dc.job_script()
    assert "#SBATCH -e " in script and "dask-worker-%J.err" in script
    address = dc.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")

    dc.scale(jobs=2)
    with distributed.Client(dc, timeout=30) as client:
        client.wait_for_workers(2, timeout=WORKER_TIMEOUT)
        assert client.submit(operator.add, 41, 1).result(timeout=30) == 42
        assert sum(client.gather(client.map(operator.add, range(100), [1] * 100))) == 5050

        job_ids = sorted(job.job_id for job in dc.workers.values())
        assert len(job_ids) == 2 and all(j.isdigit() for j in job_ids)
        seen = sorted(client.run(os.getenv, "SLURM_JOB_ID").values())
        assert seen == job_ids  # each worker runs inside its own slurmsky job
        assert [state_of(cluster, j) for j in job_ids] == ["RUNNING", "RUNNING"]
        for j in job_ids:  # -e .../dask-worker-%J.err, expanded
            assert (cluster.cwd / "logs" / f"dask-worker-{j}.err").exists()

        # scale down: one `scancel`, one worker leaves, the other keeps computing
        dc.scale(jobs=1)
        wait_until(
            lambda: len(client.scheduler_info()["workers"]) == 1,
            60,
            "one worker after scaling down",
        )
        assert client.submit(operator.add, 1, 1).result(timeout=30) == 2
        states = lambda: sorted(state_of(cluster, j) for j in job_ids)  # noqa: E731
        wait_until(
            lambda: states() == ["CANCELLED", "RUNNING"],
            60,
            "exactly one worker job to be cancelled",
        )

    dc.close(timeout=30)  # scancel the rest
    wait_until(
        lambda: all(state_of(cluster, j) == "CANCELLED" for j in job_ids),
        60,
        "every worker job to be cancelled",
    )
    wait_until(lambda: not job_processes(cluster), 30, "the jobs' processes to end")
    worker_command = f"distributed.cli.dask_worker {address}"
    wait_until(lambda: not processes_matching(worker_command), 30, "no dask worker or nanny left")
