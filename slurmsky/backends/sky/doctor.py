"""`slurmsky doctor` on the sky backend: the API server, the infra SkyPilot has enabled, each
partition's infra candidates and whether SkyPilot can use them (infra.py), and the agent's
last sync, each with a remedy when it is a problem."""

from __future__ import annotations

import time

from slurmsky.backends.sky import infra, server, sync
from slurmsky.config import partition_infras


def check(cfg) -> list[tuple[str, str, str | None]]:
    lines: list = []
    where = server.endpoint()
    answer = server.health(where)
    local = server.running_pid()
    if answer is None:
        lines.append(("api server", f"{where}: unreachable", server.unreachable_remedy(where)))
    else:
        version = answer.get("version") or "?"
        api = answer.get("api_version") or "?"
        own = f", started by slurmsky (pid {local}, {server.runtime_dir()})" if local else ""
        lines.append(
            ("api server", f"{where}: reachable, SkyPilot {version} (API {api}){own}", None)
        )
    enabled = _enabled() if answer is not None else None
    if isinstance(enabled, str):
        lines.append(("infra", f"cannot ask the server: {enabled}", "see `sky check`"))
        enabled = None
    elif enabled is not None:
        lines.append(
            (
                "infra",
                "enabled: " + (", ".join(enabled) or "none"),
                None
                if enabled
                else "enable one: set up its credentials, then `sky check` (docs/sky-backend.md)",
            )
        )
    lines += _partitions(cfg, enabled)
    status = sync.sync_status()
    if status.get("attempt"):
        age = time.time() - status["attempt"]
        lines.append(
            (
                "last sync",
                f"{age:.0f} s ago" + (f": {status['error']}" if status.get("error") else ": ok"),
                "see the agent's log" if status.get("error") else None,
            )
        )
    return lines


def _partitions(cfg, enabled: list[str] | None) -> list:
    if not cfg.partitions:
        return [
            (
                "partitions",
                "none configured: jobs go wherever SkyPilot finds resources (map them to "
                "infra in the config: docs/configuration.md)",
                None,
            )
        ]
    lines = []
    default = cfg.default_partition()
    for name, part in cfg.partitions.items():
        infras = [i for i in partition_infras(part) if i]
        states = [(i, infra.why_not(i, enabled) if enabled is not None else None) for i in infras]
        finding = f"{name}{' (default)' if name == default else ''} -> " + (
            ", ".join(
                i + (f" ({why})" if why else " (usable)" if enabled else "") for i, why in states
            )
            or "any"
        )
        if part.get("accelerators"):
            accelerators = part["accelerators"]
            named = [accelerators] if isinstance(accelerators, str) else list(accelerators)
            finding += f", accelerators {', '.join(map(str, named))}"
        off = [(i, why) for i, why in states if why]
        remedy = None
        if off:
            remedy = f"{off[0][0]}: {off[0][1]}: `sky check {infra.kind(off[0][0])}`"
            if len(off) < len(states):
                remedy += " (its jobs go to the usable ones meanwhile)"
        lines.append(("partition", finding, remedy))
    return lines


def _enabled() -> list[str] | str:
    """The infra SkyPilot's server has enabled, or why it could not say."""
    from slurmsky.backends.sky.client import CLIENT

    try:
        return CLIENT.enabled_clouds()
    except Exception as exc:  # SkyPilot's errors are many; doctor reports, never fails on one
        return " ".join(str(exc).split())[:200]
