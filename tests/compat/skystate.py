"""The harness's window into one slurmsky state directory ($SLURMSKY_HOME).

    skystate.py floor N      job ids start at N at least (reserves the ids below, unused)
    skystate.py wait SECS    until no job is pending or running; exit 1 with a note if not
    skystate.py pids         JSON: the agent's pid and the node runtimes' session ids

For cases run by the harness's own user these functions are called in-process; for another
user the script runs as that user (so every file of the state directory stays theirs).
It reads the state through slurmsky.core.state (the scheduler core's own API), not through the
commands under test: a broken squeue must not make the harness wait forever.
"""

from __future__ import annotations

import json
import os
import sys
import time

from slurmsky.core import state


def floor(environ, first: int) -> None:
    conn = state.connect(environ)
    try:
        nxt = state.allocate_ids(conn, 0)
        if nxt < first:
            state.allocate_ids(conn, first - nxt)
    finally:
        conn.close()


def wait(environ, seconds: float) -> str:
    """'' once no job is active, else the peer's words (PeerSide.wait_done) when the time
    is up: a job that pends for good (beyond its partition) times out alike on both sides."""
    deadline = time.monotonic() + seconds
    conn = state.connect(environ)
    try:
        while state.active_jobs_exist(conn):
            if time.monotonic() > deadline:
                return f"TIMED OUT after {seconds:g}s waiting for the jobs to end"
            time.sleep(0.2)
        return ""
    finally:
        conn.close()


def pids(environ) -> dict:
    """Only what is still this state's: the pid file of a killed agent and a job's finished
    runtime may name numbers the system has given to strangers since."""
    from slurmsky.backends.local.executor import session_is_ours

    home = state.home(environ)
    info: dict = {"agent": None, "sessions": []}
    try:
        with open(os.path.join(home, "agent.pid")) as fh:
            info["agent"] = _agent(int(fh.read().strip() or 0), home)
    except (OSError, ValueError):
        pass
    if os.path.exists(os.path.join(home, "state.db")):
        conn = state.connect(environ)
        try:
            for (ref,) in conn.execute(
                "SELECT executor_ref FROM jobs WHERE executor_ref IS NOT NULL"
            ):
                for pid, created in json.loads(ref).get("pids", []):
                    if pid and session_is_ours(pid, created):
                        info["sessions"].append(pid)
        finally:
            conn.close()
    return info


def _agent(pid: int, home: str) -> int | None:
    """`pid` if it is this state directory's agent."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if "slurmsky.core.daemon" in proc.cmdline() and proc.environ().get("SLURMSKY_HOME") == home:
            return pid
    except (psutil.Error, ValueError):
        pass
    return None


def main(argv: list[str]) -> int:
    what = argv[0] if argv else ""
    if what == "floor":
        floor(os.environ, int(argv[1]))
        return 0
    if what == "wait":
        note = wait(os.environ, float(argv[1]))
        if note:
            print(note)
        return 1 if note else 0
    if what == "pids":
        print(json.dumps(pids(os.environ)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
