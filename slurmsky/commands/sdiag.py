"""sdiag: the scheduler's statistics in Slurm 22.05's report layout, with slurmsky's figures.

Slurm's slurmctld counts jobs submitted, started, completed, canceled and failed since its
statistics were last reset (at midnight UTC, or by `sdiag -r`), and times its scheduling
passes and RPCs. slurmsky's figures come from its state: the job counts since the later of
midnight UTC and the last `sdiag -r` (kept in the state directory, `sdiag-reset`), the jobs
pending and running now, the agent's thread count as the server's; slurmsky has no RPCs,
agent queue or backfill cycles to time, so those are 0 and the RPC tables are empty. The
latency line is measured, as Slurm's is. `-r` answers as the peer answers root (each user
is the administrator of their own queue).
"""

from __future__ import annotations

import os
import sys
import time

from slurmsky.commands.common import run
from slurmsky.commands.read_options import Opt, Table, answered
from slurmsky.core import state
from slurmsky.record import Record
from slurmsky.render.common import clock

USAGE = "Usage: sdiag [-M cluster] [-aritT]"
RESET_FILE = "sdiag-reset"  # in the state directory: when `sdiag -r` last ran (epoch seconds)
STARS = "*" * 55


class SdiagArgs(Record, frozen=False):
    """What sdiag's options ask."""

    reset: bool = False
    action: str | None = None


# fmt: off
OPTIONS = Table("sdiag", (
    Opt("a", ("all",), help="accepted: the report is always whole"),
    Opt("h", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("i", ("sort-by-id",), help="accepted, no effect (no RPCs to sort)"),
    Opt("M", ("cluster",), 1, help="accepted, no effect (one cluster)"),
    Opt("r", ("reset",), dest="reset", help="reset the statistics"),
    Opt("t", ("sort-by-time",), help="accepted, no effect (no RPCs to sort)"),
    Opt("T", ("sort-by-time2",), help="accepted, no effect (no RPCs to sort)"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
))
# fmt: on


def stamp(when: float) -> str:
    """Slurm's slurm_ctime2 and the epoch seconds: `Sun Nov 29 12:34:55 2026 (1795955695)`."""
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(when)) + f" ({int(when)})"


def since(now: float) -> float:
    """When the statistics start: the later of midnight UTC today and the last reset."""
    midnight = now - now % 86400
    try:
        with open(os.path.join(state.home(), RESET_FILE)) as fh:
            reset = float(fh.read().strip() or 0)
    except (OSError, ValueError):
        reset = 0.0
    return max(midnight, reset if reset <= now else midnight)


def _agent_threads() -> int:
    from slurmsky.core import daemon

    pid = daemon.running_pid()
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 1


def _latency() -> int:
    """Microseconds 1000 calls of the clock take (Slurm times gettimeofday())."""
    now = time.time
    start = time.perf_counter()
    for _ in range(1000):
        now()
    return int((time.perf_counter() - start) * 1e6)


def report(now: float, start: float, figures: tuple[int, ...], threads: int, latency: int) -> str:
    submitted, started, completed, canceled, failed, pending, running = figures
    zeros = ("Total cycles", "Last cycle", "Max cycle", "Last depth cycle")
    lines = [
        STARS,
        f"sdiag output at {stamp(now)}",
        f"Data since      {stamp(start)}",
        STARS,
        f"Server thread count:  {threads}",
        "Agent queue size:     0",
        "Agent count:          0",
        "Agent thread count:   0",
        "DBD Agent queue size: 0",
        "",
        f"Jobs submitted: {submitted}",
        f"Jobs started:   {started}",
        f"Jobs completed: {completed}",
        f"Jobs canceled:  {canceled}",
        f"Jobs failed:    {failed}",
        "",
        f"Job states ts:  {stamp(now)}",
        f"Jobs pending:   {pending}",
        f"Jobs running:   {running}",
        "",
        "Main schedule statistics (microseconds):",
        "\tLast cycle:   0",
        "\tMax cycle:    0",
        "\tTotal cycles: 0",
        "\tLast queue length: 0",
        "",
        "Backfilling stats",
        "\tTotal backfilled jobs (since last slurm start): 0",
        "\tTotal backfilled jobs (since last stats cycle start): 0",
        "\tTotal backfilled heterogeneous job components: 0",
        f"\t{zeros[0]}: 0",
        f"\tLast cycle when: {stamp(start)}",
        f"\t{zeros[1]}: 0",
        f"\t{zeros[2]}:  0",
        f"\t{zeros[3]}: 0",
        "\tLast depth cycle (try sched): 0",
        "\tLast queue length: 0",
        "\tLast table size: 0",
        "",
        f"Latency for 1000 calls to gettimeofday(): {latency} microseconds",
        "",
        "Remote Procedure Call statistics by message type",
        "",
        "Remote Procedure Call statistics by user",
        "",
        "Pending RPC statistics",
        "\tNo pending RPCs",
    ]
    return "\n".join(lines) + "\n"


def body(argv: list[str]) -> int:
    o, _ = OPTIONS.parse(argv, SdiagArgs())  # operands are ignored, as Slurm's sdiag does
    if answered(o, USAGE, "sdiag"):
        return 0
    now = clock()
    if o.reset:
        home = state.ensure_home()
        with open(os.path.join(home, RESET_FILE), "w") as fh:
            fh.write(f"{now}\n")
        sys.stdout.write("Reset scheduling statistics\n")
        return 0
    start = since(now)
    conn = state.connect()
    figures = state.job_figures(conn, start)
    sys.stdout.write(report(now, start, figures, _agent_threads(), _latency()))
    return 0


def main() -> None:
    run("sdiag", body)
