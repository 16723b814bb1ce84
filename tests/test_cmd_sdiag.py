"""sdiag (issue 52): Slurm 22.05's report layout (the peer's capture, sdiag-report.txt) with
slurmsky's own figures, its errors and `-r` as the peer answers them."""

from __future__ import annotations

import re

import pytest
from captures import assert_as_the_peer, read_capture

# The peer's report with its figures masked: its RPC rows (slurmsky has no RPCs) left out.
STAMP = re.compile(r"\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} \d{4} \(\d+\)")


def _shape(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not re.match(r"\t\S+\s+\(\s*\d+\)", line)]
    return [re.sub(r"\d+", "N", STAMP.sub("STAMP", line)) for line in lines]


def test_the_report_has_slurms_layout(cluster):
    cap = read_capture("sdiag-report.txt")
    out = cluster.run("sdiag")
    assert (out.returncode, out.stderr) == (cap.exit, cap.stderr)
    assert _shape(out.stdout) == _shape(cap.stdout)
    assert out.stdout.count("\n") == len(_shape(cap.stdout))  # nothing but those lines
    assert "Jobs submitted: 0\n" in out.stdout and "Jobs running:   0\n" in out.stdout


@pytest.mark.parametrize(
    "capture", ["sdiag-bogus.txt", "sdiag-version.txt", "sdiag-reset.txt"], ids=str
)
def test_errors_version_and_reset_are_the_peers(cluster, capture):
    """-r as the peer answers root: each user administers their own queue."""
    assert_as_the_peer(cluster, capture)


def _figures(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^Jobs (\w+):\s+(\d+)$", text, re.M)}


def test_the_job_figures_are_counted_from_the_state_and_reset(cluster):
    ok = cluster.sbatch("--wrap", "true")
    bad = cluster.sbatch("--wrap", "false")
    held = cluster.sbatch("-H", "--wrap", "true")
    cluster.wait_done(ok, bad)
    waiting = _figures(cluster.run("sdiag").stdout)
    assert waiting == dict(
        submitted=3, started=2, completed=1, canceled=0, failed=1, pending=1, running=0
    )
    assert cluster.run("scancel", str(held)).returncode == 0
    cluster.wait_done(held)
    assert _figures(cluster.run("sdiag").stdout)["canceled"] == 1
    reset = cluster.run("sdiag", "-r")
    assert (reset.stdout, reset.returncode) == ("Reset scheduling statistics\n", 0)
    after = cluster.run("sdiag").stdout
    assert set(_figures(after).values()) == {0}
    since = re.search(r"^Data since +(.*)$", after, re.M)
    assert since and STAMP.fullmatch(since.group(1))
