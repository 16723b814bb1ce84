"""Faults: the agent killed at random moments, a corrupt, foreign or locked state, full disks.

The kill test is seeded: its seed is printed (pytest shows it when the test fails) and
SLURMSKY_FAULT_SEED replays a schedule of jobs and delays (thread timing still varies).
"""

from __future__ import annotations

import collections
import errno
import os
import random
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import BIN
from test_local_backend_jobs import use_state

from slurmsky.backends.local.executor import LocalExecutor
from slurmsky.core import state
from slurmsky.core.scheduler import Scheduler

KILLS = 100  # agents killed -9 by the randomized test, at least


def live_agent(cluster) -> int | None:
    """The pid in agent.pid if it is a live agent of this state dir (not a recycled pid)."""
    pid = cluster.agent_pid()
    try:
        proc = psutil.Process(pid)
        if (
            "slurmsky.core.daemon" in proc.cmdline()
            and proc.status() != psutil.STATUS_ZOMBIE
            and proc.environ().get("SLURMSKY_HOME") == str(cluster.state)
        ):
            return pid
    except (psutil.Error, TypeError, ValueError):
        pass
    return None


class Killer(threading.Thread):
    """SIGKILLs each agent, until stopped; `killed` lists the pids. Most die a random 0-LIFE s
    (longer while the jobs do not move: `pace`) after their pid file names them (from their
    imports through their passes: releases, launches, ends); a share die as soon as a job is
    CONFIGURING: in the middle of a launch, between storing where a job goes and storing the
    pids of its processes."""

    LIFE = 0.7
    AT_LAUNCH = 0.3  # the share of kills in a launch

    def __init__(self, cluster, rng: random.Random):
        super().__init__(daemon=True)
        self.cluster, self.rng = cluster, rng
        self.killed: list[int] = []
        self.stopped = threading.Event()
        self.life, self.seen = self.LIFE, None

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            pid = live_agent(self.cluster)
            if pid is None or pid in self.killed:
                continue
            self.pace()
            at_launch = self.rng.random() < self.AT_LAUNCH
            deadline = time.monotonic() + self.rng.uniform(0, self.life)
            while time.monotonic() < deadline or at_launch:
                if self.stopped.wait(0.005) or at_launch and self.configuring():
                    break
            if self.stopped.is_set() or live_agent(self.cluster) != pid:
                continue  # it exited meanwhile
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)

    def pace(self) -> None:
        """On a loaded machine an agent may need more than LIFE to get anywhere: while the
        jobs have not moved since the last kill, each agent is given half as long again."""
        try:
            seen = tuple(self.cluster.jobs())
        except sqlite3.OperationalError:  # locked by a writer: keep the pace
            return
        self.life = self.LIFE if seen != self.seen else min(self.life * 1.5, 10.0)
        self.seen = seen

    def configuring(self) -> bool:
        try:
            return bool(self.cluster.jobs("state = 'CONFIGURING'"))
        except sqlite3.OperationalError:  # locked by a writer: look again
            return False


def submit_round(cluster, rng: random.Random, expected: dict) -> list[int]:
    """Submit one round of the mix; record each job's expected (state, exit code, runs)."""

    def job(command: str, *opts: str) -> int:
        return cluster.sbatch(*opts, "job.sh", command)

    ids = []
    for _ in range(3):  # short jobs: true, exit N, sleep 0.x
        code = rng.choice([0, 0, 1, 3])
        command = (
            rng.choice(["true", f"sleep 0.{rng.randint(1, 5)}"]) if code == 0 else f"exit {code}"
        )
        ids.append(job(command))
        expected[ids[-1]] = ("COMPLETED", 0, 1) if code == 0 else ("FAILED", code, 1)
    array = job("sleep 0.2", f"--array=1-{rng.randint(2, 4)}")
    ids.append(array)
    expected[array] = "array"  # elements found at the end, each ("COMPLETED", 0, 1)
    a = job("sleep 0.3")
    b = job("true", f"--dependency=afterok:{a}")
    c = job("exit 2", f"--dependency=afterany:{b}")
    d = job("true", f"--dependency=afterok:{c}", "--kill-on-invalid-dep=yes")
    expected.update(
        {
            a: ("COMPLETED", 0, 1),
            b: ("COMPLETED", 0, 1),
            c: ("FAILED", 2, 1),
            d: ("CANCELLED", 0, 0),
        }
    )
    victim = job("sleep 30")
    expected[victim] = ("CANCELLED", 0, 1)
    ids += [a, b, c, d, victim]
    markers = cluster.cwd / "markers.txt"
    squeue_until(
        cluster,
        lambda _: markers.exists() and str(victim) in markers.read_text().split(),
        f"job {victim} to start",
    )
    out = cluster.run("scancel", str(victim))
    assert out.returncode == 0, out.stderr
    return ids


