"""The read commands' options (squeue, sacct, scancel, scontrol, sinfo, sstat, seff) as typed
rows, and the one parse over them.

A command declares its rows (`Opt`: names, arity, destination, value conversion and how it
accumulates) and a namespace (a mutable `Record` whose fields are the destinations, with
their defaults). `Table.parse` runs glibc's getopt_long (runtime/getopt_long.py: prefixes,
clustered letters, its messages) over the strings the rows make, then applies each option in
the order given, as Slurm's own `while (getopt_long(...))` loop does: a bad value is reported
in that order, and a row that ends the command (`--version`, `--help`) stops there, whatever
follows it. Standard library only (no dataclasses, enum or re): squeue and sacct are called
in loops.
"""

from __future__ import annotations

from slurmsky.record import Factory, Record
from slurmsky.runtime.getopt_long import UsageError, getopt_long

# For the type checker only: typing is not imported here at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    N = TypeVar("N", bound=Record)

NO_ARG, REQUIRED, OPTIONAL = 0, 1, 2  # getopt_long's has_arg
STORE, APPEND, EXTEND, PREPEND = "store", "append", "extend", "prepend"


class Opt:
    """One option of a read command.

    ``short`` is its letter ("" for none), ``longs`` its long names (getopt_long's order:
    the order of the rows and of their names is the order an ambiguous prefix's message lists
    them in). An option sets ``dest`` (None: accepted, no effect): to its text passed through
    ``convert(text, ns)`` (which raises UsageError with Slurm's message), or without an
    argument to ``const`` (a ``Factory`` makes it afresh); ``action`` says how it accumulates
    (store: the last wins; append, extend, prepend: onto the list in ``dest``). An optional
    argument given bare sets only ``marks``, the flags every use of the option sets.
    ``conflict`` is (a destination, the message): set already, the option is refused.
    ``stop`` ends the parse at the option (the command does that and exits). A plain class
    with slots, not a Record: each command builds its rows on every call.
    """

    __slots__ = (
        "short",
        "longs",
        "arg",
        "dest",
        "action",
        "convert",
        "const",
        "marks",
        "conflict",
        "stop",
        "help",
    )

    def __init__(
        self,
        short: str,
        longs: tuple[str, ...] = (),
        arg: int = NO_ARG,
        dest: str | None = None,
        *,
        action: str = STORE,
        convert: Callable[[str, Any], object] | None = None,
        const: object = True,
        marks: tuple[str, ...] = (),
        conflict: tuple[str, str] | None = None,
        stop: bool = False,
        help: str = "",
    ):
        self.short, self.longs, self.arg, self.dest, self.action = short, longs, arg, dest, action
        self.convert, self.const, self.marks, self.conflict = convert, const, marks, conflict
        self.stop, self.help = stop, help

    def __repr__(self):
        return f"Opt({self.short!r}, {self.longs!r})"


def answered(o, usage: str, prog: str = "") -> bool:
    """Answer --version, --usage or --help (`o.action`: Slurm's own help text, runtime/
    help_texts.py, then `usage` where it is slurmsky's part), which stop a command before it
    reads anything else; False when none was asked."""
    if o.action == "version":
        from slurmsky.render.common import version_line

        print(version_line())
    elif o.action == "usage":
        print(usage)
    elif o.action == "help":
        import sys

        from slurmsky.runtime.help_texts import HELP

        sys.stdout.write(HELP[prog])
    else:
        return False
    return True


def words(text: str, ns: object = None) -> list[str]:
    """A comma-separated list, empty items dropped (Slurm's slurm_addto_char_list)."""
    return [w for w in text.split(",") if w]


def word_set(text: str, ns: object = None) -> set[str]:
    return set(words(text))


class Table:
    """One command's rows, as getopt_long's strings and back."""

    __slots__ = ("prog", "rows", "shortopts", "longopts", "by_key", "permute")

    def __init__(self, prog: str, rows: tuple[Opt, ...], permute: bool = True):
        self.prog, self.rows, self.permute = prog, rows, permute
        shortopts = ""
        self.longopts: dict[str, tuple[str, int]] = {}
        self.by_key: dict[str, Opt] = {}
        for row in rows:
            key = row.short or row.longs[0]
            if key in self.by_key:
                raise ValueError(f"{prog}: two rows for {key}")
            self.by_key[key] = row
            if row.short:
                shortopts += row.short + ":" * row.arg
            for name in row.longs:
                self.longopts[name] = (key, row.arg)
        self.shortopts = shortopts

    def parse(
        self, argv: list[str], ns: N, operands: Callable[[list[str]], None] | None = None
    ) -> tuple[N, list[str]]:
        """(ns with argv's options applied, the operands). ``operands`` sees the operands
        before any option is applied (a command that refuses them does so first). A
        namespace with a ``given`` dict gets each option's texts there, in order, under its
        letter (or first long name): None for each use without an argument."""
        opts, rest = getopt_long(self.prog, argv, self.shortopts, self.longopts, self.permute)
        if operands is not None:
            operands(rest)
        by_key = self.by_key
        given = getattr(ns, "given", None)
        for key, text in opts:
            row = by_key[key]
            if given is not None:
                given.setdefault(key, []).append(text)
            if row.conflict is not None and getattr(ns, row.conflict[0]) is not None:
                raise UsageError(row.conflict[1])
            for mark in row.marks:
                setattr(ns, mark, True)
            dest = row.dest
            if dest is not None and (text is not None or row.arg != OPTIONAL):
                if text is None:
                    value = row.const
                    if type(value) is Factory:  # (to the checker Factory is a function)
                        value = value.make()  # type: ignore[attr-defined]
                else:
                    value = text if row.convert is None else row.convert(text, ns)
                action = row.action
                if action == STORE:
                    setattr(ns, dest, value)
                elif action == APPEND:
                    getattr(ns, dest).append(value)
                elif action == EXTEND:
                    getattr(ns, dest).extend(value)
                else:
                    getattr(ns, dest).insert(0, value)
            if row.stop:
                break
        return ns, rest
