"""`--export`: ALL, NONE, NIL or names, with `NAME=value` assignments (quotes as Slurm reads them)."""

from __future__ import annotations

from slurmsky.record import Record


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
