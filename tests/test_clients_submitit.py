"""submitit, unchanged, drives slurmsky end to end on the local backend.

submitit (PyPI) writes a batch script with `#SBATCH --signal=USR2@<delay>`, `--open-mode=append`,
`--output=<folder>/%j_0_log.out` (or `%A_%a` for arrays) and an `srun --unbuffered --output ...
python -u -m submitit.core._submit <folder>` line; it runs `sbatch <file>` and reads `job N`
from its stdout, polls `sacct -o JobID,State,NodeList --parsable2 -j A -j B`, cancels with
`scancel N`, interrupts with `scancel N --signal SIGTERM` / `--signal USR2`, and a job that
catches USR2 checkpoints itself and runs `scontrol requeue $SLURM_JOB_ID` from inside.

Nothing below configures submitit for slurmsky: the only thing that changes is PATH.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

submitit = pytest.importorskip("submitit")
cloudpickle = pytest.importorskip("cloudpickle")

from clients import job_processes, restarts, use_cluster, wait_until  # noqa: E402
from submitit.core.utils import FailedJobError, UncompletedJobError  # noqa: E402
from submitit.slurm import slurm as submitit_slurm  # noqa: E402

JOB_TIMEOUT = 90  # s: the longest any single job here may take to finish


@pytest.fixture
def executor(cluster, monkeypatch):
    """An AutoExecutor(cluster="slurm") over the test's slurmsky, with a fresh sacct watcher."""
    use_cluster(cluster, monkeypatch)
    # submitit's watcher is a class attribute caching job states by id; every test has its
    # own state dir (ids restart at 1), so it gets its own watcher.
    monkeypatch.setattr(
        submitit_slurm.SlurmJob, "watcher", submitit_slurm.SlurmInfoWatcher(delay_s=600)
    )
    # the functions below travel by value: the job's python cannot import this test module
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        ex = submitit.AutoExecutor(folder=cluster.cwd / "logs" / "%j", cluster="slurm")
        ex.update_parameters(timeout_min=5, slurm_job_name="skytest")
        yield ex
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def finish(job, timeout: float = JOB_TIMEOUT) -> str:
    """Wait (bounded) until sacct, as submitit reads it, shows the job ended; its State."""
    wait_until(
        lambda: job.watcher.is_done(job.job_id, mode="force"),
        timeout,
        f"submitit job {job.job_id} to finish",
        interval=0.5,
    )
    return job.state


def sacct_state(job) -> str:
    return job.watcher.get_state(job.job_id, mode="force")


# --- what the jobs run (pickled by value into the job) -------------------------------------


def add(a, b):
    print(f"adding {a} and {b}")
    return a + b


def describe():
    env = submitit.JobEnvironment()
    keys = (
        "SLURM_JOB_ID",
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "SLURM_JOB_NUM_NODES",
        "SLURM_JOB_NODELIST",
        "SUBMITIT_EXECUTOR",
    )
    return {
        "env": {k: os.environ.get(k) for k in keys},
        "job_id": env.job_id,
        "global_rank": env.global_rank,
        "num_tasks": env.num_tasks,
        "hostnames": env.hostnames,
        "cwd": os.getcwd(),
    }


def fail():
    raise ValueError("boom from inside the job")


def square_slowly(x):
    start = time.time()
    time.sleep(1.5)
    return {
        "square": x * x,
        "start": start,
        "end": time.time(),
        "task": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "array_job": os.environ.get("SLURM_ARRAY_JOB_ID"),
    }


def sleep_long():
    time.sleep(300)
    return "should never return"


class Resumable(submitit.helpers.Checkpointable):
    """Outlives its time limit on the first run only; the checkpoint carries the run count."""

    def __init__(self):
        self.runs = 0

    def __call__(self, value):
        self.runs += 1
        print(f"run {self.runs} of the function", flush=True)  # submitit's handlers are set
        if self.runs == 1:
            time.sleep(300)  # ended by the time limit: USR2 first, then checkpoint + requeue
        return {"value": value, "runs": self.runs, "job_id": os.environ.get("SLURM_JOB_ID")}


# --- tests -----------------------------------------------------------------------------------


