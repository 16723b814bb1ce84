"""End to end on real SkyPilot: slurmsky's sky backend runs managed jobs on the local Slurm
peer through a real API server (shared/tools/sky-e2e-up.sh; ~70 s per job).

Three jobs at once, on the peer's four nodes: a 2-node batch script whose srun reaches both
nodes and whose output file lands here (R then CD in squeue), a failing `srun` outside any job
(its output streamed back, its exit code 3 its own and in sacct as F) and a long batch job
cancelled while running (CA). If the stack is not up, this module
brings it up and takes it down at the end (by the tools' own pid files); when .ci/run is
bringing it up in the background, the module waits for that and leaves it to .ci/run. Runs as root;
skipped with SLURMSKY_SKIP_SKY_E2E=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from slurmsky.plan.environment import withheld
from slurmsky.runtime.hostlist import expand

ROOT = Path(__file__).resolve().parent.parent
# shared/tools beside the checkout, where .ci/run starts the Slurm peer this stack runs on
TOOLS = Path(os.environ.get("SLURMSKY_SKY_E2E_TOOLS", ROOT.parent / "shared" / "tools"))
BASE = Path(os.environ.get("SKYE2E_BASE", "/tmp/skye2e"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SLURMSKY_SKIP_SKY_E2E") == "1", reason="SLURMSKY_SKIP_SKY_E2E=1"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="sky-e2e-up.sh runs as root"),
    pytest.mark.skipif(not (TOOLS / "sky-e2e-up.sh").exists(), reason=f"no {TOOLS}/sky-e2e-up.sh"),
]
# The whole module is ~60 minutes of CI's two cores: CI runs its core (the batch jobs, salloc,
# a hetjob, an array in lanes, a dead server, a team's two members: ~25 min), and
# SLURMSKY_SKY_E2E=all every test
# (run it on the stack before resolving a change to the sky backend).
FULL = pytest.mark.skipif(
    os.environ.get("SLURMSKY_SKY_E2E") != "all", reason="of the full e2e set: SLURMSKY_SKY_E2E=all"
)
CONFIG = """backend: sky
kill_wait: 5
partitions:
  debug:
    default: true
    infra: slurm/peer/debug
"""
TWO_NODES = """#!/bin/bash
#SBATCH -N 2 -J two -o two-%j.out
env | grep -E '^(SLURM_(JOB_ID|JOB_NAME|NNODES|JOB_NUM_NODES|NODEID|PROCID|SUBMIT_DIR|CLUSTER_NAME)|SKYPILOT_NUM_NODES)=' | sort
srun bash -c 'echo "step procid=$SLURM_PROCID nodeid=$SLURM_NODEID"' | sort
echo to-stderr >&2
"""


def _submit_env(env: dict) -> dict:
    """The test's submit environment: no SkyPilot settings of the host, and none of its
    credential-looking variables (a CI host's AWS_CA_BUNDLE made srun warn about it first)."""
    return {k: v for k, v in env.items() if not k.startswith("SKY") and withheld(k, v) != "secret"}


def _env_sh() -> dict:
    env = {}
    for line in (BASE / "env.sh").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value
    return env


def _up(env: dict) -> bool:
    try:
        port = env["SKYPILOT_API_SERVER_LOCAL_PORT"]
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5).close()
        return True
    except (OSError, KeyError):
        return False


def _starting_elsewhere(timeout: float = 1800) -> None:
    """Wait (bounded) for the stack's start that .ci/run began in the background
    (SLURMSKY_SKY_E2E_STARTING: its pid) to end, whatever its outcome."""
    import psutil

    pid = os.environ.get("SLURMSKY_SKY_E2E_STARTING")
    if not pid:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(int(pid))
            if proc.status() == psutil.STATUS_ZOMBIE or "sky-e2e-up.sh" not in " ".join(
                proc.cmdline()
            ):
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(1)