def squeue_until(cluster, predicate, what: str, *args: str) -> None:
    """Run squeue (which restarts a killed agent that jobs need) until predicate(stdout)."""

    def check():
        out = cluster.run("squeue", "-h", "-o", "%i", *args)
        assert out.returncode == 0, out.stderr
        return predicate(out.stdout)

    try:
        cluster.wait_for(check, 120, what)  # a round under load: an agent restarted often
    except AssertionError as exc:  # say where each job is and what the agents last did
        rows = cluster.jobs("state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')")
        log = (cluster.state / "agent.log").read_text()[-3000:]
        raise AssertionError(f"{exc}\nunfinished jobs: {rows}\nagent.log: {log}") from None


def test_agent_killed_at_random_moments(cluster):
    seed = int(os.environ.get("SLURMSKY_FAULT_SEED") or random.randrange(2**32))
    print(f"SLURMSKY_FAULT_SEED={seed}")
    rng = random.Random(seed)
    cluster.script("job.sh", '#!/bin/bash\necho $SLURM_JOB_ID >> markers.txt\neval "$1"\n')
    expected: dict[int, object] = {}
    ids: list[int] = []
    killer = Killer(cluster, random.Random(rng.random()))
    killer.start()
    started = time.monotonic()
    try:
        while len(killer.killed) < KILLS:
            # bounded, with room for a CI machine running 4 workers on 2 cores (80 s idle)
            assert time.monotonic() - started < 480, f"{len(killer.killed)} kills only"
            round_ids = submit_round(cluster, rng, expected)
            ids += round_ids
            squeue_until(
                cluster,
                lambda out: not out.strip(),
                "the round's jobs to end",
                "-j",
                ",".join(map(str, round_ids)),
            )
    finally:
        killer.stopped.set()
        killer.join()
    rows = cluster.wait_done(*ids, timeout=60)
    for array in [i for i, e in expected.items() if e == "array"]:
        del expected[array]
        expected.update(
            {r[0]: ("COMPLETED", 0, 1) for r in cluster.jobs("array_job_id = ?", array)}
        )
    runs = collections.Counter(map(int, (cluster.cwd / "markers.txt").read_text().split()))
    got = {r[0]: (r[1], r[2], runs[r[0]]) for r in rows}
    assert got == expected, f"seed {seed}"
    assert set(runs) <= set(expected)  # no run of a job nobody submitted
    assert all(r[3] == 0 for r in rows)  # no signal: nothing killed by the faults
    log = (cluster.state / "agent.log").read_text()
    assert "pass failed" not in log and "Traceback" not in log, log[-3000:]
    print(
        f"{len(killer.killed)} agents killed, {len(got)} jobs, "
        f"{sum(runs.values())} runs, {time.monotonic() - started:.0f} s"
    )


@pytest.mark.parametrize("dies", ["before its processes start", "before their pids are stored"])
def test_agent_killed_in_the_middle_of_a_launch(cluster, monkeypatch, dies):
    """The job a dead agent was launching (CONFIGURING, no pids) runs exactly once: started
    again if its processes never started, found by their command line if they did."""
    runs = cluster.cwd / "runs.txt"
    job = cluster.sbatch("--hold", "--wrap", f"echo $SLURM_JOB_ID >> {runs}; sleep 1")
    cluster.wait_for(lambda: cluster.agent_pid(), 30, "the agent")
    assert cluster.run("slurmsky", "agent", "stop").returncode == 0
    assert cluster.agents() == []
    conn = use_state(cluster, monkeypatch)
    state.update_job(conn, job, held=None)
    launch = LocalExecutor.launch

    def dying_launch(self, job, spec, ref):
        if dies == "before their pids are stored":
            launch(self, job, spec, ref)
        raise SystemExit("the agent dies")

    monkeypatch.setattr(LocalExecutor, "launch", dying_launch)
    with pytest.raises(SystemExit):
        Scheduler(conn).run_pass(time.time())
    assert cluster.job(job)[1] == "CONFIGURING"
    monkeypatch.setattr(LocalExecutor, "launch", launch)
    sched = Scheduler(conn)  # the next agent
    cluster.wait_for(
        lambda: sched.run_pass(time.time()) and False or cluster.job(job)[1] == "COMPLETED",
        30,
        "the job to complete",
    )
    assert runs.read_text().split() == [str(job)]


