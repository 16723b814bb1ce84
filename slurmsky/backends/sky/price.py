"""What a sky job costs, from SkyPilot's own catalogs through its SDK (never on squeue's path).

Before it runs (`estimate`, for --test-only, translate and the agent's launch): for each
infra candidate of the task, the instance SkyPilot's optimizer would take for its resources
(each cloud's `get_feasible_launchable_resources`, the cheapest of them, in the cheapest
region that offers it unless the candidate names one) and its price an hour; the pick (the
cheapest of `any_of`, the first of `ordered`); with a time limit, the most the job can cost.
The optimizer's full pass (`sky.optimize`) needs the clouds `sky check` enabled, which
offline there are none of: this is its per-cloud step, which needs only the catalog.

While it runs (`hourly`, for the agent's mirror): the price an hour of the instance SkyPilot
launched (`launched` reads it from the queue's `cluster_resources_full`); at its end, that
price over SkyPilot's start_at..end_at (`cost`).

A catalog missing here is never fetched (`~/.sky/catalogs/v8/<cloud>/vms.csv`: any `sky`
command that needs it fetches it): it is said in one line. SkyPilot itself may refresh an
old catalog it downloaded; every lookup here gives up after TIMEOUT seconds.
"""

from __future__ import annotations

import logging
import os
import re
import threading

from slurmsky.backends.sky import client
from slurmsky.backends.sky.costs import money, rate
from slurmsky.backends.sky.group import group_tasks
from slurmsky.backends.sky.task import candidates
from slurmsky.display import format_hms

log = logging.getLogger("slurmsky.core.daemon")

# s the catalogs may take (SkyPilot refreshes a stale one over the network, with no bound of
# its own); SkyPilot's import comes before it (seconds, and more on a loaded machine)
TIMEOUT = 60.0
UNPRICED = ("kubernetes", "k8s", "slurm", "ssh")  # on-prem: no catalog price
KEYWORDS = ("ordered", "any_of")
# the queue's cluster_resources_full: `2x[spot](gpus=A10G:1, cpus=4, mem=16, g5.xlarge, ...)`
_LAUNCHED = re.compile(r"^(\d+)x(\[spot\])?\((.*)\)$")


def _bounded(fn, *args):
    """fn(*args) on a daemon thread, or TimeoutError after TIMEOUT s (SkyPilot imported
    first, unbounded: an import cannot wait on the network)."""
    client.sdk()
    out: list = []

    def call():
        try:
            out.append((True, fn(*args)))
        except Exception as exc:  # raised again in the caller's thread
            out.append((False, exc))

    thread = threading.Thread(target=call, daemon=True, name="sky-price")
    thread.start()
    thread.join(TIMEOUT)
    if not out:
        raise TimeoutError(f"SkyPilot's catalogs did not answer in {TIMEOUT:g} s")
    ok, value = out[0]
    if not ok:
        raise value
    return value


def _missing(cloud: str) -> str | None:
    """The catalog of `cloud` when it is not here."""
    path = client.catalog_path(cloud)
    return None if os.path.exists(path) else path


def _cheapest(resources: dict, nodes: int) -> dict | str:
    """What SkyPilot's optimizer takes for one candidate's resources: {instance, spot,
    region, node_rate}, or why there is no price."""
    cloud = client.cloud_of(resources)
    if cloud is None:
        return "no price: any cloud (SkyPilot's optimizer chooses among those `sky check` enabled)"
    if cloud.lower() in UNPRICED:
        return "no price: on-prem/kubernetes"
    missing = _missing(cloud)
    if missing:
        return f"no catalog for {cloud} offline ({missing})"
    return client.cheapest(resources, nodes) or (
        f"no instance type in the {cloud} catalog has these resources"
    )


