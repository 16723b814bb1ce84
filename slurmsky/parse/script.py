"""Batch scripts as sbatch 22.05 reads them: its sanity checks, its #SBATCH words, and
the module commands in the body.

grammar/sbatch.lark classifies the lines and cuts #SBATCH lines into words (through
slurmsky/parse/_sbatch_parser.py, the parser Lark generates from it); this module applies the
rest of Slurm's rules (src/sbatch/sbatch.c: _get_script_buffer; opt.c: _opt_batch_script,
get_argument) to the tokens.  Words are not options yet: the option parser reads them as
Slurm reads the argv it builds from all #SBATCH lines together.  ``#BSUB`` and ``#PBS``
lines are cut into words the same way (xlate.c); wrappers.py translates them.
"""

from __future__ import annotations

import functools
import re

from slurmsky.errors import SlurmError
from slurmsky.record import Record

_SPACE = " \t\n\v\f\r"  # C isspace() in the C locale


class Directive(Record):
    """The words of one ``#SBATCH`` line (1-based ``lineno``), unquoted, comment dropped;
    ``component`` is the heterogeneous-job component it belongs to (0 before any
    ``hetjob`` line)."""

    lineno: int
    words: tuple[str, ...]
    component: int = 0


class ModuleCommand(Record):
    """One environment-changing ``module``/``ml`` command with Lmod's aliases resolved.

    ``verb`` is one of load, unload, swap, purge, use, unuse; ``args`` are the words as
    written, unquoted (a ``$VAR`` stays as it is: only the job's shell can expand it).
    """

    lineno: int
    verb: str
    args: tuple[str, ...]


class Script(Record):
    """What sbatch reads from a batch script, and the text the job runs."""

    shebang: str  # the first line without "#!", stripped
    directives: tuple[Directive, ...]
    modules: tuple[ModuleCommand, ...]
    text: str  # the script exactly as given: the job runs it unchanged
    # "#BSUB" and "#PBS" lines sbatch would read (before the 101st line not starting "#")
    bsub: tuple[Directive, ...] = ()
    pbs: tuple[Directive, ...] = ()
    # a directive was read from a "#SLURM" line: sbatch 22.05 reads them as #SBATCH lines
    # and prints DEPRECATED_MAGIC once
    deprecated_magic: bool = False
    # heterogeneous-job components: 1 + the #SBATCH lines that name hetjob or packjob
    components: int = 1

    def words(self, component: int) -> list[str]:
        """The words of one component's #SBATCH lines, joined as Slurm joins them."""
        return [w for d in self.directives if d.component == component for w in d.words]


DEPRECATED_MAGIC = (
    "sbatch: error: Change from #SLURM to #SBATCH in your script and verify the options are"
    " valid in sbatch"
)


def wrap_script(command: str) -> str:
    """The script ``sbatch --wrap=COMMAND`` submits, byte for byte."""
    return f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{command}\n"


def parse_script(text: str, path: str | None = None) -> Script:
    """Check ``text`` as sbatch does and read its directives and module commands.

    ``path`` is the script's path as given to sbatch (None for stdin); Slurm names its
    basename in fatal messages.  Every failure is a SlurmError with Slurm's text.
    """
    _check(text)
    if not _MARKS.search(text):  # nothing for the grammar to find: no need to load it
        first_line = text.split("\n", 1)[0]
        return Script(first_line[2:].strip(_SPACE), (), (), text)
    if not _PARSER_MARKS.search(text):  # #SBATCH lines only: the parser is not needed either
        return _read_directives(text, path)
    return _read(text, path)


# What each of the grammar's terminals that yield something starts with (DIRECTIVES,
# WRAPPER_LINES, MODULE_LINES), loosely: a script with none of them is all comments and
# other lines, so parse_script needs no parser for it (a --wrap script, most often).
_MARKS = re.compile(r"#SBATCH|#SLURM|#PBS|#BSUB|^[ \t\v\f\r]*m(?:odule|l)", re.MULTILINE)
# The same for WRAPPER_LINES and MODULE_LINES alone: a script with neither has only
# directives to read, which _read_directives does without the parser.
_PARSER_MARKS = re.compile(r"#PBS|#BSUB|^[ \t\v\f\r]*m(?:odule|l)", re.MULTILINE)


