"""sky-backend `sbatch` and `squeue` beside `sky jobs launch` and `sky jobs queue`, same run.

One isolated local API server in consolidation mode (`slurmsky sky-server`, no cloud: jobs
end FAILED_PRECHECKS, which is enough for queue sizes), then:
  * sbatch of a one-line script (the agent launches it in the background) vs
    `sky jobs launch -y -d` and `--async` of the same command;
  * with 100 and then 1000 jobs known to both (slurmsky arrays: one num_jobs launch each):
    `squeue -t all` with the agent's copy fresh (and the first call, which waits for a sync)
    vs `sky jobs queue --all-users --limit N` (its default shows 50).
Each figure is the median wall time of whole processes, as a user pays it.

Run (takes 10-20 min; needs ~5 GB RAM for the server): python bench/sky_bench.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"
SKY = Path(sys.executable).parent / "sky"


def wall(argv: list[str], env: dict, cwd: str, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise SystemExit(f"{argv} failed: {out.stderr[-2000:]}")
    return statistics.median(times), times


def tool(env: dict, cwd: str, *args: str) -> str:
    return subprocess.run([sys.executable, str(BIN / "slurmsky"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=True).stdout


def wait_known(env: dict, cwd: str, count: int) -> None:
    """Until slurmsky and SkyPilot both list `count` finished jobs."""
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, str(BIN / "squeue"), "-h", "-t", "all", "-r",
                              "-o", "%t"], env=env, cwd=cwd, capture_output=True, text=True,
                             timeout=600).stdout.split()
        if len(out) >= count and all(s in ("F", "CD", "CA") for s in out):
            return
        time.sleep(10)
    raise SystemExit(f"{count} jobs did not finish")


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="sky-bench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKY", "SLURM"))}
    env.update(HOME=tmp, SLURMSKY_HOME=f"{tmp}/state", SLURMSKY_BACKEND="sky",
               SKYPILOT_API_SERVER_LOCAL_PORT=str(port), SKYPILOT_DISABLE_USAGE_COLLECTION="1")
    server_env = dict(env, SLURMSKY_HOME=f"{tmp}/server")
    Path(tmp, "job.sh").write_text("#!/bin/bash\necho hi\n")
    print(tool(server_env, tmp, "sky-server", "start").strip(), flush=True)
    try:
        sbatch, _ = wall([sys.executable, str(BIN / "sbatch"), "job.sh"], env, tmp, 21)
        launch, _ = wall([str(SKY), "jobs", "launch", "-y", "-d", "echo hi"], env, tmp, 3)
        launch_async, _ = wall([str(SKY), "jobs", "launch", "-y", "--async", "echo hi"], env,
                               tmp, 3)
        print(f"sbatch            {sbatch * 1000:7.0f} ms")
        print(f"sky jobs launch -d      {launch:7.2f} s   -> sbatch {launch / sbatch:5.1f}x faster")
        print(f"sky jobs launch --async {launch_async:7.2f} s   -> sbatch "
              f"{launch_async / sbatch:5.1f}x faster", flush=True)
        known = 27  # 21 sbatch + 6 sky jobs launch
        for size in (100, 1000):
            subprocess.run([sys.executable, str(BIN / "sbatch"), f"--array=1-{size - known}",
                            "job.sh"], env=env, cwd=tmp, check=True, capture_output=True)
            known = size
            wait_known(env, tmp, size)
            squeue = [sys.executable, str(BIN / "squeue"), "-t", "all", "-r"]
            time.sleep(11)  # the agent's copy is now stale: the first call waits for a sync
            cold, _ = wall(squeue, env, tmp, 1)
            warm, _ = wall(squeue, env, tmp, 9)
            queue, _ = wall([str(SKY), "jobs", "queue", "--all-users", "--limit", str(size)],
                            env, tmp, 3)
            print(f"{size} jobs: squeue {warm * 1000:6.0f} ms (first after >10 s idle: "
                  f"{cold:5.2f} s)   sky jobs queue {queue:6.2f} s   -> squeue "
                  f"{queue / warm:5.1f}x faster", flush=True)
    finally:
        subprocess.run([sys.executable, str(BIN / "slurmsky"), "agent", "stop"], env=env,
                       capture_output=True, timeout=120)
        print(tool(server_env, tmp, "sky-server", "stop").strip())


if __name__ == "__main__":
    main()
