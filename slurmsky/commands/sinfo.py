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
from slurmsky.commands.read_options import REQUIRED, Opt, Table, answered, word_set
from slurmsky.core import state, states
from slurmsky.record import Record
from slurmsky.render import common, sinfo_format
from slurmsky.render.sinfo_format import NodeView
from slurmsky.runtime.getopt_long import UsageError

USAGE = """\
Usage: sinfo [-abdelNRrsTv] [-i seconds] [-t states] [-p partition] [-n nodes]
             [-S fields] [-o format] [-O Format] [--federation] [--local]"""


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


class SinfoArgs(Record, frozen=False):
    """What sinfo's options ask."""

    noheader: bool = False
    by_node: bool = False
    summary: bool = False
    long: bool = False
    fmt: str | None = None
    parts: set | None = None
    nodes: set | None = None
    states: set | None = None
    action: str | None = None


def _nodes(text: str, ns: object = None) -> set[str]:
    from slurmsky.runtime.hostlist import expand

    try:
        return set(expand(text))
    except ValueError as exc:
        raise UsageError(
            exc.log("sinfo") + f"sinfo: error: '{text}' invalid entry for --nodes"
        ) from None


def _states(text: str, ns: object = None) -> set[str]:
    return {w.lower() for w in text.split(",") if w}


def _format_long(text: str, ns: object = None) -> str:
    return _long_to_percent(text)


_NO_EFFECT = "accepted, no effect"
# fmt: off
OPTIONS = Table("sinfo", (
    Opt("a", ("all",), help=_NO_EFFECT),
    Opt("d", ("dead",), help=_NO_EFFECT),
    Opt("e", ("exact",), help=_NO_EFFECT),
    Opt("h", ("noheader",), dest="noheader", help="no header line"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("hide",), help=_NO_EFFECT),
    Opt("i", (), help=_NO_EFFECT),  # as slurmsky has had it: -i takes no argument here
    Opt("", ("iterate",), REQUIRED, help=_NO_EFFECT),
    Opt("M", ("cluster", "clusters"), REQUIRED, help=_NO_EFFECT),
    Opt("n", ("nodes",), REQUIRED, "nodes", convert=_nodes, help="these nodes"),
    Opt("N", ("Node",), dest="by_node", help="one line per node"),
    Opt("o", ("format",), REQUIRED, "fmt", help="fields as %-codes"),
    Opt("O", ("Format",), REQUIRED, "fmt", convert=_format_long, help="fields by name"),
    Opt("p", ("partition",), REQUIRED, "parts", convert=word_set, help="these partitions"),
    Opt("l", ("long",), dest="long", help="the long format"),
    Opt("r", ("responding",), help=_NO_EFFECT),
    Opt("R", ("list-reasons",), help=_NO_EFFECT),
    Opt("s", ("summarize",), dest="summary", help="partitions' summaries"),
    Opt("S", ("sort",), REQUIRED, help=_NO_EFFECT),
    Opt("t", ("states",), REQUIRED, "states", convert=_states, help="nodes in these states"),
    Opt("T", ("reservation",), help=_NO_EFFECT),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
    Opt("v", ("verbose",), help=_NO_EFFECT),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("federation",), help=_NO_EFFECT),
    Opt("", ("local",), help=_NO_EFFECT),
    Opt("", ("noconvert",), help=_NO_EFFECT),
    Opt("", ("json",), help=_NO_EFFECT),
    Opt("", ("yaml",), help=_NO_EFFECT),
))
# fmt: on


def body(argv: list[str]) -> int:
    o, _ = OPTIONS.parse(argv, SinfoArgs())  # operands are ignored, as the peer's sinfo does
    if answered(o, USAGE, "sinfo"):
        return 0
    noheader, by_node, summary, long, fmt = o.noheader, o.by_node, o.summary, o.long, o.fmt
    wanted_parts, wanted_nodes, wanted_states = o.parts, o.nodes, o.states
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
    # and the rest of 22.05's -O names the fields above print
    "allocnodes": "S",
    "cores": "Y",
    "defaulttime": "L",
    "disk": "d",
    "features_act": "b",
    "groups": "g",
    "maxcpuspernode": "B",
    "nodeai": "A",
    "preemptmode": "M",
    "priorityjobfactor": "I",
    "prioritytier": "p",
    "root": "r",
    "share": "h",
    "size": "s",
    "sockets": "X",
    "threads": "Z",
    "time": "l",
    "version": "v",
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
