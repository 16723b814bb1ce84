"""Slurm hostlists: expand ``node[01-04,07],gpu1`` to names and compress names back.

A port of the visible behaviour of Slurm's src/common/hostlist.c, so that
``scontrol show hostnames`` / ``show hostlist`` / ``show hostlistsorted`` and the
SLURM_*NODELIST variables read exactly as on Slurm:

* expansion keeps zero padding (width = digits of the range's low bound) and
  duplicates; several brackets in one name expand in Slurm's order;
* compression keeps the input order and merges only adjacent names
  (``node3,node1,node2,node10,gpu1,node02`` -> ``node[3,1-2,10],gpu1,node02``);
  ``sort=True`` first sorts as ``hostlistsorted`` does (``gpu1,node[1-3,10]``).

Also the ``2(x3),1`` count lists of SLURM_TASKS_PER_NODE / SLURM_JOB_CPUS_PER_NODE.

Standard library only, Python 3.8+: this module ships inside every job.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = ["expand", "compress", "compress_counts", "expand_counts"]

_SEPARATORS = "\t, "  # hostlist_create's token separators
_MAX_RANGE = 65536  # most hosts in one bracket range, as Slurm's MAX_RANGE
_MAX_HOSTS = 1 << 20  # guard against expressions like a[0-65535]b[0-65535]
_NUMBER = re.compile(r"[0-9]+")
_TRAILING_NUMBER = re.compile(r"[0-9]+$")
_COUNT = re.compile(r"([0-9]+)(?:\(x([0-9]+)\))?")


class _Range:
    """Slurm's hostrange: ``prefix`` + numbers lo..hi zero-padded to ``width``,
    or (``single``) one name without a numeric suffix."""

    __slots__ = ("prefix", "lo", "hi", "width", "single")

    def __init__(self, prefix: str, lo: int = 0, hi: int = 0, width: int = 0, single: bool = False):
        self.prefix, self.lo, self.hi, self.width, self.single = prefix, lo, hi, width, single

    def count(self) -> int:
        return 1 if self.single else self.hi - self.lo + 1

    def numbers(self) -> str:
        if self.single:
            return ""
        text = "%0*d" % (self.width, self.lo)
        return text if self.hi == self.lo else text + "-%0*d" % (self.width, self.hi)

    def names(self) -> list[str]:
        if self.single:
            return [self.prefix]
        return ["%s%0*d" % (self.prefix, self.width, n) for n in range(self.lo, self.hi + 1)]


def _host(name: str) -> _Range:
    """A single name as Slurm splits it: trailing digits are its number."""
    match = _TRAILING_NUMBER.search(name)
    if not match or len(match.group().lstrip("0")) > 19:  # no number a C long holds
        return _Range(name, single=True)
    number = match.group()
    return _Range(name[: match.start()], int(number), int(number), len(number))


def _padding(number: int, width: int) -> int:
    return max(width - len(str(number)), 0)


def _width_equiv(n: int, wn: int, m: int, wm: int) -> tuple[int, int] | None:
    """Slurm's _width_equiv: the widths (adjusted) under which n and m print the
    same as before, or None when no common width exists."""
    if wn == wm:
        return wn, wm
    n_same = _padding(n, wn) == _padding(n, wm)
    m_same = _padding(m, wm) == _padding(m, wn)
    if not n_same and not m_same:
        return None
    return (wn, wn) if not n_same else (wm, wm)


def _width_combine(h0: _Range, h1: _Range) -> bool:
    widths = _width_equiv(h0.lo, h0.width, h1.lo, h1.width)
    if widths is None:
        return False
    h0.width, h1.width = widths
    return True


def _natcmp(a: str, b: str) -> int:
    """Slurm's strnatcmp: digit runs compare as numbers (``rack2`` < ``rack10``);
    runs with a leading zero compare digit by digit."""
    i = j = 0
    while True:
        run_a, run_b = _NUMBER.match(a, i), _NUMBER.match(b, j)
        if run_a and run_b:
            da, db = run_a.group(), run_b.group()
            if da[0] != "0" and db[0] != "0" and len(da) != len(db):
                return -1 if len(da) < len(db) else 1
            if da != db:
                return -1 if da < db else 1
            i, j = run_a.end(), run_b.end()
            continue
        ca, cb = a[i : i + 1], b[j : j + 1]
        if ca != cb:
            return -1 if ca < cb else 1
        if not ca:
            return 0
        i, j = i + 1, j + 1


def _prefix_cmp(h1: _Range, h2: _Range) -> int:
    return _natcmp(h1.prefix, h2.prefix) or int(h2.single) - int(h1.single)


def _within(h1: _Range, h2: _Range) -> bool:
    """Whether h2 prints inside h1's brackets: same prefix, both numbered."""
    return _prefix_cmp(h1, h2) == 0 and not (h1.single or h2.single)


