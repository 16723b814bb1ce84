"""The option table, for the commands: it lives in runtime/options.py because the srun inside
every job (standard library only) parses with the same rows; this module adds what only the
front end needs, the README's compatibility matrix."""

from __future__ import annotations

from slurmsky.runtime.options import (
    IGNORED,
    MAPPED,
    NO_ARG,
    OPTIONAL,
    OPTIONS,
    PER_COMPONENT,
    REFUSED,
    REQUIRED,
    SALLOC,
    SBATCH,
    SRUN,
    SUPPORTED,
    Option,
    help_text,
    input_env,
    options_for,
)

__all__ = [
    "IGNORED",
    "MAPPED",
    "NO_ARG",
    "OPTIONAL",
    "OPTIONS",
    "PER_COMPONENT",
    "REFUSED",
    "REQUIRED",
    "SUPPORTED",
    "Option",
    "compat_matrix",
    "help_text",
    "input_env",
    "options_for",
]


def compat_matrix() -> str:
    """The README's compatibility matrix (a test keeps the README in step with this): each
    command's fate, and the srun inside a job's (``step``)."""
    lines = [
        "| option | sbatch | srun | salloc | srun in a job | what slurmsky does |",
        "|---|---|---|---|---|---|",
    ]
    merged: dict[str, list[Option]] = {}
    for opt in OPTIONS:
        merged.setdefault(opt.long, []).append(opt)
    for long, rows in merged.items():
        cells = []
        for cmd in (SBATCH, SRUN, SALLOC):
            row = next((o for o in rows if cmd in o.commands), None)
            cells.append(row.fate if row else "-")
        step = next((o.step for o in rows if SRUN in o.commands), None)
        cells.append(step or "-")
        short = next((f"`-{o.short}` " for o in rows if o.short), "")
        notes = "; ".join(dict.fromkeys(o.note for o in rows))
        lines.append(f"| {short}`--{long}` | {' | '.join(cells)} | {notes} |")
    return "\n".join(lines) + "\n"
