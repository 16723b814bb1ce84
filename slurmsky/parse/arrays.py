"""Job array specifications: `--array=1-100`, `1-100:2`, `1,5,7`, `0-999%10`."""

from __future__ import annotations

from slurmsky.config import MAX_ARRAY_SIZE
from slurmsky.parse.scalars import rejected, strtol
from slurmsky.record import Record
from slurmsky.runtime import indexset


class ArraySpec(Record):
    """``--array``: its indices (runtime.indexset's text: ``0-99999`` is never expanded) and
    how many, the ``%N`` throttle (None = none), and the step jobs see as
    SLURM_ARRAY_TASK_STEP: the first item's ``:N`` (``0-10:5,20`` gives 5, ``1,6,7,12``
    gives 1, as on Slurm 22.05)."""

    ranges: str
    count: int
    throttle: int | None
    step: int = 1


def _array_item(item: str, max_array_size: int) -> range:
    """slurmctld's _parse_array_tok: ``[first[-last[:step]]]``, ``%...`` ignored here."""

    def number(pos: int) -> tuple[int, int]:
        value, end = strtol(item, pos)
        end += item[end : end + 1] == "]"
        return (0 if value is None else value), end

    first, end = number(1 if item.startswith("[") else 0)
    last, step = first, 1
    if first < 0:
        raise ValueError(item)
    if item[end : end + 1] == "-":
        last, end = number(end + 1)
        if item[end : end + 1] == ":":
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
    items = []
    try:
        for item in filter(None, text.split(",")):
            found = _array_item(item, max_array_size)
            items.append((found.start, found[-1], found.step))
    except ValueError:
        raise rejected("Invalid job array specification") from None
    if not items:
        raise rejected("Invalid job array specification")
    step = items[0][2]
    items.sort()
    if any(lo <= before[1] for before, (lo, _, _) in zip(items, items[1:])):
        # items that overlap: their union, index by index (each item is bounded)
        union = sorted(set().union(*(range(lo, hi + 1, s) for lo, hi, s in items)))
        items = [(i, i, 1) for i in union]
    percent = text.find("%")
    throttle = strtol(text, percent + 1)[0] if percent >= 0 else None
    return ArraySpec(
        indexset.normal(items),
        indexset.count(items),
        throttle if throttle and throttle > 0 else None,
        step,
    )