@pytest.fixture(scope="module")
def stack():
    _starting_elsewhere()
    started = not ((BASE / "env.sh").exists() and _up(_env_sh()))
    if started:
        out = subprocess.run(
            ["bash", str(TOOLS / "sky-e2e-up.sh")], capture_output=True, text=True, timeout=1800
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    env = _env_sh()
    yield {
        k: env[k]
        for k in (
            "HOME",
            "SKY_RUNTIME_DIR",
            "SKYPILOT_API_SERVER_LOCAL_PORT",
            "SKYPILOT_DISABLE_USAGE_COLLECTION",
        )
    }
    if started:
        subprocess.run(["bash", str(TOOLS / "sky-e2e-down.sh")], capture_output=True, timeout=600)


ENDED = {"COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA", "TIMEOUT": "TO", "NODE_FAIL": "NF"}


def _follow(cluster, two: int, long: int) -> tuple[dict[int, list[str]], int | None]:
    """squeue's states of the three jobs until they end; the long one is cancelled once R.
    An end squeue no longer lists is read from the state: `-t all` keeps a job MinJobAge
    (300 s) from its End, SkyPilot's, which a loaded agent may hear of later than that."""
    fail = None
    seen: dict[int, list[str]] = {two: [], long: []}

    def saw(job: int, code: str) -> None:
        if not seen[job] or seen[job][-1] != code:
            seen[job].append(code)

    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        out = cluster.run("squeue", "-h", "-t", "all", "-o", "%i|%t|%j", timeout=120).stdout
        listed = set()
        for line in out.splitlines():
            job, code, name = line.split("|")
            if name == "failer" and fail is None:
                fail = int(job)
                seen[fail] = []
            if int(job) in seen:
                listed.add(int(job))
                saw(int(job), code)
        for job in set(seen) - listed:
            rows = cluster.jobs("job_id = ?", job)
            if rows and rows[0][1] in ENDED:
                saw(job, ENDED[rows[0][1]])
        if seen[long][-1:] == ["R"]:
            assert cluster.run("scancel", str(long)).returncode == 0
        if fail and all(s and s[-1] in ("CD", "F", "CA") for s in seen.values()):
            break
        time.sleep(3)
    return seen, fail


# Kubernetes is not enabled on the stack (no skypilot[kubernetes]): a candidate of it is
# passed over, and a job with no other pends naming it (issue 50).
SPLIT = CONFIG + "  cloud:\n    infra: k8s\n  both:\n    infra: [k8s, slurm/peer/debug]\n"
UNUSABLE = "InfraUnusable:k8s(not_enabled_in_SkyPilot)"


def test_batch_jobs_on_real_skypilot(cluster, stack):
    """Two sbatch jobs and an srun: a two-node job with -p cloud,debug runs in debug, a
    long one is cancelled, srun's fails; a job from a directory holding a FIFO and the state
    directory runs in `both` (infra [k8s, slurm]) without either going up; one for
    Kubernetes alone pends naming it."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(SPLIT)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    two = cluster.sbatch("-p", "cloud,debug", cluster.script("two.sh", TWO_NODES))
    top = cluster.cwd.parent  # holds the state directory (its agent.fifo, the database)
    os.mkfifo(top / "pipe")
    home = cluster.sbatch("-p", "both", "-o", "home.out", "--wrap", "ls -A", cwd=top)
    nowhere = cluster.sbatch("-p", "cloud", "--wrap", "true")
    srun = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bin" / "srun"),
            "-J",
            "failer",
            "bash",
            "-c",
            "echo failing; echo failed > failed.txt; exit 3",
        ],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    long = cluster.sbatch(
        cluster.script("long.sh", "#!/bin/bash\necho sleeping\necho kept > kept.txt\nsleep 600\n")
    )
    seen, fail = {}, None
    try:
        cluster.wait_for(lambda: _row(cluster, nowhere)[1] == UNUSABLE, 300, "the reason")
        squeue = cluster.run("squeue", "-h", "-j", str(nowhere), "-o", "%P|%t|%r").stdout
        assert squeue == f"cloud|PD|{UNUSABLE}\n"
        seen, fail = _follow(cluster, two, long)
        cluster.wait_for(lambda: _row(cluster, home)[0] in ENDED, 600, "the FIFO's job")
    finally:  # nothing of this test may hold the peer's nodes afterwards
        cluster.run("scancel", *[str(j) for j in [*(seen or (two, long)), home, nowhere]])
        try:  # srun ends once it has seen its job end (as squeue just did), or is cancelled
            srun.wait(timeout=120)
        except subprocess.TimeoutExpired:
            srun.kill()
        cluster.wait_for(
            lambda: (
                not cluster.jobs(
                    "job_id < 1000000000 AND state IN ('PENDING', 'CONFIGURING', 'RUNNING', "
                    "'COMPLETING', 'REQUEUED')"
                )
            ),
            300,
            "every job to end",
        )
    out, err = srun.communicate(timeout=300)
    assert (srun.returncode, out) == (3, "failing\n"), err
    waited = [  # Slurm prints both only when the allocation had to wait, else neither
        f"srun: job {fail} queued and waiting for resources",
        f"srun: job {fail} has been allocated resources",
    ]
    assert err.splitlines()[:2] == waited or not any(line in err for line in waited), err
    assert seen[two][-2:] == ["R", "CD"], seen
    assert seen[fail][-1] == "F" and seen[long][-2:] in (["R", "CA"], ["CG", "CA"]), seen
    assert "R" in seen[long], seen
    # files home (issue 32) when a job ends badly: srun's FAILED job, the CANCELLED one (what
    # it wrote before the kill: the runtime's last send, within KillWait)
    assert (cluster.cwd / "failed.txt").read_text() == "failed\n"
    assert (cluster.cwd / "kept.txt").read_text() == "kept\n"
    listed = (top / "home.out").read_text().split()
    assert "work" in listed and "pipe" not in listed and "state" not in listed, listed

    lines = (cluster.cwd / f"two-{two}.out").read_text().splitlines()
    assert lines[:8] == [
        "SKYPILOT_NUM_NODES=2",
        "SLURM_CLUSTER_NAME=slurmsky",
        f"SLURM_JOB_ID={two}",
        "SLURM_JOB_NAME=two",
        "SLURM_JOB_NUM_NODES=2",
        "SLURM_NNODES=2",
        "SLURM_NODEID=0",
        "SLURM_PROCID=0",
    ], lines
    assert f"SLURM_SUBMIT_DIR={cluster.cwd}" in lines
    assert lines[-3:] == ["step procid=0 nodeid=0", "step procid=1 nodeid=1", "to-stderr"]

    got = cluster.run(
        "sacct", "-n", "-X", "-P", "-j", f"{two},{home},{nowhere}", "-o", "Partition,State"
    )
    assert got.stdout.splitlines() == [
        "debug|COMPLETED",
        "both|COMPLETED",
        f"cloud|CANCELLED by {os.getuid()}",
    ]
    sacct = cluster.run(
        "sacct", "-n", "-X", "-j", f"{two},{fail},{long}", "-o", "JobID,State,ExitCode", "-P"
    ).stdout.splitlines()
    # in id order; srun and the long sbatch race for the ids after `two`
    assert sacct == sorted(
        [f"{two}|COMPLETED|0:0", f"{fail}|FAILED|3:0", f"{long}|CANCELLED by {os.getuid()}|0:0"],
        key=lambda line: int(line.split("|")[0]),
    )
    # steps are on the nodes SkyPilot named, as the job is (not the IPs used inside it)
    listed = cluster.run(
        "sacct", "-n", "-P", "-j", f"{two},{fail}", "-o", "JobID,NodeList"
    ).stdout.splitlines()
    nodelists = dict(line.split("|") for line in listed)
    assert nodelists[f"{two}.0"] == nodelists[str(two)], listed
    assert nodelists[f"{two}.batch"] in expand(nodelists[str(two)]), listed
    assert nodelists[f"{fail}.0"] == nodelists[str(fail)], listed


def _row(cluster, job: int) -> tuple:
    """(state, reason) of a job, from the state (polled: no command each time)."""
    rows = cluster.jobs("job_id = ?", job)
    return (rows[0][1], rows[0][4]) if rows else (None, None)


# A job that waits (at most 600 s) for the test's gate file: it runs until the test has seen
# what it must see, however late the agent hears of it on a loaded machine (CI: 2 cores).
GATE = "for _ in $(seq 600); do [ -e {gate} ] && break; sleep 1; done"
LIVE = """#!/bin/bash
#SBATCH -J live --open-mode=append
for i in $(seq 1 12); do
  echo "line $i $(date +%s.%N)"
  if [ $i = 6 ]; then {wait}; fi
  sleep 2
done
echo to-err >&2
"""
ARRAY = """#!/bin/bash
#SBATCH -J arr --array=0-1 -o arr-%A_%a.out
echo "element $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID"
"""
CHDIR = """#!/bin/bash
#SBATCH -J chdir
pwd
"""
XLATE = """#!/bin/bash
srun bash -c 'echo "$SLURM_JOB_ID ${SLURM_ARRAY_TASK_ID:-none} $SLURM_PROCID $SLURM_NNODES" \
  > "$SLURMSKY_E2E_OUT/$NAME-${SLURM_ARRAY_TASK_ID:-x}-$SLURM_PROCID"'
"""


def _sky(stack: dict, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKY", "SLURM"))}
    env.update(stack)
    return subprocess.run(
        [str(Path(sys.executable).parent / "sky"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@FULL
def test_first_use_live_output_chdir_and_translate_on_real_skypilot(cluster, stack):
    """On the real stack, as a user: doctor finds nothing wrong; a batch job's --output file
    grows on this host while it runs (append mode keeps what was there) and ends holding
    exactly what it wrote; array files keep %A_%a; -D to a path that is no local directory is
    a chdir on the node; `slurmsky translate` output runs with `sky jobs launch` unchanged
    (two nodes with srun; an array of one-node elements as --num-jobs), and those jobs,
    launched beside slurmsky, are in sacct."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")  # SkyPilot jobs of earlier runs are not these
    doctor = cluster.run("slurmsky", "doctor", timeout=300)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "partition:   debug (default) -> slurm/peer/debug (usable)" in doctor.stdout.splitlines()

    gate = Path(f"/tmp/skye2e/gate-{os.getpid()}-live")
    live = cluster.sbatch(cluster.script("live.sh", LIVE.format(wait=GATE.format(gate=gate))))
    out = cluster.cwd / f"slurm-{live}.out"
    out.write_text("kept\n")  # --open-mode=append: the job's output goes after this
    arr = cluster.sbatch(cluster.script("arr.sh", ARRAY))
    scratch = Path(f"/tmp/skye2e/scratch-{os.getpid()}")  # no local directory at submission
    chdir = cluster.sbatch(
        "-D", str(scratch), "-o", str(cluster.cwd / "chdir.out"), cluster.script("chdir.sh", CHDIR)
    )
    scratch.mkdir()
    os.chown(scratch, *_skye2e_ids())

    shared = Path(f"/tmp/skye2e/xlate-{os.getpid()}")  # where the translated jobs write
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    launched = []
    # each array element is a one-node job: no separate one-node launch (fewer managed jobs)
    for name, extra in (("two", ["-N", "2"]), ("arr", ["--array=1-5:4"])):
        xl = cluster.run(
            "slurmsky",
            "translate",
            cluster.script(f"x{name}.sh", XLATE),
            *extra,
            f"--export=ALL,NAME={name},SLURMSKY_E2E_OUT={shared}",
        )
        assert xl.returncode == 0, xl.stderr
        (cluster.cwd / f"x{name}.yaml").write_text(xl.stdout)
        num = ["--num-jobs", "2"] if name == "arr" else []
        if num:
            assert "# an array of 2: sky jobs launch --num-jobs 2 THIS_FILE" in xl.stdout
        sl = _sky(stack, "jobs", "launch", "-y", "-d", *num, f"x{name}.yaml", cwd=cluster.cwd)
        assert sl.returncode == 0, sl.stdout[-2000:] + sl.stderr[-2000:]
        launched.append(name)

    seen_growing, latencies = [], []
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            state = cluster.run("squeue", "-h", "-j", str(live), "-o", "%t").stdout.strip()
            text = out.read_text() if out.exists() else ""
            now = time.time()
            lines = [line for line in text.splitlines() if line.startswith("line ")]
            if state in ("CF", "R") and 0 < len(lines) < 12:  # SkyPilot STARTING: CF
                seen_growing.append(len(lines))
                gate.touch()  # the job's second half runs
            for line in lines[len(latencies) :]:
                latencies.append(now - float(line.split()[2]))
            if state in ("", "CD", "F", "CA"):
                break
            time.sleep(0.5)
        cluster.wait_for(
            lambda: (
                not cluster.jobs(
                    "job_id < 1000000000 AND state IN ('PENDING','CONFIGURING','RUNNING','COMPLETING')"
                )
            ),
            900,
            "slurmsky's jobs to end",
        )
    finally:
        cluster.run("scancel", str(live), str(arr), str(chdir))
        gate.unlink(missing_ok=True)
    print(f"live output: first seen after {[round(x, 1) for x in latencies]} s")
    assert seen_growing, "the output file never grew while the job ran"
    text = out.read_text()
    assert text.startswith("kept\nline 1 ") and text.endswith("to-err\n"), text
    assert [line.split()[:2] for line in text.splitlines()[1:13]] == [
        ["line", str(i)] for i in range(1, 13)
    ]
    for index in (0, 1):
        assert (cluster.cwd / f"arr-{arr}_{index}.out").read_text() == f"element {index} of {arr}\n"
    assert (cluster.cwd / "chdir.out").read_text() == f"{scratch}\n"

    def foreign_done():
        rows = cluster.run(
            "sacct", "-n", "-X", "-P", "-o", "JobID,JobName,State,Submit", "-S", since
        ).stdout.splitlines()
        # this run's: -S also lists jobs of an earlier run that were still active since
        names = ("xtwo.sh", "xarr.sh")
        mine = [r.split("|") for r in rows if r.split("|")[1] in names and r.split("|")[3] >= since]
        return len(mine) == 3 and all(r[2] not in ("PENDING", "RUNNING") for r in mine) and mine

    rows = cluster.wait_for(foreign_done, 900, "the translated jobs in sacct")
    assert sorted(r[2] for r in rows) == ["COMPLETED"] * 3, rows
    ids = {r[1]: [] for r in rows}
    for r in rows:
        ids[r[1]].append(int(r[0]) - 1_000_000_000)
    got = {p.name: p.read_text().split() for p in shared.iterdir()}
    (two,) = ids["xtwo.sh"]
    first = min(ids["xarr.sh"])
    assert got == {
        "two-x-0": [str(two), "none", "0", "2"],
        "two-x-1": [str(two), "none", "1", "2"],
        "arr-1-0": [str(first), "1", "0", "1"],
        "arr-5-0": [str(first + 1), "5", "0", "1"],
    }, got


