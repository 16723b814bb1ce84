"""Command behaviours Slurm's own regression tests check (issue 52), run as subprocesses on
real local jobs: squeue -w, scancel --interactive and -v, scontrol suspend/resume and
`show job 0_N`. Messages and exit codes are Slurm 22.05's (its source, and the peer's
captures where the test names one)."""

from __future__ import annotations

import os
import re
import time

import pytest

from slurmsky import backends
from slurmsky.backends import Feature, Unsupported
from slurmsky.commands.common import plugin_lines

LONG = "for i in $(seq 600); do echo $i; sleep 0.1; done"


def running(cluster, job_id: int):
    cluster.wait_for(lambda: cluster.job(job_id)[1] == "RUNNING", 60, f"job {job_id} to run")


def lines(cluster, job_id: int) -> int:
    path = cluster.cwd / f"slurm-{job_id}.out"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_squeue_unknown_node_name(cluster):
    out = cluster.run("squeue", "-w", "dummy_name")
    assert (out.returncode, out.stdout, out.stderr) == (
        1,
        "",
        "squeue: error: Invalid node name dummy_name\n",
    )
    out = cluster.run("squeue", "-h", "-w", "127.0.0.1,localhost-nope")
    assert out.stderr == "squeue: error: Invalid node name localhost-nope\n"
    assert cluster.run("squeue", "-h", "-w", "127.0.0.[1-2]").returncode == 0


def test_scancel_interactive_asks_for_each_job(cluster):
    first = cluster.sbatch("-J", "aa", "--wrap", LONG)
    held = cluster.sbatch("-J", "bb", "-H", "--wrap", "true")
    running(cluster, first)
    prompt = "Cancel job_id={} name={} partition=local [y/n]? "
    # the pending job first, as scancel's passes; a word other than y or n asks again
    out = cluster.run("scancel", "-i", str(first), str(held), input="x\nn\nno\n")
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == prompt.format(held, "bb") * 2 + prompt.format(first, "aa")
    assert [cluster.job(j)[1] for j in (first, held)] == ["RUNNING", "PENDING"]
    out = cluster.run("scancel", "--interactive", "-v", str(held), input="y\n")
    assert (out.stdout, out.stderr) == (
        prompt.format(held, "bb"),
        "".join(line + "\n" for line in plugin_lines("scancel"))
        + f"scancel: Terminating job {held}\n",
    )
    assert cluster.job(held)[1] == "CANCELLED"
    out = cluster.run("scancel", "-i", str(first), input="")  # end of input: no
    assert cluster.job(first)[1] == "RUNNING"
    out = cluster.run("scancel", "-i", f"{first}.0", input="n\n")  # a step: its step_id
    assert out.stdout == f"Cancel step_id={first}.0 name=aa partition=local [y/n]? "
    cluster.run("scancel", str(first))
    out = cluster.run("scancel", "-i", str(held), input="")  # ended: unknown, as the peer's
    assert (out.returncode, out.stderr) == (
        1,
        f"scancel: error: Kill job error on job id {held}: Invalid job id specified\n",
    )


def test_scancel_verbose_words_and_no_match(cluster):
    out = cluster.run("scancel", "-u", "root", "-n", "nosuchname")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    # with filters or a signal scancel reads every job, loading the select plugins (-v)
    plugins = "".join(line + "\n" for line in plugin_lines("scancel"))
    out = cluster.run("scancel", "-v", "-n", "nosuchname", "-t", "PD", "-p", "local")
    assert (out.returncode, out.stderr) == (
        0,
        plugins + "scancel: error: No active jobs match ALL job filters, including: "
        "job_name=nosuchname partition=local state=PENDING \n",
    )
    job = cluster.sbatch("--wrap", LONG)
    running(cluster, job)
    out = cluster.run("scancel", "-v", "-b", "-s", "STOP", str(job))
    assert (out.returncode, out.stderr) == (0, plugins + f"scancel: Signal 19 to batch job {job}\n")
    out = cluster.run("scancel", "-v", "--full", str(job))
    assert out.stderr == f"scancel: Terminating full job {job}\n"


