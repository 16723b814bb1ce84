"""A throwaway PostgreSQL server for the tests that run on the PostgreSQL state.

    python tests/pgserver.py start DIR   # initdb into DIR, start on a free localhost port;
                                         # prints the server's URL (postgresql://...:PORT/)
    python tests/pgserver.py stop DIR    # stop it (by the pid in DIR), remove DIR

The machine's PostgreSQL (Debian's postgresql-15: /usr/lib/postgresql/*/bin) is used. The
server refuses to run as root: as root, DIR is given to the `postgres` user (or `nobody`)
and the server runs as that user. It listens on 127.0.0.1 only, trusts local connections
(a test server: no password to keep), and asks the disk for no flush (fsync off: a killed server keeps every commit, a
crashed machine would not).
`database(url)` makes a fresh database on it for one test; `kill(dir)` ends it at once
(SIGKILL, as a crash) and `restart(dir)` starts it again on the same port.
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",  # a killed server loses nothing: its WAL is written at each commit
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
}


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"no PostgreSQL {name} here (apt-get install postgresql-15)")
    return path


def _user() -> str | None:
    """Whom the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    raise RuntimeError("as root, no postgres or nobody user to run PostgreSQL as")


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    user = _user()
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, **kw)


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: no outgoing connection takes it
    before its server binds it (the SkyPilot server of test_sky_server.py, started minutes
    after its port was chosen, once found it taken under CI's load)."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def start(folder: str) -> str:
    """initdb into `folder` (made anew, or empty; the server's user must reach it: as root,
    not under pytest's private temp dirs) and start the server; its URL."""
    os.makedirs(folder, exist_ok=True)
    user = _user()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)
    data = os.path.join(folder, "data")
    _run([_bin("initdb"), "-D", data, "-A", "trust", "-U", "slurmsky", "-E", "UTF8",
          "--no-locale"])  # fmt: skip
    port = free_port()
    with open(os.path.join(folder, "port"), "w") as fh:
        fh.write(str(port))
    _start(folder)
    return url(folder)


def _start(folder: str) -> None:
    data = os.path.join(folder, "data")
    port = open(os.path.join(folder, "port")).read().strip()
    options = " ".join(f"-c {k}={v}" for k, v in {**SETTINGS, "port": port}.items())
    _run([_bin("pg_ctl"), "-D", data, "-l", os.path.join(folder, "log"), "-o", options,
          "-w", "-t", "60", "start"])  # fmt: skip


def url(folder: str) -> str:
    port = open(os.path.join(folder, "port")).read().strip()
    return f"postgresql://slurmsky@127.0.0.1:{port}/"


def _pid(folder: str) -> int | None:
    try:
        with open(os.path.join(folder, "data", "postmaster.pid")) as fh:
            return int(fh.readline())
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def kill(folder: str) -> None:
    """End the server at once, as a crash would (SIGKILL to the postmaster and its children)."""
    pid = _pid(folder)
    if pid is None:
        return
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=30)


def restart(folder: str) -> None:
    """Start the server again (after `kill`), on its port."""
    stale = os.path.join(folder, "data", "postmaster.pid")
    if os.path.exists(stale) and _pid(folder) and not _alive(_pid(folder)):
        os.unlink(stale)
    _start(folder)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop(folder: str) -> None:
    """Stop the server (fast shutdown, then SIGKILL if it lingers) and remove `folder`."""
    pid = _pid(folder)
    if pid is not None and _alive(pid):
        try:
            _run([_bin("pg_ctl"), "-D", os.path.join(folder, "data"), "-m", "fast", "-w",
                  "-t", "30", "stop"])  # fmt: skip
        except (subprocess.SubprocessError, OSError):
            kill(folder)
        _wait_gone(pid)
    shutil.rmtree(folder, ignore_errors=True)


def database(server: str) -> str:
    """A new, empty database on the server at URL `server`; its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    _admin(server, f"CREATE DATABASE {name} TEMPLATE template0")
    return server + name


def drop(server: str, db_url: str) -> None:
    """Drop a database `database` made (its connections ended first)."""
    _admin(server, f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]} WITH (FORCE)")


def _admin(server: str, statement: str) -> None:
    """One statement on the server's `postgres` database, outside a transaction."""
    import psycopg2

    conn = psycopg2.connect(server + "postgres", connect_timeout=30)
    try:
        conn.autocommit = True
        conn.cursor().execute(statement)
    finally:
        conn.close()


if __name__ == "__main__":
    action, where = sys.argv[1], os.path.abspath(sys.argv[2])
    if action == "start":
        print(start(where))
    elif action == "stop":
        stop(where)
    else:
        sys.exit(f"usage: {sys.argv[0]} start|stop DIR")
