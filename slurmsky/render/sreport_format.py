"""sreport's cluster reports, as Slurm 22.05 prints them: AccountUtilizationByUser and
UserUtilizationByAccount over a period, from the jobs the state keeps (their runs' overlap
with it; slurmdbd's hourly rollups count the same), with slurmsky's TRES `cost`: what the
backend says a job cost (a sky job's dollars, prorated by the overlap, whatever -t says)."""

from __future__ import annotations

import time

from slurmsky.render.common import iso

RULE = "-" * 80
REPORTS = {
    "AccountUtilizationByUser": (
        "Cluster/Account/User Utilization",
        ("Cluster", "Account", "Login", "Proper Name"),
    ),
    "UserUtilizationByAccount": (
        "Cluster/User/Account Utilization",
        ("Cluster", "Login", "Proper Name", "Account"),
    ),
}
VALID = (
    'Valid cluster reports are, "AccountUtilizationByUser", "UserUtilizationByAccount", '
    '"UserUtilizationByWckey", "Utilization", and "WCKeyUtilizationByUser"'
)
WIDTHS = {"Cluster": 9, "Account": 15, "Login": 9, "Proper Name": 15, "TRES Name": 14}
UNITS = {"seconds": ("Seconds", 1), "minutes": ("Minutes", 60), "hours": ("Hours", 3600)}
COST = "cost"  # slurmsky's TRES: US dollars


def _rounded(when: float) -> float:
    """To the nearest hour, as Slurm rounds a report's start and end (30 s up a minute,
    then 30 min up an hour)."""
    tm = list(time.localtime(when))
    tm[4] += tm[5] >= 30
    tm[3] += tm[4] >= 30
    tm[4] = tm[5] = 0
    tm[8] = -1
    return time.mktime(tuple(tm))  # type: ignore[arg-type]


def period(start: float | None, end: float | None, now: float) -> tuple[float, float]:
    """slurmdb_report_set_start_end_time: by default yesterday; an end after now is now;
    each to the nearest hour; an hour at least."""
    day = list(time.localtime(now))
    day[3] = day[4] = day[5] = 0
    day[8] = -1
    midnight = time.mktime(tuple(day))  # type: ignore[arg-type]
    end = midnight if end is None else _rounded(min(end, now))
    day[2] -= 1
    start = time.mktime(tuple(day)) if start is None else _rounded(start)  # type: ignore[arg-type]
    return start, max(end, start + 3600)


def header(report: str, start: float, end: float, units: str, tres: bool) -> list[str]:
    title = REPORTS[report][0]
    what = "TRES" if tres else "CPU"
    return [
        RULE,
        f"{title} {iso(start)} - {iso(end - 1)} ({int(end - start)} secs)",
        f"Usage reported in {what} {UNITS[units][0]}",
        RULE,
    ]


def fields(report: str, tres: bool) -> list[tuple[str, int]]:
    named = [(name, WIDTHS[name]) for name in REPORTS[report][1]]
    if tres:
        return named + [("TRES Name", WIDTHS["TRES Name"]), ("Used", 8)]
    return named + [("Used", 8), ("Energy", 8)]


def amounts(job, cost: float | None) -> dict[str, float]:
    """A job's TRES as sreport counts them (billing: its CPUs, as sacct's TRES say)."""
    gres = (job.gres or "").rpartition(":")[2]
    mem = job.mem_per_node * job.num_nodes if job.mem_per_node else 0
    return {
        "cpu": job.num_cpus,
        "mem": mem,
        "node": job.num_nodes,
        "billing": job.num_cpus,
        "gres/gpu": int(gres) * job.num_nodes if gres.isdigit() else 0,
        COST: cost or 0.0,
    }


def used(runs: list[tuple], tres: str, start: float, end: float, unit: int) -> str:
    """One row's Used: the TRES-seconds of its runs in the period, in `unit` seconds (cost:
    dollars, each run's share of its cost)."""
    total = 0.0
    for run_start, run_end, amount in runs:
        overlap = max(0.0, min(run_end, end) - max(run_start, start))
        if tres == COST:
            total += amount[COST] * overlap / (run_end - run_start)
        else:
            total += amount[tres] * overlap
    return f"{total:.2f}" if tres == COST else "%.0f" % (total / unit)


def rows(
    report: str,
    runs: list[tuple[str, str, float, float, dict]],
    tres_list: list[str],
    start: float,
    end: float,
    unit: int,
    cluster: str,
    proper_name,
) -> list[dict]:
    """The report's rows of `runs`, (account, user, run start, run end, amounts) each run. By account: the cluster's total as root's, root's users, then
    each account's total and its users'; by user: each user's in each account, the most
    CPU time first. Nothing ran: no rows."""
    by: dict[tuple[str, str], list[tuple]] = {}
    for account, user, *run in runs:
        if min(run[1], end) > max(run[0], start):  # it ran in the period
            by.setdefault((account, user), []).append(tuple(run))
    out = []

    def add(account: str, user: str, picked: list[tuple]) -> None:
        for tres in tres_list:
            out.append(
                {
                    "Cluster": cluster,
                    "Account": account,
                    "Login": user,
                    "Proper Name": proper_name(user) if user else "",
                    "TRES Name": tres,
                    "Used": used(picked, tres, start, end, unit),
                    "Energy": "0",
                }
            )

    if report == "UserUtilizationByAccount":  # the most used first

        def most(key: tuple[str, str]) -> tuple:
            seconds = sum(a["cpu"] * (min(e, end) - max(s, start)) for s, e, a in by[key])
            return (-seconds, key[1], key[0])

        for account, user in sorted(by, key=most):
            add(account, user, by[(account, user)])
        return out
    if by:
        add("root", "", [r for picked in by.values() for r in picked])
    for account in ["root"] + sorted({a for a, _ in by} - {"root"}):
        if account != "root":
            add(account, "", [r for (a, _), picked in by.items() if a == account for r in picked])
        for a, user in sorted(k for k in by if k[0] == account):
            add(a, user, by[(a, user)])
    return out