INNER = """date +%s.%N > t-granted
env | grep -E '^SLURM_' | sort > alloc-env.txt
squeue -h -j "$SLURM_JOB_ID" -o '%i|%t|%D|%j' > squeue.txt
a=$(date +%s.%N)
srun -l bash -c 'echo "step=$SLURM_STEP_ID procid=$SLURM_PROCID nnodes=$SLURM_NNODES job=$SLURM_JOB_ID"' | sort
b=$(date +%s.%N)
srun -N1 bash -c 'echo from-step1 > step1.txt; echo to-err >&2; exit 3'
echo "rc=$?"
c=$(date +%s.%N)
echo "$a $b $c" > t-steps
exit 7
"""


def _cluster_names(stack: dict, cwd: Path) -> str:
    out = _sky(stack, "status", cwd=cwd)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_salloc_and_srun_on_a_skypilot_cluster(cluster, stack):
    """salloc -N2 launches a cluster (CF while it boots, as Slurm's cloud nodes), runs its
    command here with the allocation's SLURM_* variables; srun in it runs steps 0 and 1 on
    the cluster's nodes, output on the terminal and exit codes back; leaving salloc takes the
    cluster down and sacct has the allocation and its steps, on the cluster's nodes. A second
    salloc, hung up while its command runs, is revoked and its cluster taken down too; a third,
    --no-shell, keeps its cluster until scancel takes it down."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    cluster.script("inner.sh", INNER)
    started = time.time()

    def salloc_(*args: str) -> subprocess.Popen:  # in a session: a hangup reaches its command
        return subprocess.Popen(
            [sys.executable, str(ROOT / "bin" / "salloc"), *args],
            cwd=cluster.cwd,
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    salloc = salloc_("-N", "2", "bash", "inner.sh")
    hung = salloc_("-J", "hung", "sleep", "600")
    try:
        out, err = salloc.communicate(timeout=900)

        def hung_running():
            rows = cluster.run("squeue", "-h", "-n", "hung", "-o", "%i|%t").stdout.split()
            return rows and rows[0].endswith("|R") and int(rows[0].split("|")[0])

        hung_id = cluster.wait_for(hung_running, 600, "the second allocation to run")
        os.killpg(hung.pid, signal.SIGHUP)
        hung_out, hung_err = hung.communicate(timeout=300)
        kept = cluster.run("salloc", "--no-shell", "-J", "kept", timeout=900)
        kept_id = int(kept.stderr.split("Granted job allocation ")[1].split()[0])
        assert kept.returncode == 0, kept.stderr
        running = cluster.run("squeue", "-h", "-j", str(kept_id), "-o", "%j|%t").stdout
        assert running == "kept|R\n", kept.stderr
        assert cluster.run("scancel", str(kept_id)).returncode == 0
    finally:  # nothing of this test may hold the peer's nodes afterwards
        for proc in (salloc, hung):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
        cluster.wait_for(
            lambda: (
                not cluster.jobs(
                    "job_id < 1000000000 AND state IN ('PENDING','CONFIGURING','RUNNING','COMPLETING')"
                )
            ),
            600,
            "every allocation to end (its cluster down)",
        )
    job = int(err.split("Granted job allocation ")[1].split()[0])
    granted = float((cluster.cwd / "t-granted").read_text())
    a, b, c = (float(x) for x in (cluster.cwd / "t-steps").read_text().split())
    print(
        f"salloc -N2: command started {granted - started:.1f} s after salloc; "
        f"steps took {b - a:.1f} s and {c - b:.1f} s"
    )
    assert salloc.returncode == 7, err
    lines = [line for line in err.splitlines() if line.startswith("salloc: ")]
    nodes = next(x for x in lines if x.startswith("salloc: Nodes ")).split()[2]
    assert lines[-4:] == [
        f"salloc: Granted job allocation {job}",
        "salloc: Waiting for resource configuration",
        f"salloc: Nodes {nodes} are ready for job",
        f"salloc: Relinquishing job allocation {job}",
    ], err
    assert out.splitlines() == [
        f"0: step=0 procid=0 nnodes=2 job={job}",
        f"1: step=0 procid=1 nnodes=2 job={job}",
        "rc=3",
    ], (out, err)
    assert "to-err\n" in err and "srun: error: " in err
    assert (cluster.cwd / "step1.txt").read_text() == "from-step1\n"  # a step's file came home
    env = dict(
        line.split("=", 1)
        for line in (cluster.cwd / "alloc-env.txt").read_text().split("\n")
        if line
    )
    assert (env["SLURM_JOB_ID"], env["SLURM_NNODES"], env["SLURM_JOB_NODELIST"]) == (
        str(job),
        "2",
        nodes,
    )
    assert env["SLURM_JOB_NAME"] == "interactive" and "SLURM_PROCID" not in env
    assert (cluster.cwd / "squeue.txt").read_text() == f"{job}|R|2|interactive\n"
    sacct = cluster.run(
        "sacct", "-n", "-P", "-j", f"{job},{hung_id}", "-o", "JobID,State,ExitCode,NodeList"
    ).stdout.splitlines()
    rows = {
        j: [r for r in sacct if r.split("|")[0].split(".")[0] == str(j)] for j in (job, hung_id)
    }
    assert rows[job][:2] == [f"{job}|FAILED|7:0|{nodes}", f"{job}.0|COMPLETED|0:0|{nodes}"]
    step1, _, node1 = rows[job][2].rpartition("|")  # -N1: one of them
    assert (step1, node1 in expand(nodes), len(rows[job])) == (f"{job}.1|FAILED|3:0", True, 3)
    assert rows[hung_id][0].startswith(f"{hung_id}|CANCELLED"), sacct
    state = cluster.run("sacct", "-n", "-X", "-P", "-j", str(kept_id), "-o", "State").stdout
    assert state == f"CANCELLED by {os.getuid()}\n", state
    assert hung_err.splitlines()[-1] == f"salloc: Relinquishing job allocation {hung_id}", hung_err
    instance = (cluster.state / "sky-instance").read_text().strip()[:8]
    status = _cluster_names(stack, cluster.cwd)
    for j in (job, hung_id, kept_id):
        assert f"slurmsky-{j}-{instance}" not in status, status


def _skye2e_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("skye2e")
    return entry.pw_uid, entry.pw_gid


POOL_JOB = """#!/bin/bash
#SBATCH -J pooled -p warm -o pooled-%j.out
echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST nodes=$SLURM_JOB_NUM_NODES"
echo "pool job $SLURM_JOB_ID" > pooled-file-$SLURM_JOB_ID.txt
"""
POOL_ARRAY = """#!/bin/bash
#SBATCH -J poolarr -p warm --array=1-3 -o poolarr-%A_%a.out
echo "element $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID"
echo "element $SLURM_ARRAY_TASK_ID" > poolarr-file-${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID.txt
exit $((SLURM_ARRAY_TASK_ID == 2 ? 5 : 0))
"""


@FULL
def test_a_pool_partition_runs_a_job_and_an_array_on_warm_workers(cluster, stack):
    """`slurmsky pool up` brings the partition's workers up; a job and an array (in lanes
    beside the job: more elements than free workers) and a %1 array (one element after the other) run there with
    their own output files, states and exit codes; sinfo and scontrol show the workers; -N 2
    is refused; `pool down`, just after a scancel, takes the workers away."""
    pool = f"e2epool{os.getpid()}"
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(
        CONFIG + f"  warm:\n    infra: slurm/peer/debug\n    pool:\n      workers: 2\n"
        f"      name: {pool}\n"
    )
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    job = arr = one_at_a_time = held = None
    try:
        up = cluster.run("slurmsky", "pool", "up", "warm", timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        assert up.stdout == f"pool {pool} of partition warm: 2 worker(s) applied\n"

        def ready():
            out = cluster.run("slurmsky", "pool", "status", "warm", timeout=300).stdout
            return [ln for ln in out.splitlines()[1:] if ln.endswith(": READY")] and out

        status = cluster.wait_for(ready, 900, "the pool's workers to be READY")
        assert status.splitlines()[0] == f"pool {pool} of partition warm: READY", status
        assert len(status.splitlines()) == 3, status
        # `pool status` recorded what it saw: sinfo shows the workers as the partition's nodes
        # (idle once READY, idle# while one still comes up), scontrol shows each of them
        nodes = cluster.run("sinfo", "-h", "-N", "-p", "warm", "-o", "%N %t").stdout.split()
        assert len(nodes) == 4 and all(n.startswith(f"{pool}-") for n in nodes[::2]), nodes
        assert "idle" in nodes[1::2] and set(nodes[1::2]) <= {"idle", "idle#"}, nodes
        shown = cluster.run("scontrol", "show", "node", nodes[0]).stdout
        assert shown.startswith(f"NodeName={nodes[0]} CoresPerSocket="), shown
        assert "   Partitions=warm \n" in shown, shown
        refused = cluster.run("sbatch", "-N", "2", cluster.script("pj.sh", POOL_JOB))
        assert refused.returncode == 1 and "one node each" in refused.stderr, refused.stderr
        t0 = time.monotonic()
        job = cluster.sbatch(cluster.script("pj.sh", POOL_JOB))
        arr = cluster.sbatch(cluster.script("pa.sh", POOL_ARRAY))
        one_at_a_time = cluster.sbatch("--array=4-5%1", cluster.script("pa.sh", POOL_ARRAY))
        started = cluster.wait_for(
            lambda: (
                cluster.run("squeue", "-h", "-j", str(job), "-o", "%t").stdout.strip()
                in ("R", "CG", "")
                and time.monotonic() - t0
            ),
            900,
            "the pool job to start",
        )
        print(f"pool job: R {started:.0f} s after sbatch")
        cluster.wait_for(
            lambda: (
                not cluster.jobs(
                    "job_id < 1000000000 AND state IN ('PENDING','CONFIGURING','RUNNING','COMPLETING')"
                )
            ),
            900,
            "the pool's jobs to end",
        )
        sacct = cluster.run(
            "sacct", "-n", "-X", "-P", "-j", f"{job},{arr}", "-o", "JobID,State,ExitCode"
        ).stdout.splitlines()
        assert sacct == [
            f"{job}|COMPLETED|0:0",
            f"{arr}_1|COMPLETED|0:0",
            f"{arr}_2|FAILED|5:0",
            f"{arr}_3|COMPLETED|0:0",
        ], sacct
        # %1 on a pool: one element launched at a time, the next once the first has ended
        throttled = cluster.run(
            "sacct", "-n", "-X", "-P", "-j", str(one_at_a_time), "-o", "JobID,State,Start,End"
        ).stdout.splitlines()
        assert [line.split("|")[:2] for line in throttled] == [
            [f"{one_at_a_time}_4", "COMPLETED"],
            [f"{one_at_a_time}_5", "COMPLETED"],
        ], throttled
        assert throttled[1].split("|")[2] >= throttled[0].split("|")[3], throttled
        # inside, the job names its node by the IP it uses (as every sky job does)
        text = (cluster.cwd / f"pooled-{job}.out").read_text()
        assert text.startswith(f"job {job} on ") and text.endswith(" nodes=1\n"), text
        for array, index in ((arr, 1), (arr, 2), (arr, 3), (one_at_a_time, 4), (one_at_a_time, 5)):
            path = cluster.cwd / f"poolarr-{array}_{index}.out"
            assert path.read_text() == f"element {index} of {array}\n"
            # what each wrote beside itself on its worker came home (issue 32)
            made = cluster.cwd / f"poolarr-file-{array}_{index}.txt"
            assert made.read_text() == f"element {index}\n"
        assert (cluster.cwd / f"pooled-file-{job}.txt").read_text() == f"pool job {job}\n"
        # pool down just after scancel: SkyPilot keeps a pool up while a job in it has not
        # ended (its cancel takes a while), so pool down asks again until the job has ended
        # (whether the first ask comes before the cancel took is SkyPilot's timing)
        held = cluster.sbatch("--wrap", "sleep 600", "-p", "warm")
        cluster.wait_for(
            lambda: cluster.jobs(
                "job_id = ? AND json_extract(executor_ref, '$.sky_job_id') IS NOT NULL", held
            ),
            600,
            "the job to reach SkyPilot",
        )
    finally:
        cluster.run("scancel", *[str(j) for j in (job, arr, one_at_a_time, held) if j])
        down = cluster.run("slurmsky", "pool", "down", "warm", timeout=900)
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout == f"pool {pool} of partition warm: down\n"
    gone_nodes = cluster.run("sinfo", "-h", "-p", "warm", "-o", "%D %t").stdout
    assert gone_nodes == "2 idle~\n", gone_nodes  # the pool's size, powered down
    gone = cluster.run("slurmsky", "pool", "status", "warm", timeout=300)
    assert gone.stdout == f"pool {pool} of partition warm: not up (`slurmsky pool up warm`)\n"


LANES_ARRAY = """#!/bin/bash
#SBATCH -J laned -p small --array=1-6 -o laned-%A_%a.out
echo "element $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID job $SLURM_JOB_ID"
echo "element $SLURM_ARRAY_TASK_ID" > laned-file-$SLURM_ARRAY_TASK_ID.txt
if [ $SLURM_ARRAY_TASK_ID -ge 4 ]; then {wait}; fi
sleep 8
exit $((SLURM_ARRAY_TASK_ID == 3 ? 4 : 0))
"""


def test_an_array_larger_than_its_partition_fills_it_in_lanes(cluster, stack):
    """`--array=1-6` on a partition of size 2 (no `lanes:`, no throttle: the default path of
    issue 33) on Slurm infra: two managed jobs (one launch), each claiming the next element
    no other took and running its elements one after another; every element has its own
    state, exit code, times and file; element 6, cancelled while 4 runs, never runs, and
    nothing of it comes home: 4 and 5 wait for the gate, so both lanes are busy until the
    scancel is done (squeue may show 4 R long after it started: SkyPilot's log lags)."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(
        CONFIG + "  small:\n    infra: slurm/peer/debug\n    size: 2\n"
    )
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    t0 = time.monotonic()
    gate = Path(f"/tmp/skye2e/gate-{os.getpid()}-lanes")  # element 4 runs until it is there
    arr = cluster.sbatch(
        cluster.script("lanes.sh", LANES_ARRAY.format(wait=GATE.format(gate=gate)))
    )
    try:
        cluster.wait_for(
            lambda: cluster.run("squeue", "-h", "-j", f"{arr}_4", "-o", "%t").stdout == "R\n",
            900,
            "element 4 to run",
        )
        out = cluster.run("scancel", f"{arr}_6")
        assert out.returncode == 0, out.stderr
        gate.touch()
        active = "state IN ('PENDING','CONFIGURING','RUNNING','COMPLETING')"
        cluster.wait_for(
            lambda: not cluster.jobs(f"array_job_id = ? AND {active}", arr), 900, "the array"
        )
        print(f"lanes: 6 elements of 8 s ended {time.monotonic() - t0:.0f} s after sbatch")
        sacct = cluster.run(
            "sacct",
            "-n",
            "-X",
            "-P",
            "-j",
            str(arr),
            "-o",
            "JobID,JobIDRaw,State,ExitCode,Start,End",
        ).stdout.splitlines()
        rows = {int(line.split("|")[0].split("_")[1]): line.split("|") for line in sacct}
        assert {i: (r[2], r[3]) for i, r in rows.items()} == {
            1: ("COMPLETED", "0:0"),
            2: ("COMPLETED", "0:0"),
            3: ("FAILED", "4:0"),
            4: ("COMPLETED", "0:0"),
            5: ("COMPLETED", "0:0"),
            6: (f"CANCELLED by {os.getuid()}", "0:0"),
        }, sacct
        with cluster.db() as conn:
            ran = conn.execute(  # the lane that ran each element
                "SELECT array_task_id, json_extract(executor_ref, '$.sky_job_id') FROM jobs "
                "WHERE array_job_id = ? AND array_task_id != 6",
                (arr,),
            ).fetchall()
        lanes: dict[int, list[int]] = {}
        for index, lane in ran:
            lanes.setdefault(lane, []).append(index)
        assert None not in lanes and 1 <= len(lanes) <= 2, ran
        for lane, indices in lanes.items():  # one after another in its lane
            order = sorted(indices, key=lambda i: rows[i][4])
            print(f"lanes: managed job {lane} ran elements {order}")
            for before, after in zip(order, order[1:]):
                assert rows[after][4] >= rows[before][5], sacct
        for index in range(1, 6):
            text = (cluster.cwd / f"laned-{arr}_{index}.out").read_text()
            assert text == f"element {index} of {arr} job {rows[index][1]}\n"
            file = cluster.cwd / f"laned-file-{index}.txt"  # each element's files come home
            assert file.read_text() == f"element {index}\n"
        assert not (cluster.cwd / f"laned-{arr}_6.out").exists()
        assert not (cluster.cwd / "laned-file-6.txt").exists()
    finally:
        cluster.run("scancel", str(arr))
        gate.unlink(missing_ok=True)


