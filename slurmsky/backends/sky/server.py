"""`slurmsky sky-server start|stop|status`: a local SkyPilot API server in consolidation mode.

The sky backend talks to whatever API server SkyPilot's own configuration points at
(SKYPILOT_API_SERVER_ENDPOINT, `api_server.endpoint`, else http://127.0.0.1:46580 or
$SKYPILOT_API_SERVER_LOCAL_PORT). This runs the local one the way the managed jobs need it
(shared/reference/skypilot-sdk.md §3): started explicitly, never by an SDK call's auto-start,
with the jobs controller inside the server (`jobs.controller.consolidation_mode: true`, which
Slurm infra requires), its own state in $SLURMSKY_HOME/sky-server (SKY_RUNTIME_DIR), the
user's SkyPilot config otherwise unchanged, usage collection off unless asked for, and
health-polled before `start` returns, in a session of its own. `stop` ends that session (the
server and its workers) and the sessions of the job controllers it detached (found by their
SKY_RUNTIME_DIR), by pid.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from slurmsky.core import state
from slurmsky.errors import SlurmError

DEFAULT_PORT = 46580  # SkyPilot's
START_TIMEOUT = 180.0  # s: a first start on a busy 2-core host takes 20-70 s
STOP_TIMEOUT = 20.0


def runtime_dir() -> str:
    return os.path.join(state.home(), "sky-server")


def port() -> int:
    return int(os.environ.get("SKYPILOT_API_SERVER_LOCAL_PORT") or DEFAULT_PORT)


def url() -> str:
    return f"http://127.0.0.1:{port()}"


def healthy(timeout: float = 5.0) -> bool:
    return (health(url(), timeout) or {}).get("status") == "healthy"


def health(endpoint: str, timeout: float = 5.0) -> dict | None:
    """The server's /api/health answer ({} behind auth), or None when it does not answer."""
    try:
        with urllib.request.urlopen(endpoint + "/api/health", timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError:
        return {}
    except (OSError, ValueError):
        return None


class Server(collections.namedtuple("Server", "url config project", defaults=(None, None))):
    """A SkyPilot API server as a command named it: its URL as SkyPilot connects to it
    (credentials kept), and SkyPilot's config files in effect then, absolute paths (None:
    none): the user's (`config`) and the project's (`project`, the .sky.yaml of the
    command's directory), which the job's launch loads wherever the agent runs. A
    namedtuple (sbatch imports this: no dataclasses)."""

    url: str
    config: str | None
    project: str | None

    @property
    def name(self) -> str:
        """The URL without credentials: what names the server in reasons and job refs."""
        return without_credentials(self.url)

    def __repr__(self) -> str:  # logs and tracebacks: no credentials
        return f"Server({self.name!r}, config={self.config!r}, project={self.project!r})"

    def record(self) -> dict:
        return {"url": self.url, "config": self.config, "project": self.project}

    @classmethod
    def of(cls, record: dict) -> Server:
        return cls(record["url"], record.get("config"), record.get("project"))


def of_task(task: dict | None) -> Server | None:
    """The server recorded with a stored task (None: stored before servers were)."""
    found = ((task or {}).get("_metadata") or {}).get("slurmsky", {}).get("server")
    return Server.of(found) if found else None


# SkyPilot's config files (sky/skypilot_config.py): $SKYPILOT_CONFIG alone when set (its
# jobs controller's); else the user's ($SKYPILOT_GLOBAL_CONFIG, else ~/.sky/config.yaml)
# overlaid with the project's ($SKYPILOT_PROJECT_CONFIG, else .sky.yaml here).
USER_CONFIG = ("SKYPILOT_GLOBAL_CONFIG", "~/.sky/config.yaml")
PROJECT_CONFIG = ("SKYPILOT_PROJECT_CONFIG", ".sky.yaml")


def _config_file(var: str, default: str) -> str | None:
    path = os.path.abspath(os.path.expanduser(os.environ.get(var) or default))
    return path if os.path.isfile(path) else None


def _endpoint_in(path: str | None) -> str | None:
    """`api_server.endpoint` of a SkyPilot config file, if it sets one."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if "api_server" not in text:
        return None
    import yaml

    data = yaml.safe_load(text)
    found = ((data if isinstance(data, dict) else {}).get("api_server") or {}).get("endpoint")
    return str(found) if found else None


def current() -> Server:
    """The server SkyPilot's clients use here and now, found without importing SkyPilot (as
    its server/common.get_server_url does): $SKYPILOT_API_SERVER_ENDPOINT, else
    `api_server.endpoint` of SkyPilot's config (the project's over the user's), else the
    local one ($SKYPILOT_API_SERVER_LOCAL_PORT); with the config files in effect."""
    if os.environ.get("SKYPILOT_CONFIG"):
        config, project = _config_file("SKYPILOT_CONFIG", ""), None
    else:
        config, project = _config_file(*USER_CONFIG), _config_file(*PROJECT_CONFIG)
    found = (
        os.environ.get("SKYPILOT_API_SERVER_ENDPOINT")
        or _endpoint_in(project)
        or _endpoint_in(config)
    )
    return Server((found or url()).rstrip("/"), config, project)


def endpoint() -> str:
    """The server SkyPilot's clients use (current()), credentials dropped: it is printed."""
    return current().name


def without_credentials(where: str) -> str:
    parts = urllib.parse.urlsplit(where.rstrip("/"))
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def unreachable_message(where: str) -> str:
    return (
        f"SkyPilot API server {where} is unreachable: {unreachable_remedy(where)}; "
        "`slurmsky doctor` checks the setup"
    )


