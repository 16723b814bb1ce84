"""The harness's window into one slurmsky state directory ($SLURMSKY_HOME), run as the case's
user (so every file of the state directory stays that user's).

    skystate.py floor N      job ids start at N at least (reserves the ids below, unused)
    skystate.py wait SECS    until no job is pending or running; exit 1 with a note if not
    skystate.py pids         JSON: the agent's pid and the node runtimes' session ids

It reads the state through slurmsky.state (the scheduler core's own API), not through the
commands under test: a broken squeue must not make the harness wait forever.
"""

from __future__ import annotations

import json
import os
import sys
import time

from slurmsky import state


def main(argv: list[str]) -> int:
    what = argv[0]
    if what == "floor":
        conn = state.connect()
        nxt = state.allocate_ids(conn, 0)
        if nxt < int(argv[1]):
            state.allocate_ids(conn, int(argv[1]) - nxt)
        return 0
    if what == "wait":
        deadline = time.monotonic() + float(argv[1])
        conn = state.connect()
        while state.active_jobs_exist(conn):
            if time.monotonic() > deadline:
                jobs = state.active_jobs(conn)
                print(f"TIMED OUT after {argv[1]}s waiting for the jobs to end: "
                      + ", ".join(f"{j.job_id}={j.state}" for j in jobs))
                return 1
            time.sleep(0.2)
        return 0
    if what == "pids":
        home = state.home()
        info: dict = {"agent": None, "sessions": []}
        try:
            with open(os.path.join(home, "agent.pid")) as fh:
                info["agent"] = int(fh.read().strip() or 0) or None
        except (OSError, ValueError):
            pass
        if os.path.exists(os.path.join(home, "state.db")):
            conn = state.connect()
            for (ref,) in conn.execute("SELECT executor_ref FROM jobs "
                                       "WHERE executor_ref IS NOT NULL"):
                for pid, _ctime in json.loads(ref).get("pids", []):
                    if pid:
                        info["sessions"].append(pid)
        print(json.dumps(info))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