FILES_CONFIG = CONFIG + "    files_home: {cap_mb: 1, exclude: ['*.skip'], interval: 5}\n"
FILES_TWO = """#!/bin/bash
#SBATCH -N 2 -J files2 -o files2-%j.out
mkdir -p out
srun bash -c 'echo "node $SLURM_NODEID" > out/node-$SLURM_NODEID.txt'
head -c 300000 /dev/urandom > out/random.bin
sha256sum out/random.bin > out/random.sha
echo scratch > out/scratch.skip
"""
CHECKPOINT = """#!/bin/bash
#SBATCH -J ckpt -o ckpt-%j.out
echo step1 > ckpt.txt
{wait}
echo step2 > ckpt.txt
head -c 2000000 /dev/zero > big.bin
"""


@FULL
def test_a_two_node_jobs_files_come_home_on_real_skypilot(cluster, stack):
    """What both nodes of a 2-node job write beside themselves (node 1 through srun) is in
    the submit directory when it ends, whole, once: nodes that share node 0's workdir send
    nothing of their own, others their own files; excluded files stay there."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(FILES_CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    job = cluster.sbatch(cluster.script("files2.sh", FILES_TWO))
    try:
        cluster.wait_done(job, timeout=1200)
        assert cluster.job(job)[1:3] == ("COMPLETED", 0)
        out = cluster.cwd / "out"
        assert (out / "node-0.txt").read_text() == "node 0\n"
        assert (out / "node-1.txt").read_text() == "node 1\n"
        digest = (out / "random.sha").read_text().split()[0]
        assert hashlib.sha256((out / "random.bin").read_bytes()).hexdigest() == digest
        assert not (out / "scratch.skip").exists()
        assert sorted(os.listdir(out)) == ["node-0.txt", "node-1.txt", "random.bin", "random.sha"]
        comment = cluster.run("sacct", "-n", "-X", "-P", "-j", str(job), "-o", "Comment")
        assert comment.stdout == "\n", comment
    finally:
        cluster.run("scancel", str(job))


@FULL
def test_a_checkpoint_comes_home_before_the_job_ends_on_real_skypilot(cluster, stack):
    """A file the job writes comes home while it still runs (files_home.interval); what it
    changed and wrote last comes home at its end; a file past the cap stays on the node,
    named in the job's output file and sacct's Comment."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(FILES_CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    gate = Path(f"/tmp/skye2e/gate-{os.getpid()}-ckpt")
    job = cluster.sbatch(cluster.script("ckpt.sh", CHECKPOINT.format(wait=GATE.format(gate=gate))))
    ckpt = cluster.cwd / "ckpt.txt"
    try:
        cluster.wait_for(ckpt.exists, 900, "the checkpoint to come home while the job runs")
        assert ckpt.read_text() == "step1\n"
        assert cluster.job(job)[1] in ("CONFIGURING", "RUNNING")  # the job waits for the gate
        gate.touch()
        cluster.wait_done(job, timeout=900)
        assert cluster.job(job)[1:3] == ("COMPLETED", 0)
        assert ckpt.read_text() == "step2\n"
        assert not (cluster.cwd / "big.bin").exists()
        line = (
            "big.bin (2000000 bytes) over the 1 MB cap, left on the node, which goes when the "
            "job ends: raise partitions.debug.files_home.cap_mb, or write it to a bucket "
            "(partitions.debug.file_mounts)"
        )
        assert (cluster.cwd / f"ckpt-{job}.out").read_text() == f"slurmsky: files home: {line}\n"
        comment = cluster.run("sacct", "-n", "-X", "-P", "-j", str(job), "-o", "Comment")
        assert comment.stdout == f"files home: {line}\n", comment
    finally:
        cluster.run("scancel", str(job))
        gate.unlink(missing_ok=True)