def test_show_job_zero_index_names_every_arrays_element(cluster):
    a = cluster.sbatch("-a", "1-3", "-H", "--wrap", "true")
    b = cluster.sbatch("-a", "0-1", "-H", "--wrap", "true")
    out = cluster.run("scontrol", "-o", "show", "job", "0_1")
    assert out.returncode == 0, out.stderr
    heads = [line.split(" JobName")[0] for line in out.stdout.splitlines()]
    assert heads == [
        f"JobId={a} ArrayJobId={a} ArrayTaskId=1",
        f"JobId={b} ArrayJobId={b} ArrayTaskId=1",
    ]
    out = cluster.run("scontrol", "show", "job", "0_7")
    assert (out.returncode, out.stdout) == (1, "Job 0_7 not found\n")
    out = cluster.run("scontrol", "show", "job", "0")
    assert [line.split()[0] for line in out.stdout.splitlines() if line.startswith("JobId=")] == [
        f"JobId={a}",
        f"JobId={b}",
    ]


def test_suspend_and_resume_stop_and_continue_the_job(cluster):
    job = cluster.sbatch("--wrap", LONG)
    held = cluster.sbatch("-H", "--wrap", "true")
    running(cluster, job)
    out = cluster.run("scontrol", "suspend", str(job))
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    cluster.wait_for(lambda: cluster.job(job)[1] == "SUSPENDED", 10, "SUSPENDED")
    assert cluster.run("squeue", "-h", "-o", "%i %t", "-j", str(job)).stdout == f"{job} S\n"
    assert (
        "JobState=SUSPENDED Reason=None" in cluster.run("scontrol", "show", "job", str(job)).stdout
    )
    time.sleep(1)  # the SIGSTOP is the agent's to send
    before = lines(cluster, job)
    time.sleep(1.5)
    assert lines(cluster, job) == before
    # suspending a suspended job succeeds (the peer's: scontrol's suspend is "indefinite")
    out = cluster.run("scontrol", "suspend", f"JobId={job}", str(held), "999999")
    assert (out.returncode, out.stderr) == (
        1,
        f"Job is pending execution for job {held}\nInvalid job id specified for job 999999\n",
    )
    assert cluster.run("scontrol", "resume", str(job)).returncode == 0
    assert cluster.job(job)[1] == "RUNNING"
    cluster.wait_for(lambda: lines(cluster, job) > before + 3, 20, "output after resume")
    out = cluster.run("scontrol", "resume", str(job))
    assert (out.returncode, out.stderr) == (1, f"Job is not suspended for job {job}\n")
    out = cluster.run("scontrol", "suspend")
    assert (out.returncode, out.stderr) == (1, "too few arguments for keyword:suspend\n")
    # a suspended job cancelled ends (SIGCONT before SIGTERM)
    assert cluster.run("scontrol", "suspend", str(job)).returncode == 0
    cluster.run("scancel", str(job))
    assert cluster.wait_done(job)[0][1] == "CANCELLED"


def test_sky_backend_refuses_suspend():
    with pytest.raises(Unsupported) as caught:
        backends.get("sky").require(Feature.SUSPEND)
    assert str(caught.value) == (
        "Requested operation is presently disabled (SkyPilot cannot stop a managed job's "
        "processes and resume them)"
    )


