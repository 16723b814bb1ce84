"""sattach (issue 52): attached to a running local step, it streams what the tasks write from
then on until the step ends, labelled and filtered as the peer's (README-sattach-sbcast.md);
its errors are the peer's (tests/fixtures/slurm-captures/sattach-*)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from captures import assert_as_the_peer, read_capture
from conftest import BIN
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.commands.sattach import parse_step

NO_JOB = [
    "sattach-noargs.txt",
    "sattach-two.txt",
    "sattach-no-step.txt",
    "sattach-bad-text.txt",
    "sattach-bad-job.txt",
    "sattach-bad-filter-text.txt",
    "sattach-bogus.txt",
    "sattach-version.txt",
]


@pytest.mark.parametrize("capture", NO_JOB, ids=str)
def test_answers_without_a_running_step_are_the_peers(cluster, capture):
    assert_as_the_peer(cluster, capture)


@given(st.integers(0, 10**12), st.integers(0, 10**9))
def test_a_step_id_is_job_dot_step(job, step):
    assert parse_step(f"{job}.{step}") == (job, str(step))
    assert parse_step(f"{job}.batch") == (job, "batch")


@given(st.text(max_size=12))
def test_anything_else_is_refused(text):
    if re.fullmatch(r"[0-9]+\.([0-9]+|batch)", text):
        return
    with pytest.raises(ValueError):
        parse_step(text)


# Two tasks on two nodes write a numbered line on each stream every 0.1 s until `stop`
# exists (bounded: 60 s), then a last line each.
STEP = (
    "srun -N2 -n2 bash -c 'for i in $(seq 600); do [ -e stop ] && break; "
    "echo tick.$i.$SLURM_PROCID; echo etick.$i.$SLURM_PROCID >&2; sleep 0.1; done; "
    "echo last.$SLURM_PROCID; echo elast.$SLURM_PROCID >&2'"
)


def _attach(cluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(BIN / "sattach"), *args],
        cwd=cluster.cwd,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_attached_it_streams_labels_and_filters_until_the_step_ends(cluster):
    job = cluster.sbatch("-N2", "-n2", "-o", "out", "--wrap", STEP)
    taps = cluster.state / "jobs" / str(job) / "attach" / "0"
    attached: list[subprocess.Popen] = []
    try:
        cluster.wait_for(lambda: (taps / "layout.json").exists(), what="the step to run")
        layout = cluster.run("sattach", "--layout", f"{job}.0")
        cap = read_capture("sattach-layout.txt")
        ours = cap.stdout.replace("node[2-3]", "127.0.0.[1-2]")
        ours = ours.replace("(node2)", "(127.0.0.1)").replace("(node3)", "(127.0.0.2)")
        assert (layout.stdout, layout.stderr, layout.returncode) == (ours, "", 0)
        missing = cluster.run("sattach", f"{job}.5")
        cap = read_capture("sattach-missing-step.txt")
        assert (missing.stdout, missing.stderr, missing.returncode) == (
            cap.stdout,
            cap.stderr,
            cap.exit,
        )
        attached = [
            _attach(cluster, f"{job}.0"),
            _attach(cluster, "-l", f"{job}.0"),
            _attach(cluster, "--output-filter=1", "--error-filter=0", f"{job}.0"),
        ]
        cluster.wait_for(
            lambda: len([p for p in taps.iterdir() if p.name.isdigit()]) == 3, what="3 taps"
        )
        time.sleep(1.5)  # srun finds them (every 0.5 s) and a few lines go through
    finally:
        (cluster.cwd / "stop").touch()
    results = [p.communicate(timeout=120) + (p.returncode,) for p in attached]
    cluster.wait_done(job)
    (plain, plain_err, rc0), (labelled, labelled_err, rc1), (out1, err0, rc2) = results
    assert (rc0, rc1, rc2) == (0, 0, 0)
    line = r"(tick\.\d+|last)\.[01]"
    assert re.fullmatch(rf"({line}\n)+", plain) and re.fullmatch(rf"(e{line}\n)+", plain_err)
    assert {"last.0", "last.1"} <= set(plain.splitlines())
    assert {"elast.0", "elast.1"} <= set(plain_err.splitlines())
    assert re.fullmatch(r"((\d): (tick\.\d+|last)\.\2\n)+", labelled)  # the label: its task
    assert re.fullmatch(r"((\d): e(tick\.\d+|last)\.\2\n)+", labelled_err)
    assert {"0: last.0", "1: last.1"} <= set(labelled.splitlines())
    assert re.fullmatch(r"((tick\.\d+|last)\.1\n)+", out1)  # only task 1's stdout
    assert re.fullmatch(r"(e(tick\.\d+|last)\.0\n)+", err0)  # only task 0's stderr
    assert not taps.exists()  # the step's end removed its folder, and every tap with it
    ended = cluster.run("sattach", f"{job}.0")
    cap = read_capture("sattach-finished-step.txt")
    assert (ended.stdout, ended.stderr, ended.returncode) == (cap.stdout, cap.stderr, cap.exit)


def test_a_pending_job_and_the_batch_step(cluster):
    held = cluster.sbatch("-H", "--wrap", "true")
    for args in ((f"{held}.0",), ("--layout", f"{held}.0")):
        out = cluster.run("sattach", *args)
        cap = read_capture("sattach-pending-job.txt")
        assert (out.stdout, out.stderr, out.returncode) == (cap.stdout, cap.stderr, cap.exit)
    cluster.run("scancel", str(held))
    job = cluster.sbatch("--wrap", "for i in $(seq 600); do [ -e go ] && exit; sleep 0.1; done")
    try:
        cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", what="the job to run")
        batch = cluster.run("sattach", f"{job}.batch")  # the peer's 22.05 fails on it too
        assert (batch.stdout, batch.returncode) == ("", 1)
        assert batch.stderr == "sattach: error: Could not get job step info: " + (
            "Invalid job id specified\n"
        )
    finally:
        (cluster.cwd / "go").touch()
    cluster.wait_done(job)


@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(0, 2**32 - 1), st.binary())),
    st.lists(st.integers(1, 64)),
)
def test_frames_come_back_whole_however_the_bytes_are_cut(sent, cuts):
    """What srun appends to a tap, read back in pieces of any size (runtime/attach.py)."""
    from slurmsky.runtime import attach

    data = b"".join(attach.HEADER.pack(s, t, len(d)) + d for s, t, d in sent)
    got, buffer, pos = [], b"", 0
    for size in [*cuts, len(data)]:
        found, buffer = attach.frames(buffer + data[pos : pos + size])
        got += found
        pos += size
    assert got == sent and buffer == b""


def test_on_the_sky_backend_it_is_refused_naming_why(cluster):
    """No channel from here reaches a managed job's steps."""
    import os

    from builders import job_row

    from slurmsky import backends
    from slurmsky.core import state

    conn = state.connect(cluster.env)
    row = job_row(1, uid=os.getuid(), state="RUNNING", executor="sky", nodelist="n1")
    state.add_submission(conn, 1, {}, None, [row])
    conn.close()
    out = cluster.run("sattach", "1.0")
    why = backends.get("sky").unsupported[backends.Feature.STEP_IO]
    assert (out.stdout, out.returncode) == ("", 1)
    assert out.stderr == (
        f"sattach: error: the job's nodes cannot be reached from here on the sky backend: {why}\n"
    )
