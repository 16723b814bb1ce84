"""getopt_long, driven by the option table: the same parse for argv, #SBATCH words and SBATCH_*.

Slurm parses with glibc's getopt_long, and scripts rely on its details: unambiguous
prefixes of long names (`--part=debug`), `-c4` and `-c 4`, optional arguments only in the
attached form (`--exclusive=user`, never `--exclusive user`), and, for sbatch and srun,
option parsing stops at the first non-option word (the script or the command). click's
parser differs on each of these, so this module reproduces getopt_long over the table and
its messages word for word; click still runs the `slurmsky` tool's subcommands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import values
from .errors import SlurmError
from .options import IGNORED, NO_ARG, REFUSED, REQUIRED, Option, options_for

TRY_HELP = 'Try "{prog} --help" for more information'


@dataclass
class Parsed:
    """What one source (argv, the script's directives, or the environment) set.

    ``values`` maps option keys to parsed values in the order given (a later setting of
    the same key replaces an earlier one); ``given`` keeps each option with the text as
    written, for warnings; ``rest`` is what follows the options (script and its args).
    """

    values: dict = field(default_factory=dict)
    given: list = field(default_factory=list)
    rest: list = field(default_factory=list)


def _usage_error(*lines: str) -> SlurmError:
    return SlurmError(*lines, TRY_HELP, exit_code=255, bare=True)


class OptionParser:
    """getopt_long for one command (sbatch, srun or salloc)."""

    def __init__(self, command: str):
        self.command = command
        self.options = options_for(command)
        self.by_long = {o.long: o for o in self.options}
        self.by_short = {o.short: o for o in self.options if o.short}

    def _find_long(self, name: str) -> Option:
        if name in self.by_long:
            return self.by_long[name]
        matches = [o for long, o in self.by_long.items() if long.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise KeyError(name)
        names = " ".join(f"'--{o.long}'" for o in matches)
        raise _usage_error(f"{{prog}}: option '--{name}' is ambiguous; possibilities: {names}")

    def parse(self, words: list[str], *, directive: bool = False) -> Parsed:
        """Parse ``words``; stop at the first non-option, as `+` in Slurm's optstring asks.

        In directive mode (the words of `#SBATCH` lines) a non-option word is an error,
        as it is for sbatch: `Invalid directive found in batch script: job`.
        """
        out = Parsed()
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            if word == "--":
                out.rest = words[i:]
                return out
            if not word.startswith("-") or word == "-":
                if directive:
                    raise SlurmError(f"Invalid directive found in batch script: {word}", exit_code=255)
                out.rest = words[i - 1:]
                return out
            if word.startswith("--"):
                name, eq, attached = word[2:].partition("=")
                try:
                    opt = self._find_long(name)
                except KeyError:
                    raise _usage_error(f"{{prog}}: unrecognized option '{word}'") from None
                if opt.arg == NO_ARG and eq:
                    raise _usage_error(f"{{prog}}: option '--{opt.long}' doesn't allow an argument")
                if opt.arg == REQUIRED and not eq:
                    if i >= len(words):
                        raise _usage_error(f"{{prog}}: option '--{opt.long}' requires an argument")
                    attached, i = words[i], i + 1
                    eq = "="
                self._set(out, opt, attached if eq else None, word if eq or opt.arg != REQUIRED
                          else f"{word} {attached}")
                continue
            # a cluster of short options: -Hv, -c4, -c 4
            j = 1
            while j < len(word):
                ch = word[j]
                j += 1
                opt = self.by_short.get(ch)
                if opt is None:
                    raise _usage_error(f"{{prog}}: invalid option -- '{ch}'")
                if opt.arg == NO_ARG:
                    self._set(out, opt, None, f"-{ch}")
                    continue
                text = word[j:]
                if not text and opt.arg == REQUIRED:
                    if i >= len(words):
                        raise _usage_error(f"{{prog}}: option requires an argument -- '{ch}'")
                    text, i = words[i], i + 1
                self._set(out, opt, text or None, f"-{ch} {text}".rstrip())
                break
        return out

    def _set(self, out: Parsed, opt: Option, text: str | None, as_written: str) -> None:
        if opt.fate == REFUSED:
            raise SlurmError(f"--{opt.long} is not supported by slurmsky: {opt.note}", exit_code=255)
        if text is None:
            value = opt.flag
            if opt.key == "verbose":
                value = out.values.get("verbose", 0) + 1
        elif opt.parse is None:
            value = text
        else:
            try:
                value = getattr(values, "parse_" + opt.parse)(text, "--" + opt.long)
            except values.SubmitError as exc:
                raise SlurmError(str(exc), exit_code=1) from None
            except ValueError as exc:
                raise SlurmError(str(exc), exit_code=255) from None
        out.values.pop(opt.key, None)  # keep "last given" order for the merge
        out.values[opt.key] = value
        out.given.append((opt, as_written))

    def parse_env(self, environ: dict, pairs) -> Parsed:
        """The input variables (SBATCH_TIMELIMIT=...) as if given as --option=value."""
        out = Parsed()
        for name, opt in pairs:
            text = environ.get(name)
            if text is None:
                continue
            self._set(out, opt, None if opt.arg == NO_ARG else text, f"{name}={text}")
        return out


def ignored_warnings(prog: str, parsed: Parsed) -> list[str]:
    """One stderr line per ignored option, e.g. `sbatch: warning: --qos=x ignored: no QOS`."""
    seen, lines = set(), []
    for opt, written in parsed.given:
        if opt.fate == IGNORED and opt.long not in seen:
            seen.add(opt.long)
            lines.append(f"{prog}: warning: {written} ignored by slurmsky: {opt.note}")
    return lines

