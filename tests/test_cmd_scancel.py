"""scancel as a subprocess on hand-made job state, against the real-Slurm captures.

Pending jobs end CANCELLED at once; started ones are marked for the agent (COMPLETING,
kill_action=cancel), which a stand-in FIFO reader receives here: no job process exists.
The end-to-end test at the bottom cancels a real job through sbatch and the agent.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from captures import read_capture
from conftest import BIN
from test_formats import (
    NOBODY,
    NOW,
    T0,
    check,
    needs_another_user,
    share,
    shared_world,
    world,  # noqa: F401 (fixture)
)


def with_rc(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(
        result.args, 0, result.stdout + f"rc={result.returncode}\n", result.stderr
    )


def joined(*results: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(
        [],
        results[-1].returncode,
        "".join(r.stdout for r in results),
        "".join(r.stderr for r in results),
    )


@pytest.fixture
def peer(world):
    world.peer_queue()
    world.add(
        64,
        name="done-ok",
        state="COMPLETED",
        nodelist="node1",
        start_time=NOW - 60,
        end_time=NOW - 59,
        exit_code=0,
        exit_signal=0,
    )
    return world


def row(w, job_id):
    return w.conn.execute(
        "SELECT state, kill_action, cancelled_by, reason FROM jobs WHERE job_id = ?", (job_id,)
    ).fetchone()


def test_errors(peer):
    check(peer.run("scancel"), "scancel-noargs.txt")
    check(peer.run("scancel", "abc"), "scancel-garbage.txt")
    check(
        joined(
            with_rc(peer.run("scancel", "999999")), with_rc(peer.run("scancel", "-v", "999999"))
        ),
        "scancel-unknown.txt",
    )
    check(
        joined(with_rc(peer.run("scancel", "64")), with_rc(peer.run("scancel", "-v", "64"))),
        "scancel-completed.txt",
    )
    check(
        joined(with_rc(peer.run("scancel", "69_99")), with_rc(peer.run("scancel", "-v", "69_99"))),
        "scancel-unknown-array-task.txt",
    )
    check(
        joined(
            with_rc(peer.run("scancel", "--signal=USR1", "999999")),
            with_rc(peer.run("scancel", "-s", "USR1", "64")),
        ),
        "scancel-unknown-with-signal.txt",
    )
    out = peer.run("scancel", "--bogus")
    assert out.returncode == 1 and out.stderr.startswith("scancel: unrecognized option")


def _remaining(w):
    return w.run("squeue", "-h", "-j", "69", "-r", "-o", "%i %T %r")


def test_array_task_and_range(peer):
    # Slurm lists the two running tasks in its own order (69_2 first): compare as sets
    def sorted_lines(text):
        return "\n".join(sorted(text.splitlines()))

    check(
        joined(with_rc(peer.run("scancel", "69_3")), _remaining(peer)),
        "scancel-array-task.txt",
        normalize=sorted_lines,
    )
    check(
        joined(with_rc(peer.run("scancel", "69_[4-5]")), _remaining(peer)),
        "scancel-array-range.txt",
        normalize=sorted_lines,
    )
    # pending elements cancelled by index leave the array: nothing lists or accounts them
    assert [row(peer, job_id) for job_id in (80, 81, 82)] == [None, None, None]
    assert row(peer, 69) == ("PENDING", None, None, "JobArrayTaskLimit")


def test_last_pending_tasks_cancel_the_array_record(world):
    """Real Slurm 22.05 (the peer): `scancel 7_[2-3]` of a held array 7_[1-3] leaves `7_1
    PENDING`; `scancel 7_1` then cancels the array's pending record, listed by its id alone."""
    world.add_array(7, {1: (8, {}), 2: (9, {}), 3: (7, {})}, held="user", reason="JobHeldUser")
    out = world.run("scancel", "7_[2-3]")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert (
        world.run("squeue", "-h", "-r", "-t", "all", "-j", "7", "-o", "%i %A %T").stdout
        == "7_1 7 PENDING\n"
    )
    assert world.run("scancel", "7_1").returncode == 0
    for argv in (("-r",), ()):
        out = world.run("squeue", "-h", *argv, "-t", "all", "-j", "7", "-o", "%i %A %T")
        assert out.stdout == "7 7 CANCELLED\n"
    assert [row(world, job_id)[0] if row(world, job_id) else None for job_id in (7, 8, 9)] == [
        "CANCELLED",
        None,
        None,
    ]


