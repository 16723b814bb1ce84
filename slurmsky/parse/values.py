"""Option value parsers and formatters with Slurm 22.05's semantics and error texts.

Every parser is ``parse_x(text, opt)``: ``opt`` is the option's long form as the user
wrote it (``"--time"``). A bad value raises ValueError whose message is Slurm's text
without the ``<prog>: error: `` prefix (sbatch then exits 255), or SubmitError where
Slurm exits 1 instead. The quirks are Slurm's (src/common/parse_time.c, proc_args.c,
slurm_opt.c, slurmctld's job_mgr.c / job_scheduler.c), kept on purpose: users' scripts
were written against them.

Standard library only, and cheap to import: every command imports this.
"""
from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Mapping

from slurmsky.config import MAX_ARRAY_SIZE
from slurmsky.record import Record

_C_SPACE = " \t\n\v\f\r"  # C isspace()
_DIGITS = "0123456789"
_LONG_MAX = 2**63 - 1
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


def _rejected(reason: str) -> SubmitError:
    return SubmitError("Batch job submission failed: " + reason, reason=reason)


def _strtol(text: str, start: int = 0) -> tuple[int | None, int]:
    """C strtol: skip spaces, optional sign, digits -> (value, end), clamped to
    the range of a C long; (None, start) when there are no digits."""
    i = start
    while i < len(text) and text[i] in _C_SPACE:
        i += 1
    match = _C_INTEGER.match(text, i)
    if not match:
        return None, start
    digits = match.group().lstrip("+-").lstrip("0")
    value = int(digits or "0") if len(digits) < 20 else _LONG_MAX + 1
    value = -value if match.group()[0] == "-" else value
    return max(min(value, _LONG_MAX), -_LONG_MAX - 1), match.end()


# --- time limits -------------------------------------------------------------

def _valid_timespec(text: str) -> bool:
    """Slurm's _is_valid_timespec: digits with at most one '-' (before any ':')
    and two ':', and enough numbers for the separators used."""
    numbers = dashes = colons = 0
    in_number = False
    for char in text:
        if char in _DIGITS:
            numbers += not in_number
            in_number = True
        elif char == "-":
            in_number = False
            dashes += 1
            if colons:
                return False
        elif char == ":":
            in_number = False
            colons += 1
        else:
            return False
    if not numbers or dashes > 1 or colons > 2:
        return False
    return numbers >= colons + 1 + dashes if colons else True


def _time_seconds(text: str) -> int | None:
    """Slurm's time_str2secs without its INFINITE words: m, m:s, h:m:s, d-h,
    d-h:m, d-h:m:s -> seconds, None if invalid."""
    if not _valid_timespec(text):
        return None
    if "-" in text:
        days, _, rest = text.partition("-")
        if not days:  # "-N": sscanf reads a negative day count
            return -int(rest) * 86400
        fields = [int(f) for f in rest.split(":")] if rest else []
        h, m, s = fields + [0] * (3 - len(fields))
        return int(days) * 86400 + h * 3600 + m * 60 + s
    fields = [int(f) for f in text.split(":")]
    if len(fields) == 3:
        return fields[0] * 3600 + fields[1] * 60 + fields[2]
    return fields[0] * 60 + (fields[1] if len(fields) == 2 else 0)


