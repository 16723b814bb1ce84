"""Usage accounting: sacct's and sstat's usage fields for a job of known memory and CPU use,
against what real Slurm reported for the same job (tests/fixtures/usage)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from captures import Capture
from conftest import ROOT

from slurmsky.render.usage_format import Usage
from slurmsky.runtime import usage

USAGE = Path(__file__).resolve().parent / "fixtures" / "usage"
FIELDS = (
    "JobID,JobName,State,Elapsed,AllocCPUS,ReqMem,MaxRSS,MaxRSSNode,MaxRSSTask,AveRSS,MaxVMSize,"
    "MaxVMSizeNode,MaxVMSizeTask,AveVMSize,TotalCPU,UserCPU,SystemCPU,AveCPU,MinCPU,MinCPUNode,"
    "MinCPUTask,NTasks,AllocTRES,ConsumedEnergy,MaxPages,AveCPUFreq,TRESUsageInMax,"
    "TRESUsageInAve,TRESUsageInTot"
)


def peer(name: str) -> dict[str, Capture]:
    text = (USAGE / name).read_text()
    probes = re.findall(
        r"^\$ (.*?)\n--- stdout\n(.*?)--- stderr\n(.*?)--- exit (\d+)\n", text, re.S | re.M
    )
    return {c: Capture(c, out, err, int(rc)) for c, out, err, rc in probes}


def table(text: str) -> dict[str, dict[str, str]]:
    """sacct -P output -> {JobID suffix ('', 'batch', '0'): {field: value}}."""
    lines = text.splitlines()
    head = lines[0].split("|")
    rows = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split("|")))
        rows[row["JobID"].partition(".")[2]] = row
    return rows


def kib(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]?)", text.strip()).groups()
    return int(number) * 1024 ** "KMG".index(unit or "K")


def cpu_seconds(text: str) -> float:
    """TotalCPU's `MM:SS.mmm` or `HH:MM:SS`."""
    parts = [float(p) for p in text.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def near(ours: float, theirs: float, tolerance: float) -> bool:
    return abs(ours - theirs) <= tolerance * theirs


@pytest.fixture
def fast_sampling(cluster):
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    config.write_text(config.read_text() + "acct_gather_frequency: 1\n")
    shutil.copy(USAGE / "burn.py", cluster.cwd)
    return cluster


def short_usage_script(cluster, hold: int) -> str:
    """usage.sh with `hold` s sleeps (the peer's were 12 s, for its 10 s sampling)."""
    text = (USAGE / "usage.sh").read_text().replace(" 12\n", f" {hold}\n")
    return cluster.script("usage.sh", text)


@pytest.fixture(scope="module")
def usage_job(tmp_path_factory):
    """The peer's job (usage.sh, as it ran there: its 30 s matter to CPU efficiency) on
    slurmsky with the peer's DefMemPerCPU, sampled every second; (cluster, job id)."""
    from conftest import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("usage"))
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    config.write_text(config.read_text() + "acct_gather_frequency: 1\ndef_mem_per_cpu: 100\n")
    shutil.copy(USAGE / "burn.py", cluster.cwd)
    job = cluster.sbatch(cluster.script("usage.sh", (USAGE / "usage.sh").read_text()))
    try:
        assert cluster.wait_done(job, timeout=150)[0][1] == "COMPLETED"
        yield cluster, job
    finally:
        cluster.teardown()