def test_cancelled_task_leaves_the_pending_record(world):
    """The highest element is cancelled by index: it leaves the array's pending record,
    which keeps the array's id (one row: its elements are not rows until they start)."""
    world.add_array(7, {1: (8, {}), 2: (9, {}), 3: (7, {})}, held="user", reason="JobHeldUser")
    assert world.run("scancel", "7_3").returncode == 0
    rows = world.conn.execute(
        "SELECT job_id, array_task_id, array_pending FROM jobs WHERE array_job_id = 7"
    ).fetchall()
    assert rows == [(7, None, "1-2")]
    assert world.run("scancel", "7").returncode == 0
    out = world.run("squeue", "-h", "-r", "-t", "all", "-j", "7", "-o", "%i %T")
    assert out.stdout == "7_1 CANCELLED\n7_2 CANCELLED\n"


def test_by_name_keeps_the_reason(peer):
    check(
        joined(
            with_rc(peer.run("scancel", "-n", "held")),
            peer.run("squeue", "-h", "-n", "held", "-t", "all", "-o", "%i %T %r"),
        ),
        "scancel-by-name.txt",
    )


def test_running_job_is_handed_to_the_agent(peer):
    out = peer.run("scancel", "67")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert row(peer, 67) == ("COMPLETING", "cancel", 0, "None")
    # the agent was woken: a byte is waiting in its FIFO
    import os

    assert os.read(peer.fifo_fd, 64)
    assert peer.run("squeue", "-h", "-j", "67", "-o", "%i %T").stdout == "67 COMPLETING\n"


def test_state_filter(world):
    for job_id, st in ((72, "PENDING"), (74, "PENDING"), (75, "PENDING"), (76, "PENDING")):
        world.add(job_id, state=st)
    world.add(73, state="RUNNING", nodelist="node2", start_time=NOW - 5)
    world.add(71, state="RUNNING", nodelist="node3", partition="gpu", start_time=NOW - 5)
    before = world.run("squeue", "-h", "-o", "%i %t")
    cancel = with_rc(world.run("scancel", "--state=PENDING"))
    after = world.run("squeue", "-h", "-o", "%i %t")
    check(joined(before, cancel, after), "scancel-state-pending.txt")


def test_by_user(world):
    world.add(81, user="peeruser", uid=1001, gid=1001, held="user", reason="JobHeldUser")
    world.add(73, state="RUNNING", nodelist="node2", start_time=NOW - 5)
    world.add(
        80,
        user="peeruser",
        uid=1001,
        gid=1001,
        state="RUNNING",
        nodelist="node2",
        start_time=NOW - 5,
    )
    world.add(71, state="RUNNING", nodelist="node3", partition="gpu", start_time=NOW - 5)
    before = world.run("squeue", "-h", "-o", "%i %t %u")
    cancel = with_rc(world.run("scancel", "-u", "peeruser"))
    # the agent would end 80 (COMPLETING now); do what it does
    world.conn.execute("UPDATE jobs SET state='CANCELLED', end_time=? WHERE job_id=80", (NOW,))
    after = world.run("squeue", "-h", "-o", "%i %t %u")
    cap = read_capture("scancel-user.txt")
    out = joined(before, cancel, after)
    assert out.stdout == "".join(cap.stdout.splitlines(True)[2:])  # after the two sbatch lines
    assert row(world, 81)[0] == "CANCELLED"


def test_signals(peer):
    peer.add(3, state="RUNNING", nodelist="node1", start_time=NOW - 5)
    check(
        joined(
            with_rc(peer.run("scancel", "3", "--signal", "SIGTERM")),
            with_rc(peer.run("scancel", "3", "--signal", "USR2")),
            peer.run("squeue", "-h", "-j", "3", "-o", "%i %T"),
        ),
        "tool-submitit-scancel-signal.txt",
    )
    assert peer.run("scancel", "--signal=USR1", "--batch", "67").returncode == 0
    assert peer.run("scancel", "--signal=USR1", "--full", "68").returncode == 0
    assert peer.run("scancel", "-s", "10", "67").returncode == 0
    signals = peer.conn.execute("SELECT job_id, signal, scope FROM signals ORDER BY id").fetchall()
    assert signals == [
        (3, 15, "steps"),
        (3, 12, "steps"),
        (67, 10, "batch"),
        (68, 10, "full"),
        (67, 10, "steps"),
    ]
    out = peer.run("scancel", "-s", "NOPE", "67")
    assert (out.returncode, out.stderr) == (1, "scancel: error: Invalid job signal: NOPE\n")
    # SIGKILL to a pending job is an error, not a cancel
    out = peer.run("scancel", "--signal=KILL", "72")
    assert out.returncode == 1 and "Kill job error on job id 72" in out.stderr
    assert row(peer, 72)[0] == "PENDING"