def parse_time(text: str, opt: str) -> int | None:
    """``--time``/``--time-min`` -> minutes, seconds rounded up; None = UNLIMITED
    (``0``, ``-1``, ``infinite``, ``unlimited``); -1 for the negative limits Slurm
    accepts and shows as INVALID (``-5``)."""
    if text.lower() in ("-1", "infinite", "unlimited"):
        return None
    try:
        seconds = _time_seconds(text)
    except ValueError:  # numbers too long to convert: overflow in Slurm
        seconds = None
    if seconds is None:
        raise ValueError("Invalid %s specification" % opt)
    if seconds < 0:
        return -1
    return -(-seconds // 60) or None


# --- memory -------------------------------------------------------------------

_MEM_FACTORS = {"k": None, "m": 1, "g": 1024, "t": 1024 * 1024}


def parse_mem(text: str, opt: str) -> int:
    """``--mem``/``--mem-per-cpu``/``--mem-per-gpu`` -> MB (Slurm's str_to_mbytes):
    a number with an optional K/M/G/T suffix, itself optionally followed by B;
    K rounds up to whole MB."""
    value, end = _strtol(text)
    suffix = text[end:].lower()
    if value is None or value < 0 or value == _LONG_MAX:
        raise ValueError("Invalid %s specification" % opt)
    if suffix == "":
        return value
    if suffix[0] not in _MEM_FACTORS or suffix[1:] not in ("", "b"):
        raise ValueError("Invalid %s specification" % opt)
    factor = _MEM_FACTORS[suffix[0]]
    return -(-value // 1024) if factor is None else value * factor


# --- counts -------------------------------------------------------------------

def parse_int(text: str, opt: str) -> int:
    """A positive count (``--ntasks``, ``--cpus-per-task``, ...): Slurm's parse_int,
    which exits 1."""
    value, end = _strtol(text)
    if value is None or end != len(text) or value <= 0:
        raise SubmitError('Invalid numeric value "%s" for %s.' % (text, opt))
    if value >= _LONG_MAX:
        raise SubmitError("Numeric argument (%d) to big for %s." % (_LONG_MAX, opt))
    return value


def _node_count(text: str) -> int | None:
    """Slurm's _str_to_nodes: a number with optional k then m multipliers and
    trailing spaces; None if invalid; -1 when there are no digits at all."""
    value, end = _strtol(text)
    if value is None:
        return -1 if text.strip(_C_SPACE) == "" else None
    rest = text[end:]
    for letter, factor in (("k", 1024), ("m", 1024 * 1024)):
        if rest[:1].lower() == letter:
            value, rest = value * factor, rest[1:]
    return value if rest.strip(_C_SPACE) == "" else None


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
        raise ValueError("Maximum node count %d is less than minimum node count %d"
                         % (high, low))
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


# --- generic resources --------------------------------------------------------

class Gres(Record):
    """One ``name[:type][:count]`` item of ``--gres``."""
    name: str
    type: str | None
    count: int


class GpuSpec(Record):
    """``--gpus``/``--gpus-per-node``/``--gpus-per-task``: ``[type:]count``."""
    type: str | None
    count: int


_GRES_COUNT = re.compile(r"([0-9]+)([kmgtp]?)", re.IGNORECASE)


def _gres_count(text: str) -> int | None:
    match = _GRES_COUNT.fullmatch(text)
    if not match:
        return None
    return int(match.group(1)) * 1024 ** " kmgtp".index(match.group(2).lower() or " ")


def _gres_item(item: str) -> Gres:
    parts = item.split(":")
    if len(parts) > 3 or "" in parts:
        raise ValueError(item)
    if len(parts) == 1:
        return Gres(parts[0], None, 1)
    count = _gres_count(parts[-1])
    if len(parts) == 2:
        return Gres(parts[0], None, count) if count is not None else Gres(parts[0], parts[1], 1)
    if count is None:
        raise ValueError(item)
    return Gres(parts[0], parts[1], count)


def parse_gres(text: str, opt: str) -> tuple[Gres, ...]:
    """``gpu``, ``gpu:2``, ``gpu:a100:2``, ``gpu:1,shard:2``; ``none`` is empty.
    The controller validates gres, so a bad one is a submission failure."""
    if text.lower() == "none":
        return ()
    try:
        return tuple(_gres_item(item) for item in text.split(","))
    except ValueError:
        raise _rejected("Invalid generic resource (gres) specification") from None


def parse_gpus(text: str, opt: str) -> GpuSpec:
    """``2`` or ``a100:2`` (``a100`` alone is one a100), as Slurm reads them: as
    the gres ``gpu:<text>``. Lists of several types are not supported."""
    items = parse_gres("gpu:" + text, opt) if "," not in text else ()
    if len(items) != 1:
        raise _rejected("Invalid generic resource (gres) specification")
    return GpuSpec(items[0].type, items[0].count)


# --- job arrays -----------------------------------------------------------------

class ArraySpec(Record):
    """``--array``: sorted unique indices and the ``%N`` throttle (None = none)."""
    indices: tuple[int, ...]
    throttle: int | None


def _array_item(item: str, max_array_size: int) -> range:
    """slurmctld's _parse_array_tok: ``[first[-last[:step]]]``, ``%...`` ignored here."""
    def number(pos: int) -> tuple[int, int]:
        value, end = _strtol(item, pos)
        end += item[end:end + 1] == "]"
        return (0 if value is None else value), end

    first, end = number(1 if item.startswith("[") else 0)
    last, step = first, 1
    if first < 0:
        raise ValueError(item)
    if item[end:end + 1] == "-":
        last, end = number(end + 1)
        if item[end:end + 1] == ":":
            step, end = number(end + 1)
            if step <= 0 or step >= max_array_size:
                raise ValueError(item)
        if last < first:
            raise ValueError(item)
    if end < len(item) and item[end] != "%":
        raise ValueError(item)
    if last >= max_array_size:
        raise ValueError(item)
    return range(first, last + 1, step)


def parse_array(text: str, opt: str, *, max_array_size: int = MAX_ARRAY_SIZE) -> ArraySpec:
    """``1-100``, ``1-100:2``, ``1,5,7``, ``0-999%10``, ``1,3,10-12``. Indices must
    be below MaxArraySize; the controller checks, so errors are submission failures."""
    indices = set()
    try:
        for item in filter(None, text.split(",")):
            indices.update(_array_item(item, max_array_size))
    except ValueError:
        raise _rejected("Invalid job array specification") from None
    if not indices:
        raise _rejected("Invalid job array specification")
    percent = text.find("%")
    throttle = _strtol(text, percent + 1)[0] if percent >= 0 else None
    return ArraySpec(tuple(sorted(indices)), throttle if throttle and throttle > 0 else None)


# --- dependencies -----------------------------------------------------------------

DEPENDENCY_KINDS = ("afternotok", "aftercorr", "afterany", "afterok",
                    "afterburstbuffer", "after")


class DepItem(Record):
    """One dependency on one job.

    kind: after, afterany, afterburstbuffer, aftercorr, afternotok, afterok or
    singleton (job_id None); a bare job id is afterany. task: None for the whole
    job, ``"*"`` for every task of an array, or an index as text (``12_3``).
    minutes: the ``after:ID+MIN`` delay.
    """
    kind: str
    job_id: int | None
    task: str | None = None
    minutes: int = 0


class Dependency(Record):
    """``--dependency``: all items must hold, or any (``?`` separator)."""
    items: tuple[DepItem, ...]
    any_of: bool


_DEP_JOB = re.compile(r"[0-9]+(?:_(?:\*|[0-9]+))?(?:\+[0-9]+)?")


def _dep_job(kind: str, text: str) -> DepItem:
    match = _DEP_JOB.fullmatch(text)
    if not match:
        raise ValueError(text)
    job, _, minutes = text.partition("+")
    job_id, _, task = job.partition("_")
    if int(job_id) == 0 or (minutes and (kind != "after" or int(minutes) == 0)):
        raise ValueError(text)
    if task and task != "*":
        task = str(int(task))
    return DepItem(kind, int(job_id), task or None, int(minutes or 0))


def _dep_part(part: str, following: str) -> tuple[DepItem, ...]:
    """One item between separators; ``following`` is the text after it."""
    lower = part.lower()
    if lower == "singleton":
        return (DepItem("singleton", None),)
    kind, colon, jobs = lower.partition(":")
    if not colon:  # the old form, a bare job id: Slurm takes it only when no ':'
        # follows anywhere and it is not followed by '?'
        if ":" in following or following.startswith("?"):
            raise ValueError(part)
        return (_dep_job("afterany", part),)
    if kind not in DEPENDENCY_KINDS:
        raise ValueError(part)
    return tuple(_dep_job(kind, job) for job in jobs.split(":"))


def parse_dependency(text: str, opt: str) -> Dependency:
    """``afterok:1:2,afterany:3``, ``afterok:1?afterok:2``, ``after:1+5``,
    ``afterok:12_3``, ``afterok:12_*``, ``singleton``, a bare ``12``; ``""`` and
    ``0`` mean none. Bad syntax is rejected by the controller (exit 1)."""
    if text in ("", "0"):
        return Dependency((), False)
    if "," in text and "?" in text:
        raise _rejected("Job dependency problem")
    separator = "?" if "?" in text else ","
    items = []
    try:
        parts = text.split(separator)
        for n, part in enumerate(parts):
            following = "".join(separator + later for later in parts[n + 1:])
            items.extend(_dep_part(part, following))
    except ValueError:
        raise _rejected("Job dependency problem") from None
    return Dependency(tuple(items), separator == "?")


def format_dependency(dependency: Dependency,
                      status: Callable[[DepItem], str] | Mapping[DepItem, str]) -> str:
    """squeue ``%E`` / scontrol ``Dependency=``: ``afterok:67(unfulfilled)``, joined by
    ``,`` or ``?``; ``(null)`` when no item is left. ``status`` gives each item's
    word (unfulfilled, failed, ...); pass ``task="*"`` items for array targets
    (``afterok:130_*``), as Slurm shows them."""
    word = status if callable(status) else status.__getitem__
    shown = []
    for item in dependency.items:
        if item.kind == "singleton":
            text = "singleton"
        else:
            text = "%s:%d" % (item.kind, item.job_id)
            text += "_" + item.task if item.task else ""
            text += "+%d" % item.minutes if item.minutes else ""
        shown.append("%s(%s)" % (text, word(item)))
    return ("?" if dependency.any_of else ",").join(shown) or "(null)"


# --- environment export --------------------------------------------------------------

class Export(Record):
    """``--export``. mode: ALL (the whole environment, then ``assignments``), NONE,
    NIL, or None (only ``names`` and ``assignments``, plus SLURM_*; like NONE, the
    user's login environment is added). The order of ALL among items is not kept."""
    mode: str | None
    names: tuple[str, ...]
    assignments: tuple[tuple[str, str], ...]


def _quoted_items(text: str):
    """Slurm's find_quote_token: split on commas outside quotes; a fully quoted
    item loses its quotes; an unterminated quote runs to the end."""
    start = 0
    while start < len(text):
        single = double = False
        i = start
        while i < len(text) and (single or double or text[i] != ","):
            single ^= text[i] == "'"
            double ^= text[i] == '"'
            i += 1
        item = text[start:i]
        if len(item) >= 2 and item[0] in "'\"" and item[-1] == item[0]:
            item = item[1:-1]
        yield item
        start = i + 1


def parse_export(text: str, opt: str) -> Export:
    """``ALL``, ``NONE``, ``NIL``, ``ALL,FOO=bar``, ``FOO``, ``FOO=bar,BAR``; values
    may hold commas inside quotes (``FOO="a,b"`` keeps its quotes, as in Slurm)."""
    if text.upper() in ("ALL", "NONE", "NIL"):
        return Export(text.upper(), (), ())
    mode, names, assignments = None, [], []
    for item in _quoted_items(text):
        if item.upper() == "ALL":
            mode = "ALL"
        elif "=" in item:
            name, _, value = item.partition("=")
            assignments.append((name, value))
        elif item:
            names.append(item)
    return Export(mode, tuple(names), tuple(assignments))


# --- signals -------------------------------------------------------------------

class SignalSpec(Record):
    """``--signal=[{R|B}:]SIG[@seconds]``: batch = only the batch shell (B),
    reservation = also when a reservation ends (R)."""
    signum: int
    seconds: int
    batch: bool
    reservation: bool


_SIGNAL_NAMES = ("HUP", "INT", "QUIT", "ABRT", "KILL", "ALRM", "TERM", "USR1", "USR2",
                 "URG", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "XCPU")


def signal_number(text: str) -> int | None:
    """Slurm's sig_name2num: ``USR1``, ``SIGUSR1``, ``usr1`` or a number; None if unknown."""
    value, end = _strtol(text)
    if value is not None:
        return value if text[end:].strip(_C_SPACE) == "" else None
    name = text.lstrip(_C_SPACE).upper()
    name = name[3:] if name.startswith("SIG") else name
    for known in _SIGNAL_NAMES:
        if name.startswith(known) and name[len(known):].strip(_C_SPACE) == "":
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
    seconds, end = _strtol(when) if at else (60, 0)
    seconds = seconds or 0
    if (signum is None or not 1 <= signum <= 0xFFFF or not 0 <= seconds <= 0xFFFF
            or (at and end != len(when))):
        raise ValueError("Invalid %s specification" % opt)
    return SignalSpec(signum, seconds, **flags)


def parse_step_signal(text: str, opt: str) -> SignalSpec:
    """srun's and salloc's ``--signal``: as sbatch's, but ``B:`` (the batch shell) is
    refused with the same message, as Slurm does."""
    spec = parse_signal(text, opt)
    if spec.batch:
        raise ValueError("Invalid %s specification" % opt)
    return spec


# --- begin times ---------------------------------------------------------------------

_DELTA_UNITS = (("seconds", 1), ("second", 1), ("minutes", 60), ("minute", 60),
                ("hours", 3600), ("hour", 3600), ("days", 86400), ("day", 86400),
                ("weeks", 604800), ("week", 604800))
_CLOCK_WORDS = (("midnight", 0), ("noon", 12), ("elevenses", 11), ("fika", 15),
                ("teatime", 16))


def _at(text: str, i: int) -> str:
    """text[i] as C sees it: NUL past the end."""
    return text[i] if 0 <= i < len(text) else "\0"


def _digit(text: str, i: int) -> int | None:
    char = _at(text, i)
    return int(char) if char in _DIGITS else None


class _BadTime(Exception):
    """parse_time's `goto prob`: where it gave up (Slurm prints it as `pos=`)."""

    def __init__(self, pos: int):
        super().__init__(pos)
        self.pos = pos


class TimeSpecError(ValueError):
    """A time parse_time rejects: ``notes`` are the lines Slurm prints first, bare
    (``Invalid time specification (pos=0): notatime``), the message follows as usual."""

    def __init__(self, message: str, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.notes = notes


def _get_delta(text: str, pos: int) -> tuple[int, int]:
    """``+N[unit]`` after ``now`` (pos is at the sign) -> (last index, seconds).

    Without a digit Slurm fails with pos left at the sign."""
    count = digits = 0
    i = pos + 1
    while _at(text, i) not in "\0\n":
        if text[i] in _C_SPACE:
            i += 1
            continue
        unit = next((u for u in _DELTA_UNITS if text[i:i + len(u[0])].lower() == u[0]), None)
        if unit:
            i += len(unit[0])
            count *= unit[1]
            break
        if _digit(text, i) is None:
            raise _BadTime(i - 1)
        count, digits, i = count * 10 + int(text[i]), digits + 1, i + 1
    if not digits:
        raise _BadTime(pos)
    return i - 1, count


def _two_digits(text: str, i: int, limit: int) -> tuple[int, int]:
    """Exactly two digits at i, at most ``limit`` -> (value, index after them)."""
    for k in (i, i + 1):
        if _digit(text, k) is None:
            raise _BadTime(k)
    value = int(text[i:i + 2])
    if value > limit:
        raise _BadTime(i)
    return value, i + 2


def _get_time(text: str, pos: int) -> tuple[int, int, int, int]:
    """``HH:MM[:SS] [AM|PM]`` -> (last index, hour, minute, second)."""
    i, hour = pos + 1, _digit(text, pos)
    if hour is None:
        raise _BadTime(pos)
    if _at(text, i) != ":":
        if _digit(text, i) is None:
            raise _BadTime(i)
        hour, i = hour * 10 + int(text[i]), i + 1
    if hour > 23:
        raise _BadTime(i - 2)
    if _at(text, i) != ":":
        raise _BadTime(i)
    minute, i = _two_digits(text, i + 1, 59)
    second = 0
    if _at(text, i) == ":":
        second, i = _two_digits(text, i + 1, 59)
    while _at(text, i) in _C_SPACE:
        i += 1
    meridiem = text[i:i + 2].lower()
    if meridiem == "pm":
        hour += 12
        if hour > 23:
            if hour != 24:
                raise _BadTime(i)
            hour = 12
        i += 2
    elif meridiem == "am":
        if hour > 11:
            if hour != 12:
                raise _BadTime(i)
            hour = 0
        i += 2
    return i - 1, hour, minute, second


def _get_date(text: str, pos: int) -> tuple[int, int, int, int | None]:
    """``YYYY-MM-DD``, ``MMDD[YY]``, ``MM/DD[/YY]``, ``MM.DD[.YY]`` ->
    (last index, month 0-11, day, years since 1900 or None if not given)."""
    def number(i: int, first_checked: bool) -> tuple[int, int]:
        """One or two digits at i (the first unchecked by Slurm where ``first_checked``)."""
        if first_checked:
            first = ord(_at(text, i)) - 48
        else:
            first = _digit(text, i)
            if first is None:
                raise _BadTime(i)
        second = _digit(text, i + 1)
        return (first, i + 1) if second is None else (first * 10 + second, i + 2)

    def within(value: int, end: int, top: int) -> int:
        if not 1 <= value <= top:
            raise _BadTime(end - 2)
        return value

    i = pos
    if len(text) >= i + 7 and _at(text, i + 4) == "-" and _at(text, i + 7) == "-":
        for k in range(4):
            if _digit(text, i + k) is None:
                raise _BadTime(i + k)
        year = int(text[i:i + 4])
        month, i = number(i + 5, True)
        month = within(month, i, 12)
        day, i = number(i + 1, False)
        day = within(day, i, 31)
        return i - 1, month - 1, day, year - 1900
    month, i = number(i, True)
    month = within(month, i, 12)
    i += _at(text, i) in "./"
    day, i = number(i, False)
    day = within(day, i, 31)
    i += _at(text, i) in "./"
    year = None
    if _digit(text, i) is not None:
        if _digit(text, i + 1) is None:
            raise _BadTime(i + 1)
        year, i = int(text[i:i + 2]) or None, i + 2  # Slurm ignores a year of 00
    return i - 1, month - 1, day, None if year is None else year + 100


def _parse_datetime(text: str, now: int) -> int:
    """Slurm's parse_time() for a future time, its pos bookkeeping included: 0 when
    nothing was given; _BadTime(pos) where Slurm says `Invalid time specification`."""
    if text[:3].lower() == "uts":
        value, end = _strtol(text, 3)
        if value is None or value < 1000000 or value == _LONG_MAX or end != len(text):
            raise _BadTime(0)
        return value
    current = time.localtime(now)
    year = month = mday = hour = minute = -1
    second, pos = 0, 0

    def set_date(moment: time.struct_time) -> tuple[int, int, int]:
        return moment.tm_year - 1900, moment.tm_mon - 1, moment.tm_mday

    while _at(text, pos) not in "\0\n":
        char, rest = text[pos], text[pos:].lower()
        word = next((w for w in ("today", "tomorrow") + tuple(c[0] for c in _CLOCK_WORDS)
                     if rest.startswith(w)), None)
        if char in " \t-T":
            pass
        elif word in ("today", "tomorrow"):
            year, month, mday = set_date(current if word == "today"
                                         else time.localtime(now + 86400))
            pos += len(word) - 1
        elif word:
            hour, minute, second = dict(_CLOCK_WORDS)[word], 0, 0
            pos += len(word) - 1
        elif rest.startswith("now"):
            delta, i = 0, pos + 3
            while True:
                sign = _at(text, i)
                if sign in "+-":
                    pos += i  # sic: Slurm adds the absolute index
                    pos, delta = _get_delta(text, pos)
                    delta = -delta if sign == "-" else delta
                    break
                if sign in " \t":
                    i += 1
                    continue
                if sign in "\0\n":
                    pos += i - 1
                    break
                raise _BadTime(pos + i)
            later = time.localtime(now + delta)
            year, month, mday = set_date(later)
            hour, minute, second = later.tm_hour, later.tm_min, later.tm_sec
        elif _digit(text, pos) is None:
            raise _BadTime(pos)
        elif _at(text, pos + 1) == ":" or _at(text, pos + 2) == ":":
            pos, hour, minute, second = _get_time(text, pos)
        else:
            pos, month, mday, given_year = _get_date(text, pos)
            year = year if given_year is None else given_year
        pos += 1

    if hour == -1 and month == -1:
        return 0
    if hour == -1:
        hour, minute = 0, 0
    elif month == -1:
        later_today = (hour, minute) > (current.tm_hour, current.tm_min)
        year, month, mday = set_date(current if later_today else time.localtime(now + 86400))
    if year == -1:
        ahead = (month, mday, hour, minute) > (current.tm_mon - 1, current.tm_mday,
                                                current.tm_hour, current.tm_min)
        year = current.tm_year - 1900 + (0 if ahead else 1)
    try:
        return int(time.mktime((year + 1900, month + 1, mday, hour, minute, second, 0, 0, -1)))
    except (OverflowError, OSError, ValueError):  # out of the C time range
        raise _BadTime(pos) from None


def parse_begin(text: str, opt: str, now: float | None = None) -> float:
    """``--begin`` -> epoch seconds, every form of Slurm's parse_time: ``16:00``,
    ``4:00PM``, ``0315``, ``03/15/27``, ``2027-03-15T10:00``, ``now+1hour``,
    ``today``, ``tomorrow``, ``midnight``, ``noon``, ``elevenses``, ``fika``,
    ``teatime``, ``uts1700000000``. Times without a date are the next such time;
    dates without a year the next such date (local time; ``now`` defaults to the
    current time). A rejected time raises TimeSpecError carrying parse_time's own
    line (none when nothing was given, as with Slurm)."""
    try:
        when = _parse_datetime(text, int(time.time() if now is None else now))
    except _BadTime as bad:
        line = f"Invalid time specification (pos={bad.pos}): {text}"
        raise TimeSpecError("Invalid %s specification" % opt, (line,)) from None
    if not when:
        raise TimeSpecError("Invalid %s specification" % opt)
    return float(when)
