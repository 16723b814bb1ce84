"""`--signal=[{R|B}:]sig[@time]` and signal names or numbers (`USR1`, `SIGTERM`, `9`)."""

from __future__ import annotations

import signal

from slurmsky.parse.scalars import C_SPACE, strtol
from slurmsky.record import Record


class SignalSpec(Record):
    """``--signal=[{R|B}:]SIG[@seconds]``: batch = only the batch shell (B),
    reservation = also when a reservation ends (R)."""

    signum: int
    seconds: int
    batch: bool
    reservation: bool


_SIGNAL_NAMES = (
    "HUP",
    "INT",
    "QUIT",
    "ABRT",
    "KILL",
    "ALRM",
    "TERM",
    "USR1",
    "USR2",
    "URG",
    "CONT",
    "STOP",
    "TSTP",
    "TTIN",
    "TTOU",
    "XCPU",
)


def signal_number(text: str) -> int | None:
    """Slurm's sig_name2num: ``USR1``, ``SIGUSR1``, ``usr1`` or a number; None if unknown."""
    value, end = strtol(text)
    if value is not None:
        return value if text[end:].strip(C_SPACE) == "" else None
    name = text.lstrip(C_SPACE).upper()
    name = name[3:] if name.startswith("SIG") else name
    for known in _SIGNAL_NAMES:
        if name.startswith(known) and name[len(known) :].strip(C_SPACE) == "":
            return int(getattr(signal, "SIG" + known))
    return None


def parse_signal(text: str, opt: str) -> SignalSpec:
    """``USR1``, ``B:USR1@30``, ``R:10@120``, ``SIGTERM``; 60 s by default."""
    flags = {"batch": False, "reservation": False}
    for letter, flag in (("R", "reservation"), ("B", "batch"), ("R", "reservation")):
        if text[:1].upper() == letter:
            flags[flag], text = True, text[1:]
    text = text[1:] if text.startswith(":") else text
    name, at, when = text.partition("@")
    signum = signal_number(name)
    seconds, end = strtol(when) if at else (60, 0)
    seconds = seconds or 0
    if (
        signum is None
        or not 1 <= signum <= 0xFFFF
        or not 0 <= seconds <= 0xFFFF
        or (at and end != len(when))
    ):
        raise ValueError("Invalid %s specification" % opt)
    return SignalSpec(signum, seconds, **flags)


def parse_step_signal(text: str, opt: str) -> SignalSpec:
    """srun's and salloc's ``--signal``: as sbatch's, but ``B:`` (the batch shell) is
    refused with the same message, as Slurm does."""
    spec = parse_signal(text, opt)
    if spec.batch:
        raise ValueError("Invalid %s specification" % opt)
    return spec
