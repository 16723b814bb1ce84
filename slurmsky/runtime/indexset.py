"""A job array's indices in O(ranges) space: `0-99999`, `1,3,10-12`, `0-98:2`.

The text form is a comma-separated list of items `lo`, `lo-hi` (step 1) or `lo-hi:step`,
in ascending order, each index once. A 100 000-element array is one short string: what the
state keeps of an array's pending elements, and what the runtime spec carries of an array.
Standard library only, Python 3.8 (the runtime ships it).
"""

from __future__ import annotations


def compress(indices):
    """Sorted unique ints -> text; arithmetic runs of three or more become one item."""
    items = []
    values = list(indices)
    i, n = 0, len(values)
    while i < n:
        lo = values[i]
        if i + 2 < n and values[i + 1] - lo == values[i + 2] - values[i + 1]:
            step = values[i + 1] - lo
            j = i + 2
            while j + 1 < n and values[j + 1] - values[j] == step:
                j += 1
            items.append((lo, values[j], step))
            i = j + 1
        elif i + 1 < n and values[i + 1] == lo + 1:
            items.append((lo, lo + 1, 1))
            i += 2
        else:
            items.append((lo, lo, 1))
            i += 1
    return text(items)


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