def test_agent_killed_after_an_end_before_its_dependents_were_looked_at(cluster, monkeypatch):
    """An agent killed between recording a job's end and releasing the job that waited for
    it leaves that job PD (Dependency), which alone needs no agent: squeue still starts one
    (the dead agent's pid file says it did not exit cleanly), and the dependent runs."""
    first = cluster.sbatch("--hold", "--wrap", "true")
    second = cluster.sbatch(f"--dependency=afterok:{first}", "--wrap", "true")
    cluster.wait_for(lambda: cluster.job(second)[4] == "Dependency", 30, "the dependency")
    assert cluster.run("slurmsky", "agent", "stop").returncode == 0
    conn = use_state(cluster, monkeypatch)
    now = time.time()
    state.update_job(
        conn,
        first,
        held=None,
        state="COMPLETED",
        start_time=now,
        end_time=now,
        exit_code=0,
        exit_signal=0,
    )
    dead = subprocess.Popen(["true"])
    dead.wait()
    (cluster.state / "agent.pid").write_text(f"{dead.pid}\n")  # as a SIGKILLed agent leaves it
    squeue_until(cluster, lambda out: not out.strip(), f"job {second} to run")
    assert cluster.job(second)[1:3] == ("COMPLETED", 0)


def state_error(cluster, command: str, what: str) -> str:
    return f"{command}: error: slurmsky state {cluster.state / 'state.db'} {what}\n"


COMMANDS = [
    ("squeue",),
    ("sbatch", "--wrap", "true"),
    ("sacct",),
    ("scancel", "1"),
    ("scontrol", "show", "job", "1"),
    ("sinfo",),
    ("srun", "true"),
    ("slurmsky", "agent", "status"),
]


def assert_every_command_fails(cluster, what: str) -> None:
    """Every command prints the one error line and exits 1; the file is left as it was;
    moved aside as the error says, a fresh state works."""
    db = cluster.state / "state.db"
    before = db.read_bytes()
    for command, *args in COMMANDS:
        out = cluster.run(command, *args)
        assert (out.returncode, out.stdout, out.stderr) == (
            1,
            "",
            state_error(cluster, command, what),
        )
    assert db.read_bytes() == before
    assert cluster.agents() == []
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        if (cluster.state / name).exists():
            (cluster.state / name).rename(cluster.cwd / name)
    assert cluster.run("squeue", "-h").returncode == 0
    assert (cluster.cwd / "state.db").read_bytes() == before


NOT_A_DATABASE = (
    "is not a database ({}); move it aside (with any state.db-wal and state.db-shm) to start afresh"
)


def test_garbage_state_database(cluster):
    cluster.state.mkdir(mode=0o700)
    (cluster.state / "state.db").write_bytes(random.Random(7).randbytes(20000))
    assert_every_command_fails(cluster, NOT_A_DATABASE.format("file is not a database"))


def test_truncated_state_database(cluster):
    cluster.sbatch("--hold", "--wrap", "true")
    cluster.wait_for(lambda: cluster.agent_pid(), 30, "the agent")
    assert cluster.run("slurmsky", "agent", "stop").returncode == 0
    db = cluster.state / "state.db"
    db.write_bytes(db.read_bytes()[:2000])
    assert_every_command_fails(cluster, NOT_A_DATABASE.format("database disk image is malformed"))


def test_state_database_of_a_newer_slurmsky_or_of_something_else(cluster):
    cluster.state.mkdir(mode=0o700)
    with cluster.db() as conn:
        conn.execute(f"PRAGMA user_version = {state.SCHEMA_VERSION + 1}")
    assert_every_command_fails(
        cluster,
        f"has schema version {state.SCHEMA_VERSION + 1}, newer than this slurmsky's "
        f"{state.SCHEMA_VERSION}; use the slurmsky that wrote it, or move it aside to "
        "start afresh",
    )
    (cluster.state / "state.db").unlink()
    with cluster.db() as conn:
        conn.execute("CREATE TABLE notes (text)")
    assert_every_command_fails(
        cluster,
        "is a database slurmsky did not write (schema version 0); move it aside to start afresh",
    )


