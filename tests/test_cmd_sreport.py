"""sreport's cluster reports as the peer prints them (its captures: sreport-*.txt), from the
jobs in the state: CPU usage per account and user over a period, and slurmsky's TRES `cost`
(what a sky job cost, kept in its result by the agent: test_sky_price.py)."""

from __future__ import annotations

import time

from builders import job_row
from captures import read_capture
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.commands.sreport import units
from slurmsky.render.sreport_format import period
from slurmsky.runtime.getopt_long import UsageError


def _at(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


def _same_as_peer(cluster, capture: str, **env) -> None:
    cap = read_capture(capture)
    out = cluster.run("sreport", *cap.command.split()[1:], env=env)
    assert (out.stdout, out.stderr, out.returncode) == (cap.stdout, cap.stderr, cap.exit)


def _jobs(cluster, *rows: dict) -> None:
    from slurmsky.core import state

    conn = state.connect(cluster.env)
    for row in rows:
        state.add_submission(conn, row["job_id"], {}, None, [row])
    conn.close()


def test_an_empty_period_errors_and_options_are_the_peers(cluster):
    (cluster.home / "slurmsky.yaml").write_text("cluster_name: peer\n")
    for capture in (
        "sreport-account-by-user-empty.txt",
        "sreport-user-by-account-parsable-hours.txt",
        "sreport-tres-parsable.txt",
        "sreport-rounded-period.txt",
        "sreport-bad-report.txt",
        "sreport-bad-keyword.txt",
        "sreport-bad-tres.txt",
        "sreport-bad-time-format.txt",
        "sreport-bad-condition.txt",
    ):
        _same_as_peer(cluster, capture)


def test_usage_by_account_and_user_is_the_peers(cluster):
    """The peer's three jobs of root's in account research that hour: 2 CPUs 10 s, 2 CPUs
    15 s, 1 CPU 2 s (and one before the hour, and one of no account's, which count nothing)."""
    (cluster.home / "slurmsky.yaml").write_text("cluster_name: peer\n")
    mine = dict(user="root", uid=0, gid=0, account="research", state="COMPLETED")
    runs = [
        (7, 2, "2026-11-29T12:35:33", "2026-11-29T12:35:43"),
        (8, 2, "2026-11-29T12:35:47", "2026-11-29T12:36:02"),
        (9, 1, "2026-11-29T12:36:36", "2026-11-29T12:36:38"),
        (10, 4, "2026-11-29T10:00:00", "2026-11-29T11:00:00"),
    ]
    _jobs(
        cluster,
        *(
            job_row(i, **mine, num_cpus=c, start_time=_at(s), end_time=_at(e), submit_time=_at(s))
            for i, c, s, e in runs
        ),
    )
    _same_as_peer(cluster, "sreport-account-by-user-seconds.txt")
    _same_as_peer(cluster, "sreport-user-by-account.txt")


def test_cost_totals_per_user_and_account(cluster):
    """slurmsky's TRES `cost`: each sky job's dollars (its result's), prorated by the part
    of its run in the period; CPU minutes beside."""
    (cluster.home / "slurmsky.yaml").write_text("cluster_name: peer\n")
    spent = dict(nodes=1, instance="g5.xlarge", spot=True, infra="aws/us-west-2", rate=0.3987)
    start = _at("2026-11-29T12:00:00")

    def sky_job(job_id, user, account, begin, minutes, usd):
        ran = dict(start_time=start + begin * 60, end_time=start + (begin + minutes) * 60)
        return job_row(
            job_id, user=user, account=account, executor="sky", state="COMPLETED", num_cpus=4,
            result={"cost": dict(spent, usd=usd)}, **ran,
        )  # fmt: skip

    _jobs(
        cluster,
        sky_job(1, "alice", "physics", 0, 30, 0.20),
        sky_job(2, "bob", "physics", 10, 20, 0.13),
        sky_job(3, "alice", "bio", 30, 60, 0.40),  # half of it in the hour
        job_row(
            4,
            user="carol",
            account="bio",
            state="COMPLETED",
            num_cpus=1,
            start_time=start,
            end_time=start + 600,
        ),  # fmt: skip
    )
    out = cluster.run(
        "sreport", "-P", "-T", "cost,cpu", "cluster", "AccountUtilizationByUser",
        "start=2026-11-29T12:00", "end=2026-11-29T13:00",
    )  # fmt: skip
    assert (out.stderr, out.returncode) == ("", 0)
    assert out.stdout.splitlines()[4:] == [
        "Cluster|Account|Login|Proper Name|TRES Name|Used",
        "peer|root|||cost|0.53",
        "peer|root|||cpu|330",
        "peer|bio|||cost|0.20",
        "peer|bio|||cpu|130",
        "peer|bio|alice||cost|0.20",
        "peer|bio|alice||cpu|120",
        "peer|bio|carol||cost|0.00",
        "peer|bio|carol||cpu|10",
        "peer|physics|||cost|0.33",
        "peer|physics|||cpu|200",
        "peer|physics|alice||cost|0.20",
        "peer|physics|alice||cpu|120",
        "peer|physics|bob||cost|0.13",
        "peer|physics|bob||cpu|80",
    ]
    out = cluster.run(
        "sreport", "-n", "-P", "-t", "h", "cluster", "AccountUtilizationByUser", "users=alice",
        "accounts=bio", "start=2026-11-29T12:00", "end=2026-11-29T13:00",
    )  # fmt: skip
    assert out.stdout == "peer|root|||2|0\npeer|bio|||2|0\npeer|bio|alice||2|0\n"
    out = cluster.run(
        "sreport", "-T", "cost", "cluster", "UserUtilizationByAccount",
        "start=2026-11-29T12:00", "end=2026-11-29T13:00",
    )  # fmt: skip
    assert out.stdout.splitlines()[4:] == [
        "  Cluster     Login     Proper Name         Account      TRES Name     Used ",
        "--------- --------- --------------- --------------- -------------- -------- ",
        "     peer     alice                             bio           cost     0.20 ",
        "     peer     alice                         physics           cost     0.20 ",
        "     peer       bob                         physics           cost     0.13 ",
        "     peer     carol                             bio           cost     0.00 ",
    ]


@given(st.text(max_size=12))
def test_time_formats_are_slurms_prefixes(text):
    """-t: a prefix of seconds, minutes or hours (one letter will do); the percentages are
    refused (no capacity to divide by); anything else stays minutes, said."""
    lower = text.lower()
    try:
        got = units(text, None)
    except UsageError:
        assert lower and ("percent".startswith(lower) or lower in ("secper", "minper", "hourper"))
        return
    expected = next(
        (u for u in ("seconds", "minutes", "hours") if lower and u.startswith(lower)), "minutes"
    )
    assert got == expected


@given(
    st.one_of(st.none(), st.floats(1.7e9, 1.8e9)),
    st.one_of(st.none(), st.floats(1.7e9, 1.8e9)),
    st.floats(1.7e9, 1.8e9),
)
def test_a_period_is_whole_hours_an_hour_at_least(start, end, now):
    first, last = period(start, end, now)
    assert last - first >= 3600
    for when in (first, last):
        tm = time.localtime(when)
        assert (tm.tm_min, tm.tm_sec) == (0, 0)
    if start is not None:
        assert abs(first - start) <= 1800 + 30
    if end is not None and end <= now and end - first > 5400:
        assert abs(last - end) <= 1800 + 30