def unreachable_remedy(where: str) -> str:
    if urllib.parse.urlsplit(where).hostname in ("127.0.0.1", "localhost"):
        return (
            "start one with `slurmsky sky-server start` (or set SKYPILOT_API_SERVER_ENDPOINT "
            "to yours)"
        )
    return "check that server (`sky api info`)"


def _pid_file() -> str:
    return os.path.join(runtime_dir(), "server.pid")


def _recorded_pid() -> int | None:
    try:
        with open(_pid_file()) as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_pid() -> int | None:
    """The pid of the server `start` left running, if it still is that server."""
    pid = _recorded_pid()
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"sky.server.server" in fh.read():
                return pid
    except OSError:
        pass
    return None


def _session() -> int | None:
    """The session `start` made: the server's pid, while it runs or once no process has it
    (its workers may outlive it there); never a stranger that got the pid since."""
    pid = _recorded_pid()
    if pid is None or running_pid() == pid or not os.path.exists(f"/proc/{pid}"):
        return pid
    return None


def _config(path: str) -> None:
    """The user's SkyPilot config with consolidation mode on."""
    import yaml

    source = os.environ.get("SKYPILOT_GLOBAL_CONFIG") or os.path.expanduser("~/.sky/config.yaml")
    data: dict = {}
    if os.path.exists(source):
        with open(source, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    data.setdefault("jobs", {}).setdefault("controller", {})["consolidation_mode"] = True
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh)


def start() -> str:
    """Start the server and wait until it answers; the line to print."""
    if os.environ.get("SKYPILOT_API_SERVER_ENDPOINT"):
        raise SlurmError(
            "SKYPILOT_API_SERVER_ENDPOINT is set: SkyPilot uses that server, "
            "not a local one; unset it to run one here"
        )
    pid = running_pid()
    if pid is not None and healthy():
        return f"sky-server: already running, pid {pid}, {url()}"
    if healthy():
        raise SlurmError(
            f"another SkyPilot API server answers on {url()}; stop it or set "
            "SKYPILOT_API_SERVER_LOCAL_PORT to another port"
        )
    rundir = runtime_dir()
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    config = os.path.join(rundir, "config.yaml")
    _config(config)
    env = dict(
        os.environ,
        SKY_RUNTIME_DIR=rundir,
        SKYPILOT_GLOBAL_CONFIG=config,
        SKYPILOT_API_SERVER_LOCAL_PORT=str(port()),
        IS_SKYPILOT_SERVER="true",
    )
    env.setdefault("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    with open(os.path.join(rundir, "server.log"), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sky.server.server", "--host=127.0.0.1", f"--port={port()}"],
            cwd=rundir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with open(_pid_file(), "w") as fh:
        fh.write(f"{proc.pid} {port()}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SlurmError(
                f"the SkyPilot API server exited ({proc.returncode}); see {rundir}/server.log"
            )
        if healthy(timeout=2):
            return f"sky-server: started pid {proc.pid}, {url()} (consolidation mode, {rundir})"
        time.sleep(0.5)
    stop()
    raise SlurmError(
        f"the SkyPilot API server did not answer on {url()} within "
        f"{START_TIMEOUT:.0f} s; see {rundir}/server.log"
    )


def _processes(session: int | None) -> list:
    """Every process of the server, by session: `start` makes the server a session leader,
    so its request workers (whatever setproctitle makes of their title and environment),
    their helpers and anything else it forks share its session id, even once the server is
    gone. The job controllers it detaches run in sessions of their own; they are found by the
    SKY_RUNTIME_DIR they inherit, and their whole sessions (a server they start again, its
    workers) come with them."""
    import psutil

    rundir = os.path.realpath(runtime_dir())
    sessions = {session} if session else set()
    procs = []
    for proc in psutil.process_iter():
        try:
            sid = os.getsid(proc.pid)
            procs.append((proc, sid))
            if os.path.realpath(proc.environ().get("SKY_RUNTIME_DIR") or "/") == rundir:
                sessions.add(sid)
        except (psutil.Error, OSError):
            pass
    sessions.discard(os.getsid(0))  # never the caller's own
    return [proc for proc, sid in procs if sid in sessions]


def stop() -> str:
    """SIGTERM to the server and all its processes, then SIGKILL to whatever of it is still
    found, round after round: while it shuts down, the server may still detach a job
    controller, and a controller that finds the server gone starts one again (SkyPilot's
    auto-start), so one look is not enough."""
    import psutil

    pid = running_pid()
    seen: dict[int, psutil.Process] = {}
    for attempt in range(12):
        # and whatever of an earlier round still runs: an idle request worker ignores SIGTERM
        # and outlives the server, its parent (psutil tells a reused pid from it)
        found = {p.pid: p for p in seen.values() if p.is_running()}
        found.update((p.pid, p) for p in _processes(_session()))
        procs = [p for p in found.values() if _alive(p)]
        if not procs:
            break
        seen.update((p.pid, p) for p in procs)
        sig = signal.SIGTERM if attempt == 0 else signal.SIGKILL
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=STOP_TIMEOUT if attempt == 0 else 5)
    else:
        raise SlurmError(
            f"the SkyPilot API server's processes ({runtime_dir()}) kept "
            "coming back; stop them by hand"
        )
    if os.path.exists(_pid_file()):
        os.unlink(_pid_file())
    if not seen:
        return "sky-server: not running"
    return f"sky-server: stopped pid {pid or '-'} ({len(seen)} processes)"


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def status() -> tuple[bool, str]:
    pid = running_pid()
    up = healthy()
    where = f"{url()} ({runtime_dir()})"
    if pid is not None:
        return up, f"sky-server: pid {pid}, {where}, {'healthy' if up else 'not answering'}"
    if up:
        return (
            True,
            f"sky-server: not started by slurmsky; a SkyPilot API server answers on {url()}",
        )
    return False, f"sky-server: not running ({where})"
