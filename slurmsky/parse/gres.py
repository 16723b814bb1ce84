"""Generic resources and GPUs: `--gres=gpu:a100:2,shard:1`, `--gpus[-per-node|-per-task]=[type:]N`."""

from __future__ import annotations

import re

from slurmsky.parse.scalars import rejected
from slurmsky.record import Record


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


_MAX_COUNT = 2**63 - 1  # Slurm refuses from 2**64 - 1 (NO_VAL64); the state holds up to here


def parse_gres(text: str, opt: str) -> tuple[Gres, ...]:
    """``gpu``, ``gpu:2``, ``gpu:a100:2``, ``gpu:1,shard:2``; ``none`` is empty.
    The controller validates gres, so a bad one is a submission failure."""
    if text.lower() == "none":
        return ()
    try:
        items = tuple(_gres_item(item) for item in text.split(","))
    except ValueError:
        raise rejected("Invalid generic resource (gres) specification") from None
    if any(g.count > _MAX_COUNT for g in items):
        raise rejected("Invalid Trackable RESource (TRES) specification")
    return items


def gres_text(items) -> str | None:
    """The --gres request as stored and shown: ``gpu:a100:2,foo:1`` (None: none)."""
    return (
        ",".join(
            ":".join(str(p) for p in (g.name, g.type, g.count) if p is not None) for g in items
        )
        or None
    )


def parse_gpus(text: str, opt: str) -> GpuSpec:
    """``2`` or ``a100:2`` (``a100`` alone is one a100), as Slurm reads them: as
    the gres ``gpu:<text>``. Lists of several types are not supported."""
    items = parse_gres("gpu:" + text, opt) if "," not in text else ()
    if len(items) != 1:
        raise rejected("Invalid generic resource (gres) specification")
    return GpuSpec(items[0].type, items[0].count)
