"""sky-backend `sbatch` and `squeue` beside `sky jobs launch` and `sky jobs queue`, same run.

One isolated local API server in consolidation mode (`slurmsky sky-server`, no cloud: jobs
end FAILED_PRECHECKS, which is enough for queue sizes), then:
  * sbatch of a one-line script (the agent launches it in the background) vs
    `sky jobs launch -y -d` and `--async` of the same command;
  * with 100 and then 1000 jobs known to both (slurmsky arrays: one num_jobs launch each):
    `squeue -t all` with the agent's copy fresh (and the first call, which waits for a sync;
    it lists the jobs that ended in the last 5 min, as Slurm's MinJobAge) and `sacct -X`
    (all of them) vs `sky jobs queue --all-users --limit N` (its default shows 50), as soon
    as SkyPilot has them all (most still pending in its queue).
Each figure is the median wall time of whole processes, as a user pays it.

Run (takes 10-20 min; needs ~5 GB RAM for the server): python bench/sky_bench.py

`--under-load` (on the sky-e2e stack: shared/tools/sky-e2e-up.sh, /tmp/skye2e/env.sh): an
8-element array of real managed jobs on the local Slurm peer, and while it launches and
runs, squeue / sacct / scontrol called in a loop (p50, p95, max of whole processes) with the
age of the state they showed, beside `sky jobs queue --all-users`, real Slurm's `squeue` (the
peer under the stack) and a bare `python -c pass` of the same moments: what any command,
C or Python, pays on that machine then.

`--arrays debug,lanes,warm [--elements 100] [--seconds 5] [--throttle P] [--workers W]
[--limit S]` (the same stack): one array of short jobs on each of: the default
partition (lanes as its size allows, partitions.X.size), a partition with lanes (P of them, else 10), a partition
backed by a warm SkyPilot pool of W workers (default 2; `slurmsky pool up`, not timed); each
row is cut at S seconds (default 1800: the array cancelled, its line says how many ended by
then); seconds from sbatch to the first element's R and
until every element ended, as squeue shows them, with the machine's peak load average,
memory in use and the most managed jobs of the array SkyPilot had at once. (SkyPilot 0.14's
consolidation mode runs a fixed pool of job controller processes, whatever the jobs.)

`--arrays sized [--size N]`: the default's lanes on a partition of N nodes (default 4, what
the stack's Slurm peer holds of SkyPilot's default clusters).

`--num-jobs 100 [--seconds 5] [--limit S]` (the same stack): SkyPilot's own path beside the
arrays, `sky jobs launch --num-jobs 100`, its jobs' states every 30 s until all ended or S s
(default 1500), then cancelled; restart the stack after it (`slurm-peer-up.sh --fresh`).

`--files-home [--mb 50,5]` (the same stack): for each size, one job that writes a file of
random bytes of that many MB into its workdir and ends at once; how long after the job
wrote it the file was whole at home (the log channel: base64 frames in the managed job's
log, read by the agent), and the MB/s that makes, beside the job's own time from sbatch.
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


def wall(
    argv: list[str], env: dict, cwd: str, runs: int, unreachable_ok: bool = False
) -> tuple[float, int]:
    """Median wall time of `runs` successful calls, and how many calls failed because the
    API server did not answer SkyPilot's client in time (its health check gives up after
    2.5 s, retried; a server busy with a big launch misses that): only with unreachable_ok,
    and at most 3 * runs such failures, else a failure ends the bench."""
    times, missed = [], 0
    while len(times) < runs:
        start = time.perf_counter()
        out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - start
        if out.returncode == 0:
            times.append(took)
        elif unreachable_ok and "ApiServerConnectionError" in out.stderr and missed < 3 * runs:
            missed += 1
            time.sleep(5)
        else:
            raise SystemExit(f"{argv} failed: {out.stderr[-2000:]}")
    return statistics.median(times), missed


def tool(env: dict, cwd: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, str(BIN / "slurmsky"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout


def wait_known(env: dict, count: int) -> None:
    """Until `count` of slurmsky's jobs have a SkyPilot job id (SkyPilot's queue lists them:
    pending, running or ended; on this VM its controller settles ~15 a minute, so waiting
    for 1000 to end would take an hour)."""
    import sqlite3

    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        with sqlite3.connect(Path(env["SLURMSKY_HOME"], "state.db")) as db:
            known = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE "
                "json_extract(executor_ref, '$.sky_job_id') IS NOT NULL"
            ).fetchone()[0]
        if known >= count:
            return
        subprocess.run(
            [sys.executable, str(BIN / "squeue")], env=env, capture_output=True, timeout=600
        )  # keeps the agent (and its sync) going
        time.sleep(10)
    raise SystemExit(f"SkyPilot does not know {count} jobs after 30 min")


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="sky-bench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKY", "SLURM"))}
    env.update(
        HOME=tmp,
        SLURMSKY_HOME=f"{tmp}/state",
        SLURMSKY_BACKEND="sky",
        SKYPILOT_API_SERVER_LOCAL_PORT=str(port),
        SKYPILOT_DISABLE_USAGE_COLLECTION="1",
        SKYPILOT_DISABLE_LOCAL_API_SERVER="1",
    )  # the sky CLI must not start its own
    server_env = dict(env, SLURMSKY_HOME=f"{tmp}/server")
    del server_env["SKYPILOT_DISABLE_LOCAL_API_SERVER"]
    Path(tmp, "job.sh").write_text("#!/bin/bash\necho hi\n")
    print(tool(server_env, tmp, "sky-server", "start").strip(), flush=True)
    try:
        sbatch, _ = wall([sys.executable, str(BIN / "sbatch"), "job.sh"], env, tmp, 11)
        launch, _ = wall([str(SKY), "jobs", "launch", "-y", "-d", "echo hi"], env, tmp, 3)
        launch_async, _ = wall(
            [str(SKY), "jobs", "launch", "-y", "--async", "echo hi"], env, tmp, 3
        )
        print(f"sbatch            {sbatch * 1000:7.0f} ms")
        print(f"sky jobs launch -d      {launch:7.2f} s   -> sbatch {launch / sbatch:5.1f}x faster")
        print(
            f"sky jobs launch --async {launch_async:7.2f} s   -> sbatch "
            f"{launch_async / sbatch:5.1f}x faster",
            flush=True,
        )
        known = 17  # 11 sbatch + 6 sky jobs launch
        for size in (100, 1000):
            subprocess.run(
                [sys.executable, str(BIN / "sbatch"), f"--array=1-{size - known}", "job.sh"],
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
            )
            known = size
            wait_known(env, size)
            squeue = [sys.executable, str(BIN / "squeue"), "-t", "all", "-r"]
            time.sleep(11)  # the agent's copy is now stale: the first call only wakes it
            cold, _ = wall(squeue, env, tmp, 1)
            warm, _ = wall(squeue, env, tmp, 9)
            sacct, _ = wall([sys.executable, str(BIN / "sacct"), "-X"], env, tmp, 5)
            queue, missed = wall(
                [str(SKY), "jobs", "queue", "--all-users", "--limit", str(size)],
                env,
                tmp,
                3,
                unreachable_ok=True,
            )
            print(
                f"{size} jobs: squeue {warm * 1000:6.0f} ms (first after >10 s idle: "
                f"{cold:5.2f} s), sacct -X {sacct * 1000:6.0f} ms   sky jobs queue "
                f"{queue:6.2f} s ({missed} more calls failed: server unreachable)   -> squeue "
                f"{queue / warm:5.1f}x, sacct {queue / sacct:5.1f}x faster",
                flush=True,
            )
    finally:
        subprocess.run(
            [sys.executable, str(BIN / "slurmsky"), "agent", "stop"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        print(tool(server_env, tmp, "sky-server", "stop").strip())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stack_env(prefix: str, seconds: int, extra: str = "") -> tuple[str, dict]:
    """A directory with a config for the sky-e2e stack (its partitions, `extra` added) and a
    job.sh of `seconds`; the environment of slurmsky's commands there."""
    stack = {}
    for line in Path("/tmp/skye2e/env.sh").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            stack[key] = value
    tmp = tempfile.mkdtemp(prefix=prefix)
    Path(tmp, "config.yaml").write_text(
        "backend: sky\npartitions:\n  debug:\n    default: true\n    infra: slurm/peer/debug\n"
        + extra
    )
    Path(tmp, "job.sh").write_text(f"#!/bin/bash\necho start\nsleep {seconds}\necho done\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKY", "SLURM"))}
    env.update({k: stack[k] for k in ("HOME", "SKY_RUNTIME_DIR", "SKYPILOT_API_SERVER_LOCAL_PORT")})
    env.update(
        SKYPILOT_DISABLE_USAGE_COLLECTION="1",
        SKYPILOT_DISABLE_LOCAL_API_SERVER="1",  # a slow server: the CLI must not start another
        SLURMSKY_HOME=f"{tmp}/state",
        SLURMSKY_CONFIG=f"{tmp}/config.yaml",
    )
    return tmp, env