def test_update_start_time_and_array_throttle(cluster):
    array = cluster.sbatch("-a", "1-4%1", "-H", "--wrap", "true")
    later = cluster.sbatch("--begin=now+1hour", "--wrap", "true")
    out = cluster.run("scontrol", "update", f"jobid={array}", "arraytaskthrottle=2")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    shown = cluster.run("scontrol", "-o", "show", "job", str(array)).stdout
    assert f"ArrayJobId={array} ArrayTaskId=1-4%2 ArrayTaskThrottle=2 JobName=" in shown
    assert cluster.run("squeue", "-h", "-o", "%i").stdout == f"{later}\n{array}_[1-4%2]\n"
    out = cluster.run("scontrol", "update", f"JobId={array}", "ArrayTaskThrottle=0")
    assert "ArrayTaskThrottle" not in cluster.run("scontrol", "show", "job", str(array)).stdout
    out = cluster.run("scontrol", "update", f"JobId={array}", "ArrayTaskThrottle=-1")
    assert (out.returncode, out.stderr) == (1, "scontrol: error: Invalid ArrayTaskThrottle value\n")
    out = cluster.run("scontrol", "update", f"JobId={later}", "StartTime=xyz")
    assert (out.returncode, out.stderr) == (
        1,
        "Invalid time specification (pos=0): xyz\nNo changes specified\n",
    )
    assert cluster.job(later)[4] == "BeginTime"
    out = cluster.run("scontrol", "update", f"JobId={later}", "StartTime=now")
    assert (out.returncode, out.stderr) == (0, "")
    assert cluster.wait_done(later)[0][1] == "COMPLETED"
    out = cluster.run("scontrol", "update", f"JobId={later}", "StartTime=now")
    assert (out.returncode, out.stderr) == (
        1,
        f"Job has already finished for job {later}\n",
    )


def test_show_config_and_sinfo_fields_the_suite_reads(cluster):
    config = cluster.run("scontrol", "show", "config").stdout.splitlines()
    assert "MaxTasksPerNode         = 512" in config  # the peer's (scontrol-show-config.txt)
    assert "ProctrackType           = proctrack/linuxproc" in config
    out = cluster.run("sinfo", "-h", "-O", "defaulttime:12,time:10,root:4,groups:5,prioritytier")
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.startswith("n/a         infinite  no  all  1")


def test_show_node_takes_a_hostlist(cluster):
    out = cluster.run("scontrol", "show", "node", "-o", "127.0.0.[2-3],nope")
    assert out.returncode == 1
    assert [line.split()[0] for line in out.stdout.splitlines()] == [
        "NodeName=127.0.0.2",
        "NodeName=127.0.0.3",
        "Node",
    ]
    assert out.stdout.endswith("\nNode nope not found\n")


def test_sbatch_verbose_lists_the_options_set_from_every_source(cluster):
    cluster.script("s.sh", "#!/bin/sh\n#SBATCH --mem=2G\n#SBATCH -N 1-2\ntrue\n")
    out = cluster.run(
        "sbatch", "-v", "-t", "5", "-J", "x", "-H", "s.sh", env={"SBATCH_PARTITION": "local"}
    )
    assert out.returncode == 0, out.stderr
    rule = "sbatch: -------------------- --------------------"
    assert out.stderr.splitlines() == [
        "sbatch: defined options",
        rule,
        "sbatch: hold                : set",
        "sbatch: job-name            : x",
        "sbatch: mem                 : 2G",
        "sbatch: nodes               : 1-2",
        "sbatch: partition           : local",
        "sbatch: time                : 00:05:00",
        "sbatch: verbose             : 1",
        rule,
        "sbatch: end of defined options",
        *plugin_lines("sbatch"),
    ]
    out = cluster.run("sbatch", "-vv", "-H", "--mem=0", "--time=1-2", "--wrap", "true")
    assert "sbatch: mem                 : 0?\n" in out.stderr  # mbytes_to_str's
    assert "sbatch: time                : 1-02:00:00\n" in out.stderr
    assert "sbatch: verbose             : 2\n" in out.stderr


