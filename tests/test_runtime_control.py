"""Ending jobs and keeping strangers out: time limit, --signal, cancel, scancel --signal,
node failure, requeue, launch failure, and the step channel's authentication."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
from runtime_fixtures.cluster import ROOT, SECRET, capture, local_job  # noqa: F401

from slurmsky.runtime import channel

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


def runtime(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "slurmsky.runtime", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        **kw,
    )


def job_processes(job_id):
    """Every process on this machine whose environment says it belongs to job_id."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("SLURM_JOB_ID") == str(job_id):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def _cmdline(p):
    try:
        return p.cmdline()
    except psutil.Error:
        return None


def test_time_limit_kills_the_job_and_signals_first(local_job):
    """--time with --signal=B:USR1@2: USR1 reaches the batch shell 2 s before the limit; at
    the limit Slurm's lines, TERM to the shell and the step, KILL after KillWait -> TIMEOUT."""
    script = """#!/bin/bash
trap 'echo "batch shell got USR1"' USR1
trap 'echo "batch shell got TERM"' TERM
echo "start"
srun bash -c 'trap "echo step task got TERM; exit 143" TERM; while true; do sleep 0.1; done' &
while true; do sleep 0.1; done
"""
    job = local_job(
        1,
        script=script,
        job_id=86,
        time_limit=3,
        kill_wait=1,
        signal={"signum": int(signal.SIGUSR1), "seconds": 2, "batch": True, "full": False},
    ).start()
    result = job.wait(30)
    assert result["state"] == "TIMEOUT"
    assert 3 <= result["end"] - result["start"] < 10
    lines = job.output().splitlines()
    assert lines[:2] == ["start", "batch shell got USR1"]
    job_line = re.escape(
        "slurmstepd-127.0.0.1: error: *** JOB 86 ON 127.0.0.1 CANCELLED AT @ DUE TO TIME LIMIT ***"
    ).replace("@", WHEN)
    step_line = job_line.replace("JOB\\ 86", "STEP\\ 86\\.0")
    assert re.fullmatch(job_line, lines[2])
    assert "srun: Job step aborted: Waiting up to 3 seconds for job step to finish." in lines
    assert any(re.fullmatch(step_line, line) for line in lines)
    assert "batch shell got TERM" in lines
    # srun got TERM too: like Slurm's it says so and has the step SIGKILLed, racing the TERM
    # the task itself got (the capture's task died of that TERM first)
    assert "srun: forcing job termination" in lines and "srun: got SIGCONT" in lines
    assert {
        "srun: error: 127.0.0.1: task 0: Exited with exit code 143",
        "srun: error: 127.0.0.1: task 0: Killed",
        "srun: error: 127.0.0.1: task 0: Terminated",
    } & set(lines)
    # the capture's shape: the limit lines come before what TERM makes the script print
    assert job.output().index("DUE TO TIME LIMIT") < job.output().index("batch shell got TERM")
    real = capture("timeout-job-output.txt").split("=== to-86.out")[1]
    assert real.index("DUE TO TIME LIMIT") < real.index("batch shell got TERM")


def test_cancel_ends_every_process_on_every_node(local_job):
    """SIGTERM to node 0's runtime: Slurm's CANCELLED line, TERM then KILL to the batch
    shell and every step on every node -- daemons that left their process group included --
    agents exit, RESULT says CANCELLED, and no process of the job is left anywhere."""
    script = """#!/bin/bash
trap 'echo "batch shell got TERM"' TERM
setsid sleep 300 &
srun -N2 -n2 bash -c 'setsid sleep 300 & touch ready-$SLURM_PROCID; sleep 300' &
while true; do sleep 0.1; done
"""
    job = local_job(2, script=script, job_id=85, ntasks=2, tasks_per_node=[1, 1]).start()
    job.wait_for(job.workdir / "ready-0")
    job.wait_for(job.workdir / "ready-1")
    job.wait_until(
        lambda: len([p for p in job.remember() if _cmdline(job.known[p]) == ["sleep", "300"]]) == 5
    )
    before = job.remember()
    job.node0.send_signal(signal.SIGTERM)
    result = job.wait(30)
    assert result["state"] == "CANCELLED"
    out = job.output()
    for text, node in ((out, "127.0.0.1"), (capture("scancel-plain-running-trap.txt"), "node1")):
        for what in ("JOB 85", "STEP 85.0"):
            pattern = (
                re.escape("slurmstepd-%s: error: *** %s ON %s CANCELLED AT " % (node, what, node))
                + WHEN
                + re.escape(" ***")
            )
            assert re.search("^%s$" % pattern, text, re.M), (what, text)
        assert "batch shell got TERM" in text
    assert all(p.returncode is not None for p in job.procs)
    assert job.survivors() == [] and len(before) > 6
    assert job_processes(85) == []


