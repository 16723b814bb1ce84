"""Shared fixtures: a private Slurm world per test, its commands run as real subprocesses.

`cluster` gives each test its own HOME and SLURMSKY_HOME (so its own state and agent), a
config with a short KillWait, and `cluster.run("sbatch", ...)`. At teardown every agent the
test's state dir had is stopped and every job process it started is killed, by pid.

At the end of the run, no slurmsky agent, SkyPilot API server, job controller or request
worker that the run started may still be alive: the run fails, listing them (then ends them,
by pid). See `pytest_sessionfinish`.

Under pytest-xdist (`-n 4`, the README's command) each test runs in one of the workers, each
with its own temp dirs; a module that shares one server among its tests runs on one worker
(`XDIST_GROUPS`), the tests that use the real Slurm peer run one at a time (`PEER_LOCK`), and
the leftover check runs once, in the controller, after every worker.
With SLURMSKY_TEST_DURATIONS=FILE every test's phases are appended to FILE as they end
(`.ci/run` names the slowest from it when the run passes its time).

The state's engine: SQLite (each test's SLURMSKY_HOME) unless SLURMSKY_TEST_POSTGRES names a
PostgreSQL server (`postgresql://user@host:port/`, as tests/pgserver.py prints): then each
test's cluster gets a database of its own there (SLURMSKY_STATE), dropped at its end. A test
of SQLite's file itself is marked `sqlite_only` and skipped on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"
WAIT_SLACK = 3
POSTGRES = os.environ.get("SLURMSKY_TEST_POSTGRES")  # a server URL: the state's engine
os.environ.pop("SLURMSKY_STATE", None)  # a developer's own state is no test's


class Cluster:
    """One test's slurmsky: its directories, environment and command runner."""

    def __init__(self, tmp: Path):
        self.home = tmp / "home"
        self.state = tmp / "state"
        self.cwd = tmp / "work"
        for d in (self.home, self.cwd):
            d.mkdir()
        config = self.home / "slurmsky.yaml"
        config.write_text("kill_wait: 1\n")
        path = os.pathsep.join(
            [str(BIN), os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]
        )
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLURM", "SBATCH_", "SALLOC_", "SQUEUE_"))
        }
        self.env.update(
            HOME=str(self.home),
            SLURMSKY_HOME=str(self.state),
            SLURMSKY_CONFIG=str(config),
            PATH=path,
        )
        self.env.pop("SLURMSKY_STATE", None)
        self.database: str | None = None
        if POSTGRES:
            import pgserver

            self.database = self.env["SLURMSKY_STATE"] = pgserver.database(POSTGRES)

    def run(
        self,
        command: str,
        *args: str,
        timeout: float = 60,
        input: str | None = None,
        env: dict | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a slurmsky command (bin/<command>) as a user would, capturing its output;
        its stdin is `input`, else /dev/null (srun forwards its stdin to the tasks)."""
        return subprocess.run(
            [sys.executable, str(BIN / command), *args],
            cwd=cwd or self.cwd,
            env={**self.env, **(env or {})},
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def sbatch(self, *args: str, **kw) -> int:
        """Submit with --parsable; the job id."""
        out = self.run("sbatch", "--parsable", *args, **kw)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip().split(";")[0])

    def script(self, name: str, text: str) -> str:
        (self.cwd / name).write_text(text)
        return name

    def db(self):
        """A connection to the state's database (sqlite3's, or one that takes its calls)."""
        if self.database:
            from slurmsky.core.state.engine import connect_postgres

            return connect_postgres(self.database)
        return sqlite3.connect(self.state / "state.db", timeout=60)

    def has_state(self) -> bool:
        """Whether a command made the state yet."""
        if self.database:
            with self.db() as conn:
                return conn.execute("SELECT to_regclass('jobs')").fetchone()[0] is not None
        return (self.state / "state.db").exists()

    def jobs(self, where: str = "1 = 1", *args) -> list[tuple]:
        """(job_id, state, exit_code, exit_signal, reason) rows, read straight from the state
        (none while the first command is still creating it)."""
        if not self.has_state():
            return []
        conn = self.db()
        try:
            return conn.execute(
                "SELECT job_id, state, exit_code, exit_signal, reason "
                f"FROM jobs WHERE {where} ORDER BY job_id",
                args,
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            if self.database:
                conn.close()

    def job(self, job_id: int) -> tuple:
        return self.jobs("job_id = ?", job_id)[0]

    def wait_for(self, predicate, timeout: float = 60, what: str = "condition"):
        """Poll `predicate` every 0.1 s; fail after WAIT_SLACK times `timeout`, at most 4
        minutes more (`timeout` is a figure for an idle machine: CI runs four workers, a
        Slurm peer and a SkyPilot server on two cores)."""
        timeout = min(timeout * WAIT_SLACK, timeout + 240)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_done(self, *ids: int, timeout: float = 60) -> list[tuple]:
        """Wait until every given job (all elements of an array id) has finished."""
        active = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")

        def done():
            rows = [r for i in ids for r in self.jobs("job_id = ? OR array_job_id = ?", i, i)]
            return rows if rows and all(r[1] not in active for r in rows) else None

        return self.wait_for(done, timeout, f"jobs {ids} to finish")

    def agent_pid(self) -> int | None:
        try:
            return int((self.state / "agent.pid").read_text())
        except (OSError, ValueError):
            return None

    def agents(self) -> list[int]:
        """Pids of every agent of this state dir: the running one, and any still starting
        (a command spawns one without waiting for it; it writes agent.pid a moment later)."""
        import psutil

        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if "slurmsky.core.daemon" in (proc.info["cmdline"] or []) and proc.environ().get(
                    "SLURMSKY_HOME"
                ) == str(self.state):
                    found.append(proc.pid)
            except psutil.Error:
                pass
        return found

    def job_pids(self) -> list[int]:
        """Pids of every node runtime any job of this state dir ran (session leaders) whose
        session is still the job's: a number the system gave to another session leader since
        (pids wrap at 32768 here within minutes) names a stranger, never to be killed."""
        import json

        from slurmsky.backends.local.executor import session_is_ours

        if not self.has_state():
            return []
        conn = self.db()
        try:
            refs = conn.execute("SELECT executor_ref FROM jobs WHERE executor_ref IS NOT NULL")
            return [
                pid
                for (ref,) in refs
                for pid, created in json.loads(ref).get("pids", [])
                if pid and session_is_ours(pid, created)
            ]
        finally:
            if self.database:  # (SQLite's, as before: left to the collector)
                conn.close()

    def stop_agents(self) -> None:
        """Stop every agent of this state (each command may have started one)."""

        def none_left() -> bool:
            self.run("slurmsky", "agent", "stop")
            return not self.agents()

        self.wait_for(none_left, timeout=60, what="no agent")

    def teardown(self) -> None:
        for pid in self.agents():
            _kill(pid)
        for leader in self.job_pids():
            for p in _session(leader):
                _kill(p, signal.SIGKILL)
        if self.database and POSTGRES and self.database.startswith(POSTGRES):
            import pgserver

            pgserver.drop(POSTGRES, self.database)


def _session(sid: int) -> list[int]:
    import psutil

    found = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                found.append(pid)
        except OSError:
            pass
    return found


def _kill(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal a process; after SIGTERM wait (bounded) for its end, then SIGKILL it."""
    import psutil

    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
        if sig != signal.SIGKILL and not _ended(proc, 10):
            proc.kill()
    except psutil.NoSuchProcess:
        pass


