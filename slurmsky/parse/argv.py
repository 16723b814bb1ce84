"""getopt_long, driven by the option table: the same parse for argv, #SBATCH words and SBATCH_*.

Slurm parses with glibc's getopt_long (runtime/getopt_long.py), and scripts rely on its
details: unambiguous prefixes of long names (`--part=debug`), `-c4` and `-c 4`, optional
arguments only in the attached form (`--exclusive=user`, never `--exclusive user`), and, for
sbatch and srun, option parsing stops at the first non-option word (the script or the
command). click's parser differs on each of these; click runs the `slurmsky` tool's own
subcommands.
"""

from __future__ import annotations

from slurmsky.errors import SlurmError
from slurmsky.parse.arrays import parse_array
from slurmsky.parse.dependency import parse_dependency
from slurmsky.parse.export import parse_export
from slurmsky.parse.gres import parse_gpus, parse_gres
from slurmsky.parse.options import IGNORED, NO_ARG, REFUSED, Option, options_for
from slurmsky.parse.scalars import (
    SubmitError,
    parse_bool_yes_no,
    parse_gres_flags,
    parse_immediate,
    parse_int,
    parse_mail_type,
    parse_mem,
    parse_nice,
    parse_nodes,
    parse_open_mode,
    strtol,
)
from slurmsky.parse.signals import parse_signal, parse_step_signal
from slurmsky.parse.times import parse_begin, parse_deadline, parse_time
from slurmsky.record import Factory, Record
from slurmsky.runtime.getopt_long import UsageError, getopt_long
from slurmsky.runtime.options import lookups

# The option table's `parse` names: "time" is parse_time, and so on.
PARSERS = {
    fn.__name__[len("parse_") :]: fn
    for fn in (
        parse_array,
        parse_begin,
        parse_bool_yes_no,
        parse_deadline,
        parse_dependency,
        parse_export,
        parse_gpus,
        parse_gres,
        parse_gres_flags,
        parse_immediate,
        parse_int,
        parse_mail_type,
        parse_mem,
        parse_nice,
        parse_nodes,
        parse_open_mode,
        parse_signal,
        parse_step_signal,
        parse_time,
    )
}


def combined(key: str, earlier, value):
    """A later setting of option ``key``: each --mail-type adds its types to those given
    before (Slurm ORs them in, from the script and the command line alike); others replace."""
    if key == "mail_type" and earlier:
        return f"{earlier},{value}"
    return value


class Parsed(Record, frozen=False):
    """What one source (argv, the script's directives, or the environment) set.

    ``values`` maps option keys to parsed values in the order given (a later setting of
    the same key replaces an earlier one, but see `combined`); ``given`` keeps each option
    with the words as written (for warnings) and its argument's text (None for a flag), as
    (option, written, text); ``rest`` is what follows the options (script and its args).
    """

    values: dict = Factory(dict)
    given: list = Factory(list)
    rest: list = Factory(list)


