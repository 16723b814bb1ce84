"""sinfo's output: `%`-formats over partitions and their nodes, grouped as sinfo groups them."""

from __future__ import annotations

from slurmsky import SLURM_VERSION
from slurmsky.display import format_limit
from slurmsky.render.common import pad, parse_percent_format, render


class NodeView:
    """One node in one partition, as sinfo shows it."""

    __slots__ = (
        "name",
        "partition",
        "default",
        "cpus",
        "alloc_cpus",
        "memory",
        "tmp",
        "gres",
        "limit",
        "state",
        "remote",
        "boot_time",
    )

    def __init__(
        self,
        name,
        partition,
        default,
        cpus,
        alloc_cpus,
        memory,
        gres,
        limit,
        state=None,
        tmp=0,
        remote=False,
        boot_time=None,
    ):
        self.name, self.partition, self.default = name, partition, default
        self.cpus, self.alloc_cpus, self.memory, self.tmp = cpus, alloc_cpus, memory, tmp
        self.gres, self.limit = gres, limit
        self.remote, self.boot_time = remote, boot_time
        self.state = state or (
            "idle" if not alloc_cpus else "alloc" if alloc_cpus >= cpus else "mix"
        )


LONG_STATES = {
    "idle": "idle",
    "mix": "mixed",
    "alloc": "allocated",
    "n/a": "n/a",
    "idle~": "idle~",
    "mix*": "mixed*",  # not responding (a pool worker SkyPilot finds NOT_READY)
    "alloc*": "allocated*",
}


def _limit_text(minutes: int | None) -> str:
    if minutes is None:
        return "infinite"
    return format_limit(minutes)


def _group_counts(nodes: list[NodeView]) -> str:
    """A/I/O/T as Slurm counts them: alloc and mix (whatever their flag: `*` not responding,
    `#` powering up, ...) allocated, idle with any flag idle, down and the rest other (an
    empty partition's stand-in is no node: 0/0/0/0)."""
    base = [n.state.rstrip("*#%~!$@^") for n in nodes if n.name]
    alloc = sum(1 for b in base if b in ("alloc", "mix"))
    idle = sum(1 for b in base if b == "idle")
    return f"{alloc}/{idle}/{len(base) - alloc - idle}/{len(base)}"


def _cpu_counts(nodes: list[NodeView]) -> str:
    """CPUs A/I/O/T: a down node's CPUs are other, as Slurm counts them."""
    down = [n for n in nodes if n.state.startswith("down")]
    up = [n for n in nodes if not n.state.startswith("down")]
    alloc = sum(n.alloc_cpus for n in up)
    other = sum(n.cpus for n in down)
    total = sum(n.cpus for n in nodes)
    return f"{alloc}/{total - alloc - other}/{other}/{total}"


# sinfo fields: letter -> (header, value(list of nodes) -> str, cut)
SINFO_FIELDS = {
    "a": ("AVAIL", lambda ns: "up"),
    "A": ("NODES(A/I)", lambda ns: _group_counts(ns).rsplit("/", 2)[0]),
    "b": ("ACTIVE_FEATURES", lambda ns: None),
    "B": ("MAX_CPUS_PER_NODE", lambda ns: "UNLIMITED"),
    "c": ("CPUS", lambda ns: str(ns[0].cpus) if ns[0].cpus else "0"),
    "C": ("CPUS(A/I/O/T)", lambda ns: _cpu_counts(ns)),
    "d": ("TMP_DISK", lambda ns: str(ns[0].tmp)),
    "D": ("NODES", lambda ns: str(len([n for n in ns if n.name]))),
    "e": ("FREE_MEM", lambda ns: str(ns[0].memory)),
    "E": ("REASON", lambda ns: "none"),
    "f": ("AVAIL_FEATURES", lambda ns: None),
    "F": ("NODES(A/I/O/T)", _group_counts),
    "g": ("GROUPS", lambda ns: "all"),
    "G": ("GRES", lambda ns: ns[0].gres),
    "h": ("OVERSUBSCRIBE", lambda ns: "NO"),
    "I": ("PRIO_JOB_FACTOR", lambda ns: "1"),
    "l": ("TIMELIMIT", lambda ns: _limit_text(ns[0].limit)),
    "L": ("DEFAULTTIME", lambda ns: "n/a"),
    "m": ("MEMORY", lambda ns: str(ns[0].memory)),
    "M": ("PREEMPT_MODE", lambda ns: "OFF"),
    "n": ("HOSTNAMES", lambda ns: ",".join(n.name for n in ns)),
    "N": ("NODELIST", None, False),
    "o": ("NODE_ADDR", lambda ns: ",".join(n.name for n in ns)),
    "O": ("CPU_LOAD", lambda ns: "0.00"),
    "p": ("PRIO_TIER", lambda ns: "1"),
    "P": ("PARTITION", lambda ns: ns[0].partition + ("*" if ns[0].default else "")),
    "r": ("ROOT", lambda ns: "no"),
    "R": ("PARTITION", lambda ns: ns[0].partition),
    "s": ("JOB_SIZE", lambda ns: "1-infinite"),
    "S": ("ALLOCNODES", lambda ns: "all"),
    "t": ("STATE", lambda ns: ns[0].state),
    "T": ("STATE", lambda ns: LONG_STATES.get(ns[0].state, ns[0].state)),
    "v": ("VERSION", lambda ns: SLURM_VERSION),
    "w": ("WEIGHT", lambda ns: "1"),
    "z": ("S:C:T", lambda ns: f"1:{ns[0].cpus}:1" if ns[0].name else "0:0:0"),
    "X": ("SOCKETS", lambda ns: "1"),
    "Y": ("CORES", lambda ns: str(ns[0].cpus)),
    "Z": ("THREADS", lambda ns: "1"),
}
# `#`: as wide as the longest partition name or node name shown, at least 9 (Slurm's)
SINFO_DEFAULT = "%#P %.5a %.10l %.6D %.6t %N"
SINFO_SUMMARY = "%#P %.5a %.10l %.16F %N"
SINFO_LONG = "%#P %.5a %.10l %.10s %.4r %.8h %.10g %.6D %.11T %N"
SINFO_NODE = "%#N %.6D %.#P %6t"
SINFO_NODE_LONG = "%#N %.6D %.#P %.11T %4c %.8z %.6m %.8d %.6w %.8f %20E"


def _sized(fmt: str, nodes: list[NodeView]) -> str:
    """`%#N`/`%#P` (either alignment) with the width Slurm gives them: the longest node or
    partition name (with its default `*`) to be printed, at least 9."""
    import re

    widths = {
        "N": max([9, *(len(n.name) for n in nodes)]),
        "P": max([9, *(len(n.partition) + n.default for n in nodes)]),
    }
    return re.sub(r"%(\.?)#([NP])", lambda m: f"%{m[1]}{widths[m[2]]}{m[2]}", fmt)


def sinfo_lines(
    nodes: list[NodeView],
    fmt: str,
    *,
    header: bool,
    by_node: bool,
    summary: bool,
    errors: list[str],
) -> list[str]:
    """sinfo's table: nodes grouped (per partition, by every shown attribute) into lines."""
    from slurmsky.runtime.hostlist import compress

    fields = dict(SINFO_FIELDS)
    fields["r"] = ("ROOT", lambda ns: "no")
    fields["g"] = ("GROUPS", lambda ns: "all")
    if by_node:  # an empty partition has no node to list
        nodes = [n for n in nodes if n.name]
    items = parse_percent_format(_sized(fmt, nodes), fields, {k: k for k in fields}, errors)
    lines = []
    if header:
        lines.append(render(items, None))
    counted = ("N", "D", "F", "A", "C", "n", "o")
    shown = [it for it in items if it.field is not None and it.key not in counted]
    groups: dict = {}
    order = []
    for node in nodes:
        if by_node:
            key = (node.name, node.partition)
        elif summary:
            key = (node.partition,)
        else:
            key = (node.partition,) + tuple(it.field[1]([node]) for it in shown)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(node)
    for key in order:
        members = groups[key]
        real = [n for n in members if n.name]
        out = []
        for item in items:
            field = item.field
            if field is not None:
                if field[1] is None:  # the node list
                    value = compress([n.name for n in real])
                    out.append(pad(value, item.width, item.right, False))
                else:
                    out.append(pad(field[1](members), item.width, item.right, True))
            out.append(item.suffix)
        lines.append("".join(out))
    return lines