def test_state_database_locked_for_longer_than_the_timeout(cluster):
    assert cluster.run("squeue").returncode == 0  # creates the state
    holder = cluster.db()
    holder.isolation_level = None
    holder.execute("BEGIN EXCLUSIVE")
    try:
        out = cluster.run("sbatch", "--wrap", "true", env={"SLURMSKY_BUSY_TIMEOUT": "1"})
        assert (out.returncode, out.stdout) == (1, "")
        assert out.stderr == state_error(
            cluster,
            "sbatch",
            "is locked by another process for over 1 s (database is locked); "
            f"end the process holding it (fuser {cluster.state / 'state.db'}) or try again later",
        )
        assert cluster.run("squeue", "-h").returncode == 0  # readers go on (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cluster.jobs() == []
    job = cluster.sbatch("--wrap", "true")  # the lock released: all is well again
    assert cluster.wait_done(job) == [(job, "COMPLETED", 0, 0, "None")]


def test_state_directory_that_cannot_be_made(cluster):
    home = cluster.cwd / "file" / "state"
    (cluster.cwd / "file").write_text("")
    out = cluster.run("squeue", env={"SLURMSKY_HOME": str(home)})
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (
        f"squeue: error: slurmsky state directory {home} cannot be used "
        "(Not a directory); make it a writable directory or set SLURMSKY_HOME "
        "to one\n"
    )


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs (root and mount(8) needed, else the test is skipped); unmounted
    (lazily: a dead job may still hold a file) at the end."""
    where = tmp_path / "tiny"
    where.mkdir()
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {out.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def fill(where) -> None:
    """Fill a filesystem to the last block."""
    with open(where / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_state_on_a_full_filesystem(tiny_fs, cluster):
    cluster.state = tiny_fs / "state"
    cluster.env["SLURMSKY_HOME"] = str(cluster.state)
    job = cluster.sbatch("--wrap", "true")
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    assert cluster.run("slurmsky", "agent", "stop").returncode == 0
    fill(tiny_fs)
    out = cluster.run("sbatch", "--wrap", "true")
    assert (out.returncode, out.stdout) == (1, "")
    said = state_error(
        cluster, "sbatch", "cannot be written (WORDS): its filesystem is full; free space on it"
    )  # SQLite's words vary
    assert re.fullmatch(
        re.escape(said).replace("WORDS", "(database or disk is full|disk I/O error)"), out.stderr
    ), out.stderr
    assert cluster.run("squeue", "-h", "-t", "all", "-o", "%i").stdout == f"{job}\n"  # reads go on
    (tiny_fs / "filler").unlink()
    job = cluster.sbatch("--wrap", "true")  # space again: all is well
    assert cluster.wait_done(job)[0][1] == "COMPLETED"


def test_a_job_that_ends_while_the_state_disk_is_full_is_recorded_as_it_ended(tiny_fs, cluster):
    """The disk holding the state fills while a job runs: its runtime writes RESULT into the
    space it reserved at the start, the agent records the end into the space it holds:
    COMPLETED with its exit code, never NODE_FAIL; the reserves are gone after."""
    cluster.state = tiny_fs / "state"
    cluster.env["SLURMSKY_HOME"] = str(cluster.state)
    ok = cluster.sbatch("--wrap", "sleep 4; echo done")
    bad = cluster.sbatch("--wrap", "sleep 4; exit 3")
    started = [cluster.cwd / f"slurm-{job}.out" for job in (ok, bad)]  # the scripts run
    cluster.wait_for(lambda: all(p.exists() for p in started), 30, "both scripts to start")
    fill(tiny_fs)
    assert cluster.wait_done(ok, bad, timeout=60) == [
        (ok, "COMPLETED", 0, 0, "None"),
        (bad, "FAILED", 3, 0, "NonZeroExitCode"),
    ]
    assert (cluster.cwd / f"slurm-{ok}.out").read_text() == "done\n"
    out = cluster.run("sacct", "-n", "-X", "-o", "jobid,state,exitcode")
    assert out.stdout.split() == [str(ok), "COMPLETED", "0:0", str(bad), "FAILED", "3:0"]
    assert not list(cluster.state.glob("jobs/*/result.json.reserve"))
    (tiny_fs / "filler").unlink()


def test_output_on_a_full_device(cluster):
    """As under slurmstepd: the job runs, its writes fail, it ends as its script does."""
    failed = cluster.sbatch("--output=/dev/full", "--wrap", "echo hi")
    fine = cluster.sbatch("--output=/dev/full", "--wrap", "echo hi; true")
    told = cluster.sbatch("--output=/dev/full", "--error=err.txt", "--wrap", "echo hi")
    agent = cluster.agent_pid()
    assert cluster.wait_done(failed, fine, told) == [
        (failed, "FAILED", 1, 0, "NonZeroExitCode"),
        (fine, "COMPLETED", 0, 0, "None"),
        (told, "FAILED", 1, 0, "NonZeroExitCode"),
    ]
    assert "echo: I/O error" in (cluster.cwd / "err.txt").read_text()
    assert live_agent(cluster) == agent  # the agent lived through it


def test_a_regular_file_where_the_agent_fifo_goes(cluster):
    """Jobs run all the same: the agent makes its FIFO anew in the file's place."""
    cluster.state.mkdir()
    (cluster.state / "agent.fifo").write_text("not a fifo\n")
    job = cluster.sbatch("--wrap", "true")
    assert cluster.wait_done(job, timeout=30)[0][1] == "COMPLETED"
    assert stat.S_ISFIFO(os.lstat(cluster.state / "agent.fifo").st_mode)


