"""Many commands at once on one state dir, all real subprocesses: submissions, cancels and
the read side polling throughout. Nothing is lost, duplicated or refused with `database is
locked`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from conftest import BIN

GATE = "for i in $(seq 600); do [ -e go ] && exit 0; sleep 0.1; done; exit 9"


def _start(cluster, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(BIN / argv[0]), *argv[1:]],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each, waiting at most 60 s for each."""
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append((proc.returncode, out, err))
    return results


def test_submit_cancel_and_poll_all_at_once(cluster):
    """50 parallel sbatch, then 20 parallel scancel (running and pending jobs), while squeue
    and sacct run in a loop: distinct ids, each job stored once, the cancelled CANCELLED,
    the others COMPLETED, and every command exits 0 with nothing on stderr."""
    started = time.monotonic()
    stop = threading.Event()
    polls: list[tuple[str, int, str]] = []

    def poll(*argv: str) -> None:
        while not stop.is_set():
            proc = _start(cluster, *argv)
            _, err = proc.communicate(timeout=60)
            polls.append((argv[0], proc.returncode, err))

    pollers = [
        threading.Thread(target=poll, args=argv)
        for argv in (("squeue",), ("sacct", "-X"), ("squeue", "-t", "all"))
    ]
    for t in pollers:
        t.start()
    try:
        submits = _finish(
            [_start(cluster, "sbatch", "--parsable", "--wrap", GATE) for _ in range(50)]
        )
        assert [(rc, err) for rc, _, err in submits] == [(0, "")] * 50
        ids = sorted(int(out) for _, out, _ in submits)
        assert ids == list(range(1, 51))
        cancelled = ids[::2][:20]  # the first few run (waiting for `go`), the rest pend
        cluster.wait_for(lambda: cluster.jobs("state = 'RUNNING'"), 30, "a running job")
        cancels = _finish([_start(cluster, "scancel", str(job)) for job in cancelled])
        assert [(rc, out, err) for rc, out, err in cancels] == [(0, "", "")] * 20
        (cluster.cwd / "go").touch()
        rows = cluster.wait_done(*ids, timeout=60)
    finally:
        stop.set()
        for t in pollers:
            t.join(timeout=60)
    with cluster.db() as conn:
        stored = conn.execute(
            "SELECT job_id, COUNT(*) FROM jobs GROUP BY job_id ORDER BY job_id"
        ).fetchall()
    assert stored == [(job, 1) for job in ids]
    assert {r[0]: r[1:3] for r in rows} == {
        job: ("CANCELLED", 0) if job in cancelled else ("COMPLETED", 0) for job in ids
    }
    assert len(polls) >= 6
    assert [p for p in polls if p[1:] != (0, "")] == []
    sacct = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,State")
    assert sacct.stdout == "".join(
        f"{job}|{'CANCELLED by 0' if job in cancelled else 'COMPLETED'}\n" for job in ids
    )
    assert time.monotonic() - started < 90
