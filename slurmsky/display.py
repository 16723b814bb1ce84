"""Slurm's display forms of durations and memory sizes (squeue, sacct, scontrol).

Standard library only, nothing at import: squeue renders every row with these, and it runs
in polling loops. values.py parses the same forms back.
"""

from __future__ import annotations


def _clock(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return "%d-%02d:%02d:%02d" % (days, hours, minutes, secs)
    if hours:
        return "%d:%02d:%02d" % (hours, minutes, secs)
    return "%d:%02d" % (minutes, secs)


def format_elapsed(seconds: int) -> str:
    """squeue's TIME/TIME_LEFT form: ``0:00``, ``58:11``, ``1:00:00``,
    ``1-23:58:11``; INVALID when negative or over 365 days."""
    if seconds < 0 or seconds > 365 * 86400:
        return "INVALID"
    return _clock(seconds)


def format_limit(minutes: int | None) -> str:
    """squeue's ``%l``: ``1:00``, ``1:30:00``, ``1-01:00:00``, ``UNLIMITED``, ``INVALID``."""
    return "UNLIMITED" if minutes is None else format_elapsed(minutes * 60)


def format_hms(seconds: int) -> str:
    """sacct's Elapsed/Timelimit form: ``00:01:07``, ``1-00:00:00``."""
    if seconds < 0:
        return "INVALID"
    days, rest = divmod(seconds, 86400)
    clock = "%02d:%02d:%02d" % (rest // 3600, rest // 60 % 60, rest % 60)
    return "%d-%s" % (days, clock) if days else clock


def format_mem(mb: int, units: str = "MGTP") -> str:
    """Slurm's convert_num_unit in its exact mode (squeue ``%m``, scontrol, TRES strings,
    sacct): a larger unit while the amount is at least 1024 and its whole part a multiple
    of 512, so halves still count as exact: ``1G``, ``1500M``, ``62.50G`` (64000 MB),
    ``1280M``, ``0``, ``1T`` (units "KMGTP": an amount in KiB, as sacct's MaxRSS)."""
    if int(mb) == 0:
        return "0"
    value: float = mb
    unit = 0
    while value >= 1024 and int(value) % 512 == 0:
        value /= 1024
        unit += 1
    suffix = units[unit] if unit < len(units) else "?"
    return ("%d" % value if value == int(value) else "%.2f" % value) + suffix
