"""slurmsky's benchmark: command latencies beside `python -c pass` and real Slurm, in one run.

    python bench/run.py [--runs N] [--quick]

Medians over N runs of each command as a subprocess (the installed console scripts next to
this interpreter, else the checkout's bin/ shims), ratios to `python -c pass` of the same
interpreter measured in the same run, and real Slurm's figures when a Slurm controller
answers (shared/tools/slurm-peer-up.sh). Every slurmsky command runs against its own
throw-away SLURMSKY_HOME; jobs are stored held, so nothing runs but the array benchmark.
Nothing here is a test: it prints a report (Markdown) to stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REAL_SLURM_BIN = "/usr/bin"
HELLO = str(ROOT / "examples" / "sbatch" / "hello.sh")  # #SBATCH lines only: no parser needed


def command(name: str) -> list[str]:
    """The command as a user runs it: the console script beside this interpreter, or bin/."""
    installed = Path(sys.executable).parent / name
    if installed.exists():
        return [str(installed)]
    return [sys.executable, str(ROOT / "bin" / name)]


def median_ms(argv: list[str], env: dict, runs: int, cwd: str) -> float:
    times = []
    for _ in range(runs):
        times.append(timed_ms(argv, env, cwd))
    return statistics.median(times)


def timed_ms(argv: list[str], env: dict, cwd: str) -> float:
    """Wall time of one run, in ms. A blocking wait, bounded by a timer that kills a run
    that hangs: subprocess's wait(timeout) polls in steps growing to 50 ms, which would round
    every figure up to the next step."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killer = threading.Timer(120, proc.kill)
    killer.start()
    proc.wait()
    killer.cancel()
    return (time.perf_counter() - t0) * 1000


def populate(home: str, count: int, cwd: str) -> list[int]:
    """`count` held jobs stored through sbatch's own path (in-process, for speed)."""
    os.environ["SLURMSKY_HOME"] = home
    from slurmsky.config import load_config
    from slurmsky.core.submit import store
    from slurmsky.parse.request import build_batch_request, parse_command_line

    cfg = load_config()
    req = build_batch_request(
        parse_command_line("sbatch", ["--hold", "-J", "bench", "--wrap", "true"]),
        dict(os.environ),
        cwd,
        lambda: b"",
    )
    ids = []
    for _ in range(count):
        ids.append(store(req, cfg, batch=True))
    return ids


def real_slurm_up() -> bool:
    scontrol = Path(REAL_SLURM_BIN) / "scontrol"
    if not scontrol.exists():
        return False
    out = subprocess.run([str(scontrol), "ping"], capture_output=True, text=True, timeout=10)
    return out.returncode == 0 and "UP" in out.stdout


def real(name: str) -> list[str]:
    return [str(Path(REAL_SLURM_BIN) / name)]


def agent_usage(home: str) -> tuple[float, float] | None:
    """CPU seconds and RSS (MB) of the state dir's agent, if it runs."""
    import psutil

    os.environ["SLURMSKY_HOME"] = home
    from slurmsky.core.daemon import running_pid

    pid = running_pid()
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        cpu = proc.cpu_times()
        return cpu.user + cpu.system, proc.memory_info().rss / 2**20
    except psutil.Error:
        return None


