"""The agent's throughput on arrays of `true` jobs: time to all finished, agent CPU and RSS.

    python bench/agent_arrays.py [SIZE ...] [--limit SECONDS]

Like bench/run.py's array rows (`sbatch --array=0-N -o /dev/null --wrap true`, the config's
max_array_size just above N), but it watches the state database itself (one COUNT a second,
not squeue, whose own cost grows with the queue), samples the agent's RSS as it goes, and
prints the rate in each tenth of the run, so a pass that grows with the queue shows as a rate
that falls. Nothing here is a test: it prints a report (Markdown) to stdout.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import agent_usage, command  # noqa: E402


def finished_count(db: str) -> int:
    conn = sqlite3.connect(db, timeout=60)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('PENDING', "
            "'CONFIGURING', 'RUNNING', 'COMPLETING')"
        ).fetchone()[0]
    finally:
        conn.close()


def bench_array(size: int, tmp: str, limit: float) -> str:
    home = tempfile.mkdtemp(dir=tmp)
    config = Path(home, "config.yaml")
    config.write_text(f"max_array_size: {size + 1}\n")  # as slurm.conf's MaxArraySize
    env = dict(os.environ, SLURMSKY_HOME=home, SLURMSKY_CONFIG=str(config))
    t0 = time.perf_counter()
    subprocess.run(
        command("sbatch")
        + ["--parsable", f"--array=0-{size - 1}", "-o", "/dev/null", "--wrap", "true"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    accepted = time.perf_counter() - t0
    db = os.path.join(home, "state.db")
    marks = [size * k // 10 for k in range(1, 11)]
    times: dict[int, float] = {}
    rss_max = 0.0
    usage = None
    done = 0
    while time.perf_counter() - t0 < limit:
        done = finished_count(db)
        now = time.perf_counter() - t0
        for m in marks:
            if done >= m and m not in times:
                times[m] = now
        u = agent_usage(home)
        if u:
            usage = u
            rss_max = max(rss_max, u[1])
        if done >= size:
            break
        time.sleep(1.0)
    finished = time.perf_counter() - t0
    subprocess.run(
        command("slurmsky") + ["agent", "stop"], env=env, capture_output=True, timeout=60
    )
    cpu, rss = usage if usage else (float("nan"), float("nan"))
    rates, last_t, last_m = [], accepted, 0
    for m in marks:
        if m in times:
            rates.append(f"{(m - last_m) / max(times[m] - last_t, 1e-9):.1f}")
            last_t, last_m = times[m], m
    return (
        f"| {size} | {accepted:.2f} s | {finished:.1f} s | {done}/{size} | "
        f"{done / finished:.1f} | {cpu:.1f} s | {rss:.0f} MB (max {rss_max:.0f}) | "
        f"{' '.join(rates)} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1000, 3000])
    ap.add_argument("--limit", type=float, default=1800, help="seconds per array at most")
    args = ap.parse_args()
    print(
        "| array size | accepted in | finished in | ended | jobs/s | agent CPU | "
        "agent RSS at the end | jobs/s per tenth |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            print(bench_array(size, tmp, args.limit), flush=True)


if __name__ == "__main__":
    main()