FAILOVER_CONFIG = """backend: sky
kill_wait: 5
partitions:
  onprem:
    default: true
    infra: slurm/peer/debug
  cloud:
    infra: aws
  burst:
    infra: [aws, slurm/peer/debug]
"""
WHERE = """#!/bin/bash
echo "partition=$SLURM_JOB_PARTITION restarts=${{SLURM_RESTART_COUNT:-unset}}"
{wait}
echo end
"""


def _allocation_of(cluster, job: int) -> str | None:
    """The peer's Slurm job that holds the SkyPilot cluster of slurmsky's `job` (SkyPilot
    names it `<task>-<managed job id>-<hash>`)."""
    with cluster.db() as conn:
        (sky_id,) = conn.execute(
            "SELECT json_extract(executor_ref, '$.sky_job_id') FROM jobs WHERE job_id = ?", (job,)
        ).fetchone()
    if sky_id is None:
        return None
    out = subprocess.run(
        ["/usr/bin/squeue", "-h", "-u", "skye2e", "-t", "R", "-o", "%i %j"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return next((i for i, name in map(str.split, out.splitlines()) if f"-{sky_id}-" in name), None)


@FULL
def test_failover_across_infras_and_a_preempted_job_requeued_on_real_skypilot(cluster, stack):
    """Issue 35 on the stack: a partition whose first infra is not enabled (aws) runs on the
    next; `-p cloud,onprem` runs in onprem and says so; a running job whose node is taken
    away (its Slurm allocation cancelled, as a spot preemption) goes RQ, then R again, and
    completes with Restarts=1 and SLURM_RESTART_COUNT=1 in its rerun (append keeps the
    first run's line); sacct -D keeps the lost run as NODE_FAIL."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(FAILOVER_CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    gate = Path(f"/tmp/skye2e/gate-{os.getpid()}-preempt")
    held = cluster.sbatch(
        "-J", "preempt", "-o", "preempt.out", "--open-mode=append",
        cluster.script("held.sh", WHERE.format(wait=GATE.format(gate=gate))),
    )  # fmt: skip
    short = cluster.script("short.sh", WHERE.format(wait="sleep 1"))
    burst = cluster.sbatch("-p", "burst", "-o", "burst.out", short)
    listed = cluster.sbatch("-p", "cloud,onprem", "-o", "listed.out", short)
    seen: list[str] = []

    def state_is(*wanted: str) -> bool:
        now = cluster.job(held)[1]
        if not seen or seen[-1] != now:
            seen.append(now)
        return now in wanted

    try:
        cluster.wait_for(
            lambda: state_is("RUNNING") and (cluster.cwd / "preempt.out").exists(),
            900,
            "the held job to run and write its first line",
        )
        allocation = cluster.wait_for(lambda: _allocation_of(cluster, held), 120, "its allocation")
        subprocess.run(["/usr/bin/scancel", allocation], check=True, timeout=60)
        cluster.wait_for(lambda: state_is("REQUEUED"), 300, "SkyPilot's recovery (RQ)")
        assert cluster.run("squeue", "-h", "-j", str(held), "-o", "%t").stdout == "RQ\n"
        cluster.wait_for(lambda: state_is("RUNNING"), 900, "the rerun (R)")
        gate.touch()
        cluster.wait_done(held, burst, listed, timeout=900)
    finally:
        cluster.run("scancel", str(held), str(burst), str(listed))
        gate.unlink(missing_ok=True)
    assert "REQUEUED" in seen and cluster.job(held)[1:3] == ("COMPLETED", 0), seen
    restarts = cluster.run("scontrol", "show", "job", str(held)).stdout.split()
    assert "Restarts=1" in restarts, restarts
    agent = (cluster.state / "agent.log").read_text()
    said = [x for x in agent.splitlines() if " DEBUG " not in x]  # (its starts, its errors)
    assert (cluster.cwd / "preempt.out").read_text() == (
        "partition=onprem restarts=unset\npartition=onprem restarts=1\nend\n"
    ), said
    runs = cluster.run("sacct", "-D", "-X", "-n", "-P", "-j", str(held), "-o", "State")
    assert runs.stdout == "NODE_FAIL\nCOMPLETED\n", runs
    ended = cluster.run(
        "sacct", "-X", "-n", "-P", "-j", f"{burst},{listed}", "-o", "JobID,Partition,State"
    )
    assert ended.stdout == f"{burst}|burst|COMPLETED\n{listed}|onprem|COMPLETED\n", ended
    assert (cluster.cwd / "burst.out").read_text() == "partition=burst restarts=unset\nend\n"
    assert (cluster.cwd / "listed.out").read_text() == "partition=onprem restarts=unset\nend\n"


HETJOB = """#!/bin/bash
#SBATCH -J het -o het-%j.out
#SBATCH -N1 -n1 -c1
#SBATCH hetjob
#SBATCH -N1 -n2 -c1
echo "size=$SLURM_HET_SIZE ids=$SLURM_JOB_ID_HET_GROUP_0,$SLURM_JOB_ID_HET_GROUP_1"
srun --het-group=0,1 bash -c 'echo task=$SLURM_PROCID' | sort
"""


def test_a_hetjob_runs_as_one_job_group_on_real_skypilot(cluster, stack):
    """The issue's script: one SkyPilot job group whose two tasks (a Slurm allocation each)
    are the job's two components; `srun --het-group=0,1` runs its tasks on both; J+0 and
    J+1 at home, and SkyPilot's queue holds one managed job with two tasks."""
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    job = cluster.sbatch(cluster.script("het.sh", HETJOB))
    try:
        cluster.wait_done(job, timeout=1200)
        assert cluster.job(job)[1:3] == ("COMPLETED", 0), cluster.job(job)
        assert (cluster.cwd / f"het-{job}.out").read_text() == (
            f"size=2 ids={job},{job + 1}\ntask=0\ntask=1\ntask=2\n"
        )
        sacct = cluster.run("sacct", "-n", "-X", "-j", str(job), "-o", "JobID%12,State")
        assert sacct.stdout.split() == [f"{job}+0", "COMPLETED", f"{job}+1", "COMPLETED"]
        # each component on its own group task's node (a Slurm allocation each), its steps
        steps = cluster.run("sacct", "-n", "-P", "-j", str(job), "-o", "JobID,NodeList")
        rows = dict(line.split("|") for line in steps.stdout.splitlines())
        assert list(rows) == [f"{job}+0", f"{job}+0.batch", f"{job}+0.0", f"{job}+1", f"{job}+1.0"]
        assert rows[f"{job}+0"] == rows[f"{job}+0.0"] and rows[f"{job}+1"] == rows[f"{job}+1.0"]
        assert expand(rows[f"{job}+0"]) and expand(rows[f"{job}+1"])
        sky_id = cluster.run("scontrol", "show", "job", str(job)).stdout
        assert "SkyPilotJobId=" in sky_id
    finally:
        cluster.run("scancel", str(job))


def _stranded(cluster, stack) -> tuple[int, str]:
    """A job sent to a dead API server (an endpoint nothing listens on), on the stack's
    config: its id, and the pending reason that names that server."""
    import socket

    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(CONFIG)
    cluster.env = _submit_env(cluster.env)
    cluster.env.update(stack)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    job = cluster.sbatch(
        cluster.script("stranded.sh", "#!/bin/bash\necho never\n"),
        env={"SKYPILOT_API_SERVER_ENDPOINT": dead},
    )
    return job, f"SkyPilotApiServerUnreachable:{dead}"


def test_a_job_for_a_dead_server_pends_naming_it_and_scancel_ends_it_at_once(cluster, stack):
    """Issue 33 item 3: a job whose API server does not answer (a closed port; no cloud
    launch) pends with that server in its reason, and scancel ends it at once."""
    job, reason = _stranded(cluster, stack)
    try:
        cluster.wait_for(lambda: cluster.job(job)[4] == reason, 120, "the reason naming it")
        out = cluster.run("squeue", "-h", "-j", str(job), "-o", "%t %R")
        assert out.stdout == f"PD ({reason})\n", out
        began = time.monotonic()
        cancel = cluster.run("scancel", str(job), timeout=60)
        took = time.monotonic() - began
        assert (cancel.returncode, cancel.stdout, cancel.stderr) == (0, "", "")
        assert cluster.job(job)[1] == "CANCELLED" and took < 10, took  # no agent pass needed
        ended = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job), "-o", "State")
        assert ended.stdout.split()[:1] == ["CANCELLED"], ended
    finally:
        cluster.run("scancel", str(job))