def test_the_agent_fifo_deleted_under_a_running_agent(cluster):
    """The next command signals the agent, which makes its FIFO anew: the job starts at once
    (it waited for the agent's idle timeout, a minute, before)."""
    first = cluster.sbatch("--wrap", "true")
    cluster.wait_done(first, timeout=30)
    agent = live_agent(cluster)
    assert agent
    (cluster.state / "agent.fifo").unlink()
    began = time.monotonic()
    job = cluster.sbatch("--wrap", "true")
    assert cluster.wait_done(job, timeout=30)[0][1] == "COMPLETED"
    assert time.monotonic() - began < 10
    assert live_agent(cluster) == agent  # the same agent, no second one
    assert stat.S_ISFIFO(os.lstat(cluster.state / "agent.fifo").st_mode)
    assert "agent.fifo was removed; making it anew" in (cluster.state / "agent.log").read_text()


@pytest.mark.parametrize("client", ["srun", "salloc"])
def test_a_client_killed_outright_ends_its_allocation(cluster, client):
    """kill -9 of srun (or salloc): its watcher cancels the job within seconds, and the job's
    processes end, as Slurm's controller ends an allocation whose srun is gone (salloc's
    command is salloc's own child: it stays, as on Slurm)."""
    marker = f"i23-{client}-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, str(BIN / client), "sleep", "300"],
        cwd=cluster.cwd,
        env={**cluster.env, "I23_MARK": marker},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cluster.wait_for(lambda: [r for r in cluster.jobs() if r[1] == "RUNNING"], 60, "running")
        sleeper = cluster.wait_for(lambda: _marked(marker), 30, "the job's sleep")
        proc.kill()
        proc.wait(10)
        killed = time.monotonic()
        job = cluster.jobs()[0][0]
        assert cluster.wait_done(job, timeout=30)[0][1] == "CANCELLED"
        assert time.monotonic() - killed < 10
        if client == "srun":  # the job's own process; salloc's command is its, as on Slurm
            cluster.wait_for(lambda: not sleeper.is_running(), 15, "the sleep to end")
        else:
            sleeper.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _marked(marker: str, session_of_its_own: bool = False):
    """The `sleep 300` process whose environment holds marker (that leads its own session),
    if one runs."""
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "sleep" and proc.environ().get("I23_MARK") == marker:
                if session_of_its_own and os.getsid(proc.pid) != proc.pid:
                    continue
                return proc
        except psutil.Error:
            pass
    return None


def test_killing_a_jobs_node_runtime_ends_its_setsid_children(cluster):
    """The runtime ends every process of its job (their subreaper); killed itself (-9), the
    agent ends the ones that left the job's session too (setsid), found by the job's
    environment."""
    marker = f"i23-setsid-{os.getpid()}"
    job = cluster.sbatch(
        "--wrap", "setsid sleep 300 & sleep 300", env={"I23_MARK": marker, "SBATCH_EXPORT": "ALL"}
    )
    escaped = cluster.wait_for(lambda: _marked(marker, session_of_its_own=True), 60, "setsid")
    (runtime,) = cluster.job_pids()
    os.kill(runtime, signal.SIGKILL)
    assert cluster.wait_done(job)[0][1] == "NODE_FAIL"
    try:
        cluster.wait_for(lambda: not escaped.is_running(), 15, "the setsid child to end")
    finally:
        if escaped.is_running():
            escaped.kill()


def test_the_first_squeue_after_an_agent_outage_shows_a_finished_job_finished(cluster):
    """The agent is killed; the job ends meanwhile; the first squeue restarts the agent and
    waits (bounded) for its first pass: the job shows COMPLETED at once, not RUNNING."""
    job = cluster.sbatch("--wrap", "sleep 2")
    cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", 60, "running")
    os.kill(live_agent(cluster), signal.SIGKILL)
    result = cluster.state / "jobs" / str(job) / "result.json"
    cluster.wait_for(result.exists, 60, "the job to end")
    out = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%T")
    assert out.stdout == "COMPLETED\n"
