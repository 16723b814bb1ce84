"""srun and scontrol inside jobs on local nodes, against real Slurm 22.05's output."""

import glob
import json
import os
import socket
import sys

import pytest
from runtime_fixtures.cluster import ROOT, capture, ip_names, local_job  # noqa: F401

PY = sys.executable


def two_by_two(**spec):
    """The env-b/env-e allocation: 2 nodes x 2 tasks, 1 CPU per task."""
    return dict(
        ntasks=4,
        ntasks_per_node=2,
        cpus_per_task=1,
        tasks_per_node=[2, 2],
        cpus_per_node=[2, 2],
        **spec,
    )


def named(text, nodes):
    """Our node names (IPs) -> the captures' (node1, node2, ...), in messages and labels."""
    for ip, node in sorted(ip_names(nodes).items(), key=lambda kv: -len(kv[0])):
        text = text.replace(ip, node)
    return text


def test_label_output_and_ordering(local_job):
    """srun -N2 -n4 -l: every line labelled with its task; tasks' lines interleave freely
    (the capture's order is 2,0,3,1), each task's own lines stay in order."""
    script = """#!/bin/bash
srun -N2 -n4 -l bash -c "echo \\$SLURMD_NODENAME \\$SLURM_PROCID"
srun -n2 -l bash -c 'for i in 1 2 3; do echo $SLURM_PROCID.$i; done'
"""
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    lines = named(job.output(), 2).splitlines()
    assert sorted(lines[:4]) == sorted(capture("srun-N2-n4-label.txt").splitlines())
    assert [line for line in lines[4:] if line.startswith("0: ")] == ["0: 0.1", "0: 0.2", "0: 0.3"]
    assert [line for line in lines[4:] if line.startswith("1: ")] == ["1: 1.1", "1: 1.2", "1: 1.3"]


def test_exit_codes_and_messages(local_job):
    """false, exit 7, SIGKILL, a missing command: srun's lines and exit codes as on Slurm."""
    cases = ["srun-false.txt", "srun-exit7.txt", "srun-signal-kill.txt", "srun-nonexistent-cmd.txt"]
    commands = [
        "srun false",
        "srun bash -c 'exit 7'",
        "srun bash -c 'kill -9 $$'",
        "srun no-such-command",
    ]
    script = "#!/bin/bash\n" + "".join('%s\necho "rc=$?"\n' % c for c in commands)
    job = local_job(1, script=script).start()
    result = job.wait()
    assert result["state"] == "COMPLETED"
    # what sacct lists: N.batch, then N.0 ... with Slurm's State and ExitCode
    assert [
        (
            s["id"],
            s["name"],
            s["state"],
            "%d:%d" % (s["exit_code"], s["signal"]),
            s["nodes"],
            s["ntasks"],
        )
        for s in result["steps"]
    ] == [
        ("batch", "batch", "COMPLETED", "0:0", "127.0.0.1", 1),
        (0, "false", "FAILED", "1:0", "127.0.0.1", 1),
        (1, "bash", "FAILED", "7:0", "127.0.0.1", 1),
        (2, "bash", "CANCELLED", "0:9", "127.0.0.1", 1),
        (3, "no-such-command", "FAILED", "2:0", "127.0.0.1", 1),
    ]
    assert all(result["start"] <= s["start"] <= s["end"] <= result["end"] for s in result["steps"])
    expected = ""
    for case in cases:
        # a task ended by a signal: "srun: Force Terminated StepId=N.S", in a job as outside
        expected += capture(case, "stderr").replace("StepId=93.0", "StepId=28.2")
        expected += "rc=%d\n" % capture(case, "exit")
    assert named(job.output(), 1) == expected


def test_exit_code_is_the_largest_task_code(local_job):
    """srun-mixed-exit: -n3 laid out as node1: task 0, node2: tasks 1-2 (block layout over
    1 + 2 CPUs); one error line per failed task and exit 2."""
    script = """#!/bin/bash
srun -n3 -l bash -c 'exit $SLURM_PROCID'
echo "rc=$?"
"""
    job = local_job(2, script=script, ntasks=3, tasks_per_node=[1, 2], cpus_per_node=[1, 2]).start()
    assert job.wait()["state"] == "COMPLETED"
    out = named(job.output(), 2).splitlines()
    assert sorted(out[:-1]) == sorted(capture("srun-mixed-exit.txt", "stderr").splitlines())
    assert out[-1] == "rc=%d" % capture("srun-mixed-exit.txt", "exit")


