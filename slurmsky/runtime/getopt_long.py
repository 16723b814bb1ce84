"""glibc's getopt_long, which every Slurm command parses its arguments with.

Scripts rely on its details: unambiguous prefixes of long names (`--part=gpu`), clustered
short options (`-ho %i`), optional arguments only in the attached form (`--exclusive` never
takes the next word), and its exact messages. Standard library only: the front end's
commands and the node runtime share it.
"""

from __future__ import annotations


class UsageError(Exception):
    """A command-line error: `lines` go to stderr verbatim, then exit with `exit_code`."""

    def __init__(self, *lines: str, exit_code: int = 1):
        super().__init__("\n".join(lines))
        self.lines = lines
        self.exit_code = exit_code


def getopt_long(
    prog: str, args: list[str], shortopts: str, longopts: dict, permute: bool = True
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """glibc getopt_long: ([(key, value)], operands).

    shortopts as in C (`A:ah` , `j::` optional); longopts maps a long name to
    (key, 0 no / 1 required / 2 optional argument). Short options yield their letter as
    key. Errors raise UsageError with glibc's text and `Try "prog --help"...`.
    """

    def fail(message: str):
        raise UsageError(f"{prog}: {message}", f'Try "{prog} --help" for more information')

    opts: list[tuple[str, str | None]] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i + 1 :])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in longopts:
                found = [name]
            else:
                found = [n for n in longopts if n.startswith(name)]
            if not found:
                fail(f"unrecognized option '{arg}'")
            if len({longopts[n] for n in found}) > 1:
                names = " ".join(f"'--{n}'" for n in found)
                fail(f"option '--{name}' is ambiguous; possibilities: {names}")
            key, has_arg = longopts[found[0]]
            if has_arg == 0 and eq:
                fail(f"option '--{found[0]}' doesn't allow an argument")
            if has_arg == 1 and not eq:
                if i + 1 >= len(args):
                    fail(f"option '--{found[0]}' requires an argument")
                i += 1
                value = args[i]
            opts.append((key, value if eq or has_arg == 1 else None))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                pos = shortopts.find(letter)
                if letter == ":" or pos < 0:
                    fail(f"invalid option -- '{letter}'")
                if shortopts[pos + 1 : pos + 2] == ":":
                    optional = shortopts[pos + 2 : pos + 3] == ":"
                    if j + 1 < len(arg):
                        value = arg[j + 1 :]
                    elif optional:
                        value = None
                    elif i + 1 < len(args):
                        i += 1
                        value = args[i]
                    else:
                        fail(f"option requires an argument -- '{letter}'")
                    opts.append((letter, value))
                    break
                opts.append((letter, None))
                j += 1
        elif permute:
            rest.append(arg)
        else:
            rest.extend(args[i:])
            break
        i += 1
    return opts, rest