def _read(text: str, path: str | None) -> Script:
    """parse_script with the grammar."""
    source = path.rsplit("/", 1)[-1] if path else "stdin"
    lark, lark_error = _parser()
    directive_scanner, module_scanner = _directive_scanner(), _module_scanner()
    try:
        tree = lark.parse(text if text.endswith("\n") else text + "\n", start="start")
    except lark_error as e:  # the grammar accepts any line: this only guards that promise
        raise _fatal(source, getattr(e, "line", "?"), "Unable to parse batch script") from None
    shebang, *runs = tree.children
    directives, modules = [], []
    wrappers: dict[str, list[Directive]] = {"#BSUB": [], "#PBS": []}
    last_read = None  # the last line sbatch scans for #BSUB/#PBS, once needed
    deprecated = False
    component = 0
    for run in runs:  # DIRECTIVES, WRAPPER_LINES or MODULE_LINES: lines of one kind
        for lineno, line in enumerate(run[:-1].split("\n"), run.line):
            if run.type == "DIRECTIVES":
                magic = "#SLURM" if line.startswith("#SLURM") else "#SBATCH"
                deprecated = deprecated or magic == "#SLURM"
                if _starts_component(line):
                    component += 1
                    continue
                words = _directive_words(directive_scanner, line, lineno, source, magic)
                if words:
                    directives.append(Directive(lineno, words, component))
            elif run.type == "WRAPPER_LINES":
                if last_read is None:
                    last_read = _wrapper_scan_end(text)
                if lineno > last_read:
                    continue
                magic = "#PBS" if line.startswith("#PBS") else "#BSUB"
                words = _directive_words(directive_scanner, line, lineno, source, magic)
                wrappers[magic].append(Directive(lineno, words))
            else:
                modules.extend(_module_commands(module_scanner, line, lineno, source))
    return Script(
        shebang[2:].strip(_SPACE),
        tuple(directives),
        tuple(modules),
        text,
        tuple(wrappers["#BSUB"]),
        tuple(wrappers["#PBS"]),
        deprecated,
        component + 1,
    )


def _read_directives(text: str, path: str | None) -> Script:
    """parse_script without the parser, for a script with no #PBS/#BSUB line and no
    module command: its directives are the lines that start "#SBATCH" (or "#SLURM") before the first
    line that is neither blank nor a comment (what the grammar's DIRECTIVES and _COMMENTS
    take after the shebang; a test holds the two equal)."""
    source = path.rsplit("/", 1)[-1] if path else "stdin"
    directive_scanner = _directive_scanner()
    lines = text.split("\n")
    directives = []
    deprecated = False
    component = 0
    for lineno, line in enumerate(lines[1:], 2):
        if line.startswith(("#SBATCH", "#SLURM")):
            magic = "#SLURM" if line.startswith("#SLURM") else "#SBATCH"
            deprecated = deprecated or magic == "#SLURM"
            if _starts_component(line):
                component += 1
                continue
            words = _directive_words(directive_scanner, line, lineno, source, magic)
            if words:
                directives.append(Directive(lineno, words, component))
        elif line.lstrip(" \t\v\f\r")[:1] not in ("", "#"):
            break  # the first command: Slurm reads no directive after it
    return Script(
        lines[0][2:].strip(_SPACE),
        tuple(directives),
        (),
        text,
        deprecated_magic=deprecated,
        components=component + 1,
    )


_WRAPPER_SCAN_LIMIT = 100


def _wrapper_scan_end(text: str) -> int:
    """The last line number xlate_batch_script looks at: it stops at the 101st line
    that does not start with "#" (blank lines count; the shebang does not)."""
    count = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.startswith("#"):
            count += 1
            if count > _WRAPPER_SCAN_LIMIT:
                return lineno - 1
    return len(text.split("\n")) + 1


