"""--deadline (sbatch, srun, salloc) as Slurm 22.05 handles it (captures: deadline-*.txt and
README-deadline-nice.md): a past deadline is refused at submission, nothing stored; a job that
could not end by its deadline if it started now ends DEADLINE before it starts; a held job
waits past it and ends so when released; a job without a time limit gets the minutes left."""

from __future__ import annotations

import re
import time

import pytest
from captures import read_capture
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.parse.times import TimeSpecError, parse_begin, parse_deadline

REFUSALS = [
    "deadline-past-sbatch.txt",
    "deadline-garbage-sbatch.txt",
    "deadline-past-srun.txt",
    "deadline-garbage-srun.txt",
    "deadline-past-salloc.txt",
]


@pytest.mark.parametrize("capture", REFUSALS)
def test_refusals_match_the_peer(cluster, capture):
    real = read_capture(capture)
    command, *args = real.command.split()
    got = cluster.run(command, *args)
    assert (got.stdout, got.stderr, got.returncode) == (real.stdout, real.stderr, real.exit)
    assert cluster.jobs() == []  # nothing stored, no id taken
    assert cluster.sbatch("-H", "--wrap", "true") == 1


def _show(cluster, job_id: int) -> str:
    out = cluster.run("scontrol", "show", "job", str(job_id))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_deadline_too_close_for_the_time_limit_ends_the_job_DEADLINE(cluster):
    job = cluster.sbatch("--deadline=now+1minute", "-t", "10", "--wrap", "true")
    assert cluster.wait_done(job, timeout=30) == [(job, "DEADLINE", 1, 0, "DeadLine")]
    shown = _show(cluster, job)
    assert "   JobState=DEADLINE Reason=DeadLine Dependency=(null)\n" in shown
    assert " Reboot=0 ExitCode=0:1\n" in shown  # the peer's: exit code 1 read as a signal
    times = re.search(r"StartTime=(\S+) EndTime=(\S+) Deadline=(\S+)\n", shown)
    assert times and times[1] == times[2] and times[3] > times[2]
    sacct = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job), "-o", "State,ExitCode")
    assert sacct.stdout == "DEADLINE|1:0\n"
    assert not (cluster.cwd / f"slurm-{job}.out").exists()  # it never ran


def test_deadline_shown_by_scontrol(cluster):
    dated = cluster.sbatch("-H", "--deadline=2099-01-01T00:00:00", "-t", "1", "--wrap", "true")
    plain = cluster.sbatch("-H", "-t", "1", "--wrap", "true")
    assert " EndTime=Unknown Deadline=2099-01-01T00:00:00\n" in _show(cluster, dated)
    assert " EndTime=Unknown Deadline=N/A\n" in _show(cluster, plain)
    cluster.run("scancel", str(dated), str(plain))


def test_a_job_without_a_time_limit_gets_the_minutes_left(cluster):
    job = cluster.sbatch("--deadline=now+1hour", "--wrap", "true")
    assert cluster.wait_done(job, timeout=30) == [(job, "COMPLETED", 0, 0, "None")]
    sacct = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job), "-o", "State,Timelimit")
    assert sacct.stdout == "COMPLETED|00:59:00\n"


def test_a_held_job_waits_past_its_deadline_and_ends_DEADLINE_when_released(cluster):
    env = {"SLURMSKY_SECONDS_PER_MINUTE": "1"}  # -t 1 is a second
    job = cluster.sbatch("-H", "--deadline=now+2", "-t", "1", "--wrap", "true", env=env)
    time.sleep(3)
    assert cluster.job(job) == (job, "PENDING", None, None, "JobHeldUser")
    assert cluster.run("scontrol", "release", str(job), env=env).returncode == 0
    assert cluster.wait_done(job, timeout=30) == [(job, "DEADLINE", 1, 0, "DeadLine")]


def test_a_job_whose_dependency_is_met_too_late_ends_DEADLINE(cluster):
    env = {"SLURMSKY_SECONDS_PER_MINUTE": "1"}
    first = cluster.sbatch("--wrap", "sleep 4", env=env)
    late = cluster.sbatch(
        f"--dependency=afterok:{first}", "--deadline=now+2", "-t", "1", "--wrap", "true", env=env
    )
    fits = cluster.sbatch(
        f"--dependency=afterok:{first}", "--deadline=now+1hour", "-t", "1", "--wrap", "true"
    )
    rows = cluster.wait_done(first, late, fits, timeout=60)
    assert [r[1] for r in rows] == ["COMPLETED", "DEADLINE", "COMPLETED"]


@pytest.mark.parametrize(
    "command,stderr",
    [
        (
            "srun",
            "srun: Job has been cancelled\n"
            "srun: error: Unable to allocate resources: Job/step already completing or "
            "completed\n",
        ),
        (
            "salloc",
            "salloc: Job has been cancelled\n"
            "salloc: Job allocation 1 has been revoked.\n"
            "salloc: error: Job submit/allocate failed: Job/step already completing or "
            "completed\n",
        ),
    ],
)
def test_an_allocation_that_cannot_end_by_its_deadline(cluster, command, stderr):
    # the peer's lines (its nodes were busy, so it said it queued first)
    got = cluster.run(command, "--deadline=now+1minute", "-t", "10", "true")
    assert (got.stdout, got.stderr, got.returncode) == ("", stderr, 1)
    assert cluster.job(1)[1] == "DEADLINE"


UNITS = {"": 1, "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}


@given(st.integers(0, 10**4), st.sampled_from(sorted(UNITS)))  # before year 9999
def test_deadline_now_plus(n, unit):
    now = 1_800_000_000.0
    assert parse_deadline(f"now+{n}{unit}", "--deadline", now) == now + n * UNITS[unit]


@given(st.text(alphabet="0123456789:/-+T nowdayhoursminutesecondtmrAMPuts", max_size=24))
def test_deadline_takes_what_begin_takes_and_refuses_in_its_own_name(text):
    """Any text: a time (--begin's, the same one) or --deadline's refusal, nothing else."""
    now = 1_800_000_000.0
    try:
        when = parse_deadline(text, "--deadline", now)
    except TimeSpecError as exc:
        assert str(exc) == "Invalid --deadline specification"
        assert all(note.startswith("Invalid time specification (pos=") for note in exc.notes)
        with pytest.raises(TimeSpecError):
            parse_begin(text, "--begin", now)
    else:
        assert when == parse_begin(text, "--begin", now)