def _range_cmp(h1: _Range, h2: _Range) -> int:
    """Slurm's hostrange_cmp (the hostlistsorted order), without its side effects."""
    by_prefix = _prefix_cmp(h1, h2)
    if by_prefix:
        return by_prefix
    if _width_equiv(h1.lo, h1.width, h2.lo, h2.width) is not None:
        return h1.lo - h2.lo
    return h1.width - h2.width


class _HostList:
    """Slurm's hostlist: ranges in input order; a pushed range joins the last one
    only when it continues it (same prefix, next number, compatible width)."""

    def __init__(self) -> None:
        self.ranges: list[_Range] = []
        self.count = 0

    def push(self, hr: _Range) -> None:
        self.count += hr.count()
        if self.count > _MAX_HOSTS:
            raise ValueError("too many hosts")
        tail = self.ranges[-1] if self.ranges else None
        if (
            tail is not None
            and not tail.single
            and not hr.single
            and tail.hi == hr.lo - 1
            and _prefix_cmp(tail, hr) == 0
            and _width_combine(tail, hr)
        ):
            tail.hi = hr.hi
        else:
            self.ranges.append(_Range(hr.prefix, hr.lo, hr.hi, hr.width, hr.single))

    def ranged_string(self) -> str:
        """hostlist_ranged_string: runs of same-prefix ranges share one bracket."""
        parts, i, ranges = [], 0, self.ranges
        while i < len(ranges):
            first = ranges[i]
            bracket = first.count() > 1 or (i + 1 < len(ranges) and _within(first, ranges[i + 1]))
            numbers = [first.numbers()]
            i += 1
            while i < len(ranges) and _within(ranges[i], ranges[i - 1]):
                numbers.append(ranges[i].numbers())
                i += 1
            body = ",".join(numbers)
            parts.append(first.prefix + ("[%s]" % body if bracket else body))
        return ",".join(parts)


def _tokens(text: str) -> Iterable[str]:
    """Slurm's _next_tok: split on separators, except inside ``[...]``."""
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SEPARATORS:
            i += 1
        if i >= n:
            return
        start = scan = i
        while True:
            while i < n and text[i] not in _SEPARATORS:
                i += 1
            opening = text.find("[", scan)
            if opening == -1 or opening > i:
                break
            closing = text.find("]", scan)
            if closing == -1 or closing < opening:
                break
            if closing < i:
                scan = closing + 1
            else:
                i = closing
        yield text[start:i]


class HostlistError(ValueError):
    """hostlist_create failed. ``logged``: the lines Slurm's parser logs on the way (with
    error(), so each printed as ``<prog>: error: <line>`` before the command's message)."""

    def __init__(self, message: str, logged: tuple[str, ...] = ()):
        super().__init__(message)
        self.logged = logged

    def log(self, prog: str) -> str:
        return "".join(f"{prog}: error: {line}\n" for line in self.logged)


