"""Disk cost of finished jobs in a state directory, per 10 000 jobs, before and after retention.

    python bench/retention_disk.py [--real N]

Runs N real jobs (`sbatch --wrap 'echo hello'`, default 20) on the local backend and measures
their run directories (jobs/<id>: RESULT and the runtime's log, kept until
purge_run_dirs_after); then stores 10 000 copies of one of those finished jobs (its row, its
spec with this shell's environment, its RESULT with usage) in a fresh state database and
measures the database, then again after retention slimmed the specs (purge_run_dirs_after),
and after purge_job_after removed them. Prints Markdown. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
JOBS = 10_000


def du(path: Path) -> int:
    """Bytes on disk (allocated blocks) under path."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def db_bytes(home: Path) -> int:
    return sum(du(p) if p.is_dir() else p.stat().st_blocks * 512 for p in home.glob("state.db*"))


def compact(conn: sqlite3.Connection) -> None:
    """What the file would shrink to (SQLite reuses freed pages; VACUUM gives them back)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slurmsky-retention-"))
    env = dict(os.environ, SLURMSKY_HOME=str(tmp / "real"), SLURMSKY_CONFIG=str(tmp / "none"))
    bin_dir = ROOT / "bin"
    ids = [
        int(
            subprocess.run(
                [
                    sys.executable,
                    str(bin_dir / "sbatch"),
                    "--parsable",
                    "-o",
                    "/dev/null",
                    "--wrap",
                    "echo hello",
                ],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split(";")[0]
        )
        for _ in range(args.real)
    ]
    os.environ["SLURMSKY_HOME"] = env["SLURMSKY_HOME"]
    from slurmsky.config import Config
    from slurmsky.core import retention, state

    conn = state.connect()
    deadline = time.time() + 600
    while time.time() < deadline:
        rows = conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE state = 'COMPLETED' AND job_id IN ({','.join(map(str, ids))})"
        ).fetchone()[0]
        if rows == len(ids):
            break
        time.sleep(0.5)
    subprocess.run(
        [sys.executable, str(bin_dir / "slurmsky"), "agent", "stop"], env=env, capture_output=True
    )
    run_dirs = [du(tmp / "real" / "jobs" / str(i)) for i in ids]
    per_dir = sum(run_dirs) / len(run_dirs)
    row = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (ids[0],)).fetchone()
    names = [d[0] for d in conn.execute("SELECT * FROM jobs LIMIT 0").description]
    spec, task = conn.execute(
        "SELECT spec, task FROM submissions WHERE id = ?", (ids[0],)
    ).fetchone()

    os.environ["SLURMSKY_HOME"] = str(tmp / "bulk")
    bulk = state.connect()
    empty = db_bytes(tmp / "bulk")
    values = dict(zip(names, row))
    with state.write(bulk):
        for k in range(1, JOBS + 1):
            bulk.execute("INSERT INTO submissions VALUES (?, ?, ?)", (k, spec, task))
            values.update(job_id=k, submission=k)
            bulk.execute(
                f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                list(values.values()),
            )
    bulk.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = db_bytes(tmp / "bulk") - empty
    log = logging.getLogger("bench")
    retention.tidy(bulk, Config(path="x", purge_run_dirs_after=0), time.time() + 1, log)
    compact(bulk)
    slim = db_bytes(tmp / "bulk") - empty
    retention.tidy(bulk, Config(path="x", purge_job_after=1), time.time() + 2 * 86400, log)
    compact(bulk)
    purged = db_bytes(tmp / "bulk") - empty
    mib = 1024 * 1024
    print(
        f"Disk cost of 10 000 finished jobs (measured: {args.real} real jobs' run directories, "
        f"{JOBS} copies of one real job's rows; spec of {len(spec)} bytes with this shell's "
        "environment)\n"
    )
    print("| what | per job | per 10 000 jobs |")
    print("|---|---|---|")
    print(
        f"| run directories (jobs/<id>), until purge_run_dirs_after | {per_dir / 1024:.1f} KiB | "
        f"{per_dir * JOBS / mib:.1f} MiB |"
    )
    print(
        f"| state.db, full specs (before purge_run_dirs_after) | {full / JOBS / 1024:.2f} KiB | "
        f"{full / mib:.1f} MiB |"
    )
    print(
        f"| state.db, slimmed specs (after it; history for sacct) | {slim / JOBS / 1024:.2f} KiB | "
        f"{slim / mib:.1f} MiB |"
    )
    print(
        f"| state.db after purge_job_after | {purged / JOBS / 1024:.2f} KiB | {purged / mib:.1f} MiB |"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
