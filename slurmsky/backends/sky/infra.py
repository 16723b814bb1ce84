"""Which of a job's infra candidates SkyPilot can use here, from a cached answer.

A job's candidates are its task's infra choices: the one `infra`, or each of `ordered` /
`any_of` (-p a,b's partitions, a partition's infra list or set, spot then on-demand); a job
group's are each component's. Whether SkyPilot can use one is its API server's answer to
`enabled_clouds(expand=True)`: its own check's clouds, with Kubernetes contexts, Slurm
clusters (~/.slurm/config) and SSH pools named (`Kubernetes/ctx`, `Slurm/peer`); a cloud
whose extra is not installed is not enabled there. The agent asks each server it launches to
every EVERY seconds, off its own thread, and keeps the answer in the state directory
(`sky-infra.json`), where sbatch reads it (never SkyPilot) to warn at submission.

The launch keeps the usable candidates only (`prune`); a job with none left pends with a
reason naming each candidate and why (`reason`), and runs once one becomes usable. Without
an answer (not yet, or the server could not say) every candidate goes, and SkyPilot decides.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from typing import TYPE_CHECKING

from slurmsky.backends.sky.group import group_tasks
from slurmsky.core import state

if TYPE_CHECKING:  # sbatch reads the kept answer: no thread pools on its path
    from concurrent.futures import Future

log = logging.getLogger("slurmsky.core.daemon")

CACHE = "sky-infra.json"
EVERY = 60.0  # s between two asks of one server
FIRST = 30.0  # s a launch waits for a server's first answer, then goes with every candidate
REASON = "InfraUnusable"
KEYWORDS = ("ordered", "any_of")
ALIASES = {"k8s": "kubernetes"}
# the infra kinds whose second part is one of SkyPilot's expanded names: what it is called
NAMED = {"kubernetes": "context", "slurm": "cluster", "ssh": "pool"}


def kind(infra: str) -> str:
    """The infra's cloud, as SkyPilot's check names it in lower case (k8s: kubernetes)."""
    first = infra.split("/")[0].lower()
    return ALIASES.get(first, first)


def why_not(infra: str | None, enabled: list[str]) -> str | None:
    """Why SkyPilot cannot use `infra` (a config's infra string; None: any) given its
    enabled infra, or None when it can."""
    if not enabled:
        return "nothing enabled in SkyPilot"
    kinds = {e.split("/")[0].lower() for e in enabled}
    if infra is None or infra.startswith("*"):
        return None
    cloud, rest = kind(infra), infra.partition("/")[2]
    if cloud not in kinds:
        return "not enabled in SkyPilot"
    if rest and cloud in NAMED:
        name = rest if cloud == "kubernetes" else rest.split("/")[0]
        named = {e.split("/", 1)[1] for e in enabled if "/" in e and kind(e) == cloud}
        if name not in named:
            return f"no {NAMED[cloud]} {name} in SkyPilot"
    return None


def _candidates(resources: dict) -> list[dict]:
    for keyword in KEYWORDS:
        if resources.get(keyword):
            return resources[keyword]
    return [resources]


def _components(task: dict) -> list[dict]:
    return group_tasks(task) or [task]


def names_infra(task: dict) -> bool:
    """Whether the task names infra at all (a pool's jobs go to its workers: they do not)."""
    if task.get("_metadata", {}).get("slurmsky", {}).get("pool"):
        return False
    return any(
        one.get("infra") or (component.get("resources") or {}).get("infra")
        for component in _components(task)
        for one in _candidates(component.get("resources") or {})
    )


def _infra(one: dict, resources: dict) -> str | None:
    """A candidate's infra (a candidate without one has its resources')."""
    return one.get("infra", resources.get("infra"))


def shares_base(task: dict, enabled: list[str] | None = None) -> bool:
    """Whether every launch of the task lands where its launches share a filesystem: one
    Slurm cluster of SkyPilot's Slurm infra, whose clusters each have $HOME at
    BASE/.sky_clusters/<cluster> under a BASE that cluster's nodes share (SkyPilot requires
    it shared). So every candidate is Slurm infra on the same named cluster (`slurm` alone:
    the one Slurm cluster `enabled` names, if it names one). A candidate elsewhere, or on
    another Slurm cluster, may win for some launch: no. A pool's jobs and a job group: no.
    An array's lanes claim their elements there (lanes.py)."""
    if task.get("_metadata", {}).get("slurmsky", {}).get("pool") or group_tasks(task):
        return False
    resources = task.get("resources") or {}
    named = {e.split("/", 1)[1] for e in enabled or () if "/" in e and kind(e) == "slurm"}
    clusters = set()
    for one in _candidates(resources):
        infra = _infra(one, resources)
        if not infra or kind(infra) != "slurm":
            return False
        name = infra.split("/")[1] if infra.count("/") else ""
        if not name and len(named) != 1:
            return False
        clusters.add(name or next(iter(named)))
    return len(clusters) == 1


def unusable(task: dict, enabled: list[str]) -> list[tuple[str, str]]:
    """(infra, why) of each candidate of the task SkyPilot cannot use, in order."""
    out = []
    for component in _components(task):
        resources = component.get("resources") or {}
        for one in _candidates(resources):
            infra = _infra(one, resources)
            why = why_not(infra, enabled)
            if why and (infra or "any", why) not in out:
                out.append((infra or "any", why))
    return out


def runnable(task: dict, enabled: list[str]) -> bool:
    """Whether every component of the task has a candidate SkyPilot can use."""
    return all(
        any(not why_not(_infra(one, resources), enabled) for one in _candidates(resources))
        for resources in (component.get("resources") or {} for component in _components(task))
    )


def prune(task: dict, enabled: list[str] | None) -> dict | None:
    """The task with only the candidates SkyPilot can use (None: some component has none);
    the task itself when every one is usable or nothing is known."""
    if enabled is None or not unusable(task, enabled):
        return task
    if not runnable(task, enabled):
        return None
    task = copy.deepcopy(task)
    for component in _components(task):
        resources = component.get("resources") or {}
        keyword = next((k for k in KEYWORDS if resources.get(k)), None)
        if keyword is None:  # its one infra is usable (runnable)
            continue
        kept = [c for c in resources[keyword] if not why_not(_infra(c, resources), enabled)]
        if len(kept) == 1:  # one candidate left: resources of its own
            del resources[keyword]
            resources.update(kept[0])
        else:
            resources[keyword] = kept
    return task


def reason(task: dict, enabled: list[str]) -> str:
    """The pending reason of a job none of whose candidates can be used: each named, with why."""
    return f"{REASON}:" + ",".join(
        f"{infra}({why.replace(' ', '_')})" for infra, why in unusable(task, enabled)
    )


# --- the cached answer --------------------------------------------------------------------


def _path() -> str:
    return os.path.join(state.home(), CACHE)


def cached() -> dict:
    """Server name -> {"enabled": [...], "at": epoch} of the agent's last answers."""
    try:
        with open(_path()) as f:
            answers = json.load(f)
    except (OSError, ValueError):
        return {}
    return answers if isinstance(answers, dict) else {}


def store(server: str, enabled: list[str], at: float) -> None:
    """Keep a server's answer (atomically: a reader sees the old file or the new one)."""
    answers = cached()
    answers[server] = {"enabled": list(enabled), "at": at}
    tmp = f"{_path()}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(answers, f)
    os.replace(tmp, _path())


def submission_warnings(task: dict, server: str, command: str) -> list[str]:
    """sbatch's warnings for candidates the agent last found unusable on `server`."""
    answer = cached().get(server)
    if not answer or not isinstance(answer.get("enabled"), list):
        return []
    bad = unusable(task, answer["enabled"])
    if not bad:
        return []
    age = max(0, int(time.time() - float(answer.get("at") or 0)))
    what = ", ".join(f"{infra} ({why})" for infra, why in bad)
    then = (
        "the job pends until one can"
        if not runnable(task, answer["enabled"])
        else "the job goes to the others"
    )
    return [
        f"{command}: warning: SkyPilot cannot use {what}, as its server said {age} s ago: {then}"
    ]


class Answers:
    """The agent's answers, by server: asked every EVERY s on the queries' pool (`query`),
    one ask per server at a time; `enabled(where)` is None until one came."""

    def __init__(self, client, query) -> None:
        self.client, self.query = client, query
        self.known: dict[str, list[str]] = {
            name: answer["enabled"]
            for name, answer in cached().items()
            if isinstance(answer, dict) and isinstance(answer.get("enabled"), list)
        }
        self.asked: dict[str, float] = {}  # server -> when it was last asked
        self.flying: dict[str, Future] = {}

    def enabled(self, where, now: float) -> list[str] | None:
        """The server's enabled infra as last answered (asking again when due)."""
        self._collect(where.name)
        if where.name not in self.flying and now - self.asked.get(where.name, 0) >= EVERY:
            self.asked[where.name] = now
            self.flying[where.name] = self.query(self.client.enabled_clouds, where)
        return self.known.get(where.name)

    def first(self, where, now: float) -> bool:
        """The server's first answer is on its way (for at most FIRST s)."""
        return (
            where.name not in self.known
            and where.name in self.flying
            and now - self.asked[where.name] < FIRST
        )

    def _collect(self, name: str) -> None:
        future = self.flying.get(name)
        if future is None or not future.done():
            return
        del self.flying[name]
        try:
            answer = sorted(future.result())
        except Exception as exc:  # the server could not say: what was known stays
            log.warning("which infra %s can use: no answer: %s", name, exc)
            return
        if answer != self.known.get(name):
            log.info("infra %s can use: %s", name, ", ".join(answer) or "none")
        self.known[name] = answer
        store(name, answer, time.time())
