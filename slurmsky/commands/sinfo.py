"""sinfo: partitions and nodes, as Slurm 22.05 shows them.

What slurmsky calls partitions and nodes:

* No configured partitions: one partition, `local`, the default (`local*`).
* Configured partitions (slurmsky config `partitions:`), the `default: true` one marked `*`.
* A partition's nodes are what its backend shows (Backend.nodes): on the local backend the
  local "nodes" (127.0.0.1, 127.0.0.2, ..., see backends/local/nodes.py), each with this
  machine's CPUs and memory, `idle`, `mix` or `alloc` by the CPUs its running jobs hold;
  on the sky backend the nodes its running jobs hold (they come and go with the jobs), or
  for a partition on a SkyPilot pool the pool's workers, as the agent last saw them
  (backends/sky/pools.py: idle, mix, alloc; idle# while one comes up, down when it failed).
  A partition with no node shows none (`0 n/a`), as Slurm shows an empty partition.
  TIMELIMIT is the partition's `max_time`, else `infinite`.
"""

from __future__ import annotations

import sys
import time

from slurmsky.commands.common import run
from slurmsky.core import state, states
from slurmsky.render import common, sinfo_format
from slurmsky.render.sinfo_format import NodeView
from slurmsky.runtime.getopt_long import UsageError, getopt_long

SHORT = "adehiM:n:No:O:p:lrRsS:t:TvV"
LONG = {
    "all": ("a", 0),
    "dead": ("d", 0),
    "exact": ("e", 0),
    "noheader": ("h", 0),
    "help": ("help", 0),
    "hide": ("hide", 0),
    "iterate": ("i", 1),
    "cluster": ("M", 1),
    "clusters": ("M", 1),
    "nodes": ("n", 1),
    "Node": ("N", 0),
    "format": ("o", 1),
    "Format": ("O", 1),
    "partition": ("p", 1),
    "long": ("l", 0),
    "responding": ("r", 0),
    "list-reasons": ("R", 0),
    "summarize": ("s", 0),
    "sort": ("S", 1),
    "states": ("t", 1),
    "reservation": ("T", 0),
    "usage": ("usage", 0),
    "verbose": ("v", 0),
    "version": ("V", 0),
    "federation": ("federation", 0),
    "local": ("local", 0),
    "noconvert": ("noconvert", 0),
    "json": ("json", 0),
    "yaml": ("yaml", 0),
}
USAGE = """\
Usage: sinfo [-adelNRrsTv] [-i seconds] [-t states] [-p partition] [-n nodes]
             [-S fields] [-o format] [-O Format] [--federation] [--local] [--sibling]"""


def partitions(conn) -> list[dict]:
    """[{name, default, limit (minutes or None), nodes: [NodeView]}], default first."""
    from slurmsky import backends
    from slurmsky.config import load_config

    cfg = load_config()
    backend = backends.configured(cfg)
    backend.refresh()  # a reader is here: the agent keeps what it follows fresh (no wait)
    configured = cfg.partitions or {"local": {"default": True}}
    default = cfg.default_partition() or "local"
    running = state.find_jobs(conn, states=states.STARTED_STATES)
    parts = []
    for name, part in configured.items():
        limit = None
        if part.get("max_time"):
            from slurmsky.parse.times import parse_time

            try:
                limit = parse_time(str(part["max_time"]), "max_time")
            except ValueError:
                limit = None
        views = [
            NodeView(
                n.name,
                name,
                name == default,
                n.cpus,
                n.alloc_cpus,
                n.mem,
                n.gres,
                limit,
                n.state,
                n.tmp,
                n.remote,
                n.boot_time,
            )
            for n in backend.nodes(name, part, running)
        ]
        if not views:  # an empty partition, as Slurm shows it
            views = [NodeView("", name, name == default, 0, 0, 0, None, limit, state="n/a")]
        parts.append({"name": name, "default": name == default, "limit": limit, "nodes": views})
    return parts


def body(argv: list[str]) -> int:
    opts, rest = getopt_long("sinfo", argv, SHORT, LONG)
    if rest:
        raise UsageError(f"sinfo: error: Unrecognized option: {rest[0]}", USAGE)
    noheader = by_node = summary = long = False
    fmt = None
    wanted_parts = wanted_nodes = wanted_states = None
    for key, value in opts:
        if key == "h":
            noheader = True
        elif key == "N":
            by_node = True
        elif key == "s":
            summary = True
        elif key == "l":
            long = True
        elif key == "o":
            fmt = value
        elif key == "O":
            fmt = _long_to_percent(value)
        elif key == "p":
            wanted_parts = set(filter(None, value.split(",")))
        elif key == "n":
            from slurmsky.runtime.hostlist import expand

            try:
                wanted_nodes = set(expand(value))
            except ValueError as exc:
                raise UsageError(
                    exc.log("sinfo") + f"sinfo: error: '{value}' invalid entry for --nodes"
                ) from None
        elif key == "t":
            wanted_states = {w.lower() for w in value.split(",") if w}
        elif key == "V":
            print(common.version_line())
            return 0
        elif key in ("help", "usage"):
            print(USAGE)
            return 0
    conn = state.connect()
    nodes = []
    for part in partitions(conn):
        if wanted_parts is not None and part["name"] not in wanted_parts:
            continue
        for node in part["nodes"]:
            if wanted_nodes is not None and node.name not in wanted_nodes:
                continue
            if (
                wanted_states is not None
                and node.state not in wanted_states
                and sinfo_format.LONG_STATES.get(node.state) not in wanted_states
            ):
                continue
            nodes.append(node)
    if by_node:
        nodes.sort(key=lambda n: (_natural(n.name), n.partition))
        fmt = fmt or (sinfo_format.SINFO_NODE_LONG if long else sinfo_format.SINFO_NODE)
    elif summary:
        fmt = fmt or sinfo_format.SINFO_SUMMARY
    else:
        fmt = fmt or (sinfo_format.SINFO_LONG if long else sinfo_format.SINFO_DEFAULT)
    errors: list[str] = []
    lines = sinfo_format.sinfo_lines(
        nodes, fmt, header=not noheader, by_node=by_node, summary=summary, errors=errors
    )
    for bad in errors:
        sys.stderr.write(f"sinfo: error: Invalid node format specification: {bad}\n")
    if long:
        lines.insert(0, time.ctime(common.clock()))
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


_LONG_NAMES = {
    "partition": "P",
    "partitionname": "R",
    "available": "a",
    "timelimit": "l",
    "nodes": "D",
    "statecompact": "t",
    "statelong": "T",
    "nodelist": "N",
    "cpus": "c",
    "memory": "m",
    "gres": "G",
    "nodeaiot": "F",
    "cpusstate": "C",
    "nodehost": "n",
    "nodeaddr": "o",
    "reason": "E",
    "features": "f",
    "freemem": "e",
    "cpusload": "O",
    "weight": "w",
    "tmp": "d",
    "socketcorethread": "z",
    "oversubscribe": "h",
}


def _long_to_percent(text: str) -> str:
    """sinfo -O `Field[:[.]N]` as the equivalent -o format (20 wide by default)."""
    out = []
    for token in filter(None, text.split(",")):
        name, colon, spec = token.partition(":")
        letter = _LONG_NAMES.get(name.lower())
        if letter is None:
            raise UsageError(f"sinfo: error: Invalid node format specification: {name}")
        right = spec.startswith(".")
        digits = spec.lstrip(".")
        width = digits if colon else "20"
        out.append("%" + ("." if right else "") + width + letter)
    return "".join(out)


def _natural(name: str):
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def main() -> None:
    run("sinfo", body)