def test_squeue_verbose_prints_its_settings_first(cluster):
    out = cluster.run("squeue", "-v", "-p", "local", "-t", "PD,r", "-S", "i")
    assert out.returncode == 0, out.stderr
    settings, listing = out.stdout.split("\n\n\n")
    assert settings.splitlines() == [
        "-----------------------------",
        "all         = true",
        "array       = false",
        "federation  = false",
        "format      = (null)",
        "iterate     = 0",
        "job_flag    = 0",
        "jobs        = (null)",
        "licenses    = (null)",
        "local       = false",
        "names       = (null)",
        "nodes       = ",
        "partitions  = local",
        "priority    = false",
        "reservation = (null)",
        "sibling      = false",
        "sort        = i",
        "start_flag  = 0",
        "states      = PD,r",
        "step_flag   = 0",
        "steps       = (null)",
        "users       = (null)",
        "verbose     = 1",
        "-----------------------------",
    ]
    assert listing.splitlines()[1:] == [  # after the date: what slurm_load_jobs gave
        "last_update_time=%d records=0" % int(listing.splitlines()[1].split()[0].split("=")[1]),
        "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)",
    ]
    assert out.stderr == "".join(line + "\n" for line in plugin_lines("squeue"))
    out = cluster.run("squeue", "-vv", "-t", "PD,r", "-n", "ab", "-h")
    assert "\nname_list[0] = 97\nstate_list[0] = PENDING\nstate_list[1] = RUNNING\n" in out.stdout


def test_exclusive_steps_take_a_node_each_while_they_run(cluster):
    """python test_--exclusive: four `srun -n1 --exclusive` of a 4-node job (a CPU a node)
    run on four nodes; a fifth, after them, on the first again."""
    cluster.script(
        "ex.sh",
        "#!/bin/bash\nfor i in 1 2 3 4; do srun -n1 --exclusive sleep 2 & done\nwait\n"
        "srun -n1 --exclusive true\n",
    )
    job = cluster.sbatch("-N4", "-W", "ex.sh")
    out = cluster.run("sacct", "-j", str(job), "-o", "JobID,NodeList", "-P", "-n").stdout
    steps = dict(line.split("|") for line in out.splitlines() if "." in line.split("|")[0])
    assert sorted(steps[f"{job}.{k}"] for k in range(4)) == [f"127.0.0.{n}" for n in (1, 2, 3, 4)]
    assert steps[f"{job}.4"] == "127.0.0.1"


def test_slurmd_debug_prints_the_steps_own_log(cluster):
    """srun --slurmd-debug=error: slurmstepd's verbose lines (the peer's, pid and time
    aside); info adds debug lines; 1 (fatal) none; over 4 levels (or a name no level has)
    srun says it keeps 4."""
    out = cluster.run("srun", "--slurmd-debug=error", "bash", "-c", "exit 3")
    text = re.sub(r"\(\d+\)", "(PID)", out.stderr)
    assert re.sub(r"started \S+", "started T", text) == (
        "slurmstepd-127.0.0.1: debug levels are stderr='verbose', logfile='info', "
        "syslog='fatal'\n"
        "slurmstepd-127.0.0.1: starting 1 tasks\n"
        "slurmstepd-127.0.0.1: task 0 (PID) started T\n"
        "slurmstepd-127.0.0.1: task 0 (PID) exited with exit code 3.\n"
        "srun: error: 127.0.0.1: task 0: Exited with exit code 3\n"
    )
    assert out.returncode == 3
    out = cluster.run("srun", "--slurmd-debug=info", "true")
    assert "stderr='debug'" in out.stderr and "slurmstepd-127.0.0.1: debug:  " in out.stderr
    assert cluster.run("srun", "--slurmd-debug=1", "true").stderr == ""
    out = cluster.run("srun", "--slurmd-debug=debug5", "true")
    assert out.stderr.startswith("srun: Using srun's max debug increment of 4\n")
    assert "stderr='debug2'" in out.stderr


def test_an_overcommit_job_tells_its_sruns(cluster):
    """test17.32: SLURM_OVERCOMMIT=1 in an -O job, and its srun runs more tasks than CPUs."""
    cpus = cluster.run("scontrol", "show", "node", "127.0.0.1").stdout
    many = int(re.search(r"CPUTot=(\d+)", cpus).group(1)) + 2
    cluster.sbatch(
        "-W",
        "-O",
        "-N1",
        f"-n{many}",
        "-o",
        "out",
        "--wrap",
        "printenv SLURM_OVERCOMMIT; srun hostname | wc -l",
    )
    assert (cluster.cwd / "out").read_text() == f"1\n{many}\n"


