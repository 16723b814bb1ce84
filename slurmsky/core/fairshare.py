"""Slurm's priority/multifactor with its age and fair-share factors, Fair Tree (22.05's
default) for the fair share: what orders a team's pending jobs (core/scheduler.py) and what
sprio and sshare print.

A job's priority is `weight_age * age + weight_fairshare * fairshare`, truncated to an int
(at least 1), each factor in [0, 1]:

* age: the time since the job became eligible over `priority_max_age`, capped at 1;
* fairshare: Fair Tree's rank of its association. Each association's level fair share is
  its shares over its siblings' (NormShares) divided by its usage over theirs (EffectvUsage);
  siblings are ranked by it, highest first, depth first through the accounts, so every user
  association gets a rank from N (the first) down to 1; the factor is rank / N. Ties share a
  rank; tied accounts' children are ranked together.

Usage is CPU-seconds, each second counted 2^-(its age / priority_decay_half_life): Slurm
decays the usage it holds every PriorityCalcPeriod; here the decay is exact and computed from
the jobs' start and end times (running jobs up to now).
"""

from __future__ import annotations

import math

from slurmsky.core.state import team
from slurmsky.errors import SlurmError
from slurmsky.parse.times import time_seconds

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.config import Config
    from slurmsky.core.state import JobRecord
    from slurmsky.core.state.engine import Connection


class Settings:
    """priority/multifactor's weights and times (seconds), from the config (checked there)."""

    def __init__(self, config: Config) -> None:
        self.weight_age = config.priority_weight_age
        self.weight_fairshare = config.priority_weight_fairshare
        self.max_age = _seconds(config, "priority_max_age")
        self.half_life = _seconds(config, "priority_decay_half_life")
        self.calc_period = _seconds(config, "priority_calc_period")


def _seconds(config: Config, key: str) -> int:
    """A config key's Slurm time (7-0, 1:00:00, 30 minutes as 30) in seconds."""
    text = str(getattr(config, key))
    value = time_seconds(text)
    if value is None or value < 0:
        raise SlurmError(
            f"{config.path}: '{key}' must be a Slurm time (7-0, 1:00:00, 30 minutes as 30), "
            f"got {text!r}"
        )
    return value


def settings(config: Config, conn: Connection) -> Settings | None:
    """The multifactor settings where they order the jobs (a team's state, unless the config
    says basic); None: submission order (priority/basic)."""
    if config.priority_type == "basic" or not team.is_team(conn):
        return None
    return Settings(config)


def decayed(cpus: int, start: float, end: float, now: float, half_life: int) -> float:
    """CPU-seconds of a run from `start` to `end`, each second decayed to `now`."""
    if end <= start:
        return 0.0
    if not half_life:  # no decay
        return cpus * (end - start)
    k = math.log(2) / half_life
    return cpus * (math.exp(-k * max(now - end, 0)) - math.exp(-k * max(now - start, 0))) / k


class Association:
    """One node of the association tree: an account (`user` None) or a user's association."""

    def __init__(self, account: str, user: str | None, shares: int, parent: Association | None):
        self.account, self.user, self.shares, self.parent = account, user, shares, parent
        self.children: list[Association] = []
        self.usage = 0.0  # decayed CPU-seconds (an account's: its children's summed)
        self.norm_shares = 0.0
        self.effective_usage = 0.0  # of its parent's usage
        self.norm_usage = 0.0  # of the whole tree's
        self.level_fs = 0.0
        self.fairshare = 0.0  # a user's factor

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def walk(self):
        """This node and its subtree in sshare's order: users first, then accounts, by name."""
        yield self
        for child in self.children:
            yield from child.walk()


