"""sbcast (issue 52): a file copied to a running local job's nodes (this machine's filesystem:
written once), with the peer's errors and exit codes (tests/fixtures/slurm-captures/sbcast-*;
the in-job ones from a 2-node job on the peer's shared filesystem)."""

from __future__ import annotations

import os
import stat

import pytest
from captures import assert_as_the_peer, read_capture
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.commands.sbcast import job_text

NO_JOB = [
    "sbcast-noargs.txt",
    "sbcast-one-arg.txt",
    "sbcast-no-job.txt",
    "sbcast-no-job-missing-source.txt",
    "sbcast-bad-job.txt",
    "sbcast-bad-jobid-text.txt",
    "sbcast-missing-source.txt",
    "sbcast-source-dir.txt",
    "sbcast-bogus.txt",
    "sbcast-version.txt",
]


@pytest.mark.parametrize("capture", NO_JOB, ids=str)
def test_answers_without_a_running_job_are_the_peers(cluster, capture):
    assert_as_the_peer(cluster, capture)


@given(st.integers(0, 10**9), st.integers(0, 10**6))
def test_job_text_reads_job_and_step(job, step):
    assert job_text(str(job)) == (str(job), job, None)
    assert job_text(f"{job}.{step}") == (f"{job}.{step}", job, step)
    assert job_text(f"{job}+1") == (str(job), job, None)


@given(st.text(st.characters(blacklist_characters="0123456789."), min_size=1))
def test_what_is_no_number_is_job_0(text):
    assert job_text(text)[:2] == ("0", 0)


def _peer_lines(capture: str, nodes: list[str], job_id: int) -> tuple[set[str], int]:
    """The capture's error lines with its nodes (node2, node3) and job 6 renamed ours."""
    cap = read_capture(capture)
    text = cap.stderr.replace("(node2)", f"({nodes[0]})").replace("(node3)", f"({nodes[1]})")
    return set(text.replace("job 6.", f"job {job_id}.").splitlines()), cap.exit


SCRIPT = """#!/bin/bash
t() { "$@" 2>"err.$n"; echo $? >"rc.$n"; n=$((n+1)); }
n=0
t sbcast src dst
t sbcast src dst
t sbcast -f src dst
t sbcast -p -C -F 2 -f src dstp
t sbcast src /nonexistentdir/x
t sbcast -j $SLURM_JOB_ID.0 src dst.s
t sbcast /nonexistent dst.x
"""


def test_in_a_job_it_copies_once_and_answers_as_the_peer(cluster):
    src = cluster.cwd / "src"
    src.write_text("payload\n")
    src.chmod(0o640)
    os.utime(src, (1577836800, 1577836800))
    job = cluster.sbatch("-N2", "-o", "out", cluster.script("s.sh", SCRIPT))
    cluster.wait_done(job)
    assert cluster.job(job)[1] == "COMPLETED", (cluster.cwd / "out").read_text()
    nodes = ["127.0.0.1", "127.0.0.2"]

    def said(n: int) -> tuple[set[str], int]:
        err = (cluster.cwd / f"err.{n}").read_text()
        return set(err.splitlines()), int((cluster.cwd / f"rc.{n}").read_text())

    assert said(0) == (set(), 0)  # written once for both nodes: no race, no File exists
    assert said(1) == _peer_lines("sbcast-in-job-exists.txt", nodes, job)
    assert said(2) == _peer_lines("sbcast-in-job-force.txt", nodes, job)
    assert said(3) == _peer_lines("sbcast-in-job-options.txt", nodes, job)
    assert said(4) == _peer_lines("sbcast-in-job-no-dir.txt", nodes, job)
    assert said(5) == _peer_lines("sbcast-in-job-missing-step.txt", nodes, job)
    assert said(6) == _peer_lines("sbcast-in-job-missing-source.txt", nodes, job)
    dst, dstp = cluster.cwd / "dst", cluster.cwd / "dstp"
    assert dst.read_text() == dstp.read_text() == "payload\n"
    assert stat.S_IMODE(dst.stat().st_mode) == stat.S_IMODE(dstp.stat().st_mode) == 0o640
    assert dstp.stat().st_mtime == 1577836800 != dst.stat().st_mtime  # -p: the source's times


def test_from_outside_a_job_by_id_pending_running_and_ended(cluster):
    (cluster.cwd / "src").write_text("x\n")
    held = cluster.sbatch("-H", "--wrap", "true")
    pending = cluster.run("sbcast", "-j", str(held), "src", "dst")
    cap = read_capture("sbcast-pending-job.txt")
    assert (pending.stderr, pending.returncode) == (
        cap.stderr.replace("job 10 ", f"job {held} "),
        cap.exit,
    )
    cluster.run("scancel", str(held))
    job = cluster.sbatch("--wrap", "for i in $(seq 600); do [ -e go ] && exit; sleep 0.1; done")
    try:
        cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", what="the job to run")
        out = cluster.run("sbcast", "--jobid", str(job), "src", "./dst")
        assert (out.stdout, out.stderr, out.returncode) == ("", "", 0)
        assert (cluster.cwd / "dst").read_text() == "x\n"
    finally:
        (cluster.cwd / "go").touch()
    cluster.wait_done(job)
    ended = cluster.run("sbcast", "-j", str(job), "src", "dst2")
    cap = read_capture("sbcast-finished-job.txt")
    assert (ended.stderr, ended.returncode) == (
        cap.stderr.replace("job 6 ", f"job {job} "),
        cap.exit,
    )
    assert not (cluster.cwd / "dst2").exists()


def test_on_the_sky_backend_it_is_refused_naming_why(cluster):
    """A running managed job's nodes share no filesystem with this machine."""
    from builders import job_row

    from slurmsky import backends
    from slurmsky.core import state

    conn = state.connect(cluster.env)
    row = job_row(1, uid=os.getuid(), state="RUNNING", executor="sky", nodelist="n1")
    state.add_submission(conn, 1, {}, None, [row])
    conn.close()
    (cluster.cwd / "src").write_text("x\n")
    out = cluster.run("sbcast", "-j", "1", "src", "dst")
    why = backends.get("sky").unsupported[backends.Feature.STEP_IO]
    assert (out.stdout, out.returncode) == ("", 1)
    assert out.stderr == (
        f"sbcast: error: the job's nodes cannot be reached from here on the sky backend: {why}\n"
    )
    assert not (cluster.cwd / "dst").exists()