@FULL
def test_a_job_submitted_after_a_server_switch_runs_on_the_new_one(cluster, stack):
    """Issue 33 item 3 (its first case): the agent starts for a job sent to a dead server
    (it keeps that server as its own and stays up while that job pends); the user then
    switches to the stack's server, and the next job runs there. A second real API server
    costs minutes on CI's two cores, so the new server is the stack's one spelled otherwise
    (http://localhost:PORT, not 127.0.0.1), named by a project .sky.yaml in the submit
    directory, as SkyPilot 0.14.1 reads it, with no SkyPilot variable in sbatch's
    environment: the job's ref names it and the job completes there, while the first job
    still pends naming the dead server."""
    first, reason = _stranded(cluster, stack)
    new = f"http://localhost:{stack['SKYPILOT_API_SERVER_LOCAL_PORT']}"
    (cluster.cwd / ".sky.yaml").write_text(f"api_server:\n  endpoint: {new}\n")
    second = None
    try:
        cluster.wait_for(lambda: cluster.job(first)[4] == reason, 120, "the dead server's reason")
        second = cluster.sbatch(cluster.script("switched.sh", "#!/bin/bash\necho switched\n"))
        cluster.wait_done(second, timeout=900)
        assert cluster.job(second)[1:3] == ("COMPLETED", 0)
        assert (cluster.cwd / f"slurm-{second}.out").read_text() == "switched\n"
        with cluster.db() as conn:
            ref = conn.execute(
                "SELECT executor_ref FROM jobs WHERE job_id = ?", (second,)
            ).fetchone()[0]
        assert json.loads(ref)["server"] == new
        assert cluster.job(first)[1] == "PENDING" and cluster.job(first)[4] == reason
    finally:
        cluster.run("scancel", str(first), *([str(second)] if second else []))
    assert cluster.job(first)[1] == "CANCELLED"


