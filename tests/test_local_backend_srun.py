"""srun and salloc outside a job on the local backend, against real Slurm's captures."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time

import pytest
from captures import read_capture


def normalise(text: str) -> list[str]:
    """Lines with node names and ids made comparable, in a fixed order (tasks interleave)."""
    text = re.sub(r"node\d+|127\.0\.0\.\d+", "NODE", text)
    text = re.sub(r"StepId=\d+", "StepId=N", text)
    return sorted(text.splitlines())


@pytest.mark.parametrize(
    "capture",
    [
        "srun-exit7.txt",
        "srun-false.txt",
        "srun-mixed-exit.txt",
        "srun-nonexistent-cmd.txt",
        "srun-stdout-stderr.txt",
        "srun-quiet-unbuffered.txt",
    ],
)
def test_srun_matches_slurm(cluster, capture):
    real = read_capture(capture)
    inner = re.fullmatch(r"asuser '(.*)'", real.command).group(1)
    argv = shlex.split(inner.replace("\\$", "$"))  # the shell between unescapes \$
    assert argv[0] == "srun"
    got = cluster.run(*argv)
    assert (normalise(got.stdout), normalise(got.stderr), got.returncode) == (
        normalise(real.stdout),
        normalise(real.stderr),
        real.exit,
    )


@pytest.mark.parametrize("capture", ["srun-verbose.txt", "srun-verbose-false.txt"])
def test_srun_verbose_says_the_allocation_and_each_launch_as_slurm(cluster, capture):
    """-v: the options given, the job's nodes and CPUs, the step's launch on each node and
    its tasks' ends, in Slurm's words and order (Slurm's own tests find the job and the step
    in `jobid N` and `launching StepId=N.S`)."""

    def same(text: str) -> str:
        text = re.sub(r"node\d+|127\.0\.0\.\d+", "NODE", text)
        return re.sub(r"(jobid |StepId=)\d+", r"\1N", text)

    real = read_capture(capture)
    got = cluster.run(*real.command.split())
    assert (got.stdout, same(got.stderr), got.returncode) == (
        real.stdout,
        same(real.stderr),
        real.exit,
    )


def test_srun_task_killed_by_a_signal(cluster):
    got = cluster.run("srun", "bash", "-c", "kill -9 $$")
    assert got.returncode == 137
    assert "srun: error: 127.0.0.1: task 0: Killed\n" in got.stderr


def test_srun_own_allocation_task_env(cluster):
    """srun-task-env / srun-mem: the tasks of an srun that made its own allocation get
    SLURM_LABELIO with -l, and none of what a batch script or a step inside an allocation
    gets: SLURM_DISTRIBUTION (unless memory was asked for), ..._PACK_GROUP_0,
    SLURM_NODE_ALIASES, SLURM_MEM_PER_NODE/CPU."""
    probe = (
        'echo "${SLURM_LABELIO-unset} ${SLURM_DISTRIBUTION-unset} '
        "${SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0-unset} ${SLURM_NODE_ALIASES-unset} "
        '${SLURM_MEM_PER_NODE-unset} ${SLURM_MEM_PER_CPU-unset} ${ENVIRONMENT-unset}"'
    )
    got = cluster.run("srun", "-N2", "-n2", "-l", "bash", "-c", probe)
    assert sorted(got.stdout.splitlines()) == [
        "0: 1 unset unset unset unset unset unset",
        "1: 1 unset unset unset unset unset unset",
    ]
    got = cluster.run("srun", "--mem=200", "bash", "-c", probe)
    assert got.stdout == "unset cyclic unset unset unset unset unset\n"
    got = cluster.run("srun", "--mincpus=2", "bash", "-c", 'echo "$SLURM_CPUS_ON_NODE"')
    assert got.stdout == "2\n"


def test_srun_export_none_leaves_no_path(cluster):
    """srun-export: --export=NONE gives the tasks SLURM_* only: without PATH, `bash` is not
    found (slurmstepd's execve message, exit 2); --export=ALL,BAR=bar adds BAR."""
    got = cluster.run("srun", "--export=NONE", "bash", "-c", "echo hi", env={"FOO": "foo1"})
    assert (got.stdout, got.returncode) == ("", 2)
    assert sorted(got.stderr.splitlines()) == [
        "slurmstepd-127.0.0.1: error: execve(): bash: No such file or directory",
        "srun: error: 127.0.0.1: task 0: Exited with exit code 2",
    ]
    got = cluster.run("srun", "--export=NONE", "/usr/bin/env", env={"FOO": "foo1"})
    names = {line.split("=")[0] for line in got.stdout.splitlines()}
    assert "TMPDIR" in names and not names & {"PATH", "FOO", "HOME", "USER", "SHELL"}
    assert not names & {"SLURM_EXPORT_ENV", "SLURM_GET_USER_ENV"}  # sbatch's, not srun's
    got = cluster.run(
        "srun", "--export=ALL,BAR=bar", "bash", "-c", 'echo "$FOO $BAR"', env={"FOO": "foo1"}
    )
    assert got.stdout == "foo1 bar\n"


def test_srun_multi_node_labels(cluster):
    got = cluster.run("srun", "-N2", "-n4", "-l", "bash", "-c", "echo $SLURM_NODEID $SLURM_PROCID")
    assert sorted(got.stdout.splitlines()) == ["0: 0 0", "1: 0 1", "2: 1 2", "3: 1 3"]
    assert got.returncode == 0 and got.stderr == ""


def test_srun_refused_like_slurm(cluster):
    # more CPUs than a node has, not more than the partition's nodes have (-c 100000 would
    # queue and wait, PartitionConfig, as on the peer)
    got = cluster.run("srun", "-c", str((os.cpu_count() or 1) + 1), "true")
    assert got.stderr == (
        "srun: error: CPU count per node can not be satisfied\n"
        "srun: error: Unable to allocate resources: Requested node "
        "configuration is not available\n"
    )
    assert got.returncode == 1


def test_salloc_environment_and_steps(cluster):
    real = read_capture("salloc-env.txt")
    got = cluster.run(
        "salloc", "-N2", "-n2", "bash", "-c", "env | grep -E ^SLURM_ | sort; srun -l hostname"
    )

    def names(text):
        return sorted(line.split("=")[0] for line in text.splitlines() if "=" in line)

    absent_here = {"SLURM_CONF", "SLURM_JOB_ACCOUNT", "SLURM_JOB_QOS"}  # no slurm.conf, no QOS
    assert names(got.stdout) == [n for n in names(real.stdout) if n not in absent_here]
    assert "SLURM_JOB_NAME=interactive\n" in got.stdout
    assert "SLURM_JOB_NODELIST=127.0.0.[1-2]\n" in got.stdout
    assert sorted(line[:3] for line in got.stdout.splitlines() if line[1:3] == ": ") == [
        "0: ",
        "1: ",
    ]
    job = int(re.search(r"Granted job allocation (\d+)", got.stderr).group(1))
    assert got.stderr == (
        f"salloc: Granted job allocation {job}\nsalloc: Relinquishing job allocation {job}\n"
    )
    assert got.returncode == 0
    assert cluster.job(job)[1:3] == ("COMPLETED", 0)


def test_salloc_exit_code_is_the_commands(cluster):
    got = cluster.run("salloc", "bash", "-c", "exit 3")
    assert got.returncode == 3
    job = int(re.search(r"allocation (\d+)", got.stderr).group(1))
    assert cluster.job(job)[1:3] == ("FAILED", 3)


def test_srun_waits_for_resources_until_cancelled(cluster, monkeypatch):
    import subprocess
    import sys

    from conftest import BIN
    from test_local_backend_jobs import use_state

    from slurmsky.core import jobcontrol as control

    real = read_capture("srun-too-many-nodes.txt")
    conn = use_state(cluster, monkeypatch)
    srun = subprocess.Popen(
        [sys.executable, str(BIN / "srun"), "-N5", "hostname"],  # 4 nodes, as the capture's
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job = cluster.wait_for(lambda: cluster.jobs("reason = 'PartitionNodeLimit'"), 30)[0][0]
    time.sleep(0.5)
    assert control.cancel(conn, control.select(conn, job, None)) == {}
    out, err = srun.communicate(timeout=30)
    assert (out, normalise(err), srun.returncode) == (
        real.stdout,
        normalise(re.sub(r"job \d+", f"job {job}", real.stderr)),
        real.exit,
    )


def test_squeue_steps_lists_running_srun_steps(cluster):
    """squeue-steps: `squeue -s` lists a running job's srun steps (named as sacct names them)
    before its batch step, as slurmctld orders step ids."""
    name = cluster.script(
        "steps.sh",
        "#!/bin/bash\nsrun -J inner bash -c "
        "'touch started; while [ ! -e go ]; do sleep 0.1; done'\n",
    )
    job = cluster.sbatch("-J", "sq-steps", name)
    cluster.wait_for(lambda: (cluster.cwd / "started").exists(), what="the step to start")
    other = cluster.sbatch("--wrap", "sleep 30")
    cluster.wait_for(lambda: cluster.jobs(f"job_id = {other} AND state = 'RUNNING'"), 30)
    got = cluster.run("squeue", "-h", "-s", "-j", str(job), "-o", "%i %j %N")
    # as real Slurm 22.05 (peer): -j selects, -n does not; a step list names srun steps,
    # `N.batch` reads as N.0, and an item without a step is refused
    listed = [
        cluster.run("squeue", "-h", "-s", *args, "-o", "%i").stdout
        for args in (
            ["-j", str(other)],
            ["-n", "nomatch", "-j", str(job)],
            [f"{job}.0"],
            [f"--steps={job}.batch,{other}.0"],
        )
    ]
    bad = cluster.run("squeue", "-s", str(job))
    (cluster.cwd / "go").touch()
    cluster.run("scancel", str(other))
    assert got.stdout == f"{job}.0 inner 127.0.0.1\n{job}.batch batch 127.0.0.1\n"
    assert listed == [f"{other}.batch\n", f"{job}.0\n{job}.batch\n", f"{job}.0\n", f"{job}.0\n"]
    assert (bad.stdout, bad.stderr, bad.returncode) == (
        "",
        f"squeue: error: Invalid job_step id: {job}.??\n",
        1,
    )
    cluster.wait_done(job)


def test_salloc_quiet_prints_nothing_of_its_own(cluster):
    """Compat case salloc-quiet: -Q drops Granted/Relinquishing (and every info line)."""
    got = cluster.run("salloc", "-Q", "bash", "-c", 'echo "quiet $SLURM_NNODES"')
    assert (got.stdout, got.stderr, got.returncode) == ("quiet 1\n", "", 0)


@pytest.mark.parametrize("command", ["salloc", "srun"])
def test_refused_partition_is_worded_per_command(cluster, command):
    """Compat case salloc-bad-partition: salloc says `Job submit/allocate failed`, srun
    `Unable to allocate resources` (both real Slurm 22.05)."""
    (cluster.home / "slurmsky.yaml").write_text(
        "kill_wait: 1\npartitions:\n  debug: {default: true}\n"
    )
    got = cluster.run(command, "-p", "nosuch", "true")
    failed = {"salloc": "Job submit/allocate failed", "srun": "Unable to allocate resources"}
    assert (got.stdout, got.stderr, got.returncode) == (
        "",
        f"{command}: error: invalid partition specified: nosuch\n"
        f"{command}: error: {failed[command]}: Invalid partition name specified\n",
        1,
    )


def test_salloc_chdir_runs_the_command_there(cluster):
    """Compat case salloc-more-resources: `salloc -D sub cmd` runs cmd in sub; the submit
    directory stays where salloc was started. A missing directory is refused first."""
    (cluster.cwd / "sub").mkdir()
    got = cluster.run("salloc", "-D", "sub", "bash", "-c", 'pwd; echo "$SLURM_SUBMIT_DIR"')
    assert got.stdout == f"{cluster.cwd / 'sub'}\n{cluster.cwd}\n" and got.returncode == 0
    got = cluster.run("salloc", "-D", "nodir", "true")
    assert (got.stdout, got.stderr, got.returncode) == (
        "",
        f"salloc: error: chdir({cluster.cwd / 'nodir'}): No such file or directory\n",
        1,
    )
    assert cluster.jobs("state != 'COMPLETED'") == []


def _held(cluster):
    """A predicate for cluster.wait_for: the held jobs."""
    return lambda: cluster.jobs("reason = 'JobHeldUser'")


@pytest.mark.parametrize("command", ["salloc", "srun"])
def test_held_allocation_says_so_then_runs_when_released(cluster, command):
    """Compat cases salloc-hold, srun-hold: the held line comes first, at submission."""
    import subprocess
    import sys

    from conftest import BIN

    proc = subprocess.Popen(
        [sys.executable, str(BIN / command), "-H", "echo", "released"],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job = cluster.wait_for(_held(cluster), 30, "the held job")[0][0]
    assert cluster.run("scontrol", "release", str(job)).returncode == 0
    out, err = proc.communicate(timeout=60)
    assert (out, proc.returncode) == ("released\n", 0)
    lines = err.splitlines()
    assert lines[0] == f"{command}: Job is in held state, pending scheduler release"
    if command == "salloc":
        assert lines[-2:] == [
            f"salloc: Granted job allocation {job}",
            f"salloc: Relinquishing job allocation {job}",
        ]


def test_salloc_held_and_quiet_is_silent(cluster):
    import subprocess
    import sys

    from conftest import BIN

    proc = subprocess.Popen(
        [sys.executable, str(BIN / "salloc"), "-Q", "-H", "true"],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job = cluster.wait_for(_held(cluster), 30, "the held job")[0][0]
    cluster.run("scontrol", "release", str(job))
    assert proc.communicate(timeout=60) == ("", "") and proc.returncode == 0


def test_salloc_no_shell_keeps_the_allocation_until_scancel(cluster):
    """Compat case salloc-no-shell: salloc returns at once; the allocation, named
    `no-shell`, runs until scancel and ends CANCELLED. The command is not run."""
    got = cluster.run("salloc", "--no-shell", "-N1", "touch", "ran")
    job = int(re.fullmatch(r"salloc: Granted job allocation (\d+)\n", got.stderr).group(1))
    assert (got.stdout, got.returncode) == ("", 0)
    time.sleep(1)  # it must not end on its own
    assert cluster.run("squeue", "-h", "-j", str(job), "-o", "%j %t %D").stdout == "no-shell R 1\n"
    assert cluster.run("scancel", str(job)).returncode == 0
    cluster.wait_for(lambda: cluster.job(job)[1] == "CANCELLED", 30, "the cancel")
    assert not (cluster.cwd / "ran").exists()


def test_step_from_outside_with_jobid_is_in_that_job(cluster):
    """Compat case step-jobid: `srun --jobid=N --overlap` from outside any job runs in job
    N's allocation with SLURM_JOB_ID=N; the job name is srun's (the command's basename, or
    -J), and the step spans the job's nodes, as on the peer."""
    cluster.script("hold.sh", "#!/bin/bash\ntouch started\nwhile [ ! -e go ]; do sleep 0.2; done\n")
    job = cluster.sbatch("-N2", "-J", "held-job", "hold.sh")
    cluster.wait_for(lambda: (cluster.cwd / "started").exists(), 60, "the job to start")
    try:
        show = (
            'echo "job=$SLURM_JOB_ID jobid=$SLURM_JOBID step=$SLURM_STEP_ID name=$SLURM_JOB_NAME '
            'nodes=$SLURM_NNODES list=$SLURM_JOB_NODELIST part=$SLURM_JOB_PARTITION"'
        )
        got = cluster.run("srun", f"--jobid={job}", "--overlap", "-l", "bash", "-c", show)
        assert got.returncode == 0 and got.stderr == ""
        assert sorted(got.stdout.splitlines()) == [
            f"{task}: job={job} jobid={job} step=0 name=bash nodes=2 list=127.0.0.[1-2] part=local"
            for task in (0, 1)
        ]
        got = cluster.run(
            "srun",
            f"--jobid={job}",
            "--overlap",
            "-N1",
            "-J",
            "other",
            "printenv",
            "SLURM_JOB_NAME",
        )
        assert (got.stdout, got.returncode) == ("other\n", 0)
    finally:
        (cluster.cwd / "go").touch()
    cluster.wait_for(lambda: cluster.job(job)[1] == "COMPLETED", 60, "the job to end")


def test_srun_in_a_real_slurm_job_hands_over_to_the_real_srun(cluster, tmp_path):
    """slurmsky's srun first on PATH inside a job of a real Slurm (a venv shared with a
    real cluster): the job id is not slurmsky's, so the real srun (next on PATH) runs,
    with the same arguments, instead of 'Invalid job id'."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "srun").write_text('#!/bin/sh\necho "real srun: $*"\n')
    (real / "srun").chmod(0o755)
    path = f"{cluster.env['PATH'].split(':')[0]}:{real}:/usr/bin:/bin"
    got = cluster.run("srun", "-n2", "hostname", env={"SLURM_JOB_ID": "424242", "PATH": path})
    assert (got.stdout, got.returncode) == ("real srun: -n2 hostname\n", 0)
    alone = tmp_path / "alone"  # a PATH with no other srun (this host may have real Slurm's)
    alone.mkdir()
    (alone / "python3").symlink_to(sys.executable)
    path = f"{cluster.env['PATH'].split(':')[0]}:{alone}"
    got = cluster.run("srun", "hostname", env={"SLURM_JOB_ID": "424242", "PATH": path})
    assert "Invalid job id specified" in got.stderr


def test_a_name_that_is_no_shell_identifier_reaches_the_job_and_its_steps(cluster):
    """Slurm's commands hand on every variable of their environment, `TEST_ENV_17.14` too
    (Slurm's test 17.14): no /bin/sh (dash drops such names) stands between, in sbatch's
    job, its srun, srun and salloc outside a job."""
    cluster.env["TEST_ENV_17.14"] = "yes"
    cluster.script("job.sh", "#!/bin/bash\nprintenv TEST_ENV_17.14\nsrun printenv TEST_ENV_17.14\n")
    job = cluster.sbatch("-o", "job.out", "job.sh")
    cluster.wait_done(job)
    assert (cluster.cwd / "job.out").read_text() == "yes\nyes\n"
    out = cluster.run("srun", "printenv", "TEST_ENV_17.14")
    assert (out.returncode, out.stdout) == (0, "yes\n"), out.stderr
    out = cluster.run("salloc", "printenv", "TEST_ENV_17.14")
    assert (out.returncode, out.stdout) == (0, "yes\n"), out.stderr
