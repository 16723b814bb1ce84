"""Time values as Slurm parses them: time limits (`--time`, `-t 1-2:30`) and begin times
(`--begin`: `now+1hour`, `16:00`, `2026-11-23T10:00`, `teatime`, ...; src/common/parse_time.c).
"""

from __future__ import annotations

import time

from slurmsky.parse.scalars import C_SPACE, DIGITS, LONG_MAX, c_int, strtol


def _valid_timespec(text: str) -> bool:
    """Slurm's _is_valid_timespec: digits with at most one '-' (before any ':')
    and two ':', and enough numbers for the separators used."""
    numbers = dashes = colons = 0
    in_number = False
    for char in text:
        if char in DIGITS:
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


LATEST = 253402300799  # 9999-12-31T23:59:59 UTC: the latest begin time kept


def _sscanf_ints(text: str, count: int, seps: str) -> list[int]:
    """sscanf(text, "%d<sep>%d..."): the numbers read before the first mismatch, each a
    C int (strtol's long, clamped, then truncated: 99999999999999999999 reads as -1)."""
    values: list[int] = []
    pos = 0
    for k in range(count):
        if k:
            if text[pos : pos + 1] != seps[k - 1]:
                break
            pos += 1
        value, end = strtol(text, pos)
        if value is None:
            break
        values.append(c_int(value))
        pos = end
    return values


def time_seconds(text: str) -> int | None:
    """Slurm's time_str2secs without its INFINITE words: m, m:s, h:m:s, d-h, d-h:m,
    d-h:m:s -> seconds, None if invalid; its C int arithmetic included (it wraps)."""
    if not _valid_timespec(text):
        return None
    if "-" in text:
        d, h, m, s = (_sscanf_ints(text, 4, "-::") + [0] * 4)[:4]
        d, h, m = c_int(d * 86400), c_int(h * 3600), c_int(m * 60)
    else:
        fields = _sscanf_ints(text, 3, "::")
        if len(fields) == 3:
            d, (h, m, s) = 0, fields
            h, m = c_int(h * 3600), c_int(m * 60)
        else:
            d, h, (m, s) = 0, 0, fields + [0] * (2 - len(fields))
            m = c_int(m * 60)
    return c_int(d + h + m + s)


def parse_time(text: str, opt: str) -> int | None:
    """``--time``/``--time-min`` -> minutes, seconds rounded up; None = UNLIMITED
    (``0``, ``-1``, ``infinite``, ``unlimited``, and what wraps to those); -1 for the
    negative limits Slurm accepts and shows as INVALID (``-5``). Slurm's time_str2mins
    works in C ints: ``99999999999999999999`` reads as -1 minute, rounds up to 0,
    UNLIMITED."""
    if text.lower() in ("-1", "infinite", "unlimited"):
        return None
    seconds = time_seconds(text)
    if seconds is None or seconds == -2:  # NO_VAL
        raise ValueError("Invalid %s specification" % opt)
    if seconds == -1:  # INFINITE
        return None
    rounded = c_int(seconds + 59)  # ROUNDUP(seconds, 60), C division (toward zero)
    minutes = rounded // 60 if rounded >= 0 else -(-rounded // 60)
    if minutes < 0:
        return None if minutes == -1 else -1
    return minutes or None


_DELTA_UNITS = (
    ("seconds", 1),
    ("second", 1),
    ("minutes", 60),
    ("minute", 60),
    ("hours", 3600),
    ("hour", 3600),
    ("days", 86400),
    ("day", 86400),
    ("weeks", 604800),
    ("week", 604800),
)
_CLOCK_WORDS = (("midnight", 0), ("noon", 12), ("elevenses", 11), ("fika", 15), ("teatime", 16))


def _at(text: str, i: int) -> str:
    """text[i] as C sees it: NUL past the end."""
    return text[i] if 0 <= i < len(text) else "\0"


def _digit(text: str, i: int) -> int | None:
    char = _at(text, i)
    return int(char) if char in DIGITS else None


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
        if text[i] in C_SPACE:
            i += 1
            continue
        unit = next((u for u in _DELTA_UNITS if text[i : i + len(u[0])].lower() == u[0]), None)
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
    value = int(text[i : i + 2])
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
    while _at(text, i) in C_SPACE:
        i += 1
    meridiem = text[i : i + 2].lower()
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
        first: int | None
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

    year: int | None
    i = pos
    if len(text) >= i + 7 and _at(text, i + 4) == "-" and _at(text, i + 7) == "-":
        for k in range(4):
            if _digit(text, i + k) is None:
                raise _BadTime(i + k)
        year = int(text[i : i + 4])
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
        year, i = int(text[i : i + 2]) or None, i + 2  # Slurm ignores a year of 00
    return i - 1, month - 1, day, None if year is None else year + 100


def _parse_datetime(text: str, now: int) -> int:
    """Slurm's parse_time() for a future time, its pos bookkeeping included: 0 when
    nothing was given; _BadTime(pos) where Slurm says `Invalid time specification`."""
    if text[:3].lower() == "uts":
        value, end = strtol(text, 3)
        if value is None or value < 1000000 or value == LONG_MAX or end != len(text):
            raise _BadTime(0)
        return value
    current = time.localtime(now)
    year = month = mday = hour = minute = -1
    second, pos = 0, 0

    def set_date(moment: time.struct_time) -> tuple[int, int, int]:
        return moment.tm_year - 1900, moment.tm_mon - 1, moment.tm_mday

    while _at(text, pos) not in "\0\n":
        char, rest = text[pos], text[pos:].lower()
        word = next(
            (
                w
                for w in ("today", "tomorrow") + tuple(c[0] for c in _CLOCK_WORDS)
                if rest.startswith(w)
            ),
            None,
        )
        if char in " \t-T":
            pass
        elif word in ("today", "tomorrow"):
            year, month, mday = set_date(
                current if word == "today" else time.localtime(now + 86400)
            )
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
            later = time.localtime(min(now + delta, LATEST))  # Slurm's is past any calendar
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
        ahead = (month, mday, hour, minute) > (
            current.tm_mon - 1,
            current.tm_mday,
            current.tm_hour,
            current.tm_min,
        )
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


def parse_deadline(text: str, opt: str, now: float | None = None) -> float:
    """``--deadline`` -> epoch seconds: parse_begin's forms and errors (slurmctld refuses a
    past one when the job is submitted: core/submit.py)."""
    return parse_begin(text, opt, now)