def _parse_ranges(text: str) -> list[tuple[int, int, int]]:
    """``1-3,07`` -> [(lo, hi, width), ...]; width is the digits of lo."""
    ranges = []
    for item in text.split(","):
        lo_text, _, hi_text = item.partition("-")
        lo = int(lo_text) if _NUMBER.fullmatch(lo_text) else None
        hi = int(hi_text) if _NUMBER.fullmatch(hi_text) else lo if not hi_text else None
        if lo is None or hi is None or hi < lo:
            raise HostlistError(item, (f"_parse_single_range: Invalid range: `{item}'",))
        if hi - lo + 1 > _MAX_RANGE:
            raise HostlistError(item, (f"_parse_single_range: Too many hosts in range `{item}'",))
        ranges.append((lo, hi, len(lo_text)))
    return ranges


def _push_ranges(hl: _HostList, prefix: str, ranges: list[tuple[int, int, int]]) -> None:
    """Slurm's _push_range_list: a bracket left in the prefix is expanded by
    recursion on the prefix's last bracket (so ``a[1-2]b[1-2]`` gives a1b1, a1b2,
    a2b1, a2b2, and a third bracket nests in Slurm's own order)."""
    opening = prefix.rfind("[")
    closing = prefix.rfind("]", opening + 1) if opening != -1 else -1
    if closing == -1:
        for lo, hi, width in ranges:
            hl.push(_Range(prefix, lo, hi, width))
        return
    head, tail = prefix[:opening], prefix[closing + 1 :]
    for lo, hi, width in _parse_ranges(prefix[opening + 1 : closing]):
        for number in range(lo, hi + 1):
            _push_ranges(hl, "%s%0*d%s" % (head, width, number, tail), ranges)


def _parse(text: str) -> _HostList:
    """Slurm's hostlist_create."""
    hl = _HostList()
    for token in _tokens(text):
        opening = token.rfind("[")
        if opening == -1:
            hl.push(_host(token))
            continue
        prefix, rest = token[:opening], token[opening + 1 :]
        closing = rest.find("]")
        if closing == -1:  # Slurm tacks the missing "]" on and keeps it as a name
            hl.push(_host(token + "]" if prefix else rest))
            continue
        if rest[closing + 1 :]:
            raise ValueError(token)  # nothing may follow the last "]"
        _push_ranges(hl, prefix, _parse_ranges(rest[:closing]))
    return hl


def expand(text: str) -> list[str]:
    """``node[01-02],gpu1`` -> ``['node01', 'node02', 'gpu1']`` (duplicates kept).

    Raises HostlistError("Invalid hostlist: TEXT") where Slurm's hostlist_create fails.
    """
    try:
        hl = _parse(text)
    except ValueError as exc:
        raise HostlistError("Invalid hostlist: %s" % text, getattr(exc, "logged", ())) from None
    return [name for hr in hl.ranges for name in hr.names()]


def compress(names: Iterable[str], sort: bool = False) -> str:
    """Names -> Slurm's ranged string; ``sort=True`` as ``scontrol show hostlistsorted``
    (exact for lists without duplicates)."""
    hosts = [_host(name) for name in names]
    if sort:
        hosts.sort(key=functools.cmp_to_key(_range_cmp))
    hl = _HostList()
    for host in hosts:
        hl.push(host)
    return hl.ranged_string()


def compress_counts(counts: Iterable[int]) -> str:
    """``[2, 2, 1]`` -> ``2(x2),1`` (SLURM_TASKS_PER_NODE form)."""
    parts: list[str] = []
    previous, repeat = None, 0
    for count in list(counts) + [None]:
        if count == previous:
            repeat += 1
            continue
        if previous is not None:
            parts.append("%d(x%d)" % (previous, repeat) if repeat > 1 else str(previous))
        previous, repeat = count, 1
    return ",".join(parts)


def expand_counts(text: str) -> list[int]:
    """``2(x2),1`` -> ``[2, 2, 1]``; raises ValueError on anything else."""
    counts: list[int] = []
    for item in text.split(",") if text else []:
        match = _COUNT.fullmatch(item)
        if not match:
            raise ValueError("Invalid count list: %s" % text)
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts
