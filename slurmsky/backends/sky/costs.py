"""A sky job's price and cost as the commands show them (no imports: scontrol and sacct
read it). price.py computes them; they are kept in the job's ref (`estimate` at its launch,
`launched` while it runs) and its result (`cost`, once it ended)."""

from __future__ import annotations


def money(amount: float) -> str:
    return f"${amount:.2f}"


def rate(amount: float) -> str:
    return f"${amount:.4f}/h"


def _instance(one: dict) -> str:
    return f"{one['nodes']}x{one['instance']}{'[spot]' if one['spot'] else ''},{one['infra']}"


def admin_comment(ref: dict | None, result: dict | None) -> str:
    """The job's AdminComment (scontrol show job, sacct): its cost once it ended, the
    launched instance's price an hour while it runs, the estimate before; no spaces."""
    spent = (result or {}).get("cost")
    if spent:
        return f"cost={money(spent['usd'])},{rate(spent['rate'])},{_instance(spent)}"
    ref = ref or {}
    if ref.get("launched", {}).get("rate") is not None:
        return f"rate={rate(ref['launched']['rate'])},{_instance(ref['launched'])}"
    guess = ref.get("estimate")
    if guess:
        most = f",most={money(guess['most'])}" if "most" in guess else ""
        return f"estimate={rate(guess['rate'])}{most},{guess['pick']}"
    return ""


def cost_line(result: dict | None) -> str | None:
    """seff's line: `Cost: $0.40 (2x g5.xlarge spot on aws/us-west-2 at $0.7974/h)`."""
    spent = (result or {}).get("cost")
    if not spent:
        return None
    kind = "spot" if spent["spot"] else "on-demand"
    return (
        f"Cost: {money(spent['usd'])} ({spent['nodes']}x {spent['instance']} {kind} on "
        f"{spent['infra']} at {rate(spent['rate'])})"
    )