def test_stdout_and_stderr_kept_apart(local_job):
    """srun-stdout-stderr: with --error the tasks' stderr lands in the job's error file."""
    script = """#!/bin/bash
srun -n2 -l bash -c "echo out\\$SLURM_PROCID; echo err\\$SLURM_PROCID >&2"
srun -Q -u -n1 echo hi
"""
    job = local_job(
        1, script=script, ntasks=2, tasks_per_node=[2], cpus_per_node=[2], error="err-%j.txt"
    ).start()
    assert job.wait()["state"] == "COMPLETED"
    out = job.output().splitlines()
    assert sorted(out[:2]) == sorted(capture("srun-stdout-stderr.txt").splitlines())
    assert out[2:] == capture("srun-quiet-unbuffered.txt").splitlines()
    err = job.output("err-28.txt").splitlines()
    assert sorted(err) == sorted(capture("srun-stdout-stderr.txt", "stderr").splitlines())


def test_output_patterns_per_task(local_job):
    """submitit's srun: --output/--error with %j and %t, one file per task."""
    script = """#!/bin/bash
srun --unbuffered --output logs/%j_%t_log.out --error logs/%j_%t_log.err \
  bash -c 'echo out $SLURM_PROCID; echo err $SLURM_PROCID >&2'
"""
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    for task in range(4):
        assert (job.workdir / "logs" / ("28_%d_log.out" % task)).read_text() == "out %d\n" % task
        assert (job.workdir / "logs" / ("28_%d_log.err" % task)).read_text() == "err %d\n" % task
    assert job.output() == ""


def test_concurrent_steps_ray_pattern(local_job):
    """One backgrounded single-node step per node (`srun -N1 -n1 -w $node ... &`, then wait),
    as Ray's launch scripts do: they run at the same time, with steps numbered in order."""
    script = """#!/bin/bash
nodes=( $(scontrol show hostnames "$SLURM_JOB_NODELIST") )
for node in "${nodes[@]}"; do
  srun --nodes=1 --ntasks=1 -w "$node" bash -c \
    'touch started-$SLURM_STEP_ID; while [ ! -e started-0 -o ! -e started-1 ]; do sleep 0.05; done
     echo "step $SLURM_STEP_ID on $SLURMD_NODENAME of $SLURM_STEP_NODELIST"' &
  while [ ! -e started-0 ]; do sleep 0.05; done
done
wait
"""
    job = local_job(2, script=script, time_limit=30, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"  # each step waited for the other to start
    lines = named(job.output(), 2).splitlines()
    assert sorted(lines) == ["step 0 on node1 of node1", "step 1 on node2 of node2"]


def test_master_addr_reaches_node_0_from_every_node(local_job):
    """torchrun-style MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1):
    a task on every node connects to a TCP listener bound on it by the batch script."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = """#!/bin/bash
MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1)
{py} -c '
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
open("listening", "w").close()
got = []
for _ in range(3):
    conn, _ = srv.accept()
    got.append(conn.makefile().readline().strip())
print("\\n".join(sorted(got)))
' $MASTER_ADDR {port} > got.txt &
while [ ! -e listening ]; do sleep 0.05; done
srun -N3 -n3 bash -c '{py} -c "
import socket, sys
c = socket.create_connection((sys.argv[1], {port}))
c.sendall((\\"from %s via %s\\n\\" % (sys.argv[2], sys.argv[1])).encode())
" $(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1) $SLURMD_NODENAME'
wait
""".format(py=PY, port=port)
    job = local_job(3, script=script).start()
    assert job.wait()["state"] == "COMPLETED", job.output()
    got = (job.workdir / "got.txt").read_text()
    assert got == "".join("from 127.0.0.%d via 127.0.0.1\n" % n for n in (1, 2, 3))


def test_scontrol_inside_the_job(local_job):
    """show hostnames reads SLURM_NODELIST (not SLURM_JOB_NODELIST), keeps padding; show
    hostlist keeps order; show job describes this job."""
    script = """#!/bin/bash
