"""What every command shares: Slurm-style error exits."""

from __future__ import annotations

import sys
from typing import Callable

from ..errors import SlurmError


def run(prog: str, body: Callable[[list[str]], int | None]) -> None:
    """Run a command body; a SlurmError becomes `<prog>: error: ...` and its exit code."""
    try:
        code = body(sys.argv[1:])
    except SlurmError as exc:
        sys.stdout.flush()
        sys.stderr.write(exc.render(prog))
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code or 0)


def warn(lines) -> None:
    for line in lines:
        sys.stderr.write(line + "\n")