def test_two_members_share_one_partition_on_real_skypilot(cluster, stack):
    """Issue 49 item 6 on the stack: root and peeruser, two OS users, one PostgreSQL queue and
    one API server. A partition of size 1: root's job holds it, peeruser's pends `Resources`
    (its own agent, as peeruser, launches it with its own SkyPilot identity once root's ends);
    each sees the other's job by its Slurm id, name, user and partition, and no foreign
    SkyPilot row for it; peeruser cannot cancel root's job. Fair share: root's four queued
    jobs wait (`Priority`) while peeruser's, who used less, starts first."""
    import tempfile

    import pgserver
    from test_team import Member, ok
    from users import cannot_run_as

    if cannot_run_as("peeruser"):
        pytest.skip("peeruser cannot run commands here")
    folder = tempfile.mkdtemp(prefix="slurmsky-pg-")
    os.chmod(folder, 0o755)
    server = pgserver.start(folder)
    member = None
    gate = Path(f"/tmp/skye2e/gate-{os.getpid()}-team")
    ids: list[int] = []
    try:
        cluster.database = cluster.env["SLURMSKY_STATE"] = pgserver.database(server)
        Path(cluster.env["SLURMSKY_CONFIG"]).write_text(
            'priority_calc_period: "0:1"\n'
            + CONFIG
            + "  one:\n    infra: slurm/peer/debug\n    size: 1\n"
        )
        cluster.env = _submit_env(cluster.env)
        cluster.env.update(stack, SLURMSKY_STATE=cluster.database)  # (a URL looks secret)
        ok(cluster.run("sacctmgr", "-i", "add", "account", "physics"))
        ok(cluster.run("sacctmgr", "-i", "add", "user", "peeruser,root", "account=physics"))
        member = Member(cluster)
        member.env.update(
            SKYPILOT_API_SERVER_LOCAL_PORT=stack["SKYPILOT_API_SERVER_LOCAL_PORT"],
            SKYPILOT_DISABLE_USAGE_COLLECTION="1",
            PYTHONPATH=member.env["PYTHONPATH"] + ":/tmp/skye2e/pyhook",
        )
        wait = f"while [ ! -e {gate} ]; do sleep 1; done"
        ids.append(cluster.sbatch("-p", "one", "-J", "mine", "--wrap", wait))
        mine = ids[0]
        cluster.wait_for(lambda: cluster.job(mine)[1] == "RUNNING", 900, "root's job to run")
        later = [cluster.sbatch("-p", "one", "-J", "later", "--wrap", "true") for _ in range(4)]
        ids += later
        out = ok(member.run("sbatch", "--parsable", "-p", "one", "-J", "theirs", "--wrap",
                            "echo theirs"))  # fmt: skip
        theirs = int(out.stdout)
        ids.append(theirs)
        cluster.wait_for(
            lambda: cluster.job(theirs)[4] == "Resources", 120, "peeruser's job to wait"
        )
        expected = [
            f"{theirs} theirs peeruser one PD Resources",
            *(f"{job} later root one PD Priority" for job in later),
            f"{mine} mine root one R None",
        ]
        cluster.wait_for(  # (root's agent says Priority at its next pass)
            lambda: (
                ok(member.run("squeue", "-o", "%i %j %u %P %t %r", "-h")).stdout.splitlines()
                == expected
            ),
            60,
            "squeue to list both members' jobs in fair-share order",
        )
        assert ok(cluster.run("squeue", "-h", "-o", "%i")).stdout.split() == [
            str(theirs), *map(str, later), str(mine)
        ]  # fmt: skip
        out = member.run("scancel", str(mine))
        assert (out.returncode, out.stderr) == (
            210,
            f"scancel: error: Kill job error on job id {mine}: Access/permission denied\n",
        )
        gate.touch()
        cluster.wait_for(
            lambda: cluster.job(theirs)[1] in ("RUNNING", "COMPLETED"), 900, "peeruser's job"
        )
        assert [cluster.job(job)[1] for job in later] == ["PENDING"] * 4  # fair share
        ok(cluster.run("scancel", *map(str, later)))
        cluster.wait_for(lambda: cluster.job(theirs)[1] == "COMPLETED", 900, "peeruser's job")
        assert cluster.job(mine)[1] == "COMPLETED"
        conn = cluster.db()
        times = dict(conn.execute(
            "SELECT job_id, CASE WHEN job_id = ? THEN end_time ELSE start_time END FROM jobs",
            (mine,),
        ).fetchall())  # fmt: skip
        conn.close()
        print(f"team on SkyPilot: root's job ended, peeruser's started "
              f"{times[theirs] - times[mine]:.1f} s later")  # fmt: skip
        text = Path(member.work, f"slurm-{theirs}.out").read_text()
        assert text == "theirs\n"
    finally:
        gate.unlink(missing_ok=True)
        for job in ids:
            cluster.run("scancel", str(job))
        if member is not None:
            member.stop()
        cluster.teardown()
        cluster.database = None
        pgserver.stop(folder)