scontrol show hostnames node[1-3,5]
SLURM_JOB_NODELIST="node[1-2]" env -u SLURM_NODELIST scontrol show hostnames; echo "rc=$?"
SLURM_NODELIST="node[3-4]" scontrol show hostnames; echo "rc=$?"
SLURM_NODELIST= scontrol show hostnames; echo "empty rc=$?"
scontrol show hostnames "node[01-03],gpu[1-2],login"
scontrol show hostlist node3,node1,node2,node10,gpu1,node02
scontrol show hostlistsorted node3,node1,node2,node10,gpu1
scontrol show job $SLURM_JOB_ID | head -1
"""
    job = local_job(2, script=script, job_name="show").start()
    assert job.wait()["state"] == "COMPLETED"
    expected = (
        capture("scontrol-show-hostnames.txt")
        + capture("scontrol-show-hostnames-env.txt").replace(
            "rc=0\n", capture("scontrol-show-hostnames-env.txt", "stderr") + "rc=0\n", 1
        )
        + "empty rc=0\n"  # set but empty: nothing, no error (scontrol-in-job-hostnames)
        + capture("scontrol-show-hostnames-multi.txt")
        + capture("scontrol-show-hostlist-mixed.txt")
        + capture("scontrol-show-hostlistsorted.txt")
        + "JobId=28 JobName=show\n"
    )
    assert job.output() == expected


def test_srun_refuses_what_the_allocation_cannot_hold(local_job):
    script = """#!/bin/bash
