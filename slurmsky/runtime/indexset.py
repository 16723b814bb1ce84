"""A job array's indices in O(ranges) space: `0-99999`, `1,3,10-12`, `0-98:2`.

The text form is a comma-separated list of items `lo`, `lo-hi` (step 1) or `lo-hi:step`,
in ascending order, each index once. A 100 000-element array is one short string: what the
state keeps of an array's pending elements, and what the runtime spec carries of an array.
Standard library only, Python 3.8 (the runtime ships it).
"""

from __future__ import annotations

import itertools
import operator


def compress(indices):
    """Sorted unique ints -> text; arithmetic runs of three or more become one item."""
    values = list(indices)
    differences = itertools.groupby(map(operator.sub, values[1:], values))
    gaps = [[gap, sum(1 for _ in run)] for gap, run in differences]
    return text(_runs(values[0], gaps)) if values else ""


def normal(items):
    """Items (lo, hi, step), sorted, each after the one before -> the text `compress` makes
    of their indices, in O(items): `sbatch --array=0-99999` is never expanded."""
    gaps: list = []  # [difference, how many in a row] between consecutive indices
    last = None
    for lo, hi, step in items:
        if last is not None:
            _add_gap(gaps, lo - last, 1)
        if hi > lo:
            _add_gap(gaps, step, (hi - lo) // step)
        last = hi
    return text(_runs(items[0][0], gaps)) if items else ""


def _add_gap(gaps, gap, times):
    if gaps and gaps[-1][0] == gap:
        gaps[-1][1] += times
    else:
        gaps.append([gap, times])


def _runs(value, gaps):
    """compress's items, greedily from the first index: a run of three or more with one
    difference (to where the difference changes: a block of `gaps` ends), else a pair of
    consecutive indices, else one index."""
    out = []
    block = used = 0  # where the next difference is: gaps[block], `used` of its repeats gone
    while True:
        left = gaps[block][1] - used if block < len(gaps) else 0
        first = gaps[block][0] if left else None
        if left > 1:
            second = first
        else:
            second = gaps[block + 1][0] if left and block + 1 < len(gaps) else None
        if first is not None and first == second:  # a run: the rest of this block
            out.append((value, value + first * left, first))
            value += first * left
            block, used, skip = block + 1, 0, 1
        elif first == 1:
            out.append((value, value + 1, 1))
            skip = 2
        else:
            out.append((value, value, 1))
            skip = 1
        for _ in range(skip):  # the differences to the next item's first index
            if block == len(gaps):
                return out
            value += gaps[block][0]
            used += 1
            if used == gaps[block][1]:
                block, used = block + 1, 0


def parse(text):
    """text -> [(lo, hi, step)]."""
    items = []
    for item in filter(None, (text or "").split(",")):
        span, _, step = item.partition(":")
        lo, _, hi = span.partition("-")
        items.append((int(lo), int(hi or lo), int(step or 1)))
    return items


def text(items):
    out = []
    for lo, hi, step in items:
        if lo == hi:
            out.append(str(lo))
        elif step == 1:
            out.append("%d-%d" % (lo, hi))
        else:
            out.append("%d-%d:%d" % (lo, hi, step))
    return ",".join(out)


def count(items):
    return sum((hi - lo) // step + 1 for lo, hi, step in items)


def iterate(items):
    for lo, hi, step in items:
        yield from range(lo, hi + 1, step)


def contains(items, index):
    return any(lo <= index <= hi and (index - lo) % step == 0 for lo, hi, step in items)


def rank(items, index):
    """The position of `index` among the indices (it must be one)."""
    before = 0
    for lo, hi, step in items:
        if lo <= index <= hi:
            return before + (index - lo) // step
        before += (hi - lo) // step + 1
    raise ValueError(index)


def at(items, position):
    """The index at `position`."""
    for lo, hi, step in items:
        size = (hi - lo) // step + 1
        if position < size:
            return lo + position * step
        position -= size
    raise IndexError(position)


def remove(items, index):
    """The items without `index` (unchanged if absent)."""
    out = []
    for lo, hi, step in items:
        if lo <= index <= hi and (index - lo) % step == 0:
            if index - step >= lo:
                out.append(_norm(lo, index - step, step))
            if index + step <= hi:
                out.append(_norm(index + step, hi, step))
        else:
            out.append((lo, hi, step))
    return out


def _norm(lo, hi, step):
    return (lo, hi, step if hi > lo else 1)


def display(text, throttle=None):
    """squeue's task string (Slurm's bit_fmt, plus `%N`): consecutive indices as `lo-hi`,
    others listed: `1-7`, `1,3,5,7`, `1,3,10-12`, `3-7%2`."""
    runs = []  # type: list
    for lo, hi, step in parse(text):
        pieces = [(lo, hi)] if step == 1 else [(i, i) for i in range(lo, hi + 1, step)]
        for a, b in pieces:
            if runs and runs[-1][1] == a - 1:
                runs[-1][1] = b
            else:
                runs.append([a, b])
    out = ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in runs)
    return out + ("%%%d" % throttle if throttle else "")