def under_load(elements: int = 8, seconds: int = 40, limit: float = 600) -> None:
    """Reads while an array of real managed jobs launches and runs (the sky-e2e stack)."""
    import json

    tmp, env = _stack_env("sky-bench-load-", seconds)
    sync_file = Path(tmp, "state", "sky-sync.json")
    first = int(
        subprocess.run(
            [
                sys.executable,
                str(BIN / "sbatch"),
                "--parsable",
                f"--array=0-{elements - 1}",
                "job.sh",
            ],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split(";")[0]
    )
    reads = {
        "squeue": [sys.executable, str(BIN / "squeue"), "-t", "all", "-r"],
        "sacct": [sys.executable, str(BIN / "sacct"), "-X"],
        "scontrol": [sys.executable, str(BIN / "scontrol"), "show", "job", str(first)],
        "Slurm's squeue": ["/usr/bin/squeue"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    times: dict[str, list[float]] = {name: [] for name in [*reads, "sky jobs queue"]}
    ages: list[float] = []
    states: set[str] = set()
    start = time.monotonic()
    try:
        n = 0
        while time.monotonic() - start < limit:
            for name, argv in reads.items():
                t0 = time.perf_counter()
                out = subprocess.run(
                    argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=120
                )
                times[name].append(time.perf_counter() - t0)
                if name == "squeue":
                    shown = [
                        line.split()[4] for line in out.stdout.splitlines()[1:] if line.split()
                    ]
                    states.update(shown)
                    try:
                        ages.append(time.time() - json.loads(sync_file.read_text())["attempt"])
                    except (OSError, ValueError):
                        pass
            if n % 5 == 0:
                t0 = time.perf_counter()
                subprocess.run(
                    [str(SKY), "jobs", "queue", "--all-users"],
                    env=env,
                    cwd=tmp,
                    capture_output=True,
                )
                times["sky jobs queue"].append(time.perf_counter() - t0)
            n += 1
            left = subprocess.run(
                [sys.executable, str(BIN / "squeue"), "-h", "-r", "-j", str(first)],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
            ).stdout
            if n > 3 and not left.strip():
                break
            time.sleep(1)
        took = time.monotonic() - start
        print(
            f"{elements}-element array of {seconds} s jobs on the sky-e2e stack: {took:.0f} s "
            f"until every element ended; states seen: {' '.join(sorted(states))}"
        )
        for name, values in times.items():
            print(
                f"{name:26s} n={len(values):3d}  p50 {_pct(values, 0.5) * 1000:7.0f} ms  "
                f"p95 {_pct(values, 0.95) * 1000:7.0f} ms  max {max(values) * 1000:7.0f} ms"
            )
        if ages:
            print(
                f"state age at read   p50 {_pct(ages, 0.5):5.1f} s  p95 {_pct(ages, 0.95):5.1f} s  "
                f"max {max(ages):5.1f} s"
            )
    finally:
        subprocess.run(
            [sys.executable, str(BIN / "scancel"), str(first)], env=env, capture_output=True
        )
        subprocess.run(
            [sys.executable, str(BIN / "slurmsky"), "agent", "stop"], env=env, capture_output=True
        )


KINDS = {  # partition -> what runs an array there
    "debug": "the default: lanes as the partition's free size allows",
    "lanes": "lanes",
    "warm": "pool",
    "sized": "lanes as its size (--size, the infra's capacity) allows",
}


def arrays(
    kinds: list[str],
    elements: int,
    seconds: int,
    throttle: int | None,
    workers: int = 2,
    limit: float = 1800,
    size: int = 4,
) -> None:
    """One array of short jobs on each partition of `kinds` (debug: the default configuration,
    lanes as its size allows; lanes: lanes as many as the throttle (else 10), warm: a pool of `workers` warm workers
    brought up first, not timed; sized: the default's lanes on a partition of `size` nodes), one after the other on the sky-e2e stack, each cut at
    `limit` seconds."""
    import psutil

    pool = f"benchpool{os.getpid()}"
    extra = (
        f"  lanes:\n    infra: slurm/peer/debug\n    lanes: {throttle or 10}\n"
        f"  warm:\n    infra: slurm/peer/debug\n    pool:\n      workers: {workers}\n"
        f"      name: {pool}\n"
        f"  sized:\n    infra: slurm/peer/debug\n    size: {size}\n"
    )
    tmp, env = _stack_env("sky-bench-arrays-", seconds, extra)

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, str(BIN / args[0]), *args[1:]],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode:
            raise SystemExit(f"{args} failed: {out.stderr[-2000:]}")
        return out.stdout

    def in_flight(job: str) -> int:
        """The array's managed jobs SkyPilot has and has not ended: those its active
        elements name (elements of one lane share one; an element of a release names every
        lane of it, until its own starts it)."""
        import json
        import sqlite3

        with sqlite3.connect(f"file:{tmp}/state/state.db?mode=ro", uri=True) as conn:
            refs = conn.execute(
                "SELECT executor_ref FROM jobs WHERE array_job_id = ? AND state IN ('PENDING', "
                "'CONFIGURING', 'RUNNING', 'COMPLETING', 'REQUEUED') AND executor_ref IS NOT NULL",
                (int(job),),
            ).fetchall()
        ids = set()
        for (text,) in refs:
            ref = json.loads(text)
            ids.update(ref.get("lane_ids") or ())
            if ref.get("sky_job_id") is not None:
                ids.add(ref["sky_job_id"])
        return len(ids)

    def on_nodes(job: str, wall: float) -> str:
        """When the array's first element started and its last ended on the nodes (their
        clocks, as sacct shows them), from sbatch."""
        import sqlite3

        with sqlite3.connect(f"file:{tmp}/state/state.db?mode=ro", uri=True) as conn:
            first, last = conn.execute(
                "SELECT MIN(start_time), MAX(end_time) FROM jobs WHERE array_job_id = ?",
                (int(job),),
            ).fetchone()
        if first is None:
            return ""
        return f"on the nodes: first start {first - wall:.0f} s, last end {last - wall:.0f} s; "

    if "warm" in kinds:
        t0 = time.monotonic()
        run("slurmsky", "pool", "up", "warm")
        while run("slurmsky", "pool", "status", "warm").count(": READY") < workers:
            time.sleep(5)
        print(f"pool of {workers} workers READY {time.monotonic() - t0:.0f} s after `pool up`")
    shape = f"--array=0-{elements - 1}" + (f"%{throttle}" if throttle else "")
    health = f"http://127.0.0.1:{env['SKYPILOT_API_SERVER_LOCAL_PORT']}/api/health"
    try:
        for part in kinds:
            probe = _Probe(health)
            before = _lanes_since(env, None)
            start, wall = time.monotonic(), time.time()
            first = run("sbatch", "--parsable", "-p", part, shape, "job.sh")
            job = first.strip().split(";")[0]
            running = None
            load, used, most = 0.0, 0, 0
            while not (cut := time.monotonic() - start > limit):
                codes = run("squeue", "-h", "-r", "-j", job, "-o", "%t").split()
                if running is None and any(c in ("R", "CG") for c in codes):
                    running = time.monotonic() - start
                load = max(load, os.getloadavg()[0])
                used = max(used, psutil.virtual_memory().used)
                most = max(most, in_flight(job))
                if not codes:
                    break
                time.sleep(2)
            took = time.monotonic() - start
            waits = probe.stop()
            states = run("sacct", "-n", "-X", "-P", "-j", job, "-o", "State").splitlines()
            if cut:
                run("scancel", job)
            ended = f"cut at {took:.0f} s" if cut else f"all ended {took:.0f} s"
            lane_up = _lanes_since(env, before)
            ready = f"first managed job RUNNING {lane_up - wall:.0f} s, " if lane_up else ""
            print(
                f"{part:5s} ({KINDS[part]}): {shape} of {seconds} s jobs: {ready}first R "
                f"{running or -1:.0f} s, {ended}; {on_nodes(job, wall)}peak load "
                f"{load:.1f}, memory in use {used / 2**30:.1f} GiB, managed jobs at once {most}; "
                f"/api/health p95 {_pct(waits, 0.95):.2f} s, max {max(waits):.2f} s "
                f"({len(waits)} probes); "
                f"{' '.join(f'{states.count(s)} {s}' for s in sorted(set(states)))}",
                flush=True,
            )
    finally:
        if "warm" in kinds:
            run("slurmsky", "pool", "down", "warm")
        run("slurmsky", "agent", "stop")


def _lanes_since(env: dict, after: float | None) -> float:
    """With `after` None: the newest managed job id SkyPilot has; else when the first managed
    job with an id above it went RUNNING (SkyPilot's start_at; 0: none did)."""
    import sqlite3

    table = f"file:{env['SKY_RUNTIME_DIR']}/.sky/spot_jobs.db?mode=ro"
    with sqlite3.connect(table, uri=True) as conn:
        if after is None:
            return conn.execute("SELECT COALESCE(MAX(spot_job_id), 0) FROM spot").fetchone()[0]
        row = conn.execute(
            "SELECT MIN(start_at) FROM spot WHERE spot_job_id > ?", (after,)
        ).fetchone()
    return row[0] or 0.0


class _Probe:
    """The API server's /api/health asked every 2 s in a thread while an array runs: each
    answer's seconds (a probe unanswered in 30 s counts 30)."""

    def __init__(self, url: str) -> None:
        import threading
        import urllib.request

        self.waits: list[float] = []
        self.done = threading.Event()

        def ask() -> None:
            while not self.done.wait(2):
                start = time.monotonic()
                try:
                    urllib.request.urlopen(url, timeout=30).close()
                    self.waits.append(time.monotonic() - start)
                except OSError:
                    self.waits.append(30.0)

        self.thread = threading.Thread(target=ask, daemon=True)
        self.thread.start()

    def stop(self) -> list[float]:
        self.done.set()
        self.thread.join(35)
        return self.waits or [0.0]


def num_jobs(count: int, seconds: int, limit: float) -> None:
    """SkyPilot's own path for an array, beside `--arrays`: `sky jobs launch --num-jobs
    COUNT` of a `seconds` job on the stack's debug partition, its jobs' states counted from
    SkyPilot's jobs table every 30 s until all ended or `limit` s; then all cancelled. After
    it, restart the stack (`slurm-peer-up.sh --fresh`): it floods the server."""
    import collections
    import sqlite3

    _tmp, env = _stack_env("sky-bench-numjobs-", seconds)
    table = f"file:{env['SKY_RUNTIME_DIR']}/.sky/spot_jobs.db?mode=ro"

    def states(first: int) -> collections.Counter:
        with sqlite3.connect(table, uri=True) as conn:
            rows = conn.execute("SELECT status FROM spot WHERE spot_job_id >= ?", (first,))
            return collections.Counter(status for (status,) in rows)

    with sqlite3.connect(table, uri=True) as conn:
        first = (conn.execute("SELECT MAX(spot_job_id) FROM spot").fetchone()[0] or 0) + 1
    start = time.monotonic()
    launch = [str(SKY), "jobs", "launch", "-y", "-d", "--num-jobs", str(count)]
    launch += ["--infra", "slurm/peer/debug", f"echo start; sleep {seconds}; echo done"]
    try:
        subprocess.run(launch, env=env, capture_output=True, timeout=limit)
        while (took := time.monotonic() - start) < limit:
            now = states(first)
            print(f"{took:6.0f} s: {dict(sorted(now.items()))}", flush=True)
            if now["SUCCEEDED"] + now["FAILED"] + now["CANCELLED"] >= count:
                break
            time.sleep(30)
        print(f"sky jobs launch --num-jobs {count}: {dict(states(first))} at {took:.0f} s")
    finally:
        subprocess.run([str(SKY), "jobs", "cancel", "-a", "-y"], env=env, capture_output=True)


def files_home(sizes: list[int]) -> None:
    """Files home through the log channel on the stack: each size's file, timed from the
    moment the job wrote it (its last act) to the moment it was whole here, checked against
    the job's own sha256; beside it, how long `sky jobs logs --no-follow` of the same job
    takes to print its log (SkyPilot's own way to get a job's output after it ended)."""
    import hashlib

    cap = f"    files_home:\n      cap_mb: {max(sizes) + 1}\n"  # each file under the cap
    tmp, env = _stack_env("sky-bench-files-", 0, cap)
    script = (
        "#!/bin/bash\n"
        "head -c $(({mb} * 1000000)) /dev/urandom > blob-{mb}.bin\n"
        "sha256sum blob-{mb}.bin\n"
        "echo written $(date +%s.%N)\n"
    )

    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, str(BIN / args[0]), *args[1:]],
            env=env, cwd=tmp, capture_output=True, text=True, timeout=900, check=True,
        ).stdout  # fmt: skip

    try:
        for mb in sizes:
            Path(tmp, f"blob{mb}.sh").write_text(script.format(mb=mb))
            start = time.time()
            job = run("sbatch", "--parsable", "-o", f"blob-{mb}.out", f"blob{mb}.sh").strip()
            blob, out = Path(tmp, f"blob-{mb}.bin"), Path(tmp, f"blob-{mb}.out")
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                if blob.exists() and out.exists() and "written" in out.read_text():
                    break
                if "COMPLETED" in run("sacct", "-X", "-n", "-j", job, "-o", "State"):
                    break
                time.sleep(0.2)
            home = time.time()
            ended = run("sacct", "-X", "-n", "-P", "-j", job, "-o", "State,Comment").strip()
            said = out.read_text().split() if out.exists() else []
            if not blob.exists() or len(said) < 4:
                print(f"{mb} MB: did not come home; job {job}: {ended}", flush=True)
                continue
            same = hashlib.sha256(blob.read_bytes()).hexdigest() == said[0]
            took = home - float(said[3])
            agent_log = Path(env["SLURMSKY_HOME"], "agent.log").read_text()
            sky_id = agent_log.split(f"job {job}: SkyPilot managed job ")[1].split()[0]
            begun = time.monotonic()
            subprocess.run(
                [str(SKY), "jobs", "logs", "--no-follow", sky_id],
                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=900,
            )  # fmt: skip
            logs = time.monotonic() - begun
            print(
                f"{mb} MB: whole here {took:.1f} s after the job wrote it "
                f"({mb / took:.2f} MB/s; sha256 {'identical' if same else 'DIFFERENT'}), "
                f"{home - start:.0f} s after sbatch; `sky jobs logs --no-follow` of it "
                f"afterwards: {logs:.1f} s; job {job}: {ended}",
                flush=True,
            )
    finally:
        run("slurmsky", "agent", "stop")


def _flag(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


if __name__ == "__main__":
    if "--under-load" in sys.argv:
        under_load()
    elif "--num-jobs" in sys.argv:
        num_jobs(
            int(_flag("--num-jobs", "100")),
            int(_flag("--seconds", "5")),
            float(_flag("--limit", "1500")),
        )
    elif "--files-home" in sys.argv:
        files_home([int(mb) for mb in _flag("--mb", "50,5").split(",")])
    elif "--arrays" in sys.argv:
        arrays(
            _flag("--arrays", "debug,lanes,warm").split(","),
            int(_flag("--elements", "100")),
            int(_flag("--seconds", "5")),
            int(_flag("--throttle", "0")) or None,
            int(_flag("--workers", "2")),
            float(_flag("--limit", "1800")),
            int(_flag("--size", "4")),
        )
    else:
        main()