def tree(
    accounts: list[tuple[str, str]],
    associations: list[tuple[str, str, int]],
    usage: dict[tuple[str, str], float],
) -> Association:
    """The root of the association tree with every factor computed. `accounts`: (name,
    parent); `associations`: (account, user, shares); `usage`: (account, user) -> usage."""
    root = Association("root", None, 1, None)
    nodes = {"root": root}
    pending = dict(accounts)
    while pending:  # parents before children (an unknown parent, or a loop: under root)
        ready = [n for n, p in pending.items() if p in nodes or p not in pending] or [*pending]
        for name in ready:
            above = nodes.get(pending.pop(name), root)
            nodes[name] = Association(name, None, 1, above)
            above.children.append(nodes[name])
    for account, user, shares in associations:
        if account in nodes:
            leaf = Association(account, user, shares, nodes[account])
            leaf.usage = usage.get((account, user), 0.0)
            nodes[account].children.append(leaf)
    _sum_usage(root)
    _normalise(root, root.usage)
    users = sum(1 for n in root.walk() if n.user is not None)
    _rank(root.children, users, [users, users], False)
    return root


def _sum_usage(node: Association) -> float:
    node.children.sort(key=lambda n: (n.user is None, n.user or n.account))
    if node.user is None:
        node.usage = sum(_sum_usage(c) for c in node.children)
    return node.usage


def _normalise(node: Association, total: float) -> None:
    shares = sum(c.shares for c in node.children)
    for child in node.children:
        child.norm_shares = child.shares / shares if shares else 0.0
        child.effective_usage = child.usage / node.usage if node.usage else 0.0
        child.norm_usage = child.usage / total if total else 0.0
        child.level_fs = (
            child.norm_shares / child.effective_usage if child.effective_usage else math.inf
        )
        _normalise(child, total)


def _rank(siblings: list[Association], users: int, counter: list[int], tied: bool) -> None:
    """Fair Tree's ranking of one level (slurmctld's fair_tree.c): by level fair share,
    highest first, users before accounts where tied; a user takes the rank of the one tied
    before it, else the next free one; tied accounts' children are ranked together, their
    first tied with what came before (`tied`). counter = [rank, ranks not taken]."""
    siblings = sorted(siblings, key=lambda n: (-n.level_fs, n.user is None))
    previous: float | None = None
    i = 0
    while i < len(siblings):
        node = siblings[i]
        tied = (tied and i == 0) or previous == node.level_fs
        if node.user is not None:
            if not tied:
                counter[0] = counter[1]
            node.fairshare = counter[0] / users
            counter[1] -= 1
            i += 1
        else:
            merged = [node]
            while (
                i + len(merged) < len(siblings)
                and siblings[i + len(merged)].level_fs == node.level_fs
            ):
                merged.append(siblings[i + len(merged)])
            _rank([c for n in merged for c in n.children], users, counter, tied)
            i += len(merged)
        previous = node.level_fs


def age_factor(eligible: float, now: float, max_age: int) -> float:
    if not max_age:
        return 1.0
    return min(max(now - eligible, 0.0) / max_age, 1.0)


def priority(age: float, fairshare: float, settings: Settings) -> int:
    """A pending job's priority from its factors (Slurm truncates the weighted sum)."""
    total = settings.weight_age * age + settings.weight_fairshare * fairshare
    return max(int(total), 1)


class Factors:
    """One PriorityCalcPeriod's fair shares, as of `at`, the period's start: every agent of
    a team computes the same ones from the same rows (the usage up to `at`), so they agree
    on the order of everyone's pending jobs."""

    def __init__(self, conn: Connection, settings: Settings, now: float):
        period = settings.calc_period
        self.at = now - now % period if period else now
        self.settings = settings
        usage: dict[tuple[str, str], float] = {}
        for account, user, cpus, start, end in team.runs(conn):
            end = self.at if end is None else min(end, self.at)
            used = decayed(cpus, start, end, self.at, settings.half_life)
            usage[account, user] = usage.get((account, user), 0.0) + used
        users = [a for a in team.associations(conn) if a[1]]
        self.root = tree(team.account_parents(conn), users, usage)
        self.fairshare = {(n.account, n.user): n.fairshare for n in self.root.walk() if n.user}

    def of(self, job: JobRecord) -> tuple[int, float, float]:
        """A pending job's (priority, age factor, fair-share factor)."""
        eligible = job.eligible_time
        age = 0.0 if eligible is None else age_factor(eligible, self.at, self.settings.max_age)
        fairshare = self.fairshare.get((job.account or "", job.user), 0.0)
        return priority(age, fairshare, self.settings), age, fairshare