def test_sacct_usage_agrees_with_the_peer(usage_job):
    cluster, job = usage_job
    out = cluster.run("sacct", "-j", str(job), "-P", "-o", FIELDS)
    assert out.returncode == 0, out.stderr
    ours = table(out.stdout)
    capture = peer("peer-sacct.txt")[f"sacct -j 5 -P -o {FIELDS}"]
    theirs = table(capture.stdout)
    assert set(ours) == set(theirs) == {"", "batch", "0"}
    for step in ("batch", "0"):
        a, b = ours[step], theirs[step]
        for field in ("MaxRSS", "AveRSS", "MaxVMSize", "AveVMSize"):
            assert near(kib(a[field]), kib(b[field]), 0.15), (step, field, a[field], b[field])
            assert re.fullmatch(r"\d+K", a[field]), a[field]  # KiB, as Slurm's
        assert near(cpu_seconds(a["TotalCPU"]), cpu_seconds(b["TotalCPU"]), 0.3), step
        assert re.fullmatch(r"\d\d:\d\d\.\d\d\d", a["TotalCPU"]), a["TotalCPU"]
        for field in ("AveCPU", "MinCPU"):
            assert re.fullmatch(r"\d\d:\d\d:\d\d", a[field])
            assert abs(cpu_seconds(a[field]) - cpu_seconds(b[field])) <= 1, (step, field)
        for field in ("NTasks", "ConsumedEnergy", "MaxPages", "AllocCPUS"):
            assert a[field] == b[field], (step, field)
        # which of two like tasks peaks higher is chance, on both sides
        assert {a["MaxRSSTask"], a["MinCPUTask"]} <= {"0", "1"}
        assert a["MaxRSSNode"] == a["MinCPUNode"] == "127.0.0.1"  # the peer's node1
        assert a["TRESUsageInTot"].startswith("cpu=00:00:0")
        assert f",mem={a['MaxRSS']}," in a["TRESUsageInMax"]
    # the job's own line: CPU times are its steps' sums, memory fields empty (as Slurm's)
    total = cpu_seconds(ours["batch"]["TotalCPU"]) + cpu_seconds(ours["0"]["TotalCPU"])
    assert abs(cpu_seconds(ours[""]["TotalCPU"]) - total) < 0.002
    assert near(cpu_seconds(ours[""]["TotalCPU"]), cpu_seconds(theirs[""]["TotalCPU"]), 0.3)
    for field in ("MaxRSS", "AveRSS", "MaxVMSize", "AveCPU", "NTasks"):
        assert ours[""][field] == theirs[""][field] == ""
    assert ours[""]["ReqMem"] == theirs[""]["ReqMem"] == "200M"  # DefMemPerCPU x 2 CPUs


def test_a_steps_usage_is_its_own_processes(cluster):
    """own.sh as on the peer (peer-own.txt): a 1 s sleep's step shows no memory (no sample
    saw it; the runtime's own ~20 MB, which Linux carries across vfork and exec into every
    task's ru_maxrss, is not the step's), a 1 s step holding 300 MB shows it from its end's
    rusage (the peer's 10 s sampler missed it: it shows nothing), a sampled sleep what the
    peer's shows; no step's CPU counts the launch's Python."""
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    config.write_text(config.read_text() + "acct_gather_frequency: 2\n")
    text = (USAGE / "own.sh").read_text().replace("sleep 12", "sleep 5")
    job = cluster.sbatch(cluster.script("own.sh", text))
    assert cluster.wait_done(job, timeout=60)[0][1] == "COMPLETED"
    fields = "JobID,JobName,State,Elapsed,MaxRSS,AveRSS,MaxVMSize,TotalCPU,UserCPU,SystemCPU"
    ours = table(cluster.run("sacct", "-j", str(job), "-P", "-o", fields).stdout)
    theirs = table(peer("peer-own.txt")[f"sacct -j 8 -P -o {fields}"].stdout)
    assert set(ours) == set(theirs) == {"", "batch", "0", "1", "2"}
    assert ours["0"]["MaxRSS"] == "" or kib(ours["0"]["MaxRSS"]) < 4 << 10  # sampled at most
    assert theirs["1"]["MaxRSS"] == ""
    assert 300 << 10 <= kib(ours["1"]["MaxRSS"]) < 340 << 10, ours["1"]
    for field in ("MaxRSS", "AveRSS"):  # the peer's 1580K; sleep's own, ~1.5 MB
        assert kib(theirs["2"][field]) / 2 < kib(ours["2"][field]) < 4 << 10, ours["2"]
    assert kib(ours["2"]["MaxVMSize"]) < 3 * kib(theirs["2"]["MaxVMSize"]), ours["2"]
    for step in ("0", "2"):  # the peer's 00:00.001-00:00.002: no Python's start
        assert cpu_seconds(ours[step]["TotalCPU"]) < 0.02, ours[step]
    # the batch step: bash and srun, sampled, as the peer's 12204K
    assert 2 << 10 < kib(ours["batch"]["MaxRSS"]) < 3 * kib(theirs["batch"]["MaxRSS"])


