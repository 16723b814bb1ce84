"""priority/multifactor's arithmetic (core/fairshare.py) and sprio's output, against the
peer reconfigured with PriorityType=priority/multifactor (PriorityWeightAge=1000,
PriorityWeightFairshare=10000, PriorityMaxAge=7-0): three pending jobs, root's two in
research (767 CPU-seconds used), peeruser's one; every job 47 s old. sshare's output and the
order it gives a team's jobs are tested on PostgreSQL (test_team.py)."""

from __future__ import annotations

import math

import pytest
from captures import read_capture
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.core import fairshare
from slurmsky.render import sprio_format
from slurmsky.runtime.getopt_long import UsageError

ACCOUNTS = [("research", "root")]
ASSOCIATIONS = [("root", "root", 1), ("research", "peeruser", 1), ("research", "root", 1)]
WEIGHTS = {"age": 1000, "fairshare": 10000}


class Settings:
    weight_age, weight_fairshare, max_age = 1000, 10000, 7 * 86400


def peer_jobs() -> list[dict]:
    root = fairshare.tree(ACCOUNTS, ASSOCIATIONS, {("research", "root"): 767.0})
    shares = {(n.account, n.user): n.fairshare for n in root.walk() if n.user}
    jobs = []
    for job_id, user in ((4777, "root"), (4778, "root"), (4779, "peeruser")):
        age = fairshare.age_factor(0, 47, Settings.max_age)
        share = shares["research", user]
        jobs.append(
            dict(
                job_id=job_id,
                partition="debug",
                user=user,
                priority=fairshare.priority(age, share, Settings),  # type: ignore[arg-type]
                age=age,
                fairshare=share,
                weights=WEIGHTS,
            )
        )
    return jobs


@pytest.mark.parametrize(
    "capture, users, long, norm, fmt, header, keep",
    [
        ("sprio-multifactor.txt", False, False, False, None, True, None),
        ("sprio-long.txt", False, True, False, None, True, None),
        ("sprio-norm.txt", False, False, True, None, True, None),
        ("sprio-noheader.txt", False, False, False, None, False, None),
        ("sprio-job.txt", False, False, False, None, True, 4779),
        ("sprio-user.txt", True, False, False, None, True, 4779),
        ("sprio-format.txt", False, False, False, "%i|%u|%Y|%A|%F", True, None),
    ],
)
def test_sprio_prints_the_peers_factors(capture, users, long, norm, fmt, header, keep):
    jobs = [j for j in peer_jobs() if keep in (None, j["job_id"])]
    fmt = fmt or sprio_format.default_format(WEIGHTS, users=users, long=long, norm=norm)
    text = "".join(
        line + "\n" for line in sprio_format.lines(jobs, fmt, header=header, weights=None)
    )
    assert text == read_capture(capture).stdout


def test_sprio_weights_line():
    fmt = sprio_format.default_format(WEIGHTS, users=False, long=False, norm=False)
    lines = sprio_format.lines([], fmt, header=True, weights=WEIGHTS)
    assert "".join(line + "\n" for line in lines) == read_capture("sprio-weights.txt").stdout


def test_fair_tree_ranks_as_slurmctld():
    """The peer's factors with no usage (every user 1.0: all tied) and with root's 767 in
    research (root's own account first, then peeruser, then root in research)."""
    idle = fairshare.tree(ACCOUNTS, ASSOCIATIONS, {})
    assert [n.fairshare for n in idle.walk() if n.user] == [1.0, 1.0, 1.0]
    used = fairshare.tree(ACCOUNTS, ASSOCIATIONS, {("research", "root"): 767.0})
    assert [(n.account, n.user, round(n.fairshare, 6)) for n in used.walk() if n.user] == [
        ("root", "root", 1.0),
        ("research", "peeruser", 0.666667),
        ("research", "root", 0.333333),
    ]
    research = [n for n in used.walk() if n.account == "research" and n.user is None][0]
    assert (research.level_fs, research.effective_usage, research.norm_shares) == (0.5, 1.0, 0.5)


def test_usage_decays_by_its_half_life():
    hour = 3600
    assert fairshare.decayed(2, 0, 10, 10, 0) == 20  # no decay
    fresh = fairshare.decayed(4, 0, 60, 60, hour)
    old = fairshare.decayed(4, 0, 60, 60 + hour, hour)
    assert math.isclose(old, fresh / 2)
    assert math.isclose(fresh, 240, rel_tol=0.01)
    assert fairshare.decayed(4, 50, 50, 60, hour) == 0.0


@given(st.text(alphabet="%.0123456789iruYSAFafycBbJjPpQqNTt| x", max_size=30))
def test_sprio_formats_parse_or_say_why(text):
    try:
        pieces = sprio_format.parse(text)
    except UsageError as exc:
        assert str(exc).startswith("sprio: error: Invalid job format specification")
        return
    header = sprio_format.lines([], text, header=True, weights=None)[0]
    fixed = (
        sum(len(lit) + w for lit, c, w, _ in pieces)
        if all(w for _, c, w, _ in pieces if c)
        else None
    )
    if fixed is not None:
        assert len(header) == fixed


def test_a_bad_priority_time_is_said_with_its_key():
    from slurmsky.config import Config
    from slurmsky.errors import SlurmError

    assert fairshare.Settings(Config(path="c.yaml", priority_calc_period=5)).calc_period == 300
    with pytest.raises(SlurmError) as exc:
        fairshare.Settings(Config(path="c.yaml", priority_max_age="soon"))
    assert str(exc.value) == (
        "c.yaml: 'priority_max_age' must be a Slurm time (7-0, 1:00:00, 30 minutes as 30), "
        "got 'soon'"
    )
