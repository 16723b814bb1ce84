"""What every read command's output shares: values as Slurm prints them (times, users,
groups, padding), and `%`-format specifications turned into columns.

Widths: `%.N` (right) / `%N` (left), a prefix before the first `%`, text after a code kept
as its suffix, `-O Field[:[.]N][suffix]` (20 wide by default); values cut to the width
except node lists and times (src/squeue/print.c `_print_str`).

Imports stay standard-library and light: squeue runs in polling loops.
"""

from __future__ import annotations

import os
import time

from slurmsky import SLURM_VERSION


def clock() -> float:
    """The time the commands show things at: $SLURMSKY_NOW (epoch seconds, for reproducible
    output in tests and docs) or the clock."""
    fixed = os.environ.get("SLURMSKY_NOW")
    return float(fixed) if fixed else time.time()


def version_line() -> str:
    return f"slurm-wlm {SLURM_VERSION}"


def iso(when: float | None, none: str = "Unknown") -> str:
    """Slurm's time stamps: local `YYYY-MM-DDTHH:MM:SS`."""
    if not when:
        return none
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))


_USERS: dict = {}
_GROUPS: dict = {}


def user_name(uid: int) -> str:
    if uid not in _USERS:
        import pwd

        try:
            _USERS[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _USERS[uid] = str(uid)
    return _USERS[uid]


def group_name(gid: int) -> str:
    if gid not in _GROUPS:
        import grp

        try:
            _GROUPS[gid] = grp.getgrgid(gid).gr_name
        except KeyError:
            _GROUPS[gid] = str(gid)
    return _GROUPS[gid]


def uid_of(text: str) -> int | None:
    """A user name or number as Slurm's uid_from_string takes it; None if unknown."""
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):  # ValueError: a NUL byte, which names no user
        pass
    if text.isdigit():
        return int(text)
    return None


def pad(text: str | None, width: int, right: bool, cut: bool = True) -> str:
    """squeue/sinfo `_print_str`: `%Ns` (right) or `%.Ns` then padding (left); a right-justified
    value is cut to the width only when `cut`; NULL prints as `(null)`."""
    if text is None:
        text = "(null)"
    if width <= 0:
        return text
    if right:
        text = text.rjust(width)
        return text[:width] if cut else text
    return text[:width].ljust(width)


_CLUSTER: list = []


def cluster_name() -> str:
    if not _CLUSTER:
        from slurmsky.config import load_config

        _CLUSTER.append(load_config().cluster_name)
    return _CLUSTER[0]


class Item:
    """One piece of a parsed format: a field (or an invalid one, `field=None`) with its width,
    justification and suffix; a prefix is a field-less item that prints only its suffix."""

    __slots__ = ("field", "width", "right", "suffix", "key")

    def __init__(self, field, width=0, right=False, suffix="", key=None):
        self.field, self.width, self.right, self.suffix = field, width, right, suffix
        self.key = key


def parse_percent_format(text: str, fields: dict, codes: dict, errors: list[str]) -> list[Item]:
    """squeue/sinfo `-o`: prefix, then `%[.][width]<letter><suffix>` tokens; an unknown letter
    prints `%token` literally and reports `Invalid job format specification: <letter>`."""
    items: list[Item] = []
    every = text.lower() == "%all"
    if every:  # every letter Slurm knows, `|`-separated; unknown letters are skipped
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        text = "|".join("%" + c for c in letters if c in codes)
    first = text.find("%")
    if first < 0:
        return [Item(None, suffix=text)]
    if first > 0:
        items.append(Item(None, suffix=text[:first]))
    for token in filter(None, text[first:].split("%")):
        i, right = 0, False
        if token[0] == ".":
            right, i = True, 1
        width = 0
        while i < len(token) and token[i].isdigit():
            width = width * 10 + int(token[i])
            i += 1
        letter = token[i : i + 1]
        suffix = token[i + 1 :]
        name = codes.get(letter)
        if name is None:
            errors.append(letter)
            items.append(Item(None, width, right, "%" + token))
        else:
            items.append(Item(fields[name], width, right, suffix, name))
    return items


def parse_long_format(text: str, fields: dict, errors: list[str]) -> list[Item]:
    """squeue/sinfo `-O`: `Field[:[.][width][suffix]]`, comma separated, 20 wide by default."""
    items = []
    for token in filter(None, text.split(",")):
        name, colon, spec = token.partition(":")
        right, width, suffix = False, 20, ""
        if colon:
            if spec.startswith("."):
                right, spec = True, spec[1:]
            digits = len(spec) - len(spec.lstrip("0123456789"))
            width = int(spec[:digits]) if digits else 0
            suffix = spec[digits:]
        field = fields.get(name.lower())
        if field is None:
            errors.append(name)
        items.append(Item(field, width, right, suffix))
    return items


_UNCUT_HEADERS = ("NODELIST", "NODELIST(REASON)", "SCHEDNODES")


def render(items: list[Item], obj) -> str:
    """One line: the header when `obj` is None."""
    if obj is not None:
        return renderer(items)(obj)
    out = []
    for item in items:
        field = item.field
        if field is not None:  # node list headers are not cut either
            out.append(pad(field[0], item.width, item.right, field[0] not in _UNCUT_HEADERS))
        out.append(item.suffix)
    return "".join(out)


def renderer(items: list[Item]):
    """render(items, obj) as one function of obj, its cells built once: the listing of
    10 000 jobs calls it 10 000 times."""
    cells = [_cell(item) for item in items]
    return lambda obj: "".join([cell(obj) for cell in cells])


def _cell(item: Item):
    """One item's text for an object: its field's value padded, then its suffix."""
    field, width, right, suffix = item.field, item.width, item.right, item.suffix
    if field is None:
        return lambda obj: suffix
    value_of = field[1]
    cut = field[2] if len(field) > 2 else True
    if cut is None:  # %R: the reason is cut, a node list is not
        return lambda obj: _cut_unless_nodes(value_of(obj), width, right) + suffix
    if right and cut and width > 0:  # most of squeue's columns: "%.8j"

        def right_cut(obj):
            value = value_of(obj)
            return ("(null)" if value is None else value).rjust(width)[:width] + suffix

        return right_cut
    return lambda obj: pad(value_of(obj), width, right, cut) + suffix


def _cut_unless_nodes(value: str, width: int, right: bool) -> str:
    return pad(value, width, right, value.startswith("("))


def printf_sql(parts: list[tuple[str, str | None]], dialect) -> str:
    """SQL for a line of (printf spec, cell SQL or None) parts, in the state engine's
    `dialect`: one printf per 100 cells (SQLite takes at most 127 arguments to a function)."""
    calls, fmt, args = [], "", []
    for spec, cell in parts:
        if cell is not None:
            if len(args) == 100:
                calls.append(dialect.printf(fmt, args))
                fmt, args = "", []
            args.append(cell)
        fmt += spec
    calls.append(dialect.printf(fmt, args))
    return " || ".join(calls)


def write_lines(out, head: list[str], lines) -> None:
    """The header lines, then `lines` a thousand at a time (`squeue -r | head` stops early)."""
    import itertools

    chunk = head + list(itertools.islice(lines, 1000))
    while chunk:
        out.write("\n".join(chunk) + "\n")
        chunk = list(itertools.islice(lines, 1000))
