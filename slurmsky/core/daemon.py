"""The agent: one background process per state directory that runs the scheduler's passes.

Commands never wait for it: they store what they want and `wake()` it by writing a byte to
its FIFO (`agent.fifo`). Writing to a FIFO nobody reads fails with ENXIO, which is also how
a command finds that no agent runs and starts one (`python -m slurmsky.core.daemon`, in its own
session). An flock on `agent.lock` keeps it to one agent per directory. The agent sleeps in
select() until woken, a child exits (SIGCHLD), or a timer is due (a begin time, a kill
deadline, a poll of jobs an earlier agent started); it exits after IDLE_EXIT seconds with
nothing that can progress without a command (held jobs wait for `scontrol release`, which
wakes a new agent). Its log is `agent.log` in the state directory.

This module is imported by sbatch on every call, so its top level stays stdlib-light.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

from slurmsky.core import state
from slurmsky.runtime import PACKAGE_PARENT

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.config import Config
    from slurmsky.core import fairshare

IDLE_EXIT = 60.0  # s with no job that needs it before the agent exits
LOCK_WAIT = 10.0  # s a starting agent waits for an exiting one to release the lock
READY_WAIT = 10.0  # s a read-side command that restarted a dead agent waits for its first pass
TIDY_EVERY = 60.0  # s between retention passes (core/retention.py)
AWAY_RETRY_MAX = 30.0  # s between tries at most while the state's server is unreachable
# (and while passes fail: a backend broken here, a bug; each error's traceback logged once)
STOP_WAIT = 30.0  # s `slurmsky agent stop` waits for the agent to exit (it stops mid-pass)


def _path(name: str) -> str:
    return os.path.join(state.home(), name)


def wake() -> bool:
    """Tell the agent to look at the state now; start it if none runs (-> whether this call
    started one). With no FIFO (deleted under a running agent) or something else in its
    place, a running agent is signalled instead: it makes its FIFO anew."""
    heard = nudge()
    if heard == "sent":
        return False
    if heard == "unheard" or not _nudge():
        _spawn()
        return True
    return False


def nudge() -> str:
    """Write a wake-up into the agent's FIFO, starting nothing: `sent` (or the FIFO is full
    of them already), `unheard` (no agent reads it), or `missing` (no FIFO, or something
    else in its place). The agent's own threads call it when a call they made returns."""
    try:
        fd = os.open(_path("agent.fifo"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return "unheard"
        if exc.errno in (errno.ENOENT, errno.EISDIR):
            return "missing"
        raise
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return "missing"
        os.write(fd, b"!")
    except BlockingIOError:
        pass  # the FIFO is full of wake-ups already
    finally:
        os.close(fd)
    return "sent"


def revive(conn) -> None:
    """For read-side commands: restart a dead agent if jobs still need one, or if the last
    agent was killed (its pid file is left): it may have died between recording a job's end
    and releasing the jobs that waited for it, which alone need no agent. Cheap otherwise."""
    if needed(conn) or (os.path.exists(_path("agent.pid")) and not _lock_held()):
        asked = time.time()
        if wake():  # a new agent: what it finds ended meanwhile is shown ended, not RUNNING
            _await_first_pass(asked)


def _await_first_pass(since: float) -> None:
    """Wait (at most READY_WAIT s) for an agent started at `since` to end its first pass:
    it touches agent.ready then."""
    deadline = time.monotonic() + READY_WAIT
    while time.monotonic() < deadline:
        try:
            if os.stat(_path("agent.ready")).st_mtime >= since:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)


def needed(conn) -> bool:
    """Whether some job can progress without a command (core.state.needs_agent), or a backend
    follows jobs in an outside queue (it alone judges its started jobs: another user's
    SkyPilot job running for days needs no agent); with none, the agent may exit."""
    from slurmsky import backends

    followed = tuple(b.name for b in backends.supporting(backends.Feature.QUEUE_SYNC))
    return state.needs_agent(conn, followed) or any(b.needs_agent(conn) for b in backends.every())


def _nudge() -> bool:
    """Wake a running agent by signal (SIGUSR1): whether one was found."""
    import signal

    pid = running_pid()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return False
    return True


def _spawn() -> None:
    home = state.ensure_home()
    env = dict(os.environ, SLURMSKY_HOME=home)
    env["PYTHONPATH"] = PACKAGE_PARENT + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    log_fd = os.open(_path("agent.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "slurmsky.core.daemon"],
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
            setsigmask=(),  # none blocked: sbatch spawns it while it holds signals off
        )
    finally:
        os.close(log_fd)


def _lock_held() -> bool:
    import fcntl

    try:
        fd = os.open(_path("agent.lock"), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def running_pid() -> int | None:
    """The agent's pid if one holds the lock, else None."""
    if not _lock_held():
        return None
    try:
        with open(_path("agent.pid")) as fh:
            return int(fh.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def stop(timeout: float = STOP_WAIT) -> int | None:
    """Stop the agent (jobs keep running; the next agent finds them). Returns its pid."""
    import signal

    pid = running_pid()
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout
    while _lock_held() and time.monotonic() < deadline:  # released when the agent exits
        time.sleep(0.02)
    return pid


# --- the agent process ------------------------------------------------------------------------


def main() -> int:
    import fcntl
    import logging
    import select
    import signal

    # wake() found no FIFO of ours: it signals the pid in agent.pid, which may be written
    # before the loop starts (SIGUSR1's default would end the agent; its first pass looks)
    signal.signal(signal.SIGUSR1, lambda *_: None)
    home = state.ensure_home()
    os.chdir(home)
    lock_fd = os.open(_path("agent.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                return 0  # another agent runs
            time.sleep(0.05)
    with open(_path("agent.pid.tmp"), "w") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(_path("agent.pid.tmp"), _path("agent.pid"))

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s agent[{os.getpid()}] %(levelname)s %(message)s",
    )
    log = logging.getLogger("slurmsky.core.daemon")
    log.info("started in %s", home)

    fifo = _open_fifo(None, log)
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    stopping = []
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))

    from slurmsky.core.scheduler import Scheduler
    from slurmsky.errors import SlurmError

    where = _location()
    try:
        from slurmsky.core.state import team

        conn = state.connect(
            long_lived=True, application=f"{team.AGENT_APPLICATION}:{team.login()}"
        )
    except (SlurmError, state.StateError) as exc:  # the commands say it too
        log.error("%s", exc)
        return 1
    config = _config(log)
    sched = Scheduler(conn, config.backend, _priority(config))
    sched.stopping = lambda: bool(stopping)  # a stop is honoured mid-pass
    idle_since = time.monotonic()
    tidy_at = 0.0
    _reserve()
    first_done = False
    away = 0.0  # s the state's server has been unreachable for, at the last try
    failing = 0.0  # s to the next try while passes fail
    said: set[str] = set()  # the failures whose traceback is logged
    while not stopping:
        fifo = _open_fifo(fifo, log)
        try:
            if time.monotonic() >= tidy_at:
                tidy_at = time.monotonic() + TIDY_EVERY
                _tidy(conn, log)
            changed, wake_at = sched.run_pass(time.time())
            while changed and not stopping:
                changed, wake_at = sched.run_pass(time.time())
            busy = needed(conn)
        except state.StateError as exc:
            if not exc.unreachable:
                raise
            # The jobs run on; their ends wait in their run directories. Tried again after
            # 1, 2, 4 ... 30 s; what the failed pass did not commit, it decides again.
            away = min(max(2 * away, 1.0), AWAY_RETRY_MAX)
            log.warning("state unreachable (%s); trying again in %g s", exc, away)
            wake_at, busy = time.time() + away, True
        except Exception as exc:
            if _full(exc) and _free_reserve():  # the ends it saw are recorded at once
                log.warning("state disk full: freed the agent's reserve (%s)", exc)
                continue
            failing = min(max(2 * failing, 1.0), AWAY_RETRY_MAX)
            words = f"{type(exc).__name__}: {exc}"
            if words in said:
                log.error("pass failed again (%s); trying again in %g s", words, failing)
            else:
                said.add(words)
                log.exception("pass failed; trying again in %g s", failing)
            wake_at, busy = time.time() + failing, True
        else:
            if away:
                log.info("state reachable again")
                away = 0.0
            failing = 0.0
            _reserve()
        if not first_done and not away:  # the first pass is done (revive waits for it)
            first_done = _touch("agent.ready")
        if busy:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_EXIT:
            break
        timeout = IDLE_EXIT if wake_at is None else max(0.0, wake_at - time.time())
        try:
            ready, _, _ = select.select([fifo, wake_r], [], [], min(timeout, IDLE_EXIT))
        except InterruptedError:
            ready = []
        for fd in ready:
            try:
                while os.read(fd, 4096):
                    pass
            except BlockingIOError:
                pass
        moved = _location()
        if moved not in (where, None):  # the config names another state now
            log.info("the state is now %s (was %s): starting over", moved, where)
            os.close(fifo)
            os.execv(sys.executable, [sys.executable, "-m", "slurmsky.core.daemon"])
    # Exit: stop reading wake-ups first, then look once more, so a job stored just now
    # is either seen here or its command finds no reader and starts a new agent.
    os.close(fifo)
    if not stopping and needed(conn):
        log.info("a job arrived while exiting; starting over")
        os.execv(sys.executable, [sys.executable, "-m", "slurmsky.core.daemon"])
    log.info("exiting (%s)", "stopped" if stopping else "idle")
    os.unlink(_path("agent.pid"))
    return 0


def _location() -> str | None:
    """Where the state is now (the config's `state:`, SLURMSKY_STATE); None: the config
    cannot be read just now. One state directory serves one state at a time: an agent
    whose state moved starts over on the new one."""
    from slurmsky.errors import SlurmError

    try:
        return state.location()
    except SlurmError:
        return None


RESERVE = 256 * 1024  # bytes the agent holds in the state directory for a full disk


def _reserve() -> None:
    """Hold RESERVE bytes in agent.reserve (if not held): space a pass that fails on a
    full disk frees to record what it saw (jobs that ended). Best effort."""
    path = _path("agent.reserve")
    if os.path.exists(path):
        return
    try:
        with open(path + ".tmp", "wb") as fh:
            fh.write(bytes(RESERVE))
        os.replace(path + ".tmp", path)
    except OSError:
        try:
            os.unlink(path + ".tmp")
        except OSError:
            pass


def _touch(name: str) -> bool:
    try:
        os.close(os.open(_path(name), os.O_WRONLY | os.O_CREAT, 0o600))
        os.utime(_path(name))
    except OSError:
        return False
    return True


def _free_reserve() -> bool:
    try:
        os.unlink(_path("agent.reserve"))
    except OSError:
        return False
    return True


def _full(exc: Exception) -> bool:
    """Whether a pass failed for want of space (SQLite's SQLITE_FULL, or ENOSPC)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(exc)


def _tidy(conn, log) -> None:
    """Retention (core/retention.py); a failure is logged, the agent goes on."""
    from slurmsky.config import load_config
    from slurmsky.core import retention

    try:
        retention.tidy(conn, load_config(), time.time(), log)
    except Exception:
        log.exception("retention failed")


def _open_fifo(fd: int | None, log) -> int:
    """The agent's FIFO, opened for reading: `fd` while it is still the one at agent.fifo,
    else made anew (deleted, or a regular file or anything else in its place)."""
    path = _path("agent.fifo")
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        found = None
    if fd is not None:
        if found is not None and os.path.samestat(found, os.fstat(fd)):
            return fd
        os.close(fd)
    if found is not None and not stat.S_ISFIFO(found.st_mode):
        log.warning("agent.fifo was not a FIFO; making it anew")
        if stat.S_ISDIR(found.st_mode):
            import shutil

            shutil.rmtree(path)
        else:
            os.unlink(path)
    elif found is None and fd is not None:
        log.warning("agent.fifo was removed; making it anew")
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


def _config(log) -> Config:
    """The configuration (the agent syncs its backend's queue even before it has a job
    there); a broken one is said and the defaults used."""
    from slurmsky.config import Config, load_config
    from slurmsky.errors import SlurmError

    try:
        return load_config()
    except SlurmError as exc:
        log.error("configuration: %s", exc)
        return Config(path="")


def _priority(config: Config) -> fairshare.Settings | None:
    """priority/multifactor's settings (used on a team's state), unless it is off; a bad
    time in them is said, and the jobs go in submission order."""
    import logging

    from slurmsky.core import fairshare
    from slurmsky.errors import SlurmError

    if config.priority_type == "basic":
        return None
    try:
        return fairshare.Settings(config)
    except SlurmError as exc:
        logging.getLogger("slurmsky.core.daemon").error("configuration: %s", exc)
        return None


if __name__ == "__main__":
    sys.exit(main())