REAPER_PROBE = """
import json, os, sys, threading
from slurmsky.runtime import procs

tmp = sys.argv[1]
ballast = bytearray(64 << 20)
ballast[::4096] = b"x" * len(ballast[::4096])
reaper = procs.Reaper()


def run(argv):
    done, got = threading.Event(), []
    out = os.open(os.path.join(tmp, "out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        launch = procs.launch_argv("n", 0o22, tmp, argv)
        reaper.spawn(launch, dict(os.environ), None, out, None, lambda *a: (got.extend(a), done.set()))
    finally:
        os.close(out)
    assert done.wait(30)
    return [got[1].ru_maxrss, got[1].ru_utime + got[1].ru_stime]


code = "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"
found = {"sleep": run(["sleep", "0.2"]), "big": run([sys.executable, "-S", "-c", code])}
run(["sh", "-c", "env"])
print(json.dumps(found))
"""


def test_reaper_reports_the_tasks_own_usage(tmp_path):
    """From a process whose heap is large, a task's rusage is its own: a sleep's peak is
    below what the process carried (0: unknown), 300 MB are 300 MB, and neither counts
    launch.py's CPU time; launch.py's report fd is not in the task's environment. (In a
    process of its own: a Reaper reaps every child of its process, pytest's too.)"""
    probe = subprocess.run(
        [sys.executable, "-c", REAPER_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["sleep"][0] == 0 and found["sleep"][1] < 0.02
    assert 300 << 10 <= found["big"][0] < 340 << 10
    env = (tmp_path / "out").read_text()
    assert "SLURMSKY_LAUNCH_REPORT" not in env and "HOME=" in env


def efficiencies(text: str) -> tuple[float, float, float]:
    """(CPUEff, MemEff, Elapsed s) of reportseff's one job line."""
    line = text.splitlines()[1]
    cpu, mem = re.findall(r"([\d.]+)%", line)[-2:]
    return float(cpu), float(mem), cpu_seconds(line.split()[2])


def test_reportseff_unchanged_agrees_with_the_peer(usage_job):
    cluster, job = usage_job
    reportseff = shutil.which("reportseff", path=os.path.dirname(sys.executable))
    if reportseff is None:
        pytest.skip("reportseff is not installed (pip install '.[test]')")
    out = subprocess.run(
        [reportseff, "--no-color", str(job)],
        env=cluster.env,
        cwd=cluster.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    theirs = peer("peer-sacct.txt")["reportseff 5"].stdout
    assert out.stdout.splitlines()[0] == theirs.splitlines()[0]
    (cpu, mem, elapsed), (peer_cpu, peer_mem, peer_elapsed) = (
        efficiencies(out.stdout),
        efficiencies(theirs),
    )
    assert abs(mem - peer_mem) <= 10, (out.stdout, theirs)
    # CPUEff is CPU time over elapsed x CPUs: the CPU time is the job's, the elapsed time
    # stretches with the load of this 2-core machine; so compare the CPU seconds it implies
    assert near(cpu * elapsed, peer_cpu * peer_elapsed, 0.35), (out.stdout, theirs)


def test_seff_reports_as_the_contrib_tool(usage_job):
    """seff's lines for the job; its figures agree with what contribs/seff computes from the
    peer's accounting of the same job (peer-seff.txt: derived from sacct, see README)."""
    cluster, job = usage_job
    out = cluster.run("seff", str(job))
    assert out.returncode == 0, out.stderr
    theirs = (USAGE / "peer-seff.txt").read_text().splitlines()
    ours = out.stdout.splitlines()
    shape = [re.sub(r"[\d.]+", "N", line) for line in theirs[1:]]
    assert [re.sub(r"[\d.]+", "N", line) for line in ours[1:]] == [
        line.replace("Cluster: peer", "Cluster: slurmsky") for line in shape
    ]

    def figure(lines: list[str], key: str) -> str:
        (line,) = [line for line in lines if line.startswith(key + ": ")]
        return line.split()[len(key.split())]

    assert abs(float(figure(ours, "Memory Efficiency")[:-1]) - 108.07) <= 10
    # CPU Utilized is the job's CPU time (its efficiency stretches with this machine's load)
    assert abs(cpu_seconds(figure(ours, "CPU Utilized")) - 5) <= 1.5
    assert "Memory Efficiency: " in out.stdout and "of 200.00 MB" in out.stdout


def test_sstat_shows_running_steps_as_the_peer_does(fast_sampling):
    cluster = fast_sampling
    job = cluster.sbatch(short_usage_script(cluster, 6))
    captures = peer("peer-sstat.txt")
    # the batch step first (only -a shows it), then step 0 once it runs
    batch = cluster.wait_for(
        lambda: (
            (
                out := cluster.run("sstat", "-a", "-j", str(job), "-n", "-P", "-o", "JobID,MaxRSS")
            ).stdout.startswith(f"{job}.batch|")
            and kib(out.stdout.split("|")[1]) > 150 * 1024
            and out
        ),
        timeout=60,
        what="the batch step's 200 MB",
    )
    assert batch.returncode == 0
    cluster.wait_for(
        lambda: (
            cluster.run("sstat", "-j", str(job), "-n", "-P", "-o", "JobID,NTasks").stdout
            == f"{job}.0|2\n"
        ),
        timeout=60,
        what="step 0 in sstat",
    )
    time.sleep(1.5)  # one more sample: both tasks hold their 80 MB
    default = cluster.run("sstat", "-j", str(job))
    theirs = captures["sstat -j 27"].stdout.splitlines()
    lines = default.stdout.splitlines()
    assert lines[:2] == theirs[:2]  # Slurm's header and column widths, byte for byte
    assert len(lines) == 3 and lines[2].startswith(f"{job}.0 ".ljust(13))
    rows = cluster.run("sstat", "-a", "-j", str(job), "-P")
    peer_rows = table(captures["sstat -a -j 27 -P"].stdout)
    ours = table(rows.stdout)
    assert list(ours) == list(peer_rows) == ["batch", "0"]
    for step in ("batch", "0"):
        for field in ("MaxRSS", "MaxVMSize"):
            assert near(kib(ours[step][field]), kib(peer_rows[step][field]), 0.15), (step, field)
        for field in ("NTasks", "ReqCPUFreqMin", "ReqCPUFreqGov", "AvePages"):
            assert ours[step][field] == peer_rows[step][field], (step, field)
    # running: AveRSS is the tasks' current memory (the batch shell waits in srun, small)
    assert kib(ours["batch"]["AveRSS"]) < kib(ours["batch"]["MaxRSS"]) / 2
    p = cluster.run("sstat", "-j", f"{job}.0", "-p", "-o", "jobid,maxrsstask,ntasks")
    assert p.stdout.splitlines()[0] == "JobID|MaxRSSTask|NTasks|"
    assert p.stdout.splitlines()[1] in (f"{job}.0|0|2|", f"{job}.0|1|2|")
    cluster.wait_done(job, timeout=60)
    ended = cluster.run("sstat", "-j", str(job))
    assert ended.stdout == captures["sstat -j 5"].stdout
    assert ended.stderr == f"sstat: error: No steps running for job {job}\n"
    assert ended.returncode == 0


@pytest.mark.parametrize(
    "argv, peer_command",
    [
        (["-e"], "sstat -e"),
        (["--usage"], "sstat --usage"),
        (["-h"], "sstat -h"),
        ([], "sstat"),
        (["-j", "27", "-o", "bogus"], "sstat -j 27 -o bogus"),
        (["-j", "999999"], "sstat -j 999999"),
        (["-j", "5.batch", "-o", "jobid"], "sstat -j 5.batch -o jobid"),
    ],
)
def test_sstat_texts_and_errors_are_slurms(cluster, argv, peer_command):
    capture = peer("peer-sstat.txt")[peer_command]
    out = cluster.run("sstat", *argv)
    assert (out.stdout, out.stderr, out.returncode) == (
        capture.stdout,
        capture.stderr,
        capture.exit,
    )


def test_usage_fields_of_the_peers_two_task_step():
    """Step 5.0 of the peer's job: two tasks of ~95 MB and ~1.3 s CPU each."""
    tasks = [
        {"node": "node1", "task": 0, "rss": 95432, "vm": 98492, "user": 0.35, "sys": 0.94},
        {"node": "node1", "task": 1, "rss": 95388, "vm": 98492, "user": 0.347, "sys": 0.935},
    ]
    f = Usage(tasks).fields()
    assert (f["MaxRSS"], f["MaxRSSNode"], f["MaxRSSTask"], f["AveRSS"]) == (
        "95432K",
        "node1",
        "0",
        "95410K",
    )
    assert (f["MaxVMSize"], f["AveVMSize"], f["AveCPU"], f["MinCPU"], f["MinCPUTask"]) == (
        "98492K",
        "98492K",
        "00:00:01",
        "00:00:01",
        "1",
    )
    assert (f["TotalCPU"], f["UserCPU"], f["SystemCPU"]) == ("00:02.572", "00:00.697", "00:01.875")
    assert f["TRESUsageInTot"] == (
        "cpu=00:00:02,energy=0,fs/disk=0,mem=190820K,pages=0,vmem=196984K"
    )
    assert Usage([dict(tasks[0], rss=1048576)]).fields()["MaxRSS"] == "1G"


def test_runtime_samples_a_process_tree(tmp_path):
    """tree_totals sums a parent and its child: both hold memory and one burns CPU."""
    code = (
        "import subprocess, sys, time\n"
        "b = bytearray(40 << 20); b[::4096] = b'x' * len(b[::4096])\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        '\'b = bytearray(30 << 20); b[::4096] = b"x" * len(b[::4096]); '
        "import time; t = time.process_time()\\nwhile time.process_time() - t < 0.5: pass\\n"
        "time.sleep(30)'])\n"
        "print(child.pid, flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    try:
        sampler = usage.Sampler(0)
        task = sampler.track("n", 0)
        task.pid = proc.pid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sampler.sample_now()
            if task.record["user"] + task.record["sys"] >= 0.5:
                break
            time.sleep(0.2)
        rec = task.record
        assert rec["rss"] >= 70 << 10 and rec["cur_rss"] >= 70 << 10  # both processes
        assert rec["vm"] >= rec["rss"]
        assert rec["user"] + rec["sys"] >= 0.5
    finally:
        os.kill(child, signal.SIGKILL)
        proc.kill()
        proc.wait()
    rusage = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN)
    task.finish(rusage)
    assert task.ended and rec["cur_rss"] == 0 and rec["rss"] >= 70 << 10


def test_def_mem_per_cpu_is_req_mem_min_memory_and_placement(cluster):
    """DefMemPerCPU as on the peer (100 MB): a job asking no memory shows squeue MIN_MEMORY
    100M, sacct ReqMem 200M for 2 CPUs, scontrol MinMemoryCPU=100M (the peer's own answers
    for `sbatch -n 2 --hold`); a partition's default wins; --mem is the job's own."""
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    config.write_text(
        "kill_wait: 1\ndef_mem_per_cpu: 100\n"
        "partitions:\n  debug: {default: true}\n  big: {def_mem_per_cpu: 300}\n"
        "  huge: {def_mem_per_cpu: 100000000}\n"
    )
    plain = cluster.sbatch("-n", "2", "--hold", "--wrap", "true")
    big = cluster.sbatch("-n", "2", "--hold", "-p", "big", "--wrap", "true")
    own = cluster.sbatch("-n", "2", "--hold", "--mem=1G", "--wrap", "true")
    squeue = cluster.run("squeue", "-h", "-o", "%i %m")
    assert sorted(squeue.stdout.splitlines()) == [f"{plain} 100M", f"{big} 300M", f"{own} 1G"]
    sacct = cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID,ReqMem", "-j", f"{plain},{big}")
    assert sacct.stdout == f"{plain}|200M\n{big}|600M\n"
    show = cluster.run("scontrol", "show", "job", str(plain)).stdout
    assert "MinMemoryCPU=100M" in show and "TRES=cpu=2,mem=200M,node=1,billing=2" in show
    # placement: a default no node can hold refuses the job as Slurm does
    out = cluster.run("sbatch", "-p", "huge", "--wrap", "true")
    assert out.returncode == 1
    assert out.stderr == (
        "sbatch: error: Memory specification can not be satisfied\n"
        "sbatch: error: Batch job submission failed: Requested node configuration is not "
        "available\n"
    )
    cluster.run("scancel", str(plain), str(big), str(own))