def test_signal_command_targets(local_job):
    """scancel --signal=USR1 [--batch|--full]: steps only by default, the batch shell only
    with --batch, both with --full (scancel-signal-usr1*.txt)."""
    script = """#!/bin/bash
trap 'echo "batch shell got USR1"' USR1
srun bash -c 'trap "echo step task got USR1" USR1; touch ready; \
  while [ ! -e stop ]; do sleep 0.1; done' &
while [ ! -e stop ]; do sleep 0.1; done
wait
"""
    job = local_job(1, script=script).start()
    job.wait_for(job.workdir / "ready")
    outputs = []
    for flag, events in (("--steps", 1), ("--batch", 2), ("--full", 4)):
        done = runtime("signal", "--rundir", str(job.rundir), "--signal", "USR1", flag)
        assert done.returncode == 0, done.stderr
        job.wait_until(lambda: job.output().count("got USR1") >= events)
        time.sleep(0.3)  # nothing more arrives
        outputs.append(job.output())
    (job.workdir / "stop").touch()
    assert job.wait()["state"] == "COMPLETED"
    steps, batch, full = outputs[0], outputs[1][len(outputs[0]) :], outputs[2][len(outputs[1]) :]

    def events(text):
        return sorted(line for line in text.splitlines() if "got USR1" in line)

    assert events(steps) == ["step task got USR1"]
    assert events(batch) == ["batch shell got USR1"]
    assert events(full) == ["batch shell got USR1", "step task got USR1"]
    # what else is printed is what Slurm's jobs printed: bash's "User defined signal 1" for a
    # child the signal killed (when the signal came while one ran)
    for case, text in (
        ("scancel-signal-usr1.txt", steps),
        ("scancel-signal-usr1-batch.txt", batch),
        ("scancel-signal-usr1-full.txt", full),
    ):
        real = {re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in capture(case).splitlines()[1:]}
        assert set(text.splitlines()) <= real


def test_lost_node_fails_the_job(local_job):
    """An agent that dies (its machine gone) -> NODE_FAIL and Slurm's line; node 0 ends its
    own processes without waiting for the dead node."""
    script = """#!/bin/bash
srun -N2 -n2 bash -c 'touch ready-$SLURM_PROCID; sleep 300'
"""
    job = local_job(2, script=script, job_id=90, ntasks=2, tasks_per_node=[1, 1]).start()
    job.wait_for(job.workdir / "ready-1")
    job.remember()
    job.procs[1].kill()
    result = job.wait(30)
    assert (result["state"], result["reason"]) == ("NODE_FAIL", "lost node 127.0.0.2")
    assert "CANCELLED AT" in job.output() and "DUE TO NODE FAILURE" in job.output()
    assert "lost node 1 (127.0.0.2)" in job.log(0)