def bench_array(size: int, tmp: str) -> list[str]:
    home = tempfile.mkdtemp(dir=tmp)
    config = Path(home, "config.yaml")
    config.write_text(f"max_array_size: {size + 1}\n")  # as slurm.conf's MaxArraySize
    env = dict(os.environ, SLURMSKY_HOME=home, SLURMSKY_CONFIG=str(config))
    t0 = time.perf_counter()
    out = subprocess.run(
        command("sbatch")
        + ["--parsable", f"--array=0-{size - 1}", "-o", "/dev/null", "--wrap", "true"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    accepted = time.perf_counter() - t0
    array_id = out.stdout.strip()
    deadline = time.time() + 1800
    while time.time() < deadline:
        q = subprocess.run(
            command("squeue") + ["-h", "-r", "-o", "%i"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if not q.stdout.strip():
            break
        time.sleep(0.5)
    finished = time.perf_counter() - t0
    usage = agent_usage(home)
    sacct = subprocess.run(
        command("sacct") + ["-X", "-n", "-P", "-o", "State", "-j", array_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    done = sacct.stdout.split().count("COMPLETED")
    subprocess.run(
        command("slurmsky") + ["agent", "stop"], env=env, capture_output=True, timeout=60
    )
    cpu, rss = usage if usage else (float("nan"), float("nan"))
    return [
        f"| {size} | {accepted:.2f} s | {finished:.1f} s | {done}/{size} | {cpu:.1f} s | {rss:.0f} MB |"
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="skip 10 000 jobs and the array run")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="slurmsky-bench-")
    base_env = dict(os.environ)
    floor = median_ms([sys.executable, "-c", "pass"], base_env, args.runs, tmp)
    slurm = real_slurm_up()
    sizes = [0, 100, 1000] + ([] if args.quick else [10000])
    rows: list[tuple[str, int, float, float | None]] = []
    for size in sizes:
        home = tempfile.mkdtemp(dir=tmp)
        env = dict(base_env, SLURMSKY_HOME=home)
        ids = populate(home, size, tmp) if size else []
        probe = str(ids[len(ids) // 2]) if ids else "1"
        cases = [("squeue", []), ("squeue", ["-j", probe]), ("sacct", ["-j", probe])]
        cases += [("sbatch", ["--hold", "--wrap", "true"]), ("sbatch", ["--hold", HELLO])]
        for name, extra in cases:
            ms = median_ms(command(name) + extra, env, args.runs, tmp)
            shown = ["-j", "<id>"] if extra and extra[0] == "-j" else extra
            rows.append((" ".join([name] + shown).replace(HELLO, "hello.sh"), size, ms, None))
        if ids:
            victims = iter(ids)
            times = []
            for _ in range(min(args.runs, len(ids))):
                times.append(timed_ms(command("scancel") + [str(next(victims))], env, tmp))
            rows.append(("scancel <id>", size, statistics.median(times), None))
        subprocess.run(
            command("slurmsky") + ["agent", "stop"], env=env, capture_output=True, timeout=60
        )
    if slurm:
        rows = _with_real_slurm(rows, args.runs, tmp)
    print(f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]} ({sys.executable})")
    print(f"`python -c pass` (same interpreter): **{floor:.1f} ms** (median of {args.runs})\n")
    print("| command | jobs in state | slurmsky ms | × python -c pass | real Slurm ms |")
    print("|---|---|---|---|---|")
    for name, size, ms, real_ms in rows:
        real_text = f"{real_ms:.1f}" if real_ms is not None else "-"
        print(f"| `{name}` | {size} | {ms:.1f} | {ms / floor:.1f}× | {real_text} |")
    print_growth(rows, [size for size in sizes if size])
    from bench.parse_translate import throughput

    rate, size = throughput(2.0)
    print(
        f"\nparse + translate: **{rate:,.0f} scripts/s** ({size} scripts: examples/sbatch and "
        "the compat cases' batch scripts; one core)"
    )
    if not args.quick:
        print(
            "\n| array size | accepted in | all finished in | COMPLETED | agent CPU | agent RSS |"
        )
        print("|---|---|---|---|---|---|")
        for size in (1000, 10000):
            for line in bench_array(size, tmp):
                print(line, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


def print_growth(rows, sizes: list[int]) -> None:
    """How each command's time grows with the jobs in the state: ms at each size, and the
    factor from the smallest size to the largest."""
    print("\n| command | " + " | ".join(f"{size} jobs" for size in sizes) + " | growth |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name in dict.fromkeys(name for name, *_ in rows):
        ms = {size: m for n, size, m, _ in rows if n == name}
        if all(size in ms for size in sizes):
            cells = " | ".join(f"{ms[size]:.1f} ms" for size in sizes)
            print(f"| `{name}` | {cells} | {ms[sizes[-1]] / ms[sizes[0]]:.1f}× |")


def _with_real_slurm(rows, runs: int, tmp: str):
    """Real Slurm beside each row: the same command on the peer, with the same queue size."""
    env = dict(os.environ)
    subprocess.run(real("scancel") + ["-u", os.environ.get("USER", "root")], env=env, timeout=60)
    out = []
    current = 0
    for name, size, ms, _ in rows:
        while current < size:  # separate jobs, as slurmsky's state holds them
            subprocess.run(
                real("sbatch") + ["--hold", "--wrap", "true"],
                env=env,
                cwd=tmp,
                capture_output=True,
                timeout=120,
            )
            current += 1
        jid = subprocess.run(
            real("squeue") + ["-h", "-o", "%A"], env=env, capture_output=True, text=True, timeout=60
        ).stdout.split() or ["1"]
        argv = name.replace("<id>", jid[0]).replace("hello.sh", HELLO).split()
        real_ms = (
            median_ms(real(argv[0]) + argv[1:], env, runs, tmp) if name != "scancel <id>" else None
        )
        out.append((name, size, ms, real_ms))
    subprocess.run(real("scancel") + ["-u", os.environ.get("USER", "root")], env=env, timeout=60)
    return out


if __name__ == "__main__":
    main()