def test_srun_forwards_its_own_stdin_to_the_tasks(cluster):
    """srun's stdin reaches every task (-i all, the default), one task (-i N) or none (-i
    none), from outside a job and inside one, as the peer's (python
    test_--input--output_taskid)."""
    for args, shown in (([], "0: hi\n1: hi\n"), (["-i", "1"], "1: hi\n"), (["-i", "none"], "")):
        out = cluster.run("srun", "-n2", "-l", *args, "cat", input="hi\n")
        assert (out.returncode, "".join(sorted(out.stdout.splitlines(True)))) == (0, shown)
    cluster.sbatch("-n2", "-W", "-o", "out", "--wrap", "echo x | srun -n2 -l cat | sort")
    assert (cluster.cwd / "out").read_text() == "0: x\n1: x\n"


def test_srun_wait_terminates_the_tasks_left(cluster):
    """srun -W N: N seconds after the first task ends the others are terminated, with
    srun's status lines (the peer's, for a task that waits on its stdin)."""
    script = 'if [ "$SLURM_PROCID" = 1 ]; then sleep 60; fi'
    out = cluster.run("srun", "-n2", "-W", "1", "bash", "-c", script, timeout=30)
    assert out.returncode == 137
    lines = out.stderr.splitlines()
    assert lines[0] == "srun: First task exited 1s ago"
    assert re.fullmatch(r"srun: StepId=\d+\.0 task 1: running", lines[1])
    assert re.fullmatch(r"srun: StepId=\d+\.0 task 0: exited", lines[2])
    assert re.fullmatch(r"srun: launch/slurm: _step_signal: Terminating StepId=\d+\.0", lines[3])
    assert lines[-1] == "srun: error: 127.0.0.1: task 1: Killed"


def test_srun_output_of_one_task(cluster):
    """srun -o N: task N's stdout alone reaches srun's (the others' nowhere, no file named
    N); -e N likewise for stderr; `none` is /dev/null (python test_--input--output_taskid)."""
    out = cluster.run("srun", "--output=4", "-O", "-N1", "-n10", "printenv", "SLURM_PROCID")
    assert (out.returncode, out.stdout) == (0, "4\n")
    script = "echo out$SLURM_PROCID; echo err$SLURM_PROCID >&2"
    out = cluster.run("srun", "--error=2", "-n3", "-O", "bash", "-c", script)
    assert (sorted(out.stdout.split()), out.stderr) == (["out0", "out1", "out2"], "err2\n")
    assert cluster.run("srun", "-o", "none", "-n2", "echo", "x").stdout == ""
    assert not (cluster.cwd / "4").exists() and not (cluster.cwd / "2").exists()


def test_scancel_of_a_step_ends_that_step_alone(cluster):
    """scancel J.S: that step is killed (its srun says so, exit 137) and the batch script
    goes on; sacct says `CANCELLED by <uid>`; a step the running job lacks is named by the
    job id alone, exit 225 (the peer's), and `J.batch` is an invalid id (expect test6.9)."""
    job = cluster.sbatch("-o", "out", "--wrap", "srun sleep 60; echo after rc=$?; sleep 2")
    cluster.wait_for(
        lambda: "Nodes=" in cluster.run("scontrol", "-o", "show", "step", f"{job}.0").stdout,
        60,
        "step 0",
    )
    assert cluster.run("scancel", f"{job}.0").returncode == 0
    out = cluster.run("scancel", f"{job}.7")
    assert (out.returncode, out.stderr) == (
        225,
        f"scancel: error: Kill job error on job step id {job}: Invalid job id specified\n",
    )
    out = cluster.run("scancel", f"{job}.batch")
    assert (out.returncode, out.stderr) == (1, f"scancel: error: Invalid job id {job}.batch\n")
    cluster.wait_done(job)
    assert "after rc=137\n" in (cluster.cwd / "out").read_text()
    rows = cluster.run("sacct", "-j", str(job), "-P", "-n", "-o", "JobID,State").stdout
    assert f"{job}.0|CANCELLED by {os.getuid()}\n" in rows
    assert cluster.job(job)[1] == "COMPLETED"
