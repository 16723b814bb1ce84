"""``#PBS`` and ``#BSUB`` lines, translated to sbatch options as Slurm 22.05 does
(src/sbatch/xlate.c, called from opt.c after the #SBATCH lines).

sbatch reads the ``#BSUB`` lines of a script, or its ``#PBS`` lines when it has none,
unless ``--ignore-pbs`` (or ``SBATCH_IGNORE_PBS`` set to anything) is given.  Their words
go through glibc getopt_long with the wrapper's own option string; each wrapper option is
one row below saying which sbatch option it sets and how its value is rewritten, so the
value is then checked by the sbatch option's own parser (values.py) with Slurm's errors.
The result is a list of (sbatch long option, text) pairs; request.py ranks it just above
the ``#SBATCH`` lines and below ``SBATCH_*`` and the command line, as Slurm does.

Standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from slurmsky.errors import SlurmError
from slurmsky.record import Record
from slurmsky.runtime.getopt_long import UsageError, getopt_long

Pairs = list  # [(sbatch long option, text or None)]


class WrapperOption(Record):
    """One option of a wrapper's getopt string.

    ``slurm`` is the sbatch option it sets (None: read and dropped, as Slurm does);
    ``convert`` rewrites the value into that option's text (None: the value as is), or,
    for ``-l`` and friends that set several options, returns the pairs itself.
    """

    short: str
    long: str
    arg: int  # 0 none, 1 required, 2 optional (getopt_long's has_arg)
    slurm: str | None = None
    convert: Callable | None = None
    pairs: bool = False  # convert returns [(option, text)] rather than one text


# --- value conversions ----------------------------------------------------------


def _none_is_dev_null(text: str) -> str:
    return "/dev/null" if text.lower() == "none" else text


def _pbs_mail_type(text: str) -> str:
    """-m abe: the letters' mail types; n is none; no known letter is invalid."""
    lowered = text.lower()
    if "n" in lowered:
        return "NONE"
    kinds = [
        kind for letter, kind in (("b", "BEGIN"), ("e", "END"), ("a", "FAIL")) if letter in lowered
    ]
    return ",".join(kinds)  # "" is refused by --mail-type's parser, as by Slurm's


def _strtol_prefix(text: str) -> str:
    """C strtol(text, NULL, 10) as text: the leading integer, "0" when there is none."""
    match = re.match(r"[ \t\n\v\f\r]*([+-]?\d+)", text)
    return str(int(match.group(1))) if match else "0"


def _pbs_attribute(text: str) -> Pairs:
    """-W depend=... is the dependency; umask= and the rest are not used."""
    if text[:7].lower() == "depend=":
        return [("dependency", text[7:])]
    return []


def _strip_b(text: str) -> str:
    """Torque writes sizes as 10gb; Slurm drops one trailing B (either case)."""
    return text[:-1] if text[-1:] in ("b", "B") else text


def _value(text: str, i: int, sep: str) -> tuple[str, int]:
    """_get_pbs_option_value: the text from i up to sep, and the index after it."""
    end = text.find(sep, i)
    if end < 0:
        return text[i:], len(text)
    return text[i:end], end + 1


def _skip(text: str, i: int) -> int:
    """_get_next_pbs_option: past the next ","."""
    end = text.find(",", i)
    return len(text) if end < 0 else end + 1


_NODE_PART_END = re.compile(r"[+:]|$")


def _pbs_nodes(spec: str) -> Pairs:
    """nodes=N[:ppn=M][:gpus=G][+...] and host names: the node count, the tasks (ppn
    times the nodes), the gpus per node and a node list (_parse_pbs_nodes_opts)."""
    i, ppn, nodes, gpus, hosts = 0, 0, 0, 0, []
    while i < len(spec):
        part_match = _NODE_PART_END.search(spec, i)
        assert part_match is not None  # the pattern matches at the end of spec at least
        part_end = part_match.start()
        if spec.startswith("ppn=", i):
            ppn += int(_strtol_prefix(spec[i + 4 :]))
        elif spec.startswith("gpus=", i):
            gpus += int(_strtol_prefix(spec[i + 5 :]))
        elif spec[i].isdigit():
            nodes += int(_strtol_prefix(spec[i:]))
        elif spec[i].isalpha():
            hosts.append(spec[i:part_end])
        else:
            i += 1
            continue
        i = part_end + 1
    out = []
    if nodes:
        out.append(("nodes", str(nodes)))
    if ppn:
        out.append(("ntasks", str(ppn * (nodes or 1))))
    if gpus:
        out.append(("gres", f"gpu:{gpus}"))
    if hosts:
        out.append(("nodelist", ",".join(hosts)))
    return out