class OptionParser:
    """getopt_long over the table's rows for one command (sbatch, srun or salloc)."""

    def __init__(self, command: str):
        self.command = command
        self.options = options_for(command)
        self.by_long, self.by_short, self.longopts, self.shortopts = lookups(command)

    def parse(self, words: list[str], *, directive: bool = False) -> Parsed:
        """Parse ``words``; stop at the first non-option, as `+` in Slurm's optstring asks.

        In directive mode (the words of `#SBATCH` lines) a non-option word is an error,
        as it is for sbatch: `Invalid directive found in batch script: job`.
        """
        try:
            opts, rest = getopt_long(
                self.command, list(words), self.shortopts, self.longopts, permute=False
            )
        except UsageError as exc:
            raise SlurmError(*exc.lines, exit_code=255, bare=True) from None
        out = Parsed(rest=rest)
        for key, value in opts:
            if len(key) == 1:
                opt = self.by_short[key]
                written = f"-{key} {value}" if value is not None else f"-{key}"
            else:
                opt = self.by_long[key]
                written = f"--{key}={value}" if value is not None else f"--{key}"
            self._set(out, opt, value, written)
        if directive and rest:
            raise SlurmError(f"Invalid directive found in batch script: {rest[0]}", exit_code=255)
        return out

    def _set(self, out: Parsed, opt: Option, text: str | None, as_written: str) -> None:
        if opt.fate == REFUSED:
            raise SlurmError(
                f"--{opt.long} is not supported by slurmsky: {opt.note}", exit_code=255
            )
        if text is None:
            value = opt.flag
            if opt.key == "verbose":
                value = out.values.get("verbose", 0) + 1
        elif opt.parse is None:
            value = text
        else:
            try:
                limits = {}
                if opt.parse == "array":
                    from slurmsky.config import load_config

                    limits["max_array_size"] = load_config().max_array_size
                value = PARSERS[opt.parse](text, "--" + opt.long, **limits)
            except SubmitError as exc:
                raise SlurmError(str(exc), exit_code=1) from None
            except ValueError as exc:  # a TimeSpecError has parse_time's own line first
                raise SlurmError(str(exc), exit_code=255, notes=getattr(exc, "notes", ())) from None
        value = combined(opt.key, out.values.get(opt.key), value)
        out.values.pop(opt.key, None)  # keep "last given" order for the merge
        out.values[opt.key] = value
        out.given.append((opt, as_written, text))

    def parse_pairs(self, pairs, source: str) -> Parsed:
        """Options given as (long name, text or None) pairs, e.g. translated #PBS lines."""
        out = Parsed()
        for long, text in pairs:
            opt = self.by_long[long]
            written = f"--{long}" if text is None else f"--{long}={text}"
            self._set(out, opt, None if opt.arg == NO_ARG else text, f"{written} ({source})")
        return out

    def parse_env(self, environ: dict, pairs) -> Parsed:
        """The input variables (SBATCH_TIMELIMIT=...) as if given as --option=value; one
        for an option without a value (SBATCH_WAIT, SBATCH_DEBUG) sets it when empty, `yes`
        or a number other than 0, as slurm_opt.c reads such flags, and else leaves it unset."""
        out = Parsed()
        for name, opt in pairs:
            text = environ.get(name)
            if text is None:
                continue
            if opt.arg == NO_ARG and not _env_flag(text):
                continue
            self._set(out, opt, None if opt.arg == NO_ARG else text, f"{name}={text}")
            if opt.key == "verbose" and text.strip().isdigit():  # arg_set_verbose: the level
                out.values["verbose"] = int(text)
        return out


def _env_flag(text: str) -> bool:
    """Whether an input variable sets a flag: empty, `yes`, or strtol's non-zero number."""
    if text == "" or text.lower() == "yes":
        return True
    value, end = strtol(text)
    return bool(value) and end == len(text)


HET_SEPARATOR = ":"


def het_components(parser: OptionParser, first: Parsed) -> list[Parsed]:
    """The heterogeneous-job components of a command line whose first component is parsed:
    getopt stops at a ``:`` word (a non-option), and the next component's options follow it
    (sbatch.c, salloc.c, srun: ``het_job_argv`` moves past each ``:``).  A ``:`` that is an
    option's argument (``-J :``) separates nothing.  The last component's ``rest`` is the
    script (or command) and its arguments; the others' are cleared."""
    parts = [first]
    while parts[-1].rest[:1] == [HET_SEPARATOR]:
        after = parts[-1].rest[1:]
        parts[-1] = Parsed(values=parts[-1].values, given=parts[-1].given)
        parts.append(parser.parse(after))
    return parts


def ignored_warnings(prog: str, parsed: Parsed) -> list[str]:
    """One stderr line per ignored option, e.g. `sbatch: warning: --qos=x ignored: no QOS`."""
    seen, lines = set(), []
    for opt, written, _text in parsed.given:
        if opt.fate == IGNORED and opt.long not in seen:
            seen.add(opt.long)
            lines.append(f"{prog}: warning: {written} ignored by slurmsky: {opt.note}")
    return lines
