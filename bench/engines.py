"""The state's two engines side by side: `sbatch --array=0-999` and an agent's pass over
10 000 pending jobs, on SQLite and on PostgreSQL (the listings: bench/listing.py --state).

    python bench/engines.py --postgres postgresql://user@host:port/  [--jobs 10000] [--runs 5]

`--postgres` is a server URL whose user may create databases (tests/pgserver.py prints
one): each measure gets a database of its own there. Medians of --runs, beside `python -c
pass`; the pass is timed in-process (Scheduler.run_pass): every job waits on a dependency
(afterok of a held job), so each pass reads and judges all of them, and starts none.
Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _engine_env(where: str, server: str) -> dict:
    """A fresh state (a directory, and on PostgreSQL a database) for one measure."""
    env = dict(os.environ, SLURMSKY_HOME=tempfile.mkdtemp(prefix="slurmsky-engines-"))
    env.pop("SLURMSKY_STATE", None)
    if where == "postgresql":
        import pgserver

        env["SLURMSKY_STATE"] = pgserver.database(server)
    config = Path(env["SLURMSKY_HOME"], "config.yaml")
    config.write_text("max_array_size: 100001\n")
    env["SLURMSKY_CONFIG"] = str(config)
    return env


def _ms(argv: list[str], env: dict, cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True)
    return (time.perf_counter() - t0) * 1000


def _pass_ms(env: dict, jobs: int, runs: int) -> float:
    """An agent pass over `jobs` pending jobs, in-process (this engine's state)."""
    os.environ.clear()
    os.environ.update(env)
    from slurmsky.config import load_config
    from slurmsky.core import state
    from slurmsky.core.scheduler import Scheduler
    from slurmsky.core.submit import store
    from slurmsky.parse.request import build_batch_request, parse_command_line

    cfg = load_config()

    def request(*options: str):
        argv = parse_command_line("sbatch", [*options, "--wrap", "true"])
        return build_batch_request(argv, dict(env), "/tmp", lambda: b"")

    held = store(request("--hold"), cfg, batch=True)
    waiting = request(f"--dependency=afterok:{held}")
    for _ in range(jobs - 1):
        store(waiting, cfg, batch=True)
    sched = Scheduler(state.connect(long_lived=True))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sched.run_pass(time.time())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", required=True, help="a PostgreSQL server URL (ends in /)")
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cwd = tempfile.mkdtemp(prefix="slurmsky-engines-cwd-")
    sbatch = [sys.executable, str(ROOT / "bin" / "sbatch"), "--hold", "--array=0-999"]
    sbatch += ["--wrap", "true"]
    rows = []
    floor = statistics.median(
        _ms([sys.executable, "-c", "pass"], dict(os.environ), cwd) for _ in range(args.runs)
    )
    for where in ("sqlite", "postgresql"):
        env = _engine_env(where, args.postgres)
        _ms(sbatch, env, cwd)  # the state made (and the agent started) before the timing
        array = statistics.median(_ms(sbatch, env, cwd) for _ in range(args.runs))
        subprocess.run(
            [sys.executable, str(ROOT / "bin" / "slurmsky"), "agent", "stop"], env=env, check=False
        )
        child = subprocess.run(
            [sys.executable, __file__, "--postgres", args.postgres, "--pass-only", where],
            env=_engine_env(where, args.postgres) | {"ENGINES_JOBS": str(args.jobs)},
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append((where, array, float(child.stdout)))
    print(f"python -c pass {floor:.1f} ms; median of {args.runs}; {args.jobs} pending jobs a pass")
    for where, array, pass_ms in rows:
        print(f"{where:11} sbatch --array=0-999 {array:7.1f} ms   agent pass {pass_ms:7.1f} ms")


if __name__ == "__main__":
    if "--pass-only" in sys.argv:
        print(_pass_ms(dict(os.environ), int(os.environ["ENGINES_JOBS"]), 5))
    else:
        main()
