"""sacct as a subprocess on hand-made job state, against the real-Slurm captures, byte for byte.

The state is what the peer's accounting held for jobs 99-108 (one of each way to end), the
time-limit jobs 86/87, and the jobs submitit and snakemake polled.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from captures import read_capture
from test_formats import (
    NOBODY,
    NOW,
    check,
    epoch,
    needs_another_user,
    share,
    shared_world,
    world,  # noqa: F401 (fixture)
)

UUID = "4f1c2d3e-aaaa-bbbb-cccc-0123456789ab"
S = epoch("2026-11-22T03:01:27")  # when jobs 99-108 started


def with_rc(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(
        result.args, 0, result.stdout + f"rc={result.returncode}\n", result.stderr
    )


@pytest.fixture
def acct(world):
    """Jobs 99-108 of sacct-default-columns.txt, ended as the captures show."""
    w = world
    w.env["SLURMSKY_NOW"] = repr(S + 600)
    peer = dict(user="peeruser", uid=1001, gid=1001, workdir="<probe-dir>/i", submit_time=S - 1)
    done = dict(nodelist="node1", start_time=S, end_time=S + 1)
    w.add(
        99,
        name="ok",
        state="COMPLETED",
        exit_code=0,
        exit_signal=0,
        result={"state": "COMPLETED", "exit_code": 0, "signal": 0},
        **done,
        **peer,
    )
    w.add(
        100,
        name="fail3",
        state="FAILED",
        exit_code=3,
        exit_signal=0,
        reason="None",
        result={"state": "FAILED", "exit_code": 3, "signal": 0},
        **done,
        **peer,
    )
    w.add(
        101,
        name="cancel-pd",
        state="CANCELLED",
        held="user",
        reason="JobHeldUser",
        end_time=S,
        cancelled_by=0,
        exit_code=0,
        exit_signal=0,
        **peer,
    )
    w.add(
        102,
        name="cancel-r",
        state="CANCELLED",
        nodelist="node1",
        start_time=S,
        end_time=S + 3,
        cancelled_by=0,
        exit_code=0,
        exit_signal=0,
        result={"state": "CANCELLED", "exit_code": 0, "signal": 15},
        **peer,
    )
    w.add(
        103,
        name="sigkill",
        state="FAILED",
        nodelist="node1",
        start_time=S,
        end_time=S,
        exit_code=0,
        exit_signal=9,
        result={"state": "FAILED", "exit_code": 0, "signal": 9},
        **peer,
    )
    w.add(
        104,
        name="stepfail",
        state="COMPLETED",
        nodelist="node2",
        start_time=S,
        end_time=S,
        exit_code=0,
        exit_signal=0,
        result={
            "state": "COMPLETED",
            "exit_code": 0,
            "signal": 0,
            "steps": [
                {"id": 0, "name": "false", "exit_code": 1, "nodes": "node2", "start": S, "end": S},
                {"id": 1, "name": "true", "exit_code": 0, "nodes": "node2", "start": S, "end": S},
            ],
        },
        **peer,
    )
    w.add(
        106,
        name="mn",
        state="COMPLETED",
        nodelist="node[3-4]",
        batch_host="node3",
        start_time=S,
        end_time=S,
        num_nodes=2,
        num_cpus=4,
        num_tasks=4,
        tasks_per_node=[3, 1],
        cpus_per_node=[3, 1],
        exit_code=0,
        exit_signal=0,
        result={
            "state": "COMPLETED",
            "steps": [
                {"id": 0, "name": "hostname", "cpus": 4, "nodes": "node[3-4]", "exit_code": 0}
            ],
        },
        **peer,
    )
    w.add_array(
        105,
        {
            1: (107, dict(state="COMPLETED", exit_code=0, exit_signal=0)),
            2: (108, dict(state="FAILED", exit_code=1, exit_signal=0, result={"exit_code": 1})),
            3: (105, dict(state="FAILED", exit_code=2, exit_signal=0, result={"exit_code": 2})),
        },
        name="arr3",
        nodelist="node2",
        start_time=S,
        end_time=S,
        **peer,
    )
    return w


ALL = "99,100,101,102,103,104,105,106"


@pytest.mark.parametrize(
    "args, capture",
    [
        (("-j", ALL), "sacct-default-columns.txt"),
        (("-b", "-j", "99,100,102"), "sacct-brief.txt"),
        (
            (
                "-X",
                "-j",
                ALL,
                "-o",
                "JobID,JobIDRaw,JobName,User,State,ExitCode,DerivedExitCode,Reason",
            ),
            "sacct-X-allocations.txt",
        ),
        (
            ("-j", "99,100", "--format=JobID,JobName,State,ExitCode", "--parsable"),
            "sacct-parsable.txt",
        ),
        (
            ("-j", ALL, "--format=JobID,JobName,State,ExitCode,Elapsed,NodeList", "--parsable2"),
            "sacct-parsable2-header.txt",
        ),
        (
            (
                "-j",
                ALL,
                "--format=JobID,JobName,State,ExitCode,Elapsed,NodeList",
                "--parsable2",
                "--noheader",
            ),
            "sacct-parsable2-noheader.txt",
        ),
        (("-j", "105_2", "-P", "-o", "JobID,JobIDRaw,State,ExitCode"), "sacct-array-filter.txt"),
        (("--helpformat",), "sacct-helpformat.txt"),
    ],
)
def test_accounting_matches_capture(acct, args, capture):
    check(acct.run("sacct", *args), capture)


def test_long_fields_and_widths(acct):
    args = (
        "-j",
        "102,105",
        "-o",
        "JobID%15,JobName%20,State%20,ExitCode,Start,End,Elapsed,"
        "ElapsedRaw,Timelimit,AllocCPUS,ReqMem,NNodes,NodeList,WorkDir%30",
    )
    # the capture's work dir was 30 characters before it became <probe-dir>/i
    check(
        acct.run("sacct", *args),
        "sacct-long-fields.txt",
        normalize=lambda t: re.sub(r" +<probe-dir>", " <probe-dir>", t),
    )


def test_unknown_jobs_print_nothing_but_the_header(acct):
    check(with_rc(acct.run("sacct", "-j", "999999")), "sacct-unknown-job.txt")
    check(
        with_rc(acct.run("sacct", "-j", "999999", "-P", "-n", "-o", "JobID,State")),
        "sacct-unknown-job-P.txt",
    )


def test_rejected_submission(world):
    at = epoch("2026-11-22T02:44:51")
    world.add(
        13,
        name="basic",
        state="FAILED",
        reason="BadConstraints",
        submit_time=at,
        end_time=at,
        exit_code=1,
        exit_signal=0,
        num_cpus=5,
        cpus_per_node=[5],
    )
    check(
        world.run(
            "sacct",
            "-j",
            "13",
            "-P",
            "-o",
            "JobID,JobName,Partition,State,ExitCode,ReqCPUS,AllocCPUS,NodeList,Start,End",
        ),
        "sacct-rejected-submission.txt",
    )


@pytest.fixture
def timeouts(world):
    start = epoch("2026-11-22T02:50:53")
    world.env["SLURMSKY_NOW"] = repr(start + 600)
    common = dict(
        state="TIMEOUT",
        nodelist="node1",
        submit_time=start,
        start_time=start,
        end_time=start + 67,
        time_limit=1,
        exit_code=0,
        exit_signal=0,
        reason="TimeLimit",
    )
    world.add(
        86,
        name="timeout-job",
        result={
            "state": "TIMEOUT",
            "signal": 9,
            "steps": [
                {
                    "id": "batch",
                    "state": "CANCELLED",
                    "signal": 9,
                    "start": start,
                    "end": start + 71,
                }
            ],
        },
        **common,
    )
    world.add(
        87,
        name="timeout-srun",
        result={
            "state": "TIMEOUT",
            "signal": 15,
            "steps": [
                {
                    "id": 0,
                    "name": "bash",
                    "state": "CANCELLED",
                    "signal": 15,
                    "start": start,
                    "end": start + 67,
                }
            ],
        },
        **common,
    )
    return world


def test_time_limit(timeouts):
    check(timeouts.run("sacct", "-j", "86,87"), "timeout-sacct-columns.txt")
    check(
        timeouts.run(
            "sacct",
            "-j",
            "86,87",
            "-P",
            "-o",
            "JobID,JobName,State,ExitCode,DerivedExitCode,Elapsed,Timelimit,Submit,Start,End",
        ),
        "timeout-sacct.txt",
    )


@pytest.fixture
def submitit(world):
    """Job 3 running, 4 pending, array 2 (tasks 0-5, %2) all pending."""
    world.add(3, state="RUNNING", nodelist="node1", start_time=NOW - 5)
    world.add(4, reason="Priority")
    world.add_array(
        2,
        {0: (5, {}), 1: (6, {}), 2: (7, {}), 3: (8, {}), 4: (9, {}), 5: (2, {})},
        array_throttle=2,
        reason="Priority",
    )
    return world


def test_submitit_poll(submitit):
    check(
        submitit.run(
            "sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", "2", "-j", "3", "-j", "4"
        ),
        "tool-submitit-sacct.txt",
    )


def test_submitit_array_poll(world):
    tasks = {
        0: (11, dict(state="RUNNING", nodelist="node2", start_time=NOW - 5)),
        1: (12, dict(state="RUNNING", nodelist="node2", start_time=NOW - 5)),
    }
    tasks.update({i: (11 + i, {}) for i in (2, 3, 4)})
    tasks[5] = (10, {})
    world.add_array(10, tasks, array_throttle=2, reason="JobArrayTaskLimit")
    check(
        world.run("sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", "10"),
        "tool-submitit-sacct-array-running.txt",
    )
    # Slurm's accounting lags (tool-submitit-sacct-array-later.txt); ours does not: a task
    # that ended shows its end at once, the rest stay one pending row.
    for own in (11, 12):
        world.conn.execute(
            "UPDATE jobs SET state='COMPLETED', end_time=?, exit_code=0, "
            "exit_signal=0 WHERE job_id=?",
            (NOW - 1, own),
        )
    out = world.run("sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", "10")
    cap = read_capture("tool-submitit-sacct-array-later.txt").stdout.splitlines()[:6]
    assert out.stdout.splitlines() == cap


@pytest.fixture
def snakemake(world):
    for job_id, st, code in ((7, "COMPLETED", 0), (8, "FAILED", 1)):
        world.add(
            job_id,
            name=UUID,
            state=st,
            nodelist="node1",
            start_time=NOW - 62,
            end_time=NOW - 60,
            submit_time=NOW - 63,
            exit_code=code,
            exit_signal=0,
            comment="rule_a",
            reason="None" if code == 0 else "NonZeroExitCode",
            result={
                "exit_code": code,
                # a step shorter than a sample: its CPU time only (from its rusage)
                "steps": [
                    {
                        "id": "batch",
                        "usage": [{"node": "node1", "task": 0, "user": job_id / 1000 - 0.005}],
                    }
                ],
            },
        )
    world.add(
        9,
        name="unrelated",
        state="COMPLETED",
        nodelist="node1",
        start_time=NOW - 62,
        end_time=NOW - 60,
        exit_code=0,
        exit_signal=0,
    )
    return world


def test_snakemake_queries(snakemake):
    check(
        snakemake.run(
            "sacct",
            "-X",
            "--parsable2",
            "--clusters",
            "all",
            "--noheader",
            "--format=JobIdRaw,State",
            "--starttime",
            "2026-11-20T03:00",
            "--endtime",
            "now",
            "--name",
            UUID,
        ),
        "tool-snakemake-sacct.txt",
    )
    check(
        snakemake.run(
            "sacct",
            f"--name={UUID}",
            "--parsable2",
            "--noheader",
            "--format=JobID,JobName,Comment,Elapsed,TotalCPU,NNodes,NCPUS,MaxRSS,ReqMem",
        ),
        "tool-snakemake-efficiency.txt",
    )
    check(
        snakemake.run("sacct", "-j", "7", "-n", "-X", "-o", "nodelist%-256"),
        "tool-snakemake-sacct-nodelist.txt",
        normalize=lambda t: t.replace("$\n", "\n"),
    )  # the capture went through cat -A
    check(
        snakemake.run("sacct", "-j", "8.batch", "--format=Reason", "--noheader"),
        "tool-snakemake-sacct-reason.txt",
    )


def test_state_filter_needs_an_end_time(acct):
    now = {"SLURMSKY_NOW": repr(S + 600)}
    empty = acct.run(
        "sacct", "-X", "-n", "-P", "-s", "CA,F,TO", "-o", "JobID,State", "-S", "now-1hour", env=now
    )
    assert (empty.stdout, empty.returncode) == ("", 0)
    listed = acct.run(
        "sacct",
        "-X",
        "-n",
        "-P",
        "-s",
        "CA,F,TO",
        "-o",
        "JobID,State",
        "-S",
        "now-1hour",
        "-E",
        "now",
        env=now,
    )
    assert listed.stdout == (
        "100|FAILED\n101|CANCELLED by 0\n102|CANCELLED by 0\n"
        "103|FAILED\n105_2|FAILED\n105_3|FAILED\n"
    )
    assert (
        acct.run("sacct", "-X", "-n", "-P", "--state=FAILED", "-o", "JobID,State", env=now).stdout
        == ""
    )


def test_default_window_starts_today(acct):
    today = {"SLURMSKY_NOW": repr(S + 600)}
    out = acct.run("sacct", "-X", "-n", "-P", "-o", "JobID", env=today).stdout.split()
    assert out[:3] == ["99", "100", "101"] and len(out) == 10
    tomorrow = {"SLURMSKY_NOW": repr(S + 86400)}
    assert acct.run("sacct", "-X", "-n", "-P", "-o", "JobID", env=tomorrow).stdout == ""
    window = acct.run(
        "sacct",
        "-X",
        "-n",
        "-P",
        "-o",
        "JobID",
        "-S",
        "2026-11-22T03:00",
        "-E",
        "2026-11-22T03:05",
        env=tomorrow,
    ).stdout.split()
    assert len(window) == 10


def test_fields_errors_and_widths(acct):
    bad = acct.run("sacct", "-o", "JobID,Bogus")
    assert (bad.returncode, bad.stderr) == (1, 'sacct: error: Invalid field requested: "Bogus"\n')
    out = acct.run("sacct", "-j", "99", "-X", "-o", "jobid%-5,jobname%3,state%-11")
    assert out.stdout.splitlines() == [
        "JobID Job State       ",
        "----- --- ----------- ",
        "99     ok COMPLETED   ",
    ]
    out = acct.run("sacct", "-j", "102", "-X", "-n", "-o", "state")
    assert out.stdout == "CANCELLED+ \n"
    bogus = acct.run("sacct", "--bogus")
    assert bogus.returncode == 1 and "unrecognized option '--bogus'" in bogus.stderr


def test_users_and_visibility(acct):
    acct.add(
        120,
        name="rootjob",
        state="COMPLETED",
        nodelist="node1",
        start_time=S,
        end_time=S + 1,
        submit_time=S,
    )
    every = acct.run("sacct", "-X", "-n", "-P", "-o", "User", "-j", ALL + ",120").stdout
    assert sorted(set(every.split())) == ["peeruser", "root"]
    mine = acct.run(
        "sacct", "-X", "-n", "-P", "-o", "JobID", "-u", "root", "-j", ALL + ",120"
    ).stdout
    assert mine == "120\n"


@needs_another_user
def test_nonroot_sees_only_own_jobs_unless_all():
    w = shared_world()
    try:
        w.add(
            1,
            name="theirs",
            state="COMPLETED",
            nodelist="node1",
            start_time=NOW - 5,
            end_time=NOW - 4,
            submit_time=NOW - 6,
        )
        w.add(
            2,
            name="mine",
            user="nobody",
            uid=NOBODY,
            gid=NOBODY,
            state="COMPLETED",
            nodelist="node1",
            start_time=NOW - 5,
            end_time=NOW - 4,
            submit_time=NOW - 6,
        )
        share(w)
        own = w.run("sacct", "-X", "-n", "-P", "-o", "JobID,User", user=NOBODY)
        assert (own.stdout, own.stderr) == ("2|nobody\n", "")
        every = w.run("sacct", "-a", "-X", "-n", "-P", "-o", "User", user=NOBODY)
        assert every.stdout == "root\nnobody\n"
    finally:
        w.close()


def test_end_to_end_exit_codes(cluster):
    ok = cluster.sbatch("-J", "ok", "--wrap", "true")
    bad = cluster.sbatch("-J", "fail3", "--wrap", "exit 3")
    cluster.wait_done(ok, bad)
    out = cluster.run(
        "sacct", "-j", f"{ok},{bad}", "--format=JobID,JobName,State,ExitCode", "--parsable2"
    )
    assert out.stdout == (
        f"JobID|JobName|State|ExitCode\n{ok}|ok|COMPLETED|0:0\n"
        f"{ok}.batch|batch|COMPLETED|0:0\n{bad}|fail3|FAILED|3:0\n"
        f"{bad}.batch|batch|FAILED|3:0\n"
    )
    columns = cluster.run("sacct", "-j", str(bad), "-X")
    assert columns.stdout.splitlines()[2].split() == [
        str(bad),
        "fail3",
        "local",
        "1",
        "FAILED",
        "3:0",
    ]
    failed = cluster.run("squeue", "-h", "-t", "all", "-j", str(bad), "-o", "%t %R")
    assert failed.stdout == "F (NonZeroExitCode)\n"


def test_time_of_day_looks_back(acct):
    # at 03:11:27, "-S 03:00" is today's 03:00 (Slurm's parse_time for the past), so all ten
    out = acct.run("sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "03:00")
    assert len(out.stdout.split()) == 10
    out = acct.run("sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "03:05")
    assert out.stdout == ""
    # real sacct 22.05 (peer): parse_time's own line, exit 1; an empty time is the epoch
    bad = [acct.run("sacct", opt, text) for opt, text in (("-S", "garbage"), ("-E", "12:xx"))]
    assert [(b.stdout, b.stderr, b.returncode) for b in bad] == [
        ("", "Invalid time specification (pos=0): garbage\n", 1),
        ("", "Invalid time specification (pos=3): 12:xx\n", 1),
    ]
    out = acct.run("sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "")
    assert len(out.stdout.split()) == 10


def test_end_now_includes_jobs_that_ended_this_second(world):
    second = float(int(NOW))
    world.add(
        5,
        name="just-failed",
        state="FAILED",
        nodelist="node1",
        start_time=second - 2,
        end_time=second + 0.5,
        submit_time=second - 3,
        exit_code=5,
        exit_signal=0,
    )
    out = world.run(
        "sacct",
        "-X",
        "-n",
        "-P",
        "-s",
        "F",
        "-S",
        "now-1hours",
        "-E",
        "now",
        "-o",
        "JobName,State",
        env={"SLURMSKY_NOW": repr(second + 0.9)},
    )
    assert out.stdout == "just-failed|FAILED\n"


def test_duplicates_keep_each_run_of_a_requeued_job(world):
    """sacct -D lists every run of a job requeued when its node failed, as the peer's job 1059
    (exclusive on node3, `scontrol update nodename=node3 state=down` while it ran): the lost
    run NODE_FAIL with its batch step CANCELLED and no code, then the pending rerun; sacct
    without -D the last run only."""
    from slurmsky.core import state, transitions

    ran, lost = epoch("2026-11-27T19:47:24"), epoch("2026-11-27T19:47:25")
    step = dict(id=0, name="true", state="COMPLETED", exit_code=0, signal=0, nodes="node3")
    world.env["SLURMSKY_NOW"] = repr(lost + 60)
    world.add(
        1059,
        name="nfjob",
        state="RUNNING",
        num_cpus=4,
        cpus_per_node=[4],
        nodelist="node3",
        submit_time=epoch("2026-11-27T19:42:40"),
        start_time=ran,
        result={"steps": [dict(step, start=ran, end=lost)]},
    )
    job = state.get_job(world.conn, 1059)
    with state.write(world.conn):
        transitions.keep_run(world.conn, job, lost, job.result, ended="NODE_FAIL")
        state.update_job(world.conn, 1059, **transitions.requeued_fields(job, lost))
    check(world.run("sacct", "-D", "-j", "1059"), "sacct-duplicates-node-fail.txt")
    check(world.run("sacct", "-j", "1059"), "sacct-duplicates-node-fail-last.txt")
    fields = "JobID,State,ExitCode,DerivedExitCode,Submit,Start,End,NodeList"
    out = world.run("sacct", "-D", "-P", "-j", "1059", "-o", fields)
    check(out, "sacct-duplicates-node-fail-P.txt")
    assert world.run("sacct", "--duplicates", "-P", "-j", "1059", "-o", fields).stdout == out.stdout


def test_a_step_holds_the_jobs_cpus_on_its_nodes_unless_exact(cluster):
    """The peer: a 1-task step of a 2-CPU job has AllocCPUS 2 (Slurm 22.05's steps take the
    whole allocation on their nodes); an --exact one its tasks' CPUs."""
    job = cluster.sbatch("-N1", "-n2", "--wrap", "srun -n1 true; srun -n1 --exact true")
    cluster.wait_done(job)
    out = cluster.run("sacct", "-j", str(job), "-n", "-P", "-o", "JobID,NTasks,AllocCPUS")
    assert out.stdout.splitlines()[-2:] == [f"{job}.0|1|2", f"{job}.1|1|1"]
