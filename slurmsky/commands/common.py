"""What every command shares: Slurm-style error exits."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable

from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.runtime.getopt_long import UsageError
from slurmsky.runtime.launch import undo_locale_coercion


def run(prog: str, body: Callable[[list[str]], int | None]) -> None:
    """Run a command body; a SlurmError becomes `<prog>: error: ...`, a UsageError its
    lines verbatim, each with its exit code; a closed stdout (`| head`) ends quietly. A
    state database that fails after it opened (locked, full) is a SlurmError too."""
    undo_locale_coercion()
    for stream in (sys.stdout, sys.stderr):  # bytes that are not UTF-8 go out as they came
        if hasattr(stream, "reconfigure"):  # a test's StringIO has none
            stream.reconfigure(errors="surrogateescape")
    try:
        try:
            code = body(sys.argv[1:])
        except sqlite3.Error as exc:
            raise state.unusable(exc) from None
        except state.StateError as exc:
            raise _state_failed(prog, exc) from None
    except (SlurmError, UsageError) as exc:
        sys.stdout.flush()
        text = (
            exc.render(prog)
            if isinstance(exc, SlurmError)
            else "".join(line + "\n" for line in exc.lines)
        )
        sys.stderr.write(text)
        code = exc.exit_code
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug, or a state no command expects (a garbled row)
        if os.environ.get("SLURMSKY_DEBUG"):
            raise
        sys.stdout.flush()
        said = " ".join(str(exc).split())
        sys.stderr.write(
            f"{prog}: error: unexpected {type(exc).__name__}"
            f"{': ' + said if said else ''} (SLURMSKY_DEBUG=1 shows where)\n"
        )
        code = 1
    sys.exit(code or 0)


# What each command says when the controller (here: the state's PostgreSQL server) cannot be
# reached, as Slurm 22.05's do with slurmctld (or, for sacct, slurmdbd) stopped.
NO_CONTROLLER = "Unable to contact slurm controller (connect failure)"
_UNREACHABLE = {
    "sbatch": f"{{prog}}: error: Batch job submission failed: {NO_CONTROLLER}",
    "salloc": f"{{prog}}: error: Job submit/allocate failed: {NO_CONTROLLER}",
    "srun": f"{{prog}}: error: Unable to allocate resources: {NO_CONTROLLER}",
    "squeue": f"slurm_load_jobs error: {NO_CONTROLLER}",
    "scontrol": f"slurm_load_jobs error: {NO_CONTROLLER}",
    "sinfo": f"slurm_load_partitions: {NO_CONTROLLER}",
    "scancel": f"{{prog}}: error: Kill job error: {NO_CONTROLLER}",
    "sstat": f"{{prog}}: error: couldn't get steps for job: {NO_CONTROLLER}",
    "sacct": "{prog}: error: Problem talking to the database: Connection refused",
}


def _state_failed(prog: str, exc) -> SlurmError:
    """A PostgreSQL state's failure in Slurm's words: an unreachable server as a dead
    controller (_UNREACHABLE), anything else naming the database's own words."""
    if exc.unreachable:
        line = _UNREACHABLE.get(prog, f"{{prog}}: error: {NO_CONTROLLER}")
        return SlurmError(line, bare=True)
    return SlurmError(f"slurmsky state failed ({exc})")


def warn(lines) -> None:
    for line in lines:
        sys.stderr.write(line + "\n")