def _check(text: str) -> None:
    """sbatch's checks of a script before it reads any directive, in its order."""
    if not text:
        raise SlurmError("Batch script is empty!")
    if not text.split("\0", 1)[0].strip(_SPACE):  # C sees the text up to the first NUL
        raise SlurmError("Batch script contains only whitespace!")
    if not text.startswith("#!"):
        raise SlurmError(
            "This does not look like a batch script.  The first",
            "line must start with #! followed by the path to an interpreter.",
            "For instance: #!/bin/sh",
        )
    if "\0" in text:
        raise SlurmError(
            "The Slurm controller does not allow scripts that",
            "contain a NULL character '\\0'.",
        )
    if "\r\n" in text:
        raise SlurmError(
            "Batch script contains DOS line breaks (\\r\\n)",
            "instead of expected UNIX line breaks (\\n).",
        )


@functools.cache
def _parser():
    """The parser and its error class, built once per process, and only for a script
    with a #PBS/#BSUB line or a module command.

    The parser is grammar/sbatch.lark compiled ahead of time by Lark's standalone generator
    (grammar/generate.py): no Lark import, no grammar analysis at run time."""
    from slurmsky.parse._sbatch_parser import Lark_StandAlone, LarkError

    return Lark_StandAlone(), LarkError


def _directive_scanner() -> re.Pattern:
    """The words of an #SBATCH (also #PBS, #BSUB) line."""
    return _scanner("WORD", "UNMATCHED", "_TRAILING")


def _module_scanner() -> re.Pattern:
    """The words of a module command."""
    return _scanner("MODULE_WORD", "_MODULE_REST")


@functools.cache  # compiled once per process, and only when needed
def _scanner(*names: str) -> re.Pattern:
    """One regex over the grammar's own word terminals, tried in the grammar's priority
    order as Lark's lexer tries them.  Words are most of a script's tokens: matching
    them here costs one regex match each instead of a lexer and a parser step."""
    from slurmsky.parse._sbatch_terminals import TERMINALS  # generated with the parser

    ordered = sorted(names, key=lambda name: -TERMINALS[name][1])
    return re.compile("|".join(f"(?P<{name}>{TERMINALS[name][0]})" for name in ordered))


def _tokens(scanner: re.Pattern, text: str, lineno: int, source: str):
    """(terminal name, token text, offset) for each token of ``text``."""
    pos = 0
    while pos < len(text):
        match = scanner.match(text, pos)
        if match is None:  # the terminals cover every character: this only guards that
            raise _fatal(source, lineno, f"Unable to parse [{text[pos:]}]")
        yield match.lastgroup, match.group(), pos
        pos = match.end()


def _fatal(source: str, lineno, message: str) -> SlurmError:
    """Slurm's fatal() from get_argument: ``sbatch: fatal: FILE: line N: ...``, exit 1."""
    return SlurmError(f"{{prog}}: fatal: {source}: line {lineno}: {message}", bare=True)


def _starts_component(line: str) -> bool:
    """An #SBATCH line that names hetjob or packjob anywhere (its comment too, any case)
    starts the next heterogeneous-job component; Slurm reads no option from it
    (opt.c: _opt_batch_script)."""
    lowered = line.lower()
    return "hetjob" in lowered or "packjob" in lowered


def _directive_words(
    scanner: re.Pattern, line: str, lineno: int, source: str, magic: str = "#SBATCH"
):
    """Slurm's get_argument loop over one #SBATCH (or #SLURM, #PBS, #BSUB) line: its words."""
    tail = line[len(magic) :]
    words = []
    for kind, text, pos in _tokens(scanner, tail, lineno, source):
        if kind == "_TRAILING":
            break
        raw = text.lstrip(_SPACE)
        if raw.startswith(":"):
            raise _fatal(source, lineno, f"Unexpected `:` in [{tail[pos:]}]")
        word, open_quote = _unquote(raw)
        if open_quote:
            raise _fatal(source, lineno, f"Unmatched `{open_quote}` in [{tail[pos:]}]")
        if not word:  # get_argument returns NULL for it: the rest of the line is lost
            break
        words.append(word)
    return tuple(words)


