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


def warn(lines) -> None:
    for line in lines:
        sys.stderr.write(line + "\n")
