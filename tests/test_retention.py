"""Retention: finished jobs' run directories and environments go after purge_run_dirs_after,
their accounting after purge_job_after days (sacct keeps history till then), agent.log rotates."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from builders import job_row

from slurmsky.config import Config
from slurmsky.core import retention, state

LOG = logging.getLogger("test_retention")


def finished_job(cluster) -> int:
    job = cluster.sbatch("--wrap", "echo done")
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    return job


def test_the_agent_removes_old_run_directories_and_environments(cluster):
    """purge_run_dirs_after: 0: the agent's first tidy removes a finished job's run
    directory and slims its spec; sacct, squeue and scontrol still show the job."""
    old = finished_job(cluster)
    run_dir = cluster.state / "jobs" / str(old)
    assert run_dir.is_dir()
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    config.write_text(config.read_text() + "purge_run_dirs_after: 0\n")

    def no_agent() -> bool:
        for pid in cluster.agents():
            os.kill(pid, signal.SIGKILL)
        return not cluster.agents()

    cluster.wait_for(no_agent, what="no agent")
    running = cluster.sbatch("--wrap", "sleep 3")  # starts an agent: it tidies after a pass
    cluster.wait_for(lambda: not run_dir.exists(), timeout=30, what="the run dir to go")
    with cluster.db() as conn:
        (spec,) = conn.execute(
            "SELECT text FROM submissions JOIN blobs ON blobs.id = shared WHERE submissions.id = ?",
            (old,),
        ).fetchone()
    assert set(json.loads(spec)) == set(retention.SPEC_KEPT)  # no environment, no script
    cluster.wait_for(
        lambda: cluster.job(running)[1] not in ("PENDING", "CONFIGURING"), what="the job to start"
    )
    assert (cluster.state / "jobs" / str(running)).is_dir()  # a live job's stays
    sacct = cluster.run("sacct", "-j", str(old), "-n", "-P", "-o", "JobID,State")
    assert sacct.stdout == f"{old}|COMPLETED\n{old}.batch|COMPLETED\n"
    show = cluster.run("scontrol", "show", "job", str(old))
    assert show.returncode == 0 and f"JobId={old} " in show.stdout
    cluster.wait_done(running)


def test_specs_are_slimmed_once_into_one_shared_blob(cluster, monkeypatch):
    """Three finished submissions of one script: slimmed, they share one blob (the spec
    column keeps the job id); a second tidy, and a third a minute on, change nothing, though
    the slimmed spec is long (a long output path)."""
    out = "o" * 200 + "-%j.out"
    jobs = [cluster.sbatch("-o", out, "--wrap", "echo done") for _ in range(3)]
    assert [r[1] for r in cluster.wait_done(*jobs)] == ["COMPLETED"] * 3
    monkeypatch.setenv("SLURMSKY_HOME", str(cluster.state))
    conn = state.connect()
    cfg = Config(path="x", purge_run_dirs_after=0)

    def stored():
        return (
            conn.execute("SELECT * FROM submissions ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM blobs ORDER BY id").fetchall(),
        )

    spec = state.get_spec(conn, jobs[0])[0]
    full = {k: spec[k] for k in retention.SPEC_KEPT}
    retention.tidy(conn, cfg, time.time() + 1, LOG)
    rows, blobs = stored()
    assert [(r[0], json.loads(r[1]), r[4]) for r in rows] == [
        (job, {"job_id": job}, None) for job in jobs
    ]
    assert len({r[3] for r in rows}) == 1 and len(blobs) == 1  # one blob, nothing else kept
    assert json.loads(blobs[0][1]) == full and full["output"] == out
    assert all(state.get_spec(conn, job)[0] == dict(full, job_id=job) for job in jobs)
    changes = conn.total_changes
    retention.tidy(conn, cfg, time.time() + 1, LOG)
    retention.tidy(conn, cfg, time.time() + 60, LOG)
    assert (conn.total_changes, stored()) == (changes, (rows, blobs))
    sacct = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", str(jobs[0]))
    assert sacct.stdout == f"{jobs[0]}|COMPLETED\n"


def test_accounting_is_purged_after_purge_job_after_days(cluster, monkeypatch):
    kept, purged = finished_job(cluster), finished_job(cluster)
    with cluster.db() as conn:
        conn.execute(
            "UPDATE jobs SET end_time = ? WHERE job_id = ?", (time.time() - 3 * 86400, purged)
        )
    monkeypatch.setenv("SLURMSKY_HOME", str(cluster.state))
    conn = state.connect()
    for job_id in (kept, purged):  # an earlier run of each (sacct -D): it goes with its job
        state.keep_attempt(conn, state.get_job(conn, job_id), state="REQUEUED")
    cfg = Config(path="x", purge_job_after=2)
    retention.tidy(conn, cfg, time.time(), LOG)
    out = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID", "-j", f"{kept},{purged}")
    assert out.stdout == f"{kept}\n"
    assert conn.execute("SELECT id FROM submissions ORDER BY id").fetchall() == [(kept,)]
    assert conn.execute("SELECT job_id FROM attempts").fetchall() == [(kept,)]
    assert not (cluster.state / "jobs" / str(purged)).exists()  # older than a day too
    assert (cluster.state / "jobs" / str(kept)).exists()
    retention.tidy(conn, Config(path="x"), time.time(), LOG)  # default: kept for ever
    assert cluster.run("sacct", "-X", "-n", "-o", "JobID", "-j", str(kept)).stdout.strip()


def test_retention_costs_what_there_is_to_remove_not_the_jobs_kept(tmp_path, monkeypatch):
    """A tidy's SQLite work (VM instructions) beside 2000 held jobs is what it is beside 10
    with nothing due; with everything due (run directories, specs, accounting) it reads
    each submission once at most (the sweep of blobs no submission shares any more). It
    once scanned every job for each submission: minutes at 100 000 held jobs, during which
    the agent did not stop when asked."""
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    conn = state.connect()
    cfg = Config(path="x", purge_run_dirs_after=0, purge_job_after=1)
    now = time.time()
    jobs_dir = tmp_path / "home" / "jobs"
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    def tidy_cost(held: range, due: bool) -> int:
        with state.write(conn):
            for job_id in held:
                row = job_row(job_id, job_id, held="user", reason="JobHeldUser")
                state.add_submission(conn, job_id, {"script": "x"}, None, [row])
            for job_id in (1, 2) if due else ():  # finished 3 days ago, and 1 day ago
                end = now - (3 if job_id == 1 else 1) * 86400 + 60
                row = job_row(job_id, job_id, state="COMPLETED", end_time=end)
                state.add_submission(conn, job_id, {"script": "x"}, None, [row])
                (jobs_dir / str(job_id)).mkdir(parents=True)
        (jobs_dir / str(held[0])).mkdir(parents=True)
        conn.set_progress_handler(count, 100)
        steps[0] = 0
        retention.tidy(conn, cfg, now, LOG)
        conn.set_progress_handler(None, 0)
        assert os.listdir(jobs_dir) == [str(held[0])]
        kept = conn.execute("SELECT job_id FROM jobs ORDER BY job_id").fetchall()
        assert kept == [(2,)] * due + [(job_id,) for job_id in held]
        assert not due or "script" not in state.get_spec(conn, 2)[0]  # slimmed
        shutil.rmtree(jobs_dir)
        with state.write(conn):
            conn.execute("DELETE FROM jobs")
            conn.execute("DELETE FROM submissions")
        return steps[0]

    assert tidy_cost(range(10, 2010), due=False) <= tidy_cost(range(10, 20), due=False)
    few = tidy_cost(range(10, 20), due=True)
    assert tidy_cost(range(10, 2010), due=True) <= few + 2000 * 20 // 100  # 161 566 before


ROTATE = """
import logging, os, sys
from slurmsky.core import retention
log = logging.getLogger("x")
print("old line", flush=True)
retention._rotate_log(sys.argv[1], 5, log)
print("new line", flush=True)
os.write(2, b"new error\\n")
"""


def test_agent_log_rotates_and_the_agent_writes_on(tmp_path):
    path = tmp_path / "agent.log"
    with open(path, "ab") as out:
        subprocess.run(
            [sys.executable, "-c", ROTATE, str(path)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            check=True,
            timeout=60,
        )
    assert (tmp_path / "agent.log.1").read_text() == "old line\n"
    assert path.read_text() == "new line\nnew error\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
