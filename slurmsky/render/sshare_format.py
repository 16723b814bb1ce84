"""sshare's output, as Slurm 22.05 prints it: the association tree (core/fairshare.py) with
its shares, usage and Fair Tree factors, an account's depth shown by its indentation.
"""

from __future__ import annotations

from slurmsky.core.fairshare import Association

# field -> width (negative: left-justified), as sshare's
WIDTHS = {
    "Account": -20,
    "Cluster": 10,
    "EffectvUsage": 13,
    "FairShare": 10,
    "GrpTRESMins": 30,
    "LevelFS": 10,
    "NormShares": 11,
    "NormUsage": 11,
    "RawShares": 10,
    "RawUsage": 11,
    "TRESRunMins": 30,
    "User": 10,
}
NAMES = sorted(WIDTHS, key=str.lower)
DEFAULT = "Account,User,RawShares,NormShares,RawUsage,EffectvUsage,FairShare"
LONG = (
    "Account,User,RawShares,NormShares,RawUsage,NormUsage,EffectvUsage,FairShare,LevelFS,"
    "GrpTRESMins,TRESRunMins"
)
# The TRES sshare lists for TRESRunMins, in Slurm's order (the peer's gres/gpu last)
TRES = ("cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu")


class Row:
    """One line: an association, its depth (the indentation), the cluster, and the TRES
    minutes its running jobs have left."""

    def __init__(self, node: Association, depth: int, cluster: str, run_mins: dict[str, int]):
        self.node, self.depth, self.cluster, self.run_mins = node, depth, cluster, run_mins


def _f(value: float) -> str:
    return "inf" if value == float("inf") else "%f" % value


def _top(row: Row) -> bool:
    return row.node.parent is None


VALUES = {
    "Account": lambda r: " " * r.depth + r.node.account,
    "Cluster": lambda r: r.cluster,
    "User": lambda r: r.node.user or "",
    "RawShares": lambda r: "" if _top(r) else str(r.node.shares),
    "NormShares": lambda r: _f(r.node.norm_shares),
    "RawUsage": lambda r: str(int(r.node.usage)),
    "NormUsage": lambda r: "" if _top(r) else _f(r.node.norm_usage),
    "EffectvUsage": lambda r: _f(1.0 if _top(r) else r.node.effective_usage),
    "FairShare": lambda r: _f(r.node.fairshare) if r.node.user else "",
    "LevelFS": lambda r: "" if _top(r) else _f(r.node.level_fs),
    "GrpTRESMins": lambda r: "",
    "TRESRunMins": lambda r: ",".join(f"{t}={r.run_mins.get(t, 0)}" for t in TRES),
}


def rows(
    root: Association,
    *,
    users: set[str] | None,
    accounts: list[str],
    users_only: bool,
    cluster: str,
    run_mins: dict[tuple[str, str | None], dict[str, int]],
) -> list[Row]:
    """sshare's rows: every account's (from `accounts`' subtrees, at depth 0, else the whole
    tree) and the user associations of `users` (None: every user's); `users_only`: those
    alone, unindented."""
    if accounts:
        tops = [n for n in root.walk() if n.user is None and n.account in accounts]
    else:
        tops = [root]
    out = []
    for top in tops:
        for node in top.walk():
            if node.user is None and users_only:
                continue
            if node.user is not None and users is not None and node.user not in users:
                continue
            depth = 0 if users_only else node.depth - top.depth
            totals: dict[str, int] = {}
            for leaf in node.walk():
                for tres, minutes in run_mins.get((leaf.account, leaf.user), {}).items():
                    totals[tres] = totals.get(tres, 0) + minutes
            out.append(Row(node, depth, cluster, totals))
    return out