def _estimate(task: dict, spec: dict) -> tuple[list[str], dict | None]:
    resources = task.get("resources") or {}
    nodes = task.get("num_nodes") or 1
    shared = {k: v for k, v in resources.items() if k not in KEYWORDS}
    found: list[dict] = []
    lines: list[str] = []
    for infra, partition, one in candidates(task, spec):
        got = _cheapest(dict(shared, **one), nodes)
        where = f"infra {infra} (partition {partition})"
        if isinstance(got, str):
            found.append({"where": where})
            lines.append(f"price: {where}: {got}")
            continue
        spot = "[spot]" if got["spot"] else ""
        label = f"{nodes}x{got['instance']}{spot},{infra}"
        found.append(dict(got, where=where, rate=got["node_rate"] * nodes, pick=label))
        each = f" for {nodes} nodes ({rate(got['node_rate'])} a node)" if nodes > 1 else ""
        lines.append(
            f"price: {where}: {got['instance']} {'spot' if spot else 'on-demand'} in "
            f"{got['region']}, {rate(found[-1]['rate'])}{each}"
        )
    priced = [p for p in found if "rate" in p]
    if not priced:
        return lines, None
    if resources.get("any_of"):
        how, pick = "the cheapest", min(priced, key=lambda p: p["rate"])
    else:
        how = "the first it tries" if resources.get("ordered") else "its one"
        pick = found[0]
    said = f"price: SkyPilot's pick ({how}): {pick['where']}, " + (
        rate(pick["rate"]) if "rate" in pick else "no price"
    )
    estimate = {"rate": pick.get("rate", 0.0), "pick": pick.get("pick", pick["where"])}
    limit = spec.get("time_limit")
    if limit:
        estimate["most"] = max(p["rate"] for p in priced) * limit / 3600
        said += f"; at most {money(estimate['most'])} in its time limit {format_hms(limit)}"
        said += " (on the dearest candidate)" if len(priced) > 1 else ""
    lines.append(said)
    return lines, estimate


def estimate(task: dict, spec: dict) -> tuple[list[str], dict | None]:
    """The price lines of a task (each component of a job group's), and the estimate kept
    with a launched job: {rate, pick, most (with a time limit)} (None: nothing priced).
    Summed over a job group's components."""
    pool = task.get("_metadata", {}).get("slurmsky", {}).get("pool")
    if pool:
        return [
            f"price: none per job: it runs on pool {pool}'s workers, which cost as the pool"
        ], None
    components = group_tasks(task) or [task]
    lines: list[str] = []
    total: dict | None = None
    try:
        for k, component in enumerate(components):
            said, one = _bounded(_estimate, component, spec)
            lines += [f"component {k}: {line}" for line in said] if len(components) > 1 else said
            if one is not None:
                total = one if total is None else _sum(total, one)
    except Exception as exc:
        lines.append(f"price: none ({type(exc).__name__}: {exc})")
    return lines, total


def _sum(a: dict, b: dict) -> dict:
    out = {"rate": a["rate"] + b["rate"], "pick": f"{a['pick']}+{b['pick']}"}
    if "most" in a and "most" in b:
        out["most"] = a["most"] + b["most"]
    return out


def launched(rec: dict) -> dict | None:
    """The instance a queue record's job runs on: {nodes, instance, spot, infra} (None: not
    known, or on infra whose resources name no instance type: Kubernetes, Slurm). SkyPilot
    has it while the job's cluster is up; after, its `resources` asked stand in."""
    found = _LAUNCHED.match(rec.get("cluster_resources_full") or "")
    cloud = str(rec.get("cloud") or "-").lower()
    if not found or cloud == "-" or cloud in UNPRICED:
        return None
    named = [e for e in found.group(3).split(", ") if "=" not in e and e != "..."]
    if not named:
        return None
    where = [cloud] + [v for v in (rec.get("region"), rec.get("zone")) if v not in (None, "-")]
    return {
        "nodes": int(found.group(1)),
        "instance": named[0],
        "spot": bool(found.group(2)),
        "infra": "/".join(where),
    }


def hourly(seen: dict) -> dict | None:
    """`seen` (launched's) with its price an hour for all its nodes (`rate`), or None when
    no catalog here prices it."""
    cloud, region, zone = (seen["infra"].split("/") + [None, None])[:3]

    def lookup():
        if _missing(cloud):
            return None
        try:
            return client.hourly_cost(cloud, seen["instance"], seen["spot"], region, zone)
        except ValueError:  # a zone the catalog names otherwise (AWS's: ids, without login)
            return client.hourly_cost(cloud, seen["instance"], seen["spot"], region, None)

    try:
        node_rate = _bounded(lookup)
    except Exception as exc:
        log.warning("no price of %s: %s", seen, exc)
        return None
    return None if node_rate is None else dict(seen, rate=node_rate * seen["nodes"])


def cost(launch: dict, start: float | None, end: float | None) -> dict | None:
    """The job's cost: the launched instance's price an hour over its runtime."""
    if not start or not end or end < start:
        return None
    return dict(launch, usd=round(launch["rate"] * (end - start) / 3600, 6))