def test_signal_to_a_pending_job_is_tried_again_once_it_runs(peer):
    """Any other signal to a pending job: slurmctld answers `try again later`, and scancel
    does, 5 s later (then 6 s, ... up to 10 tries), as scancel.c's _cancel_job_id: the job
    that started meanwhile gets it (atf test_signal_forwarding's first `scancel --signal`
    comes right after sbatch). -v says each retry."""
    proc = subprocess.Popen(
        [sys.executable, str(BIN / "scancel"), "-v", "--signal=USR1", "72"],
        cwd=peer.tmp,
        env=peer.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        assert proc.poll() is None  # waiting to try again
        peer.conn.execute("UPDATE jobs SET state = 'RUNNING' WHERE job_id = 72")
        peer.conn.commit()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, out) == (0, "")
    assert err == (  # the peer's, plugin lines first
        "scancel: select/cons_tres: common_init: select/cons_tres loaded\n"
        "scancel: select/cray_aries: init: Cray/Aries node selection plugin loaded\n"
        "scancel: select/linear: init: Linear node selection plugin loaded with argument 20\n"
        "scancel: select/cons_res: common_init: select/cons_res loaded\n"
        "scancel: Signal 10 to job 72\nscancel: Job is in transitional state, retrying\n"
    )
    assert peer.conn.execute("SELECT job_id, signal, scope FROM signals").fetchall() == [
        (72, 10, "steps")
    ]


def test_clusters_accepted(peer):
    check(
        joined(
            with_rc(peer.run("scancel", "72", "--clusters=all")),
            with_rc(peer.run("scancel", "999999", "--clusters=all")),
        ),
        "tool-snakemake-scancel-clusters-all.txt",
    )
    assert row(peer, 72)[0] == "CANCELLED"


@needs_another_user
def test_other_users_job_is_denied_and_me_is_mine():
    w = shared_world()
    try:
        w.add(71, name="gpu-job", state="RUNNING", nodelist="node3", start_time=T0)
        w.add(
            77,
            name="user-pend",
            user="nobody",
            uid=NOBODY,
            gid=NOBODY,
            state="RUNNING",
            nodelist="node4",
            start_time=T0,
        )
        w.add(78, name="mine-pending", user="nobody", uid=NOBODY, gid=NOBODY)
        share(w)
        check(w.run("scancel", "71", user=NOBODY), "scancel-permission-denied.txt")
        assert row(w, 71)[0] == "RUNNING"
        mine = w.run("squeue", "-h", "--me", "-o", "%i", user=NOBODY)
        assert mine.stdout == "78\n77\n"
        out = w.run("scancel", "--me", user=NOBODY)
        assert (out.returncode, out.stderr) == (0, "")
        assert [row(w, i)[0] for i in (71, 77, 78)] == ["RUNNING", "COMPLETING", "CANCELLED"]
    finally:
        w.close()


def test_end_to_end_cancel_through_the_agent(cluster):
    """A real job: sbatch, scancel while it runs, the agent ends it; sacct shows it."""
    job = cluster.sbatch("--wrap", "sleep 300")
    cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", 60, "the job to start")
    out = cluster.run("squeue", "-h", "-j", str(job), "-o", "%i %T")
    assert out.stdout == f"{job} RUNNING\n"
    out = cluster.run("scancel", str(job))
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    cluster.wait_done(job, timeout=60)
    acct = cluster.run("sacct", "-j", str(job), "-P", "-o", "JobID,State,ExitCode")
    import os

    assert acct.stdout.splitlines()[:2] == [
        "JobID|State|ExitCode",
        f"{job}|CANCELLED by {os.getuid()}|0:0",
    ]
    assert acct.stdout.splitlines()[2].startswith(f"{job}.batch|CANCELLED|0:")
    gone = cluster.run("squeue", "-h", "-j", str(job))
    assert (gone.stdout, gone.returncode) == ("", 0)  # finished: shown with -t all only
    shown = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%i %T")
    assert shown.stdout == f"{job} CANCELLED\n"