def _ended(proc, timeout: float) -> bool:
    """Gone, or a zombie (whose parent, often init here, reaps it in its own time)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


# --- pytest-xdist: what tests share runs on one worker, one at a time ----------------------

# A test file whose tests share one thing for the module runs whole on one worker.
XDIST_GROUPS = {
    "tests/test_sky_e2e.py": "sky-e2e",  # one SkyPilot e2e stack on the peer (/tmp/skye2e)
    "tests/test_sky_server.py": "skyserver",  # one API server (its first test starts it)
    "tests/test_usage.py": "usage",  # one CPU-burning job for the module (usage_job), measured
}
# The tests that use the real Slurm peer (marker `peer`, the e2e stack's jobs run on it) hold
# this lock while they run: one at a time, across workers and runs.
PEER_LOCK = Path(os.environ.get("TMPDIR", "/tmp")) / "slurmsky-tests-slurm-peer.lock"
# Run first (each on a worker of its own while the rest spread): the slowest tests, ~2 min
# each on 2 cores, which would otherwise start late and end the run last.
SLOW_FIRST = (
    "tests/test_faults.py::test_agent_killed_at_random_moments",
    "tests/test_scheduler_arrays.py::test_thousand_elements_throttled_to_four",
)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown to a pytest without it
def pytest_xdist_make_scheduler(config, log):
    """xdist's loadscope scheduling, a scope per test except XDIST_GROUPS' files (a scope
    each, the biggest first). Not --dist loadgroup: with pytest 9 an `xdist_group` mark no
    longer reaches the scheduler (xdist 3.8 suffixes item._nodeid, which pytest 9 ignores)."""
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return XDIST_GROUPS.get(nodeid.split("::", 1)[0], nodeid)

    return Grouped(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """SLOW_FIRST first; on PostgreSQL, the `sqlite_only` tests skipped."""
    if POSTGRES:
        skip = pytest.mark.skip(reason="tests SQLite's state file (the state is on PostgreSQL)")
        for item in items:
            if item.get_closest_marker("sqlite_only"):
                item.add_marker(skip)
    first = [i for i in items if i.nodeid in SLOW_FIRST]
    items[:] = first + [i for i in items if i.nodeid not in SLOW_FIRST]


@pytest.fixture(autouse=True)
def _slurm_peer_lock(request):
    """A test of the peer (marker `peer`, or of the e2e stack) holds PEER_LOCK while it runs."""
    import fcntl

    node = request.node
    if not (node.get_closest_marker("peer") or node.nodeid.startswith("tests/test_sky_e2e.py")):
        yield
        return
    with open(PEER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _worker(config) -> bool:
    """An xdist worker (not the controller, not a run without xdist)."""
    return hasattr(config, "workerinput")


# --- durations as they come (SLURMSKY_TEST_DURATIONS) ----------------------------------------


def pytest_runtest_logstart(nodeid, location):
    _durations_line("start", time.time(), nodeid)  # when it started, for one still running


def pytest_runtest_logreport(report):
    _durations_line(report.when, report.duration, report.nodeid, report.outcome)


def _durations_line(when: str, seconds: float, nodeid: str, outcome: str = "") -> None:
    """`<seconds>\t<phase>\t<test>\t<outcome>` appended to $SLURMSKY_TEST_DURATIONS (in the
    process that reports: the controller under xdist, which hears every worker's reports)."""
    path = os.environ.get("SLURMSKY_TEST_DURATIONS")
    if not path or "PYTEST_XDIST_WORKER" in os.environ:
        return
    with open(path, "a") as f:
        f.write(f"{seconds:.2f}\t{when}\t{nodeid}\t{outcome}\n")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.teardown()


# --- nothing the run started may outlive it ------------------------------------------------

# What a run can leave behind: slurmsky's agents, a SkyPilot API server, its job controllers
# and its request workers (which retitle themselves "SkyPilot:executor:..." or
# "SkyPilot:worker:...": setproctitle, which also blanks what /proc shows of their environment).
LEFTOVER_MARKS = ("slurmsky.core.daemon", "SkyPilot:", "sky.server.server", "sky.jobs.controller")
LEFTOVER_GRACE = 5.0  # s: for those already on their way out
_PYTEST_DIR = r"/pytest-of-[^/]+/pytest-\d+"  # pytest's numbered temp dirs
_run: dict = {}
# This run's mark in the environment of every process it starts (xdist workers inherit the
# controller's): another pytest run's processes (a helper's, a second checkout's) carry theirs.
RUN_TOKEN = os.environ.setdefault("PYTEST_SLURMSKY_RUN", f"{os.getpid()}-{time.time_ns()}")


def pytest_sessionstart(session):
    """What already runs is not this run's: a sky-e2e stack, another session's agents."""
    import psutil

    _run["started"] = time.time()
    _run["before"] = {(p.pid, p.info["create_time"]) for p in psutil.process_iter(["create_time"])}


def _verdict(proc, base: str) -> str | None:
    """'ours' when the process is this run's (pytest itself, or it names this run's temp
    dir in its cwd, command line or environment, or it carries this run's RUN_TOKEN), 'other'
    when it names another pytest run's temp dir or token, else None."""
    import re

    import psutil

    if proc.pid == os.getpid():
        return "ours"
    texts: list[str] = []
    environ: dict = {}
    for get in (lambda: [proc.cwd()], proc.cmdline):
        try:
            texts += get()
        except psutil.Error:
            pass
    try:
        environ = proc.environ()
    except psutil.Error:
        pass
    texts += environ.values()
    if base and any(base in t for t in texts):
        return "ours"
    if any(re.search(_PYTEST_DIR, t) for t in texts):
        return "other"
    if "PYTEST_SLURMSKY_RUN" in environ:
        return "ours" if environ["PYTEST_SLURMSKY_RUN"] == RUN_TOKEN else "other"
    return None


def _started_by(proc) -> str:
    """The test that was running when the process (or its nearest ancestor that still shows
    its environment) was started."""
    import psutil

    try:
        chain = [proc, *proc.parents()]
    except psutil.Error:
        chain = [proc]
    for p in chain:
        try:
            test = p.environ().get("PYTEST_CURRENT_TEST")
        except psutil.Error:
            continue
        if test:
            return test
    return "?"


def leftovers(base: str) -> list:
    """This run's processes of LEFTOVER_MARKS that are alive (zombies are not: their parent
    reaps them): started after the run began, and this run's by `_verdict` on the process or
    its nearest ancestor that has one."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "create_time", "status"]):
        info = proc.info
        if (
            (proc.pid, info["create_time"]) in _run.get("before", ())
            or (info["create_time"] or 0) < _run.get("started", 0) - 1
            or info["status"] == psutil.STATUS_ZOMBIE
        ):
            continue
        line = " ".join(info["cmdline"] or ())
        if not any(mark in line for mark in LEFTOVER_MARKS):
            continue
        try:
            chain = [proc, *proc.parents()]
        except psutil.Error:
            continue
        for p in chain:
            verdict = _verdict(p, base)
            if verdict:
                if verdict == "ours":
                    found.append(proc)
                break
    return found


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when it leaves a process of LEFTOVER_MARKS behind (after a short grace);
    list them, with the test that started them, then end them by pid."""
    import psutil

    if "started" not in _run or _worker(session.config):
        return  # under xdist: the controller checks, once every worker has ended
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = str(factory.getbasetemp()) if factory is not None else ""
    procs = leftovers(base)
    if not procs:
        return
    _, alive = psutil.wait_procs(procs, timeout=LEFTOVER_GRACE)
    alive = [p for p in alive if _alive(p)]
    if not alive:
        return
    lines = []
    for proc in sorted(alive, key=lambda p: p.pid):
        try:
            line, cwd = " ".join(proc.cmdline()).strip(), proc.cwd()
        except psutil.Error:
            line, cwd = "?", "?"
        lines.append(
            f"pid {proc.pid}: {line[:200]}  (cwd {cwd}; started during {_started_by(proc)})"
        )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    title = f"{len(lines)} process(es) this run started are still alive"
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", title, red=True, bold=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print(title, *lines, sep="\n", file=sys.stderr)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    for proc in alive:  # only these, by pid (psutil checks it is still the same process)
        try:
            proc.kill()
        except psutil.Error:
            pass


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