# -l keys: key -> (the separator its value ends at, the sbatch option it sets, how the
# value is rewritten); a key without option nor rewrite is skipped up to the next ",".
# At each position of the list the keys are tried in this order; a position that matches
# none is passed one character at a time, as _parse_pbs_resource_list does.
_RESOURCES: dict[str, tuple[str, str | None, Callable | None]] = {
    "arch=": (",", None, None),
    "cput=": (",", "time", None),
    "file=": (",", "tmp", _strip_b),
    "host=": (",", None, None),
    "mem=": (",", "mem", _strip_b),
    "mpiprocs=": (":", "ntasks-per-node", None),
    "ncpus=": (":", "mincpus", None),
    "nice=": (",", "nice", _strtol_prefix),
    "nodes=": (",", None, _pbs_nodes),
    "opsys=": (",", None, None),
    "other=": (",", None, None),
    "pcput=": (",", "time", None),
    "pmem=": (",", None, None),
    "proc=": (",", "constraint", None),
    "pvmem=": (",", None, None),
    "select=": (":", "nodes", None),
    "software=": (",", None, None),
    "vmem=": (",", None, None),
    "walltime=": (",", "time", None),
}
_CASELESS = ("accelerator=", "naccelerators=", "mpiprocs=", "ncpus=", "select=")