def test_agents_end_when_node_0_dies(local_job):
    """Node 0 killed outright: each agent notices at once, ends every process of the job on
    its node and exits (a silent node 0 would be given up after the heartbeat timeout)."""
    script = """#!/bin/bash
srun -N2 -n2 bash -c 'touch ready-$SLURM_PROCID; sleep 300'
"""
    job = local_job(2, script=script, ntasks=2, tasks_per_node=[1, 1]).start()
    job.wait_for(job.workdir / "ready-1")
    node1 = psutil.Process(job.procs[1].pid)
    on_node1 = node1.children(recursive=True)
    assert any(_cmdline(p) == ["sleep", "300"] for p in on_node1)
    job.remember()  # node 0's orphans are ended at cleanup, by pid
    job.node0.kill()
    assert job.procs[1].wait(15) == 1
    assert "lost node 0" in job.log(1)
    assert not [p for p in on_node1 if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_requeue_from_inside_the_job(local_job):
    """scontrol requeue (submitit's preemption path) ends the job for requeueing."""
    script = """#!/bin/bash
scontrol requeue $SLURM_JOB_ID
sleep 30
"""
    job = local_job(1, script=script, job_id=137).start()
    result = job.wait(20)
    assert (result["state"], result.get("requeue")) == ("CANCELLED", True)
    assert re.search("JOB 137 ON 127.0.0.1 CANCELLED AT %s DUE TO JOB REQUEUE" % WHEN, job.output())


def test_launch_failure(local_job, tmp_path):
    """A working directory that does not exist: FAILED 0:53 (JobLaunchFailure), no output."""
    job = local_job(1, workdir=str(tmp_path / "missing")).start()
    result = job.wait()
    assert (result["state"], result["exit_code"], result["signal"], result["reason"]) == (
        "FAILED",
        0,
        53,
        "JobLaunchFailure",
    )
    assert not (tmp_path / "missing").exists()


def test_strangers_are_refused_and_the_secret_stays_hidden(local_job):
    """Connections without the job's secret start nothing and are logged; the secret is in
    no process's argv and in no job process's environment."""
    script = """#!/bin/bash
srun -N2 -n2 bash -c 'env > task-$SLURM_PROCID.env; touch ready-$SLURM_PROCID; \
  while [ ! -e stop ]; do sleep 0.1; done'
env > batch.env
"""
    job = local_job(2, script=script, job_id=77, ntasks=2, tasks_per_node=[1, 1]).start()
    job.wait_for(job.workdir / "ready-0")
    job.wait_for(job.workdir / "ready-1")
    control = json.loads((job.rundir / "node0" / "control.json").read_text())
    host, port = control["host"], control["port"]
    assert os.stat(job.rundir / "node0" / "control.json").st_mode & 0o777 == 0o600
    assert SECRET not in (job.rundir / "node0" / "control.json").read_text()

    wrong = channel.role_key("not the secret", "agent")
    for role in ("agent", "local"):  # a peer that cannot prove the secret is denied
        with socket.create_connection((host, port)) as s:
            conn = channel.Conn(s)
            conn.send({"t": "hello", "job": 77, "role": role, "rank": 1, "nonce": "00"})
            challenge, _ = conn.recv()
            conn.send({"t": "auth", "proof": "f" * 64})
            assert conn.recv()[0] == {"t": "denied"}
            conn.send({"t": "launch", "step": {"argv": ["touch", "pwned"]}})
    try:  # the real client with a wrong key does not even trust node 0
        channel.connect(host, port, 77, "agent", wrong, rank=1)
        raise AssertionError("connected with a wrong key")
    except channel.NotOurs:
        pass
    with socket.create_connection((host, port)) as s:  # garbage
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass

    job.remember()
    for p in job.known.values():
        assert SECRET not in " ".join(_cmdline(p) or [])
    for p in job.known.values():
        if p.pid not in (proc.pid for proc in job.procs):
            try:
                assert SECRET not in json.dumps(p.environ()), p.cmdline()
            except psutil.NoSuchProcess:
                pass
    (job.workdir / "stop").touch()
    assert job.wait()["state"] == "COMPLETED"
    assert not (job.workdir / "pwned").exists()
    for name in ("task-0.env", "task-1.env", "batch.env"):
        assert SECRET not in (job.workdir / name).read_text()
    log = job.log(0)
    assert log.count("authentication failed (role agent)") == 1
    assert log.count("authentication failed (role local)") == 1
    assert log.count("refused connection from 127.0.0.1") == 4
    assert SECRET not in log + job.log(1)


def test_agents_of_another_job_are_not_let_in(local_job):
    """Node 1 started with another secret never joins: the job ends NODE_FAIL after the
    startup timeout, and node 0 logged the refusals."""
    job = local_job(2, job_id=91, startup_timeout=2).start(secrets=[SECRET, "other secret"])
    result = job.wait(30)
    assert (result["state"], result["reason"]) == ("NODE_FAIL", "agents did not start")
    assert "authentication failed" in job.log(0) or "refused" in job.log(0)
    assert not (job.workdir / "slurm-91.out").exists()
