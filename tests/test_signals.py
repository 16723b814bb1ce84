"""Ctrl-C, SIGTERM and SIGHUP as Slurm's commands take them: no Python traceback ever;
`sbatch` stored and printed, or neither; `srun`'s two-Ctrl-C protocol with real srun's
messages (captured from the live peer: tests/fixtures/slurm-captures/srun-sigint-*.txt)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time

import pytest
from captures import CAPTURES, read_capture
from conftest import BIN

TRIALS = 100
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _start(cluster, command: str, *args: str) -> subprocess.Popen:
    """A command run as a user's shell runs it: through its #! line."""
    return subprocess.Popen(
        [str(BIN / command), *args],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sbatch(cluster) -> subprocess.Popen:
    return _start(cluster, "sbatch", "--hold", "--wrap", "true")


def _trial(cluster, rng, span) -> tuple[int, str, str, float]:
    """One sbatch, signalled after a random delay: (returncode, stdout, stderr, delay)."""
    proc = _sbatch(cluster)
    delay = rng.uniform(0, span)
    time.sleep(delay)
    proc.send_signal(rng.choice(SIGNALS))
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, delay


def test_sbatch_is_atomic_under_signals(cluster):
    """100 sbatch, each sent SIGINT, SIGTERM or SIGHUP after a random delay up to 1.2 times
    what an undisturbed sbatch takes: no traceback, and the jobs stored are exactly the ids
    printed. A signal before the submission ends sbatch by that signal with nothing stored;
    one while it stores is held until the id is printed."""
    seed = int(os.environ.get("SLURMSKY_SIGNAL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    took = []
    for _ in range(3):
        start = time.monotonic()
        assert _sbatch(cluster).communicate(timeout=60)[0].startswith("Submitted")
        took.append(time.monotonic() - start)
    span = 1.2 * sorted(took)[1]
    printed, killed, tracebacks = [], 0, []
    for _ in range(TRIALS):
        code, out, err, delay = _trial(cluster, rng, span)
        if "Traceback" in err or "KeyboardInterrupt" in err:
            tracebacks.append((delay, err))
        if out:
            assert out.startswith("Submitted batch job "), (seed, out)
            printed.append(int(out.split()[-1]))
        if code < 0:
            killed += 1
            assert -code in SIGNALS and err == "", (seed, code, err)
        else:
            assert code == 0 and out, (seed, code, out, err)
    stored = [row[0] for row in cluster.jobs()][3:]
    print(f"seed {seed}: sbatch {span / 1.2:.2f} s; {len(printed)} printed, {killed} ended by it")
    assert tracebacks == [], (seed, tracebacks[:3])
    assert stored == sorted(printed), seed
    assert 0 < len(printed) < TRIALS, seed  # both outcomes were tried


def _normal(text: str, job_id: int | str, node: str, wait: int) -> list[str]:
    """Lines with what differs by site put in the same form: the job id, the first node's
    name, the time of a CANCELLED line, srun's wait (KillWait + 2)."""
    text = re.sub(rf"(StepId=|STEP ){job_id}\.", r"\1JOB.", text).replace(node, "NODE")
    text = re.sub(r"CANCELLED AT \S+ ", "CANCELLED AT T ", text)
    return text.replace(f"Waiting up to {wait} seconds", "Waiting up to W seconds").splitlines()


def _in_job_capture(name: str) -> tuple[str, list[str], int]:
    """(the batch script, its output's lines normalised, the capture's job id)."""
    text = (CAPTURES / name).read_text()
    script = text.split("\n", 1)[1].split("--- stdout")[0]
    job_id = int(re.search(r"# slurm-(\d+)\.out", text).group(1))
    out = text.split(".out", 1)[1].split("\n", 1)[1]
    return script, _normal(out, job_id, "node1", 4), job_id


@pytest.mark.parametrize(
    "capture, sbatch_args, tasks_trap",
    [
        ("srun-sigint-in-job.txt", ["-N2", "--ntasks-per-node=2"], False),
        ("srun-sigint-in-job-twice.txt", ["-N2"], False),
        ("srun-sigint-in-job-twice.txt", ["-N2"], True),
    ],
)
def test_srun_in_a_job_answers_ctrl_c_as_slurm(cluster, capture, sbatch_args, tasks_trap):
    """srun in the background of a batch script (its SIGINT ignored by bash, as on Slurm:
    srun takes it all the same), sent SIGINT once, or twice 0.3 s apart: the job's output is
    the real srun's, line for line (the tasks ignoring SIGINT: killed, srun exit 137)."""
    script, expected, _ = _in_job_capture(capture)
    if tasks_trap:
        script = script.replace("bash -c '", 'bash -c \'trap "" INT; ')
        expected = [line.replace("srun exit 130", "srun exit 137") for line in expected]
    cluster.script("intr.sh", script)
    job = cluster.sbatch(*sbatch_args, "-o", "intr.out", "intr.sh")
    assert cluster.wait_done(job, timeout=90)[0][1] == "COMPLETED"
    got = _normal((cluster.cwd / "intr.out").read_text(), job, "127.0.0.1", 3)
    assert got == expected


READY = "touch ready.$SLURM_PROCID; "
# capture -> (srun's arguments here, the signals after every task is ready: (delay, signal))
OUTSIDE = {
    "srun-sigint-once.txt": (
        [
            "-N2",
            "-n3",
            "bash",
            "-c",
            READY + "if [ $SLURM_PROCID = 1 ]; then exit 3; fi; "
            "if [ $SLURM_PROCID = 2 ]; then exit 0; fi; sleep 4; echo done $SLURM_PROCID",
        ],
        [(1.0, signal.SIGINT)],
    ),
    "srun-sigint-twice.txt": (
        ["-N2", "-n2", "bash", "-c", READY + "sleep 8; echo done $SLURM_PROCID"],
        [(0.5, signal.SIGINT), (0.3, signal.SIGINT)],
    ),
    "srun-sigint-twice-trapped.txt": (
        ["-N1", "-n2", "bash", "-c", READY + 'trap "" INT; sleep 8; echo done $SLURM_PROCID'],
        [(0.5, signal.SIGINT), (0.3, signal.SIGINT)],
    ),
    "srun-sigint-late.txt": (
        ["-N2", "-n3", "bash", "-c", READY + "sleep 5; echo done $SLURM_PROCID"],
        [(0.5, signal.SIGINT), (1.5, signal.SIGINT)],
    ),
    "srun-sigterm.txt": (
        ["-N1", "-n2", "bash", "-c", READY + "sleep 8; echo done $SLURM_PROCID"],
        [(0.5, signal.SIGTERM)],
    ),
}


def _stderr_lines(text: str, job_id, node: str, wait: int) -> list[str]:
    """srun's lines but the allocation's (`job N queued ...`, which depend on the load), and
    slurmstepd's CANCELLED line after a double Ctrl-C: real Slurm prints it or not as its
    SIGKILL or the tasks' deaths from the Ctrl-C come first (srun-sigint-twice.txt has none,
    srun-sigint-in-job-twice.txt has it); slurmsky always prints it."""
    lines = _normal(text, job_id, node, wait)
    if "srun: sending Ctrl-C" in text:
        lines = [line for line in lines if "CANCELLED AT" not in line]
    return [line for line in lines if not re.match(r"srun: job \d+ (queued|has been)", line)]


@pytest.mark.parametrize("capture", sorted(OUTSIDE))
def test_srun_answers_signals_as_slurm(cluster, capture):
    """srun from outside a job (it allocates, then runs the step), sent what the real srun
    was sent once every task runs: stderr line for line, stdout, exit code. Ctrl-C once:
    the status; twice within a second: Ctrl-C to the tasks, then the step aborted;
    later: the status again; SIGTERM: aborted."""
    args, plan = OUTSIDE[capture]
    cap = read_capture(capture)
    proc = _start(cluster, "srun", *args)
    try:
        ntasks = int(args[1][2:])
        cluster.wait_for(
            lambda: all((cluster.cwd / f"ready.{k}").exists() for k in range(ntasks)), 60, "tasks"
        )
        for delay, sig in plan:
            time.sleep(delay)
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    job_id = re.search(r"(?:StepId=|STEP )(\d+)\.", cap.stderr).group(1)
    ours = cluster.jobs()[-1][0]
    assert _stderr_lines(err, ours, "127.0.0.1", 3) == _stderr_lines(cap.stderr, job_id, "node1", 4)
    assert sorted(out.splitlines()) == sorted(cap.stdout.splitlines())
    assert proc.returncode == cap.exit


def test_srun_ctrl_c_while_pending_revokes_the_allocation(cluster):
    """Ctrl-C while the allocation pends: revoked, as real srun says, exit 1, CANCELLED."""
    cap = read_capture("srun-sigint-pending.txt")
    proc = _start(cluster, "srun", "--begin=now+60", "true")
    cluster.wait_for(lambda: cluster.jobs() and cluster.jobs()[0][4] != "None", 30, "a reason")
    time.sleep(0.5)  # srun says it queues
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    job_id = cluster.jobs()[0][0]
    assert (out, proc.returncode) == (cap.stdout, cap.exit)
    assert err.replace(f" {job_id}", " 1441").replace(f"={job_id}", "=1441") == cap.stderr
    assert cluster.job(job_id)[1] == "CANCELLED"


def test_srun_interrupted_early_never_shows_a_traceback(cluster):
    """20 srun, each sent SIGINT, SIGTERM or SIGHUP in its first 0.4 s (while it starts,
    stores its allocation, waits for it, starts the step): no traceback, and no allocation
    is left behind (each ends: revoked, or its step ran or was aborted)."""
    seed = int(os.environ.get("SLURMSKY_SIGNAL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    for _ in range(20):
        proc = _start(cluster, "srun", "-n2", "sleep", "1")
        time.sleep(rng.uniform(0, 0.4))
        proc.send_signal(rng.choice(SIGNALS))
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (seed, err)
    active = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")
    cluster.wait_for(
        lambda: not [j for j in cluster.jobs() if j[1] in active], 60, "every allocation ended"
    )


def _srun_until_ready(cluster, *args: str, merged: bool = False) -> subprocess.Popen:
    """srun ARGS started as a user's shell starts it, once its task wrote ready.0."""
    proc = subprocess.Popen(
        [str(BIN / "srun"), *args],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
    )
    try:
        cluster.wait_for(lambda: (cluster.cwd / "ready.0").exists(), 60, "the task")
    except BaseException:
        proc.kill()
        raise
    return proc


TRAPPED = ["bash", "-c", READY + 'trap "" INT; sleep 30']


@pytest.mark.parametrize("verbose", [True, False])
def test_srun_quit_on_interrupt_ends_the_step_at_the_first_ctrl_c(cluster, verbose):
    """--quit-on-interrupt: the first Ctrl-C is Slurm's second (srun_job.c _handle_intr):
    Ctrl-C to the tasks, the step aborted, the task that ignored it killed (its death a
    verbose line, not an error: atf test_--quit-on-interrupt.py waits for `task 0:
    Killed` under -v), exit 137, at once."""
    args = ["-v"] * verbose + ["-N1", "--quit-on-interrupt", *TRAPPED]
    proc = _srun_until_ready(cluster, *args)
    try:
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - started < 5
    step = f"StepId={cluster.jobs()[-1][0]}.0"
    assert "interrupt (one more" not in err
    assert f"srun: sending Ctrl-C to {step}\nsrun: forcing job termination\n" in err
    assert ("srun: 127.0.0.1: task 0: Killed\n" in err) == verbose
    assert "error: 127.0.0.1: task 0" not in err
    assert (out, proc.returncode) == ("", 137)


def test_srun_disable_status_sends_each_ctrl_c_to_the_tasks(cluster):
    """-X/--disable-status: one Ctrl-C goes to the tasks, no status: they die of it."""
    proc = _srun_until_ready(cluster, "-X", "-N1", "bash", "-c", READY + "sleep 30")
    try:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    step = f"StepId={cluster.jobs()[-1][0]}.0"
    assert f"srun: sending Ctrl-C to {step}\n" in err
    assert "interrupt (one more" not in err and "forcing job termination" not in err
    assert "srun: error: 127.0.0.1: task 0: Interrupt\n" in err
    assert proc.returncode == 130


def test_srun_relays_the_tasks_output_before_the_exit_it_reports(cluster):
    """srun outside a job relays the allocation's stdout and stderr in the order of their
    last writes: the task's output before srun's line on its exit, every line once. (srun's
    `launching StepId` comes first unless its `_task_start` line lands in the same poll as
    the task's first output: the relay has no per-line clock.)"""
    for _ in range(3):
        (cluster.cwd / "ready.0").unlink(missing_ok=True)
        proc = _srun_until_ready(
            cluster, "-v", "-N1", "bash", "-c", READY + "echo WAITING; exit 3", merged=True
        )
        out, _ = proc.communicate(timeout=60)
        assert out.count("srun: launching StepId=") == 1 and out.count("WAITING") == 1, out
        assert out.index("WAITING") < out.index("task 0: Exited with exit code 3"), out