def test_submit_functions_results_and_states(executor, cluster):
    jobs = [executor.submit(add, 2, 3), executor.submit(describe), executor.submit(fail)]
    assert all(j.job_id.isdigit() for j in jobs)
    assert len({j.job_id for j in jobs}) == 3

    assert jobs[0].result() == 5
    info = jobs[1].result()
    job_id = jobs[1].job_id
    assert info["env"]["SLURM_JOB_ID"] == job_id == info["job_id"]
    assert info["env"]["SLURM_PROCID"] == "0" and info["global_rank"] == 0
    assert info["env"]["SLURM_NTASKS"] == "1" and info["num_tasks"] == 1
    assert info["env"]["SLURM_JOB_NUM_NODES"] == "1"
    assert info["env"]["SUBMITIT_EXECUTOR"] == "slurm"
    assert info["hostnames"] and info["hostnames"][0].startswith("127.0.0.")
    assert info["cwd"] == str(cluster.cwd)
    with pytest.raises(FailedJobError, match="boom from inside the job"):
        jobs[2].result()

    assert [finish(j) for j in jobs] == ["COMPLETED", "COMPLETED", "FAILED"]
    # the per-job folder (%j) was made after sbatch returned; the logs landed in it
    assert "adding 2 and 3" in jobs[0].stdout()
    assert (cluster.cwd / "logs" / jobs[0].job_id / f"{jobs[0].job_id}_submission.sh").exists()
    assert "ValueError" in jobs[2].stderr()


def test_map_array_with_array_parallelism(executor, cluster):
    executor.update_parameters(slurm_array_parallelism=2)
    jobs = executor.map_array(square_slowly, range(5))
    array_id = jobs[0].job_id.split("_")[0]
    assert [j.job_id for j in jobs] == [f"{array_id}_{i}" for i in range(5)]
    script = (cluster.cwd / "logs" / array_id / f"{array_id}_submission.sh").read_text()
    assert "#SBATCH --array=0-4%2" in script

    results = [j.result() for j in jobs]
    assert [r["square"] for r in results] == [0, 1, 4, 9, 16]
    assert [r["task"] for r in results] == [str(i) for i in range(5)]
    assert {r["array_job"] for r in results} == {array_id}
    # %2: never more than two elements running at once
    events = sorted([(r["start"], 1) for r in results] + [(r["end"], -1) for r in results])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 2
    assert [finish(j) for j in jobs] == ["COMPLETED"] * 5


def test_cancelled_job(executor, cluster):
    job = executor.submit(sleep_long)
    wait_until(lambda: sacct_state(job) == "RUNNING", 30, "the job to run", interval=0.5)
    wait_until(lambda: job_processes(cluster), 10, "the job's processes")
    job.cancel()  # scancel N
    assert finish(job, 60).startswith("CANCELLED")
    job._results_timeout_s = 1  # no result will come: do not wait submitit's 15 s for one
    with pytest.raises(UncompletedJobError):
        job.result()
    wait_until(lambda: not job_processes(cluster), 30, "every process of the job to end")


def test_checkpointable_job_requeued_after_timeout(executor, cluster, monkeypatch):
    # --time=1 lasts 8 s here (and Slurm's 2-minute requeue delay 16 s); USR2 comes 4 s
    # before the limit, submitit checkpoints and runs `scontrol requeue` from inside the job.
    monkeypatch.setenv("SLURMSKY_SECONDS_PER_MINUTE", "8")
    executor.update_parameters(timeout_min=1, slurm_signal_delay_s=4)
    job = executor.submit(Resumable(), 42)
    result = wait_until(
        lambda: job.paths.result_pickle.exists() and job.result(),
        JOB_TIMEOUT,
        "the requeued job's result",
        interval=0.5,
    )
    assert result == {"value": 42, "runs": 2, "job_id": job.job_id}
    assert finish(job) == "COMPLETED"
    assert restarts(cluster, int(job.job_id)) == 1
    log = job.stdout() + job.stderr()
    assert "Caught signal SIGUSR2" in log and "this job is timed-out" in log
    assert log.count("Calling checkpoint method.") == 1  # USR2 came once
    # (whether "Requeued job N" gets logged is a race on Slurm too: the requeue TERMs the
    # batch shell's srun, which kills the step's tasks at once)
    assert "DUE TO JOB REQUEUE" in log


def test_preempted_checkpointable_job_is_requeued(executor, cluster, monkeypatch):
    # job._interrupt(): `scancel N --signal SIGTERM`, then `scancel N --signal USR2`
    monkeypatch.setenv("SLURMSKY_SECONDS_PER_MINUTE", "8")
    executor.update_parameters(timeout_min=10, slurm_signal_delay_s=4)
    job = executor.submit(Resumable(), 7)
    wait_until(
        lambda: "run 1 of the function" in (job.stdout() or ""),
        30,
        "the function to start",
        interval=0.5,
    )
    job._interrupt()
    result = wait_until(
        lambda: job.paths.result_pickle.exists() and job.result(),
        JOB_TIMEOUT,
        "the requeued job's result",
        interval=0.5,
    )
    assert result == {"value": 7, "runs": 2, "job_id": job.job_id}
    assert finish(job) == "COMPLETED"
    assert restarts(cluster, int(job.job_id)) == 1
    assert "Bypassing signal SIGTERM" in job.stderr()
