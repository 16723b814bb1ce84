"""Option value parsers with Slurm 22.05's semantics and error texts: the conventions every
parser in parse/ follows, C's strtol, and the plain scalars (counts, node ranges, memory,
mail types, yes/no, open modes).

Every parser is ``parse_x(text, opt)``: ``opt`` is the option's long form as the user
wrote it (``"--time"``). A bad value raises ValueError whose message is Slurm's text
without the ``<prog>: error: `` prefix (sbatch then exits 255), or SubmitError where
Slurm exits 1 instead. The quirks are Slurm's (src/common/parse_time.c, proc_args.c,
slurm_opt.c, slurmctld's job_mgr.c / job_scheduler.c), kept on purpose: users' scripts
were written against them.

Standard library only, and cheap to import: every command imports these.
"""

from __future__ import annotations

import re

from slurmsky.runtime.options import GRES_FLAGS

C_SPACE = " \t\n\v\f\r"  # C isspace()
DIGITS = "0123456789"
LONG_MAX = 2**63 - 1
_C_INTEGER = re.compile(r"[+-]?[0-9]+")


class SubmitError(ValueError):
    """A value Slurm rejects with exit status 1 rather than 255.

    ``reason`` is set when the controller rejects the job: sbatch prints
    ``Batch job submission failed: <reason>`` (the message), srun and salloc
    ``Unable to allocate resources: <reason>``.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


def rejected(reason: str) -> SubmitError:
    return SubmitError("Batch job submission failed: " + reason, reason=reason)


def strtol(text: str, start: int = 0) -> tuple[int | None, int]:
    """C strtol: skip spaces, optional sign, digits -> (value, end), clamped to
    the range of a C long; (None, start) when there are no digits."""
    i = start
    while i < len(text) and text[i] in C_SPACE:
        i += 1
    match = _C_INTEGER.match(text, i)
    if not match:
        return None, start
    digits = match.group().lstrip("+-").lstrip("0")
    value = int(digits or "0") if len(digits) < 20 else LONG_MAX + 1
    value = -value if match.group()[0] == "-" else value
    return max(min(value, LONG_MAX), -LONG_MAX - 1), match.end()


def c_int(value: int, bits: int = 32) -> int:
    """`value` as C stores it in a signed integer of `bits` bits (two's complement wrap)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


_MEM_FACTORS = {"k": None, "m": 1, "g": 1024, "t": 1024 * 1024}


def parse_mem(text: str, opt: str) -> int:
    """``--mem``/``--mem-per-cpu``/``--mem-per-gpu`` -> MB (Slurm's str_to_mbytes):
    a number with an optional K/M/G/T suffix, itself optionally followed by B;
    K rounds up to whole MB."""
    value, end = strtol(text)
    suffix = text[end:].lower()
    if value is None or value < 0 or value == LONG_MAX:
        raise ValueError("Invalid %s specification" % opt)
    if suffix == "":
        return value
    if suffix[0] not in _MEM_FACTORS or suffix[1:] not in ("", "b"):
        raise ValueError("Invalid %s specification" % opt)
    factor = _MEM_FACTORS[suffix[0]]
    return -(-value // 1024) if factor is None else value * factor


def parse_int(text: str, opt: str) -> int:
    """A positive count (``--ntasks``, ``--cpus-per-task``, ...): Slurm's parse_int,
    which exits 1."""
    value, end = strtol(text)
    if value is None or end != len(text) or value <= 0:
        raise SubmitError('Invalid numeric value "%s" for %s.' % (text, opt))
    if value >= LONG_MAX:
        raise SubmitError("Numeric argument (%d) to big for %s." % (LONG_MAX, opt))
    return value


def parse_immediate(text: str, opt: str) -> int:
    """``--immediate=secs``: Slurm's parse_int("immediate", arg, false), 0 and up (an empty
    value is strtol's 0), exit 1."""
    if text == "":
        return 0
    value, end = strtol(text)
    if value is None or end != len(text) or value < 0:
        raise SubmitError('Invalid numeric value "%s" for immediate.' % text)
    if value >= LONG_MAX:
        raise SubmitError("Numeric argument (%d) to big for immediate." % LONG_MAX)
    return value


NICE_MAX = 2**31 - 3  # Slurm's NICE_OFFSET - 3


def parse_nice(text: str, opt: str) -> int:
    """``--nice=N``: Slurm's arg_set_nice, strtoll without an end check (``x`` is 0, ``5x``
    5); beyond +/- NICE_MAX it exits 255."""
    value, _ = strtol(text)
    value = value or 0
    if abs(value) > NICE_MAX:
        raise ValueError("Invalid --nice value, out of range (+/- %d)" % NICE_MAX)
    return value


def _node_count(text: str) -> int | None:
    """Slurm's _str_to_nodes: a number with optional k then m multipliers and
    trailing spaces; None if invalid; -1 when there are no digits at all. Its long
    (strtol's, clamped) is multiplied in 64 bits and returned as a C int: 2147483648 is
    negative (invalid), 4294967297 is 1 and 8589934592 is 0, as on Slurm."""
    value, end = strtol(text)
    if value is None:
        return -1 if text.strip(C_SPACE) == "" else None
    rest = text[end:]
    for letter, factor in (("k", 1024), ("m", 1024 * 1024)):
        if rest[:1].lower() == letter:
            value, rest = c_int(value * factor, 64), rest[1:]
    return c_int(value) if rest.strip(C_SPACE) == "" else None


def parse_nodes(text: str, opt: str) -> tuple[int, int]:
    """``--nodes`` -> (min, max): ``2`` is (2, 2), ``2-4`` is (2, 4); a max of 0
    means no maximum, as in Slurm (``2-0``); a missing min is 1 (``-4``)."""
    if "-" not in text:
        count = _node_count(text)
        if count is None or count < 0:
            raise ValueError('"%s" is not a valid node count' % text)
        return count, count
    low_text, _, high_text = text.partition("-")
    low, high = _node_count(low_text), _node_count(high_text)
    if low is None:
        raise ValueError('"%s" is not a valid node count' % low_text)
    if high is None:
        raise ValueError('"%s" is not a valid node count' % high_text)
    low = 1 if low < 0 else low
    if high != 0 and high < low:
        raise ValueError("Maximum node count %d is less than minimum node count %d" % (high, low))
    return low, high


_MAIL_TYPES = frozenset(
    "NONE BEGIN END FAIL INVALID_DEPEND REQUEUE ALL STAGE_OUT TIME_LIMIT TIME_LIMIT_90"
    " TIME_LIMIT_80 TIME_LIMIT_50 ARRAY_TASKS".split()
)


def parse_mail_type(text: str, opt: str) -> str:
    """``--mail-type``: a comma list of Slurm's mail types (any case), kept as text."""
    items = [item for item in text.split(",") if item]
    if not items or any(item.upper() not in _MAIL_TYPES for item in items):
        raise ValueError("Invalid %s specification" % opt)
    return text


def parse_bool_yes_no(text: str, opt: str) -> bool:
    """``--kill-on-invalid-dep=yes|no`` (any case)."""
    if text.lower() in ("yes", "no"):
        return text.lower() == "yes"
    raise ValueError("Invalid %s specification" % opt)


def parse_open_mode(text: str, opt: str) -> str:
    """``--open-mode``: Slurm looks at the first letter only (a/A, t/T)."""
    mode = {"a": "append", "t": "truncate"}.get(text[:1].lower())
    if mode is None:
        raise ValueError("Invalid %s argument: %s. Ignored" % (opt, text))
    return mode


def parse_gres_flags(text: str, opt: str) -> str:
    """``--gres-flags``: disable-binding or enforce-binding, any case (22.05 knows no other)."""
    if text.lower() not in GRES_FLAGS:
        raise ValueError("Invalid %s specification" % opt)
    return text