srun -n5 true; echo "rc=$?"
srun -w nosuchnode true; echo "rc=$?"
srun --bogus true; echo "rc=$?"
"""
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    assert job.output() == (
        "srun: error: Unable to create step for job 28: More processors requested than "
        "permitted\nrc=1\n"
        "srun: error: Unable to create step for job 28: Requested node configuration is not "
        "available\nrc=1\n"
        "srun: unrecognized option '--bogus'\nTry \"srun --help\" for more information\nrc=255\n"
    )


def test_in_job_srun_takes_what_launchers_write(local_job):
    """What the peer's srun does in a batch job (Slurm 22.05, captured side by side):
    `srun --jobid $SLURM_JOBID` runs a step of this job, another job id is refused, --multi-prog
    runs a program per task (%t rank, %o offset, srun's args appended; a rank without a line
    is Slurm's error), --het-group gives Slurm's errors in a job that is not heterogeneous,
    --gres-flags, --whole and the Pyxis flags change nothing, --mpi=pmi2 and --mpi=none
    start quietly (test_pmi.py tests the PMI world), and a usage error exits 255."""
    script = """#!/bin/bash
srun --jobid $SLURM_JOBID -N1 -n1 bash -c 'echo "jobid ok $SLURM_STEP_ID"'; echo "rc=$?"
srun --jobid 999999 true; echo "rc=$?"
printf '0 echo zero %%t\n# note\n1-3 echo rest %%t %%o\n' > mp.conf
srun -n4 -l --multi-prog mp.conf | sort; echo "rc=$?"
printf '* echo all %%t\n' > star.conf
srun -n2 -l --multi-prog star.conf extra | sort; echo "rc=$?"
printf '0 echo zero\n' > short.conf
srun -n2 --multi-prog short.conf; echo "rc=$?"
srun --multi-prog missing.conf; echo "rc=$?"
srun --het-group=1 true; echo "rc=$?"
srun --het-group=0 true; echo "rc=$?"
srun -N1 -n1 --gres-flags=enforce-binding --whole --container-image=x --container-mounts=/a:/b true; echo "rc=$?"
srun -N1 -n1 --mpi=pmi2 true; echo "rc=$?"
srun -N1 -n1 --mpi=none true; echo "rc=$?"
srun --bcast=/tmp/x true; echo "rc=$?"
"""
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    assert job.output() == (
        "jobid ok 0\nrc=0\n"
        "srun: error: Unable to confirm allocation for job 999999: Invalid job id specified\n"
        "srun: Check SLURM_JOB_ID environment variable. Expired or invalid job 999999\nrc=1\n"
        "0: zero 0\n1: rest 1 0\n2: rest 2 1\n3: rest 3 2\nrc=0\n"
        "0: all 0 extra\n1: all 1 extra\nrc=0\n"
        "srun: error: Configuration file short.conf invalid, no record for task id 1\nrc=1\n"
        "srun: error: Could not open multi_prog config file missing.conf\nrc=1\n"
        "srun: error: Requested het-group offset exceeds highest hetjob index (1 > 0)\nrc=1\n"
        "srun: error: No directives to start application on any available hetjob "
        "components\nrc=1\n"
        "rc=0\n"
        "rc=0\n"
        "rc=0\n"
        "srun: error: --bcast is not supported by slurmsky: no file broadcast; use SkyPilot "
        "file_mounts\nrc=255\n"
    )


def test_relative_and_its_errors(local_job):
    """step-relative: -r N starts the step's nodes at the allocation's node N; Slurm's
    errors (exit 1) when the step would run past the allocation or -w/-x are given too."""
    script = """#!/bin/bash
srun -r1 -N1 -n1 bash -c 'echo "node=$SLURMD_NODENAME nodeid=$SLURM_NODEID nodelist=$SLURM_STEP_NODELIST"'
srun --relative=0 -N1 -n1 bash -c 'echo "node=$SLURMD_NODENAME"'
srun -r1 -n1 bash -c 'echo "n1 node=$SLURMD_NODENAME"'
srun -r2 -N1 true; echo "rc=$?"
srun -r1 true; echo "rc=$?"
srun -r1 -w 127.0.0.1 true; echo "rc=$?"
"""
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    assert named(job.output(), 2) == (
        "node=node2 nodeid=0 nodelist=node2\n"
        "node=node1\n"
        "srun: Warning: can't run 1 processes on 2 nodes, setting nnodes to 1\n"
        "n1 node=node2\n"
        "srun: error: --relative and --nodes option incompatible with count of allocated "
        "nodes (2+1>2)\nrc=1\n"
        "srun: error: --relative and SLURM_JOB_NUM_NODES option incompatible with count of "
        "allocated nodes (1+2>2)\nrc=1\n"
        "srun: error: -r,--relative not allowed with -w,--nodelist or -x,--exclude.\nrc=1\n"
    )


def test_preserve_env_keeps_the_jobs_counts(local_job):
    """step-preserve-env: -E keeps SLURM_NNODES/NTASKS/NPROCS/TASKS_PER_NODE as srun found
    them; SLURM_NODELIST is the job's with or without it."""
    probe = (
        'echo "$SLURM_NNODES $SLURM_NTASKS $SLURM_NPROCS $SLURM_TASKS_PER_NODE '
        '$SLURM_NODELIST $SLURM_STEP_NUM_NODES $SLURM_STEP_NUM_TASKS"'
    )
    script = "#!/bin/bash\nsrun -E -N1 -n1 bash -c '%s'\nsrun -N1 -n1 bash -c '%s'\n" % (
        probe,
        probe,
    )
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    assert named(job.output(), 2) == ("2 4 4 2(x2) node[1-2] 1 1\n1 1 1 1 node[1-2] 1 1\n")


def test_cpus_on_node_is_the_jobs_unless_exact(local_job):
    """step-exact: a step's SLURM_CPUS_ON_NODE is the job's CPUs on the node; --exact, or -c
    on srun's command line (22.05), gives the step's own."""
    script = """#!/bin/bash
srun -n1 bash -c 'echo "plain $SLURM_CPUS_ON_NODE"'
srun --exact -n1 bash -c 'echo "exact $SLURM_CPUS_ON_NODE"'
srun -n1 -c1 bash -c 'echo "c1 $SLURM_CPUS_ON_NODE"'
srun -n1 --mincpus=1 bash -c 'echo "mincpus $SLURM_CPUS_ON_NODE"'
"""
    job = local_job(
        1, script=script, cpus_per_task=2, tasks_per_node=[1], cpus_per_node=[2]
    ).start()
    assert job.wait()["state"] == "COMPLETED"
    assert job.output() == "plain 2\nexact 1\nc1 1\nmincpus 2\n"


def test_step_distribution_label_and_pack_group(local_job):
    """In an allocation: SLURM_DISTRIBUTION cyclic when a step has no more tasks than
    nodes, else block; SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0; SLURM_LABELIO=1 with -l only."""
    probe = (
        'echo "$SLURM_DISTRIBUTION $SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0 ${SLURM_LABELIO-unset}"'
    )
    script = "#!/bin/bash\n" + "".join(
        "srun %s bash -c '%s' | sort -u\n" % (opts, probe)
        for opts in ("-N2 -n2", "-n4", "-N1 -n1", "-N1 -n2 -l")
    )
    job = local_job(2, script=script, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED"
    assert job.output() == (
        "cyclic 2(x2) unset\nblock 2(x2) unset\ncyclic 2(x2) unset\n"
        "0: block 2(x2) 1\n1: block 2(x2) 1\n"
    )


def test_kill_on_bad_exit_terminates_the_step(local_job):
    """srun-kill-on-bad-exit: task 1 exits 3, srun -K ends the step (TERM): the other task
    never finishes, srun exits 143 and says the step was force terminated. KillWait 15 s: on
    a loaded machine the 1 s default let SIGKILL (137) come before the TERM was acted on."""
    script = """#!/bin/bash
srun -K -n2 bash -c 'if [ $SLURM_PROCID = 1 ]; then exit 3; fi; sleep 20; echo survived'
echo "rc=$?"
"""
    job = local_job(
        1, script=script, ntasks=2, tasks_per_node=[2], cpus_per_node=[2], kill_wait=15
    ).start()
    assert job.wait()["state"] == "COMPLETED"
    lines = named(job.output(), 1).splitlines()
    assert lines[-1] == "rc=143" and "survived" not in lines
    assert lines[0] == "srun: error: node1: task 1: Exited with exit code 3"
    assert lines[1] == "srun: launch/slurm: _step_signal: Terminating StepId=28.0"
    assert lines[2].startswith("slurmstepd-node1: error: *** STEP 28.0 ON node1 CANCELLED AT ")
    assert lines[3:-1] == [
        "srun: error: node1: task 0: Terminated",
        "srun: Force Terminated StepId=28.0",
    ]


def test_signal_decides_the_exit_whatever_came_before(local_job):
    """A task killed by a signal makes srun exit 128+signal even after a larger exit code."""
    script = """#!/bin/bash
srun -n2 -l bash -c 'if [ $SLURM_PROCID = 0 ]; then exit 3; fi; sleep 0.5; kill -TERM $$'
echo "rc=$?"
"""
    job = local_job(1, script=script, ntasks=2, tasks_per_node=[2], cpus_per_node=[2]).start()
    assert job.wait()["state"] == "COMPLETED"
    assert named(job.output(), 1) == (
        "srun: error: node1: task 0: Exited with exit code 3\n"
        "srun: error: node1: task 1: Terminated\n"
        "srun: Force Terminated StepId=28.0\nrc=143\n"
    )


def test_step_records_name_and_running_steps(local_job):
    """sacct-srun-steps / squeue-steps: a step is named by -J, else its program; the running
    steps are published in the run directory's steps.json, gone when the job ends."""
    script = """#!/bin/bash
srun -J named-step true
srun bash -c 'touch started; while [ ! -e go ]; do sleep 0.05; done'
"""
    job = local_job(1, script=script).start()
    job.wait_for(job.workdir / "started")
    steps_file = job.rundir / "steps.json"
    job.wait_until(steps_file.exists)
    running = json.loads(steps_file.read_text())
    assert [(s["id"], s["name"], s["nodes"], s["ntasks"]) for s in running] == [
        (1, "bash", "127.0.0.1", 1)
    ]
    (job.workdir / "go").touch()
    result = job.wait()
    assert [(s["id"], s["name"]) for s in result["steps"]] == [
        ("batch", "batch"),
        (0, "named-step"),
        (1, "bash"),
    ]
    assert not steps_file.exists()


def test_node_environment_as_job_environment(local_job):
    """environment null (SkyPilot: the task envs are the node's): the job gets the node's
    variables without the runtime's PYTHONPATH entry, SkyPilot's Slurm variables or the
    secret; only srun and scontrol are put first on PATH."""
    script = """#!/bin/bash
ls "$(dirname "$(command -v srun)")"
echo "PYTHONPATH=${PYTHONPATH-unset} FROM_TASK_ENVS=$FROM_TASK_ENVS"
env | grep -c -e SLURMSKY_STEP_SECRET -e SLURM_STEP_ID
"""
    job = local_job(1, script=script, environment=None).start(
        FROM_TASK_ENVS="yes", SLURM_STEP_ID="7", PYTHONPATH="%s:/elsewhere" % ROOT
    )
    assert job.wait()["exit_code"] == 1  # grep -c found nothing
    assert job.output() == "scontrol\nsrun\nPYTHONPATH=/elsewhere FROM_TASK_ENVS=yes\n0\n"


def _python38():
    """A Python 3.8 (the oldest the runtime supports), if this machine has one."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    return next((p for p in candidates + ["/usr/bin/python3.8"] if os.access(p, os.X_OK)), None)


OLDEST = _python38()


@pytest.mark.skipif(not OLDEST, reason="no Python 3.8 here")
def test_runtime_runs_on_python_3_8(local_job):
    """The runtime ships alone and runs on whatever python3 a node has, down to 3.8."""
    script = """#!/bin/bash
srun -l bash -c 'echo $SLURM_PROCID on $SLURMD_NODENAME'
"""
    job = local_job(2, script=script, python=OLDEST, **two_by_two()).start()
    assert job.wait()["state"] == "COMPLETED", job.log(0)
    assert sorted(job.output().splitlines()) == [
        "0: 0 on 127.0.0.1",
        "1: 1 on 127.0.0.1",
        "2: 2 on 127.0.0.2",
        "3: 3 on 127.0.0.2",
    ]
