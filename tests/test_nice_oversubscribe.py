"""--nice and -s/--oversubscribe as Slurm 22.05 shows and uses them (captures:
squeue-nice-oversubscribe.txt, README-deadline-nice.md): --nice[=N] (bare: 100) takes N off
the job's priority (priority/basic: later in the queue), squeue's %y and scontrol's Nice= show
it; -s is OverSubscribe=YES, --exclusive NO, neither OK."""

from __future__ import annotations

import re

import pytest
from captures import read_capture
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.parse.scalars import NICE_MAX, parse_nice


def test_held_jobs_listed_as_the_peer_lists_them(cluster):
    real = read_capture("squeue-nice-oversubscribe.txt")
    for args in (
        [],
        ["--nice=100"],
        ["-s"],
        ["--deadline=now+1hour"],
        ["--nice"],
    ):
        cluster.sbatch("-H", "-t", "1", *args, "--wrap", "true")
    got = cluster.run("squeue", "-o", "%i %y %Q %h %t")
    assert got.stdout == re.sub(r"^4(\d)", lambda m: str(int(m[1]) - 1), real.stdout, flags=re.M)
    shown = cluster.run("scontrol", "show", "job", "2").stdout
    assert "   Priority=0 Nice=100 Account=" in shown
    assert (
        "   OverSubscribe=YES Contiguous=0 " in cluster.run("scontrol", "show", "job", "3").stdout
    )
    assert "   OverSubscribe=OK Contiguous=0 " in cluster.run("scontrol", "show", "job", "1").stdout
    cluster.run("scancel", "1", "2", "3", "4", "5")


def test_nice_lowers_the_priority_and_exclusive_is_no(cluster):
    plain = cluster.sbatch("--begin=now+1hour", "-t", "1", "--wrap", "true")
    nice = cluster.sbatch("--begin=now+1hour", "--nice=100", "--exclusive", "--wrap", "true")
    got = cluster.run("squeue", "-h", "-o", "%i %y %Q %h", "-j", f"{plain},{nice}")
    top = 0xFFFF0000
    assert got.stdout == f"{plain} 0 {top - plain} OK\n{nice} 100 {top - nice - 100} NO\n"
    assert (
        f"   Priority={top - nice - 100} Nice=100 "
        in cluster.run("scontrol", "show", "job", str(nice)).stdout
    )
    cluster.run("scancel", str(plain), str(nice))


def test_a_nice_job_waits_behind_later_ones(cluster):
    """priority/basic: the queue goes by priority, so --nice=100 lets later jobs go first."""
    blocker = cluster.sbatch("-N4", "--exclusive", "--wrap", "sleep 120")
    cluster.wait_for(lambda: cluster.job(blocker)[1] == "RUNNING", 30, "the blocker to run")
    nice = cluster.sbatch("-N4", "--exclusive", "--nice=100", "--wrap", "true")
    later = cluster.sbatch("-N4", "--exclusive", "--wrap", "true")
    cluster.wait_for(lambda: cluster.job(nice)[4] == "Priority", 30, "the nice job to wait")
    assert cluster.job(later)[4] == "Resources"
    cluster.run("scancel", str(blocker))
    cluster.wait_done(blocker, nice, later, timeout=60)
    with cluster.db() as conn:
        starts = dict(conn.execute("SELECT job_id, start_time FROM jobs").fetchall())
    assert starts[later] < starts[nice]


@pytest.mark.parametrize(
    "args,shown",
    [
        (["-s", "--exclusive"], "NO"),  # the last one given wins (README-deadline-nice.md)
        (["--exclusive", "-s"], "YES"),
        (["-s"], "YES"),
        (["--exclusive"], "NO"),
    ],
)
def test_oversubscribe_shown(cluster, args, shown):
    job = cluster.sbatch("-H", *args, "--wrap", "true")
    assert cluster.run("squeue", "-h", "-o", "%h", "-j", str(job)).stdout == f"{shown}\n"
    cluster.run("scancel", str(job))


def test_nice_out_of_range(cluster):
    got = cluster.run("sbatch", "--nice=-2147483646", "--wrap", "true")
    assert (got.stdout, got.stderr, got.returncode) == (
        "",
        "sbatch: error: Invalid --nice value, out of range (+/- 2147483645)\n",
        255,
    )
    assert cluster.jobs() == []


@given(st.integers(-NICE_MAX, NICE_MAX), st.text(alphabet="x ", max_size=3))
def test_nice_is_strtoll_without_an_end_check(n, tail):
    assert parse_nice(f"{n}{tail}", "--nice") == n


@given(st.integers(NICE_MAX + 1, 2**70))
def test_nice_beyond_the_range(n):
    for text in (str(n), str(-n)):
        with pytest.raises(ValueError, match=r"out of range \(\+/- 2147483645\)"):
            parse_nice(text, "--nice")
