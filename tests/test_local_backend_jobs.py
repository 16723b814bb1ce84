"""Jobs really running on the local backend: output, exit codes, cancel, limits, agent restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import BIN, ROOT

from slurmsky.core import jobcontrol as control
from slurmsky.core import state


def use_state(cluster, monkeypatch):
    """This process talks to the test's state directly (control functions, like scancel)."""
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    return state.connect()


def runtime_pids(cluster, job_id: int) -> list[int]:
    with cluster.db() as conn:
        ref = conn.execute("SELECT executor_ref FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return [pid for pid, _ in json.loads(ref[0])["pids"]] if ref and ref[0] else []


def job_tree(cluster, job_id: int) -> list[psutil.Process]:
    procs = []
    for pid in runtime_pids(cluster, job_id):
        try:
            leader = psutil.Process(pid)
            procs += [leader] + leader.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return procs


def test_hello_example_writes_slurm_out(cluster):
    shutil.copy(ROOT / "examples" / "sbatch" / "hello.sh", cluster.cwd)
    out = cluster.run("sbatch", "hello.sh")
    job = int(out.stdout.split()[-1])
    assert out.stdout == f"Submitted batch job {job}\n" and out.returncode == 0
    assert cluster.wait_done(job) == [(job, "COMPLETED", 0, 0, "None")]
    assert (cluster.cwd / f"slurm-{job}.out").read_text() == (
        f"Hello from job {job} (hello) on 127.0.0.1\n"
        f"submitted from {cluster.cwd}, running in {cluster.cwd}\n"
    )
    # the run directory keeps only RESULT and the runtime's log (the spec had the environment)
    cluster.wait_for(
        lambda: (
            sorted(os.listdir(cluster.state / "jobs" / str(job)))
            == ["result.json", "runtime-0.log"]
        ),
        10,
        "the run directory's cleanup",
    )


def test_wait_exit_codes(cluster):
    cases = [
        (["--wrap", "sleep 1; exit 3"], 3),
        (["--wrap", "true"], 0),
        (["--array=1-3", "--wrap", "exit $SLURM_ARRAY_TASK_ID"], 3),
        (["--wrap", "kill -9 $$"], 1),
    ]
    procs = [
        (
            subprocess.Popen(
                [sys.executable, str(BIN / "sbatch"), "--wait", *args],
                cwd=cluster.cwd,
                env=cluster.env,
                stdout=subprocess.PIPE,
                text=True,
            ),
            rc,
        )
        for args, rc in cases
    ]
    for proc, rc in procs:
        out, _ = proc.communicate(timeout=60)
        assert out.startswith("Submitted batch job ") and proc.returncode == rc
    assert ("FAILED", 0, 9) in [r[1:4] for r in cluster.jobs()]


def test_wait_for_a_cancelled_job_exits_1(cluster, monkeypatch):
    conn = use_state(cluster, monkeypatch)
    waiter = subprocess.Popen(
        [sys.executable, str(BIN / "sbatch"), "--wait", "-J", "waitcancel", "--wrap", "sleep 30"],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    job = cluster.wait_for(lambda: [r[0] for r in cluster.jobs("state = 'RUNNING'")], 30)[0]
    assert control.cancel(conn, control.select(conn, job, None)) == {}
    out, _ = waiter.communicate(timeout=60)
    assert out == f"Submitted batch job {job}\n" and waiter.returncode == 1
    assert cluster.job(job)[1:4] == ("CANCELLED", 0, 0)


def test_export_none_gets_a_login_environment(cluster):
    job = cluster.sbatch("--export=NONE", "--wrap", "env | sort", env={"SECRET_THING": "x"})
    cluster.wait_done(job)
    env = dict(
        line.split("=", 1)
        for line in (cluster.cwd / f"slurm-{job}.out").read_text().splitlines()
        if "=" in line
    )
    assert "SECRET_THING" not in env
    # the user's login environment, as `su - user` and the login shell's profiles give it
    import pwd
    import shutil

    from slurmsky.plan.login import login_defs

    entry = pwd.getpwuid(os.getuid())
    assert (env["HOME"], env["USER"], env["LOGNAME"], env["SHELL"]) == (
        entry.pw_dir,
        entry.pw_name,
        entry.pw_name,
        entry.pw_shell,
    )
    assert env["MAIL"] == os.path.join(login_defs().get("MAIL_DIR", "/var/mail"), entry.pw_name)
    path = [p for p in env["PATH"].split(":") if not p.startswith(str(cluster.state))]
    if os.getuid() == 0 and shutil.which("su"):
        login = subprocess.run(
            ["su", "-", entry.pw_name, "-c", "echo $PATH"],
            text=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        assert ":".join(path) == login.stdout.strip()
    job = cluster.sbatch("--wrap", "env | sort", env={"SECRET_THING": "x"})
    cluster.wait_done(job)
    assert "SECRET_THING=x" in (cluster.cwd / f"slurm-{job}.out").read_text()


def test_srun_tasks_get_no_locale_the_job_did_not_have(cluster):
    """Python's C locale coercion (PEP 538) must not add LC_CTYPE to srun's tasks: a job
    without a locale gives its tasks none (as real srun), one with LC_CTYPE keeps it."""
    for name in ("LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE"):
        cluster.env.pop(name, None)
    probe = cluster.script(
        "probe.sh",
        "#!/bin/sh\nsrun sh -c 'echo task=${LC_CTYPE-unset}'\necho batch=${LC_CTYPE-unset}\n",
    )
    bare = cluster.sbatch(probe)
    own = cluster.sbatch(probe, env={"LC_CTYPE": "C.UTF-8"})
    cluster.wait_done(bare, own)
    assert [(cluster.cwd / f"slurm-{job}.out").read_text() for job in (bare, own)] == [
        "task=unset\nbatch=unset\n",
        "task=C.UTF-8\nbatch=C.UTF-8\n",
    ]


def test_fifty_concurrent_submissions(cluster):
    procs = [
        subprocess.Popen(
            [sys.executable, str(BIN / "sbatch"), "--parsable", "--wrap", "echo $SLURM_JOB_ID"],
            cwd=cluster.cwd,
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(50)
    ]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, err) == (0, "")
        ids.append(int(out))
    assert sorted(ids) == list(range(1, 51))
    rows = cluster.wait_done(*ids, timeout=120)
    assert [r[1] for r in rows] == ["COMPLETED"] * 50
    for job in ids:
        assert (cluster.cwd / f"slurm-{job}.out").read_text() == f"{job}\n"


def test_agent_killed_while_jobs_run(cluster):
    runs, gate = cluster.cwd / "runs.txt", cluster.cwd / "gate"
    script = cluster.script(
        "job.sh",
        f"#!/bin/bash\necho $SLURM_JOB_ID >> {runs}\n"
        f"until [ -e {gate} ]; do sleep 0.1; done\nsleep 1\n",  # they run on till the agent died
    )
    ids = [cluster.sbatch(script) for _ in range(3)]
    ids.append(cluster.sbatch("-N", "99", script))  # pends forever (PartitionNodeLimit)
    cluster.wait_for(lambda: len(cluster.jobs("state = 'RUNNING'")) == 3, 30, "3 running")
    old = cluster.agent_pid()
    os.kill(old, signal.SIGKILL)
    cluster.wait_for(
        lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE,
        10,
        "agent death",
    )
    late = cluster.sbatch(script)  # the next command starts a new agent
    cluster.wait_for(lambda: cluster.agent_pid() not in (None, old), 10, "a new agent")
    gate.touch()
    rows = cluster.wait_done(*ids[:3], late, timeout=60)
    assert [r[1:3] for r in rows] == [("COMPLETED", 0)] * 4
    assert sorted(map(int, runs.read_text().split())) == sorted(ids[:3] + [late])
    assert cluster.job(ids[3])[1] == "PENDING"


def test_cancel_ends_the_whole_tree_even_when_sigterm_is_ignored(cluster, monkeypatch):
    conn = use_state(cluster, monkeypatch)
    script = cluster.script(
        "stubborn.sh",
        "#!/bin/bash\ntrap '' TERM\n(sleep 300; echo never) &\nbash -c 'sleep 300' &\nwait\nwait\n",
    )
    job = cluster.sbatch(script)
    tree = cluster.wait_for(
        lambda: len(job_tree(cluster, job)) >= 5 and job_tree(cluster, job),
        30,
        "the job's processes",
    )
    assert control.cancel(conn, control.select(conn, job, None)) == {}
    assert cluster.wait_done(job, timeout=30)[0][1] == "CANCELLED"
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []


def test_time_limit_ends_job_as_timeout(cluster):
    script = cluster.script(
        "slow.sh",
        "#!/bin/bash\n#SBATCH --time=1\n"
        "trap 'echo got TERM' TERM\nfor i in $(seq 300); do sleep 0.1; done\n",
    )
    job = cluster.sbatch(script, env={"SLURMSKY_SECONDS_PER_MINUTE": "2"})
    started = time.monotonic()
    assert cluster.wait_done(job, timeout=60) == [(job, "TIMEOUT", 0, 0, "TimeLimit")]
    assert time.monotonic() - started < 20
    out = (cluster.cwd / f"slurm-{job}.out").read_text()
    assert "DUE TO TIME LIMIT" in out and "got TERM" in out


def test_signal_option_reaches_the_batch_shell(cluster):
    script = cluster.script(
        "sig.sh",
        "#!/bin/bash\n#SBATCH --time=1 --signal=B:USR1@2\n"
        "trap 'echo got USR1; exit 0' USR1\n"
        "for i in $(seq 300); do sleep 0.1; done\n",
    )
    job = cluster.sbatch(script, env={"SLURMSKY_SECONDS_PER_MINUTE": "4"})
    assert cluster.wait_done(job, timeout=60)[0][1] == "COMPLETED"
    assert "got USR1" in (cluster.cwd / f"slurm-{job}.out").read_text()


def test_scancel_signal_batch(cluster, monkeypatch):
    conn = use_state(cluster, monkeypatch)
    script = cluster.script(
        "sig.sh",
        "#!/bin/bash\ntrap 'echo batch got USR1; exit 0' USR1\n"
        "for i in $(seq 300); do sleep 0.1; done\n",
    )
    job = cluster.sbatch(script)
    cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", 30, "running")
    time.sleep(0.5)  # the trap is set
    jobs = control.select(conn, job, None)
    assert control.signal(conn, jobs, signal.SIGUSR1, "batch") == {}
    assert cluster.wait_done(job, timeout=30)[0][1] == "COMPLETED"
    assert "batch got USR1" in (cluster.cwd / f"slurm-{job}.out").read_text()


def test_agent_status_stop_and_idle_state(cluster):
    assert cluster.run("slurmsky", "agent", "status").returncode == 1
    job = cluster.sbatch("--wrap", "true")
    cluster.wait_done(job)
    pid = cluster.agent_pid()
    status = cluster.run("slurmsky", "agent", "status")
    assert status.returncode == 0 and f"pid {pid}" in status.stdout
    assert cluster.run("slurmsky", "agent", "stop").stdout == f"agent: stopped pid {pid}\n"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert cluster.run("slurmsky", "agent", "status").returncode == 1


def test_agent_stop_is_honoured_in_the_middle_of_a_pass(cluster):
    """A pass that starts 200 elements at once (room for all) is stopped between two
    starts: `agent stop` returns with the agent gone, every element started whole (RUNNING)
    or still in the pending record, none half-started (CONFIGURING). Before, the pass
    started all 200 first. (The release, right after the sbatch that started the agent,
    signals it if it has no FIFO yet: that once ended an agent still starting.)"""
    config = Path(cluster.env["SLURMSKY_CONFIG"])
    partition = "partitions:\n  big: {default: true, nodes: 4, cpus_per_node: 50}\n"
    config.write_text(config.read_text() + partition)  # 200 CPUs
    array = cluster.sbatch("--hold", "--array=0-199", "-o", "/dev/null", "--wrap", "sleep 60")
    assert cluster.run("scontrol", "release", str(array)).returncode == 0
    cluster.wait_for(lambda: cluster.jobs("state = 'RUNNING'"), 60, "an element to start")
    pid = cluster.agent_pid()
    stop = cluster.run("slurmsky", "agent", "stop")
    assert (stop.stdout, stop.returncode) == (f"agent: stopped pid {pid}\n", 0), stop.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    rows = cluster.jobs("job_id = ? OR array_job_id = ?", array, array)
    states = sorted({r[1] for r in rows})
    assert states == ["PENDING", "RUNNING"] and 1 <= len(rows) - 1 < 200, rows  # record pends
    assert cluster.run("scancel", str(array)).returncode == 0
    cluster.wait_done(array)  # (cleanup: what scancel does after a stop is tested elsewhere)


def test_jobs_that_do_not_fit_wait_for_resources(cluster):
    env = {"SLURMSKY_LOCAL_NODES": "1"}  # one node with this machine's CPUs
    cpus = str(os.cpu_count())
    big = cluster.sbatch("-c", cpus, "--wrap", "sleep 3", env=env)
    cluster.wait_for(lambda: cluster.job(big)[1] == "RUNNING", 30, "the big job to run")
    waiting = cluster.sbatch("--wrap", "true", env=env)
    behind = cluster.sbatch("--wrap", "true", env=env)
    cluster.wait_for(
        lambda: (cluster.job(waiting)[4], cluster.job(behind)[4]) == ("Resources", "Priority"),
        10,
        "the pending reasons",
    )
    rows = cluster.wait_done(big, waiting, behind)
    assert [r[1] for r in rows] == ["COMPLETED"] * 3
    with cluster.db() as conn:
        (start,) = conn.execute(
            "SELECT start_time FROM jobs WHERE job_id = ?", (waiting,)
        ).fetchone()
        (end,) = conn.execute("SELECT end_time FROM jobs WHERE job_id = ?", (big,)).fetchone()
    assert start >= end


def test_login_base_reads_login_defs(tmp_path):
    """What `su - user` starts a login shell with (Debian's login.defs: ENV_PATH for users,
    ENV_SUPATH for root, the mail spool from MAIL_DIR)."""
    import pwd

    from slurmsky.plan.login import login_base, login_defs

    defs_file = tmp_path / "login.defs"
    defs_file.write_text(
        "# comment\nMAIL_DIR\t/var/mail\n"
        "ENV_SUPATH\tPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "ENV_PATH\tPATH=/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games\n"
    )
    defs = login_defs(str(defs_file))
    user = pwd.struct_passwd(("peeruser", "x", 1001, 1001, "", "/home/peeruser", "/bin/bash"))
    root = pwd.struct_passwd(("root", "x", 0, 0, "", "/root", ""))
    assert login_base(user, defs) == {
        "HOME": "/home/peeruser",
        "SHELL": "/bin/bash",
        "USER": "peeruser",
        "LOGNAME": "peeruser",
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",
        "MAIL": "/var/mail/peeruser",
    }
    assert (
        login_base(root, defs)["PATH"]
        == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    )
    assert login_base(root, {})["SHELL"] == "/bin/sh"
    assert login_defs(str(tmp_path / "missing")) == {}


def test_one_login_reading_serves_the_jobs_of_a_minute(monkeypatch):
    """The login shell runs once per LOGIN_REUSE seconds, not once per --export=NONE job."""
    from slurmsky.plan import login

    readings = []
    clock = [1000.0]
    monkeypatch.setattr(
        login,
        "read_login_environment",
        lambda: readings.append(1) or {"PATH": f"/bin{len(readings)}"},
    )
    monkeypatch.setattr(login.time, "monotonic", lambda: clock[0])
    login_environment = login.LoginReading()  # a reading of its own, as the agent's
    first = login_environment()
    first["PATH"] = "changed by a caller"
    again = login_environment()
    clock[0] += login.LOGIN_REUSE + 1
    later = login_environment()
    assert (again, later, len(readings)) == ({"PATH": "/bin1"}, {"PATH": "/bin2"}, 2)


def test_cleanup_spares_a_session_whose_number_was_reused(tmp_path):
    """A job's runtime led a session; once it and its processes are gone, the number can
    lead a stranger's session: cleanup kills the job's session, never the stranger's."""
    import types

    from slurmsky.backends.local.executor import LocalExecutor

    executor = LocalExecutor(partitions={})
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        created = psutil.Process(stranger.pid).create_time()
        job = types.SimpleNamespace(executor_ref={"pids": [[stranger.pid, created - 50]]})
        executor.cleanup(job)  # an earlier process had the number: not this session
        with pytest.raises(subprocess.TimeoutExpired):
            stranger.wait(timeout=1)
        job.executor_ref = {"pids": [[stranger.pid, created]]}
        executor.cleanup(job)  # the job's own runtime: its session ends
        assert stranger.wait(timeout=10) == -signal.SIGKILL
    finally:
        if stranger.poll() is None:
            stranger.kill()
            stranger.wait()


def test_a_requeued_job_sees_its_restart_count(cluster):
    """The peer: a requeued job's next run has SLURM_RESTART_COUNT=1 in its batch script and
    its steps; its first run has none."""
    fast = {"SLURMSKY_SECONDS_PER_MINUTE": "1"}  # the requeue delay (2 minutes) in 2 s
    script = cluster.script(
        "rq.sh",
        "#!/bin/bash\n"
        'echo "batch ${SLURM_RESTART_COUNT-unset}" >> runs\n'
        "srun bash -c 'echo \"step ${SLURM_RESTART_COUNT-unset}\"' >> runs\n"
        "[ -e again ] && exit 0\ntouch started\nsleep 60\n",
    )
    job = cluster.sbatch("--requeue", script, env=fast)
    cluster.wait_for(lambda: (cluster.cwd / "started").exists(), 60, "the first run")
    (cluster.cwd / "again").touch()
    assert cluster.run("scontrol", "requeue", str(job), env=fast).returncode == 0
    assert cluster.wait_done(job, timeout=60)[0][1] == "COMPLETED"
    assert (cluster.cwd / "runs").read_text() == "batch unset\nstep unset\nbatch 1\nstep 1\n"