def _pbs_resources(text: str) -> Pairs:
    """-l key=value,...: walltime, nodes, ncpus, mem, select/mpiprocs, gpus..."""
    out, i, gpus, pro = [], 0, 0, {}
    while i < len(text):
        rest = text[i:]
        key = next(
            (
                k
                for k in _RESOURCES
                if rest.startswith(k) or (k in _CASELESS and rest.lower().startswith(k))
            ),
            None,
        )
        if rest.lower().startswith("accelerator="):
            i += len("accelerator=")
            if text[i : i + 4].lower() == "true":
                gpus = max(gpus, 1)
        elif rest.lower().startswith("naccelerators="):
            value, i = _value(text, i + len("naccelerators="), ",")
            gpus = int(_positive(value, "naccelerators"))
        elif key is None:
            i += 1
        else:
            sep, option, convert = _RESOURCES[key]
            if option is None and convert is None:
                i = _skip(text, i + len(key))
                continue
            value, i = _value(text, i + len(key), sep)
            if option is None:
                assert convert is not None  # without either, the key was skipped above
                out.extend(convert(value))
                continue
            out.append((option, convert(value) if convert else value))
            if key in ("select=", "ncpus=", "mpiprocs="):
                pro[key] = value
    # PBS Pro's select=N:ncpus=C:mpiprocs=T: C cpus per node shared by T tasks, when
    # they divide (Slurm cannot give 10 cpus to 8 tasks)
    if len(pro) == 3 and all(v.isdigit() for v in pro.values()):
        cpus, tasks = int(pro["ncpus="]), int(pro["mpiprocs="])
        if tasks and cpus > tasks:
            out.append(("cpus-per-task", str(cpus // tasks)))
    if gpus > 0:
        out.append(("gres", f"gpu:{gpus}"))
    return out


def _positive(text: str, name: str) -> str:
    """Slurm's parse_int for the counts it reads itself (exit 1)."""
    if not re.fullmatch(r"[ \t]*[+]?\d+", text) or int(text) <= 0:
        raise SlurmError(f'Invalid numeric value "{text}" for {name}.')
    return text


def _bsub_tasks(text: str) -> str:
    """-n min,max: the maximum."""
    if "," in text:
        if not text.split(",", 1)[1]:
            raise SlurmError(f"#BSUB -n format not correct given: '{text}'")
        return text.split(",", 1)[1]
    return text


def _full_path(text: str) -> str:
    return text if text.startswith("/") else os.path.join(os.getcwd(), text)


def _r(short, long, arg, slurm=None, convert=None, pairs=False):
    return WrapperOption(short, long, arg, slurm, convert, pairs)


# One row per option: tables, kept as tables.
# fmt: off
PBS_OPTIONS = (
    _r("a", "start_time", 1, "begin"),
    _r("A", "account", 1, "account"),
    _r("c", "checkpoint", 1),
    _r("C", "working_dir", 1),
    _r("e", "error", 1, "error", _none_is_dev_null),
    _r("h", "hold", 0, "hold"),
    _r("I", "interactive", 0),
    _r("j", "join", 1),  # stdout and stderr are joined unless -e is given anyway
    _r("J", "job_array", 1, "array"),  # PBS Pro
    _r("k", "keep", 1),
    _r("l", "resource_list", 1, None, _pbs_resources, pairs=True),
    _r("m", "mail_options", 1, "mail-type", _pbs_mail_type),
    _r("M", "mail_user_list", 1, "mail-user"),
    _r("N", "job_name", 1, "job-name"),
    _r("o", "out", 1, "output", _none_is_dev_null),
    _r("p", "priority", 1, "nice", _strtol_prefix),
    _r("q", "destination", 1, "partition"),
    _r("r", "rerunable", 1),
    _r("S", "script_path", 1),
    _r("t", "array", 1, "array"),  # Torque
    _r("u", "running_user", 1),
    _r("v", "variable_list", 1, "export"),  # several -v add up (see translate)
    _r("V", "all_env", 0),
    _r("W", "attributes", 1, None, _pbs_attribute, pairs=True),
    _r("z", "no_std", 0),
)

BSUB_OPTIONS = (
    _r("c", "cwd", 1, "chdir", _full_path),
    _r("e", "error_file", 1, "error", _none_is_dev_null),
    _r("J", "job_name", 1, "job-name"),
    _r("m", "hostname", 1, "nodelist", lambda t: t.replace(" ", ",")),
    _r("M", "memory_limit", 1, "mem-per-cpu", lambda t: _strtol_prefix(t) + "K"),
    _r("n", "", 1, "ntasks", _bsub_tasks),
    _r("o", "output_file", 1, "output"),
    _r("q", "queue_name", 1, "partition"),
    _r("W", "time", 1, "time", _strtol_prefix),
    _r("x", "exclusive", 0, "exclusive"),
)

WRAPPERS = {"#BSUB": BSUB_OPTIONS, "#PBS": PBS_OPTIONS}
# fmt: on


def translate(magic: str, words: list[str]) -> Pairs:
    """The sbatch options the words of every ``#PBS`` (or ``#BSUB``) line set, in order.

    Errors are Slurm's: getopt's own line then ``Unrecognized command line parameter ?``,
    ``Invalid argument: WORD`` for a word that is not an option; all exit 1.
    """
    table = WRAPPERS[magic]
    by_short = {o.short: o for o in table}
    shortopts = "".join(o.short + ":" * o.arg for o in table)
    longopts = {o.long: (o.short, 2 if o.long == "join" else o.arg) for o in table if o.long}
    if magic == "#BSUB":  # Slurm reads "-cwd" as -c only where an option is expected
        words = ["-c" if w == "-cwd" and i % 2 == 0 else w for i, w in enumerate(words)]
    try:
        opts, rest = getopt_long("sbatch", list(words), shortopts, longopts, permute=False)
    except UsageError as exc:
        raise SlurmError(
            exc.lines[0], "{prog}: error: Unrecognized command line parameter ?", bare=True
        ) from None
    if rest:
        raise SlurmError(f"Invalid argument: {rest[0]}")
    out: Pairs = []
    export = None
    for key, value in opts:
        row = by_short[key]
        if row.pairs:
            out.extend(row.convert(value))
        elif row.slurm == "export":  # sbatch appends each -v to the list
            export = value if export is None else f"{export},{value}"
            out.append(("export", export))
        elif row.slurm is not None:
            out.append(
                (row.slurm, row.convert(value) if row.convert and value is not None else value)
            )
    return out
