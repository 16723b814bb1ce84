"""srun/salloc --immediate as Slurm 22.05's (captures: srun-immediate*, salloc-immediate*,
immediate-bad-*, README-deadline-nice.md): bare -I is one second, which slurmctld takes as
"now or never": a held job fails at once (Job dependency problem), one that cannot start at
once fails (Requested nodes are busy), both FAILED with exit 1; -I N waits N s, then cancels."""

from __future__ import annotations

import re

import pytest
from captures import read_capture
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.parse.scalars import SubmitError, parse_immediate


def _ids(text: str) -> str:
    return re.sub(r"\b(job|allocation) \d+", r"\1 N", text)


@pytest.mark.parametrize(
    "capture,args",
    [
        ("srun-immediate-hold.txt", None),
        ("salloc-immediate-hold.txt", None),
        ("immediate-bad-srun.txt", None),
        ("immediate-bad-salloc.txt", None),
        ("srun-immediate5-hold.txt", ["srun", "-I2", "-H", "true"]),  # 2 s, not 5
    ],
)
def test_matches_the_peer(cluster, capture, args):
    real = read_capture(capture)
    command, *rest = args or real.command.split()
    got = cluster.run(command, *rest)
    assert (got.stdout, _ids(got.stderr), got.returncode) == (
        real.stdout,
        _ids(real.stderr),
        real.exit,
    )
    if "Invalid numeric" in real.stderr:
        assert cluster.jobs() == []
    elif "-I2" in rest:
        assert cluster.jobs() == [(1, "CANCELLED", 0, 0, "JobHeldUser")]
    else:  # the id is taken, as on the peer
        assert cluster.jobs() == [(1, "FAILED", 1, 0, "None")]


def test_busy_nodes(cluster):
    blocker = cluster.sbatch("-N4", "--exclusive", "--wrap", "sleep 120")
    try:
        cluster.wait_for(lambda: cluster.job(blocker)[1] == "RUNNING", 30, "the blocker to run")
        for command, args, capture in [
            ("srun", ["-I"], "srun-immediate-busy.txt"),
            ("salloc", ["-I"], "salloc-immediate-busy.txt"),
            ("srun", ["-I2"], "srun-immediate2-busy.txt"),
        ]:
            real = read_capture(capture)
            got = cluster.run(command, *args, "true")
            assert (got.stdout, _ids(got.stderr), got.returncode) == ("", _ids(real.stderr), 1)
        rows = cluster.jobs("job_id > ?", blocker)
        assert [r[1:4] for r in rows] == [("FAILED", 1, 0), ("FAILED", 1, 0), ("CANCELLED", 0, 0)]
    finally:
        cluster.run("scancel", str(blocker))
    assert cluster.wait_done(blocker, timeout=30)[0][1] == "CANCELLED"


def test_immediate_with_room_runs(cluster):
    for command in ("srun", "salloc"):
        got = cluster.run(command, "-I", "true")
        assert got.returncode == 0, got.stderr


@given(st.integers(0, 2**62))
def test_immediate_seconds(n):
    assert parse_immediate(str(n), "--immediate") == n


@given(st.text(max_size=12))
def test_immediate_refuses_what_is_not_a_count(text):
    if text == "" or re.fullmatch(r"[ \t\n\v\f\r]*(\+?[0-9]+|-0+)", text):
        assert parse_immediate(text, "--immediate") == int(text or "0")
        return
    with pytest.raises(SubmitError) as raised:
        parse_immediate(text, "--immediate")
    assert str(raised.value) == f'Invalid numeric value "{text}" for immediate.'
