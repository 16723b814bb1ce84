"""Scaling: the read commands, sbatch, scancel, an agent pass and the state's size at 1k, 10k
and 100k jobs and with big arrays, beside `python -c pass` (and real Slurm with --peer).

    python bench/scale.py [--sizes 1000,10000,100000] [--array 100000] [--runs 5]
                          [--starts 20000] [--peer]

Jobs are held (`--hold --wrap true`, one submission each, as sbatch stores them: the first
through sbatch's own store, the rest copied in SQL), then the same jobs finished
(COMPLETED, with the RESULT a real `true` job left) for sacct and the size per finished
job. `--array N`: one held N-element array (submitted by bin/sbatch, timed), and ten
held 1000-element arrays. `--starts N`: element starts per second of the scheduler itself
(an N-element array %1000 on an in-memory backend whose jobs end at their first poll).
`--peer`: the same commands against the real Slurm on this machine for what it holds as
configured (1000 held jobs; an array of MaxArraySize - 1 elements). Medians of --runs,
interleaved with `python -c pass`; the read commands are timed with no agent running (sbatch
and scancel, which start it, after them, in a loop of their own). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = ROOT / "bin"


def timed(argv: list[str] | str, env: dict, cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        shell=isinstance(argv, str),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return (time.perf_counter() - t0) * 1000


def medians(cases: dict, env: dict, cwd: str, runs: int) -> dict:
    """label -> median ms; each run times python -c pass, then every case, in turn."""
    times: dict = {"python -c pass": []}
    for _ in range(runs):
        times["python -c pass"].append(timed([sys.executable, "-c", "pass"], env, cwd))
        for label, argv in cases.items():
            times.setdefault(label, []).append(timed(argv, env, cwd))
    return {label: statistics.median(v) for label, v in times.items()}


def stop_agent(env: dict) -> None:
    """The state's agent stopped (sbatch and scancel start it; its passes would run beside
    the commands timed next). One that outlasts `agent stop`'s wait (it says so; before
    c6ba680 a tidy beside 100 000 held jobs did) is killed, and its pid file removed (else
    squeue would start another)."""
    out = subprocess.run(
        ours("slurmsky", "agent", "stop"), env=env, capture_output=True, check=False
    )
    if out.returncode == 0:
        return
    print(f"# {out.stderr.decode().strip()}: killed", file=sys.stderr)
    pid_file = Path(env["SLURMSKY_HOME"], "agent.pid")
    try:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        time.sleep(0.5)
    except (OSError, ValueError):
        pass
    pid_file.unlink(missing_ok=True)


def ours(command: str, *args: str) -> list[str]:
    return [sys.executable, str(BIN / command), *args]


def environment(home: str) -> dict:
    config = Path(home, "config.yaml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("max_array_size: 1000001\n")
    env = dict(os.environ, SLURMSKY_HOME=home, SLURMSKY_CONFIG=str(config))
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def populate(env: dict, count: int, cwd: str) -> None:
    """`count` held jobs: one through sbatch's store, the rest copies of it (own ids, own
    submission rows)."""
    os.environ.update(SLURMSKY_HOME=env["SLURMSKY_HOME"], SLURMSKY_CONFIG=env["SLURMSKY_CONFIG"])
    from slurmsky.config import load_config
    from slurmsky.core import state
    from slurmsky.core.submit import store
    from slurmsky.parse.request import build_batch_request, parse_command_line

    req = build_batch_request(
        parse_command_line("sbatch", ["--hold", "-J", "bench", "--wrap", "true"]),
        dict(os.environ),
        cwd,
        lambda: b"",
    )
    first = store(req, load_config(), batch=True)
    conn = state.connect()
    columns = [c for c in state.records._COLUMNS if c not in ("job_id", "submission")]
    kept = [r[1] for r in conn.execute("PRAGMA table_info(submissions)")][2:]
    if "shared" in kept:  # the spec column holds the job's own id (schema 4)
        spec = "json_object('job_id', ? + k)"
        args: tuple = (count - 1, first, first, first)
    else:  # a tree from before: each submission its own copy of the spec
        spec, args = "spec", (count - 1, first, first)
    with state.write(conn):
        conn.execute(
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ?) "
            f"INSERT INTO submissions SELECT ? + k, {spec}, {', '.join(kept)} "
            "FROM n, submissions WHERE id = ?",
            args,
        )
        conn.execute(
            f"INSERT INTO jobs (job_id, submission, {', '.join(columns)}) "
            f"SELECT id, id, {', '.join(columns)} FROM submissions, jobs "
            "WHERE id > ? AND job_id = ?",
            (first, first),
        )
        conn.execute("UPDATE meta SET value = ? WHERE key = 'next_job_id'", (first + count,))
    conn.close()


def finish_all(env: dict, result: dict) -> None:
    """Every job ended as a real `true` job does (its RESULT, times, exit code)."""
    from slurmsky.core import state

    conn = state.connect(env)
    now = time.time()
    with state.write(conn):
        conn.execute(
            "UPDATE jobs SET state = 'COMPLETED', reason = 'None', held = NULL, "
            "start_time = ?, end_time = ?, exit_code = 0, exit_signal = 0, nodelist = "
            "'127.0.0.1', batch_host = '127.0.0.1', eligible_time = ?, result = ?, "
            "executor_ref = ?",
            (
                now - 2,
                now - 1,
                now - 3,
                json.dumps(result),
                json.dumps({"rundir": "/x/jobs/1", "nodes": [0], "names": ["127.0.0.1"]}),
            ),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def size_per_job(env: dict, count: int) -> float:
    """The state's bytes per job after VACUUM, with no agent reading it (a reader keeps the
    checkpoint from emptying the WAL, which then holds a copy of the vacuumed pages)."""
    from slurmsky.core import state

    stop_agent(env)
    conn = state.connect(env)
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    home = env["SLURMSKY_HOME"]
    sizes = {n: os.path.getsize(os.path.join(home, n)) for n in os.listdir(home)}
    print(f"# state files: {sizes}", file=sys.stderr)
    return sum(size for name, size in sizes.items() if name.startswith("state.db")) / count


def a_real_result(cwd: str) -> dict:
    """The RESULT a `true` job leaves (run through the agent once)."""
    home = tempfile.mkdtemp(dir=cwd)
    env = environment(home)
    out = subprocess.run(
        ours("sbatch", "--parsable", "--wait", "--wrap", "true"),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    from slurmsky.core import state

    conn = state.connect(env)
    result = state.get_job(conn, int(out.stdout.split(";")[0])).result
    conn.close()
    stop_agent(env)
    return result


def agent_pass_ms(env: dict) -> float:
    """One scheduling pass over the state (the agent's own cost; nothing starts: held)."""
    os.environ.update(SLURMSKY_HOME=env["SLURMSKY_HOME"], SLURMSKY_CONFIG=env["SLURMSKY_CONFIG"])
    from slurmsky.core import state
    from slurmsky.core.scheduler import Scheduler

    conn = state.connect(env)
    sched = Scheduler(conn)
    values = []
    for _ in range(3):
        t0 = time.perf_counter()
        sched.run_pass(time.time())
        values.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return statistics.median(values)


def agent_process(env: dict, cwd: str, count: int) -> str:
    """The agent process on the state: a new one started by `sbatch --hold` (its tidy and
    first pass: when it touches agent.ready), then `agent stop` right after a second
    sbatch woke it."""
    ready = Path(env["SLURMSKY_HOME"], "agent.ready")

    def since(t0: float) -> float | None:
        try:
            mtime = ready.stat().st_mtime
        except FileNotFoundError:
            return None
        return (mtime - t0) * 1000 if mtime >= t0 else None

    t0 = time.time()
    timed(ours("sbatch", "--hold", "--wrap", "true"), env, cwd)
    while since(t0) is None and time.time() - t0 < 120:
        time.sleep(0.01)
    start = since(t0)
    timed(ours("sbatch", "--hold", "--wrap", "true"), env, cwd)
    t1 = time.perf_counter()
    stop_agent(env)
    stop = (time.perf_counter() - t1) * 1000
    started = "over 120 000" if start is None else f"{start:.0f}"
    return (
        f"# {count:,} held jobs: a new agent's tidy and first pass end {started} ms after "
        f"sbatch starts; `agent stop` just after another sbatch woke it: {stop:.0f} ms"
    )


def row(label: str, count: str, ms: dict, floor: float, keys: list[str], floors=None) -> str:
    """A table row: each key's ms and its ratio to `floor` (or to its own in `floors`)."""
    own = floors or {}
    cells = [f"{ms[k]:.1f} ({ms[k] / own.get(k, floor):.1f}×)" if k in ms else "-" for k in keys]
    return f"| {label} | {count} | " + " | ".join(cells) + " |"


def at_size(count: int, result: dict, cwd: str, runs: int) -> list[str]:
    home = tempfile.mkdtemp(dir=cwd)
    env = environment(home)
    t0 = time.time()
    populate(env, count, cwd)
    print(f"# {count} held jobs made in {time.time() - t0:.1f} s", file=sys.stderr)
    some = str(count // 2)
    reads = {  # first: no agent runs yet (squeue starts none for held jobs)
        "squeue": ours("squeue"),
        "squeue -r | head": f"{sys.executable} {BIN / 'squeue'} -r | head",
        "squeue -j": ours("squeue", "-j", some),
    }
    held = medians(reads, env, cwd, runs)
    writes = {
        "sbatch": ours("sbatch", "--hold", "--wrap", "true"),
        "scancel": ours("scancel", some),
    }
    written = medians(writes, env, cwd, runs)  # (their ratios: to this loop's python -c pass)
    floors = {label: written["python -c pass"] for label in writes}
    held.update((label, written[label]) for label in writes)
    stop_agent(env)
    held["agent pass"] = agent_pass_ms(env)
    print(agent_process(env, cwd, count), flush=True)
    finish_all(env, result)
    done = medians(
        {"sacct -X": ours("sacct", "-X"), "sacct -j": ours("sacct", "-j", some)}, env, cwd, runs
    )
    size = size_per_job(env, count)
    stop_agent(env)
    floor = held["python -c pass"]
    keys = ["sbatch", "squeue", "squeue -r | head", "squeue -j", "scancel", "agent pass"]
    lines = [row("held jobs", f"{count:,}", held, floor, keys, floors)]
    floor = done["python -c pass"]
    lines.append(
        row("finished jobs", f"{count:,}", done, floor, ["sacct -X", "sacct -j"])
        + f" {size:.0f} B/job |"
    )
    return lines


def arrays(size: int, cwd: str, runs: int) -> list[str]:
    home = tempfile.mkdtemp(dir=cwd)
    env = environment(home)
    submit = [timed(ours("sbatch", "--hold", f"--array=0-{size - 1}", "--wrap", "true"), env, cwd)]
    stop_agent(env)
    ms = medians(
        {
            "squeue": ours("squeue"),
            "squeue -r | head": f"{sys.executable} {BIN / 'squeue'} -r | head",
            "sacct -X": ours("sacct", "-X"),
        },
        env,
        cwd,
        runs,
    )
    ms["agent pass"] = agent_pass_ms(env)
    stop_agent(env)
    ms["scancel"] = timed(ours("scancel", "1"), env, cwd)
    stop_agent(env)
    ms["sbatch --array"] = submit[0]
    sized = size_per_job(env, 1)
    floor = ms["python -c pass"]
    lines = [
        row(
            f"one {size:,}-element array",
            "1 record",
            ms,
            floor,
            ["sbatch --array", "squeue", "squeue -r | head", "sacct -X", "scancel", "agent pass"],
        )
        + f" {sized:.0f} B in all |"
    ]
    home = tempfile.mkdtemp(dir=cwd)
    env = environment(home)
    for _ in range(10):
        timed(ours("sbatch", "--hold", "--array=0-999", "--wrap", "true"), env, cwd)
    stop_agent(env)
    ms = medians(
        {
            "squeue": ours("squeue"),
            "squeue -r | head": f"{sys.executable} {BIN / 'squeue'} -r | head",
            "squeue -r": ours("squeue", "-r"),
            "sacct -X": ours("sacct", "-X"),
        },
        env,
        cwd,
        runs,
    )
    ms["agent pass"] = agent_pass_ms(env)
    floor = ms["python -c pass"]
    keys = ["squeue", "squeue -r | head", "squeue -r", "sacct -X", "agent pass"]
    lines.append(row("ten 1000-element arrays", "10 records", ms, floor, keys))
    stop_agent(env)
    return lines


def element_starts(count: int, cwd: str) -> str:
    """The scheduler's own cost per element start: an array %1000 on an in-memory backend
    whose jobs end when first polled; passes until every element has ended."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fake_backend

    from slurmsky import backends
    from slurmsky.core import state
    from slurmsky.core.scheduler import Scheduler

    class Quick(fake_backend.FakeExecutor):
        def place(self, job, running):
            return [0]  # room for all: the throttle is what limits

        def poll(self, job):
            return {"state": "COMPLETED", "exit_code": 0, "signal": 0, "end": time.time()}

        def launch(self, job, spec, ref):
            return dict(ref, pids=[[1, 0.0]])

        def prepare(self, job, placement):
            return {"nodes": list(placement), "names": ["fake0"], "pids": []}

        def cleanup(self, job):
            pass

    backends.REGISTRY["fake"] = "fake_backend"
    fake_backend.BACKEND.current = Quick(nodes=1)
    home = tempfile.mkdtemp(dir=cwd)
    env = environment(home)
    os.environ.update(SLURMSKY_HOME=home, SLURMSKY_CONFIG=env["SLURMSKY_CONFIG"])
    conn = state.connect(env)
    record = dict(
        job_id=1,
        submission=1,
        array_job_id=1,
        array_pending=f"0-{count - 1}",
        array_throttle=1000,
        name="el",
        user="u",
        uid=0,
        gid=0,
        partition="debug",
        num_nodes=1,
        num_cpus=1,
        num_tasks=1,
        tasks_per_node=[1],
        cpus_per_node=[1],
        submit_dir=cwd,
        workdir=cwd,
        stdout="slurm-%A_%a.out",
        state="PENDING",
        submit_time=time.time(),
        executor="fake",
    )
    array = {"job_id": 1, "ranges": f"0-{count - 1}", "count": count, "throttle": 1000}
    state.add_submission(conn, 1, {"kill_wait": 5, "array": array}, None, [record])
    sched = Scheduler(conn, backend="fake")
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    peak = passes = 0
    while conn.execute("SELECT 1 FROM jobs WHERE state != 'COMPLETED' LIMIT 1").fetchone():
        sched.run_pass(time.time())
        passes += 1
        peak = max(peak, len(state.started_jobs(conn)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    done = conn.execute("SELECT count(*) FROM jobs WHERE state = 'COMPLETED'").fetchone()[0]
    return (
        f"{done:,} elements (%1000, at most {peak} started at once) in {wall:.1f} s over "
        f"{passes} passes: {done / wall:,.0f} element starts (and ends) per second, "
        f"{cpu / done * 1000:.2f} ms CPU each"
    )


def peer(cwd: str, runs: int) -> list[str]:
    """Real Slurm as configured: 1000 held jobs, then an array of MaxArraySize - 1."""
    env = dict(os.environ)
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in config.splitlines() if x.startswith("MaxArraySize"))
    max_size = int(line.split()[-1])
    lines = []
    ids = []
    t0 = time.time()
    for _ in range(1000):
        out = subprocess.run(
            ["sbatch", "--parsable", "--hold", "-J", "scalebench", "--wrap", "true"],
            capture_output=True,
            text=True,
            cwd=cwd,
            check=True,
        )
        ids.append(out.stdout.strip())
    print(f"# peer: 1000 held jobs in {time.time() - t0:.1f} s", file=sys.stderr)
    try:
        ms = medians(
            {
                "sbatch": ["sbatch", "--hold", "-J", "scalebench", "--wrap", "true"],
                "squeue": ["squeue"],
                "squeue -r | head": "squeue -r | head",
                "squeue -j": ["squeue", "-j", ids[500]],
                "sacct -X": ["sacct", "-X"],
            },
            env,
            cwd,
            runs,
            ours=False,
        )
        ms["scancel"] = timed(["scancel", ids[0]], env, cwd)
        floor = ms["python -c pass"]
        keys = ["sbatch", "squeue", "squeue -r | head", "squeue -j", "scancel", "sacct -X"]
        lines.append(row("real Slurm: held jobs", "1,000", ms, floor, keys))
    finally:
        subprocess.run(["scancel", "-n", "scalebench"], check=False)
    size = max_size - 1
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--hold",
            "-J",
            "scalebench",
            f"--array=0-{size - 1}",
            "--wrap",
            "true",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
    )
    submit = (time.perf_counter() - t0) * 1000
    try:
        ms = medians(
            {
                "squeue": ["squeue"],
                "squeue -r | head": "squeue -r | head",
                "squeue -r": ["squeue", "-r"],
            },
            env,
            cwd,
            runs,
            ours=False,
        )
        ms["sbatch --array"] = submit
        ms["scancel"] = timed(["scancel", out.stdout.strip()], env, cwd)
        floor = ms["python -c pass"]
        keys = ["sbatch --array", "squeue", "squeue -r | head", "squeue -r", "scancel"]
        lines.append(row(f"real Slurm: one {size:,}-element array", "1 record", ms, floor, keys))
    finally:
        subprocess.run(["scancel", "-n", "scalebench"], check=False)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--array", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--starts", type=int, default=20000)
    ap.add_argument("--peer", action="store_true")
    args = ap.parse_args()
    cwd = tempfile.mkdtemp(prefix="slurmsky-scale-")
    print(f"# load average at the start: {os.getloadavg()}")
    if args.peer:
        print("\n".join(peer(cwd, args.runs)), flush=True)
    result = a_real_result(cwd)
    for count in [int(s) for s in args.sizes.split(",") if s]:
        print("\n".join(at_size(count, result, cwd, args.runs)), flush=True)
    if args.array:
        print("\n".join(arrays(args.array, cwd, args.runs)), flush=True)
    if args.starts:
        print(element_starts(args.starts, cwd), flush=True)
    print(f"# load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