def _unquote(raw: str) -> tuple[str, str]:
    """A word's value the way get_argument copies it; also the quote left open, if any."""
    if '"' not in raw and "'" not in raw and "\\" not in raw:
        return raw, ""
    out, quote, escaped = [], "", False
    for char in raw:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
            else:
                out.append(char)
        elif char in "\"'":
            quote = char
        else:
            out.append(char)
    return "".join(out), quote


# Lmod's sub-commands that change the environment, by every name Lmod accepts for them
# (TACC/Lmod src/ml_cmd.in.lua, lmodCmdT), mapped to the one verb we record.
_MODULE_VERBS = {
    "load": "load", "add": "load",
    "unload": "unload", "rm": "unload", "del": "unload", "delete": "unload",
    "swap": "swap", "sw": "swap", "switch": "swap",
    "purge": "purge",
    "use": "use",
    "unuse": "unuse",
}  # fmt: skip
# Every other Lmod sub-command name: "ml avail" runs avail, it does not load "avail".
_OTHER_COMMANDS = frozenset(
    "avail av available category cat describe mcc disable getdefault gd help key keyword"
    " list listdefault ld r restore refresh reset overview ov s save savelist sl"
    " setdefault sd search show spider tablelist try-load tryload try-add tryadd"
    " is-loaded isloaded is-avail isAvail update whatis".split()
)
# Lmod's options, with the number of arguments each takes (lmodOptT in ml_cmd.in.lua).
_OPTIONS = {
    **dict.fromkeys(
        "-D -? -h -H -d -b -I -q -t -T -v -r --old_style --help --default --brief"
        " --dumpversion --expert --novice --force --gitversion --ignore_cache"
        " --ignore-cache --initial_load --initial-load --latest --location --loc"
        " --pin_versions --pin-versions --mt --quiet --redirect --no_redirect"
        " --no-redirect --terse --timer --trace --version --versoin --ver --v --config"
        " --miniConfig --config_json --config-json --raw --regexp --show_hidden"
        " --show-hidden".split(),
        0,
    ),
    **dict.fromkeys(
        "--localvar --spider_timeout --spider-timeout --style -s --width -w".split(), 1
    ),
}


def _module_commands(scanner: re.Pattern, line: str, lineno: int, source: str):
    """The ModuleCommands one ``module``/``ml`` line runs, as Lmod reads it."""
    line = line.lstrip(_SPACE)
    program = "module" if line.startswith("module") else "ml"
    words = [
        _unquote(text.lstrip(_SPACE))[0]
        for kind, text, _ in _tokens(scanner, line[len(program) :], lineno, source)
        if kind == "MODULE_WORD"
    ]
    command, args = (_split_module if program == "module" else _split_ml)(words)
    verb = _MODULE_VERBS.get(command)
    if verb is None:
        return []
    if verb != "load":
        return [ModuleCommand(lineno, verb, tuple(args))]
    # Lmod loads "-name" by unloading name, and does all unloads first.
    unloads = tuple(a[1:] for a in args if a.startswith("-") and a[1:2] not in ("", "-"))
    loads = tuple(a for a in args if not a.startswith("-"))
    return [
        ModuleCommand(lineno, verb, names)
        for verb, names in (("unload", unloads), ("load", loads))
        if names
    ]


def _split_module(words: list[str]) -> tuple[str, list[str]]:
    """``module [options] sub-command args...``."""
    skip = 0
    for i, word in enumerate(words):
        if skip:
            skip -= 1
        elif word.startswith("-"):
            skip = _OPTIONS.get(word, 0)
        else:
            return word, words[i + 1 :]
    return "", []


def _split_ml(words: list[str]) -> tuple[str, list[str]]:
    """Lmod's ``ml``: the first sub-command name anywhere is the command; without one,
    words are modules to load ("-name" unloads) and no words at all mean ``list``."""
    command, args, skip = "", [], 0
    for word in words:
        if skip:
            skip -= 1
        elif word in _OPTIONS:
            skip = _OPTIONS[word]
        elif word.startswith("--"):
            return "", []  # Lmod refuses an unknown option and runs nothing
        elif not command and (word in _MODULE_VERBS or word in _OTHER_COMMANDS):
            command = word
        else:
            args.append(word)
    if not command:
        command = "load" if args else "list"
    return command, args
