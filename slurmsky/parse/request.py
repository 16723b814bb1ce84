"""JobRequest: what a user asked for, from argv, SBATCH_* variables, #SBATCH lines and
the #PBS (or #BSUB) lines Slurm translates.

Precedence is Slurm's: command line > input environment > `#PBS`/`#BSUB` > `#SBATCH`.
The script text is read here, once, at submission; everything is validated before anything
is stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from slurmsky.errors import SlurmError
from slurmsky.parse.argv import (
    HET_SEPARATOR,
    OptionParser,
    Parsed,
    combined,
    het_components,
    ignored_warnings,
)
from slurmsky.parse.arrays import ArraySpec
from slurmsky.parse.dependency import Dependency
from slurmsky.parse.export import Export
from slurmsky.parse.gres import GpuSpec
from slurmsky.parse.options import IGNORED, PER_COMPONENT, input_env
from slurmsky.parse.signals import SignalSpec
from slurmsky.record import Factory, Record
from slurmsky.runtime import hostlist


class JobRequest(Record):
    """A validated request. Option fields are None when not given (Slurm's defaults apply
    where the request is used); ``ignored`` holds the accepted-but-ignored options."""

    _norepr = ("submit_env",)

    command: str
    script: str
    script_path: str | None
    script_args: tuple[str, ...]
    job_name: str
    submit_dir: str
    workdir: str
    submit_env: dict  # not in repr (_norepr): it holds the user's credentials
    modules: tuple = ()
    ignored: dict = Factory(dict)
    warnings: tuple[str, ...] = ()
    set_options: dict = Factory(dict)  # -v: {long name: value text} of the options set
    # no -J and the script from stdin: Slurm keeps no name; the commands show `sbatch`, the
    # job itself sees an empty SLURM_JOB_NAME and `(null)` for %x
    name_unset: bool = False
    # options (keys of the option table)
    chdir: str | None = None
    wrap: str | None = None
    output: str | None = None
    error: str | None = None
    input: str | None = None
    open_mode: str | None = None
    export: Export | None = None
    comment: str | None = None
    constraint: str | None = None  # -C: node features
    account: str | None = None
    container_image: str | None = None
    nodes: tuple[int, int] | None = None
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    mincpus: int | None = None
    mem: int | None = None
    mem_per_cpu: int | None = None
    mem_per_gpu: int | None = None
    gres: tuple = ()
    gpus: GpuSpec | None = None
    gpus_per_node: GpuSpec | None = None
    gpus_per_task: GpuSpec | None = None
    cpus_per_gpu: int | None = None
    tmp: int | None = None
    partition: str | None = None
    time: int | None = None
    nodelist: str | None = None  # -w, as given (a hostlist)
    exclude: str | None = None  # -x
    contiguous: bool = False
    time_min: int | None = None  # minutes
    clusters: str | None = None
    ignore_pbs: bool = False
    array: ArraySpec | None = None
    dependency: Dependency | None = None
    kill_on_invalid_dep: bool | None = None
    begin: float | None = None
    deadline: float | None = None  # --deadline, epoch seconds
    bbf: str | None = None  # sbatch --bbf: the file spliced into the script (_spliced)
    hold: bool = False
    oversubscribe: bool = False  # -s
    overcommit: bool = False  # -O
    nice: int = 0  # --nice: taken off the job's priority
    immediate: int = 0  # srun/salloc --immediate, seconds (0: none)
    requeue: bool | None = None
    signal: SignalSpec | None = None
    kill_on_bad_exit: str | None = None
    test_only: bool = False
    wait: bool | str = False  # sbatch -W; srun -W N: the seconds, as given
    parsable: bool = False
    quiet: bool = False
    verbose: int = 0
    help: bool = False
    usage: bool = False
    version: bool = False
    label: bool = False
    unbuffered: bool = False
    multi_prog: bool = False
    mpi: str | None = None
    exclusive: str | None = None
    overlap: bool = False
    exact: bool = False
    jobid: str | None = None
    relative: int | None = None
    preserve_env: bool = False
    task_prolog: str | None = None
    debugger_test: bool = False
    disable_status: bool = False  # srun -X: Ctrl-C goes to the tasks
    quit_on_interrupt: bool = False  # srun: one Ctrl-C ends the step
    task_epilog: str | None = None
    slurmd_debug: str | None = None  # srun: its step's log level (runtime/srun.py reads it)
    no_shell: bool = False
    # a heterogeneous job: every component's own request, this one's fields being
    # component 0's (empty for any other job)
    components: tuple = ()

    @property
    def het_size(self) -> int:
        return len(self.components) or 1


_MEMORY_KEYS = ("mem", "mem_per_cpu", "mem_per_gpu")


def _merge(*sources: Parsed, env: Parsed | None = None) -> tuple[dict, dict, list]:
    """Later sources win.  The three memory options exclude each other (slurm_opt.c:
    _validate_memory_options): two of them given anywhere but the environment is fatal;
    one given there drops the others, even from the environment; else two in the
    environment is fatal."""
    fields: dict = {}
    ignored: dict = {}
    given = []
    for src in sources:
        ignored_keys = {o.key for o, *_ in src.given if o.fate == IGNORED}
        for key, value in src.values.items():
            target = ignored if key in ignored_keys else fields
            target[key] = combined(key, target.get(key), value)
        given.extend(src.given)
    given_mem = {k for src in sources if src is not env for k in _MEMORY_KEYS if k in src.values}
    env_mem = {k for k in _MEMORY_KEYS if env is not None and k in env.values}
    if len(given_mem) > 1 or (not given_mem and len(env_mem) > 1):
        raise SlurmError(
            "{prog}: fatal: --mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.",
            bare=True,
        )
    for key in _MEMORY_KEYS:
        if given_mem and key not in given_mem:
            fields.pop(key, None)
    if "exclusive" in fields and "oversubscribe" in fields:
        # both set the job's sharing (job_desc->shared): the last one given wins, as on the peer
        sharing = ("exclusive", "oversubscribe")
        last = next(o.key for o, *_ in reversed(given) if o.key in sharing)
        fields.pop(sharing[last == "exclusive"])
    return fields, ignored, given


def parse_command_line(command: str, argv: list[str]) -> Parsed:
    """Only the command line: enough for --help/--version before any script is read."""
    return OptionParser(command).parse(list(argv))


def _read_script(path: str | None, cwd: str, read_stdin: Callable[[], bytes]) -> str:
    """The script's text, undecodable bytes kept as surrogates; emptiness, NULs and line
    endings are script.py's checks, which come first (they are sbatch's)."""
    if path is None:
        data = read_stdin()
    else:
        try:
            with open(os.path.join(cwd, path), "rb") as fh:
                data = fh.read()
        except (OSError, ValueError):  # ValueError: a NUL in the path
            raise SlurmError(f"Unable to open file {path}") from None
    return data.decode("utf-8", "surrogateescape")


def build_batch_request(
    cli: Parsed,
    environ: dict,
    cwd: str,
    read_stdin: Callable[[], bytes],
    command: str = "sbatch",
) -> JobRequest:
    """sbatch's request: the script (file, stdin or --wrap), its directives, env and argv.

    A heterogeneous job (``:`` on the command line, ``#SBATCH hetjob`` lines in the script)
    is read as sbatch reads it, one pass per component (sbatch.c: the het_job_inx loop):
    component N takes the script's N-th group of #SBATCH lines, the input variables, and
    the command line's N-th group, its last group again for any component beyond it."""
    from slurmsky.parse.script import DEPRECATED_MAGIC, parse_script, wrap_script

    parser = OptionParser(command)
    clis = het_components(parser, cli)
    last = clis[-1]
    wrap = next((c.values["wrap"] for c in reversed(clis) if "wrap" in c.values), None)
    default_name: str | None
    if wrap is not None:
        if last.rest:
            raise SlurmError("Script arguments not permitted with --wrap option")
        text, path, args, default_name = wrap_script(wrap), None, (), "wrap"
    else:
        path = last.rest[0] if last.rest else None
        args = tuple(last.rest[1:])
        text = _read_script(path, cwd, read_stdin)
        default_name = os.path.basename(path) if path else None
    script = parse_script(text, path)
    # sbatch prints its #SLURM line as it reads the script, before any option's message
    notes = (DEPRECATED_MAGIC,) if script.deprecated_magic else ()
    try:
        env = parser.parse_env(environ, input_env(command))
        merged = []
        for i in range(max(len(clis), script.components)):
            # Slurm joins the words of a component's #SBATCH lines into one argument list.
            directives = parser.parse(script.words(i), directive=True)
            line = clis[min(i, len(clis) - 1)]
            wrapper = _wrapper_options(parser, script, directives, env, line)
            merged.append(_merge(directives, wrapper, env, line, env=env))
        _carry(parser, clis, merged)
        reqs = [
            _finish(
                command,
                fields,
                ignored,
                given,
                environ,
                cwd,
                script=text,
                script_path=path,
                script_args=args,
                default_name=default_name,
                modules=script.modules,
            )
            for fields, ignored, given in merged
        ]
    except SlurmError as e:
        e.notes = notes + e.notes
        raise
    req = reqs[0] if len(reqs) == 1 else _heterogeneous(reqs)
    return req.replace(warnings=notes + req.warnings) if notes else req


def _carry(parser: OptionParser, clis: list[Parsed], merged: list) -> None:
    """What each component takes from another, as sbatch's passes leave it: an option not
    in PER_COMPONENT that a component does not set is the component before it's, and
    component 0's is the command line's (all its groups, the last setting winning), not
    the script's later components' (the peer: `sbatch -n1 : -J b : -n1` names all three b;
    a script's `-J b` in component 1 names 1 and 2, not 0). A component that sets one of
    the exclusive memory options takes none of them."""
    if len(merged) < 2:
        return
    per_component = {o.key for o in parser.options if o.long in PER_COMPONENT}

    def carried(values: dict) -> dict:
        return {k: v for k, v in values.items() if k not in per_component}

    previous = carried({k: v for c in clis for k, v in c.values.items()})
    for fields, _ignored, _given in merged:
        own_mem = any(k in fields for k in _MEMORY_KEYS)
        for key, value in previous.items():
            if key not in fields and not (own_mem and key in _MEMORY_KEYS):
                fields[key] = value
        previous = carried(fields)


def _heterogeneous(reqs: list[JobRequest]) -> JobRequest:
    """Component 0's request holding all components; what Slurm refuses in one first."""
    if any(r.array is not None for r in reqs):
        raise SlurmError("Batch job submission failed: Invalid job array specification")
    warnings = tuple(dict.fromkeys(w for r in reqs for w in r.warnings))
    return reqs[0].replace(components=tuple(reqs), warnings=warnings)


def _wrapper_options(parser: OptionParser, script, *sources: Parsed) -> Parsed:
    """The options of the script's #BSUB lines, or of its #PBS lines when it has none
    (Slurm reads one kind), unless --ignore-pbs or SBATCH_IGNORE_PBS says not to.  They
    rank above #SBATCH lines and below SBATCH_* variables and the command line."""
    if any(src.values.get("ignore_pbs") for src in sources):
        return Parsed()
    magic, lines = ("#BSUB", script.bsub) if script.bsub else ("#PBS", script.pbs)
    if not lines:
        return Parsed()
    from slurmsky.parse.wrappers import translate

    pairs = translate(magic, [w for d in lines for w in d.words])
    return parser.parse_pairs(pairs, magic)


def build_step_request(command: str, cli: Parsed, environ: dict, cwd: str) -> JobRequest:
    """srun/salloc outside a job: the command line is the program to run."""
    parser = OptionParser(command)
    if cli.rest[:1] == [HET_SEPARATOR]:
        kind = "allocations" if command == "salloc" else "job steps"
        raise SlurmError(f"Heterogeneous {kind} are not supported by slurmsky")
    env = parser.parse_env(environ, input_env(command))
    fields, ignored, given = _merge(env, cli, env=env)
    if not cli.rest and command == "srun":
        raise SlurmError("{prog}: fatal: No command given to execute.", exit_code=1, bare=True)
    default_name = os.path.basename(cli.rest[0]) if cli.rest else "interactive"
    if command == "salloc":  # with --no-shell the command is not run: Slurm says so
        default_name = "no-shell" if fields.get("no_shell") else "interactive"
    return _finish(
        command,
        fields,
        ignored,
        given,
        environ,
        cwd,
        script="",
        script_path=None,
        script_args=tuple(cli.rest),
        default_name=default_name,
        modules=(),
    )


def _spliced(script: str, path: str) -> str:
    """sbatch --bbf: the file's text in the script after its first line (`#!...`; at the
    top of one that does not start with `#`), ending with a newline, as sbatch splices it."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError:
        raise SlurmError("Invalid --bbf specification") from None
    if not text:
        return script
    text += "" if text.endswith("\n") else "\n"
    if not script.startswith("#"):
        return text + script
    first, newline, rest = script.partition("\n")
    return first + newline + text + rest


def _named_nodes(command: str, fields: dict, warnings: list) -> tuple[list[str], str | None]:
    """-w: the job has at least the list's nodes (slurm_opt.c). A smaller -N maximum is
    sbatch's and salloc's error (returned); srun cuts the list to it, saying so. -> the
    names, in order (the list as set, cut, is fields' "nodelist"), and that error; a name
    no node has is the backend's to refuse."""
    if fields.get("nodelist") is None:
        return [], None
    try:
        names = list(dict.fromkeys(hostlist.expand(fields["nodelist"])))
    except ValueError:
        raise SlurmError("Batch job submission failed: Invalid node name specified") from None
    low, high = fields.get("nodes") or (1, 0)
    error = None
    if high and len(names) > high and command != "srun":
        error = f"invalid number of nodes (-N {len(names)}-{high})"
    elif high and len(names) > high:
        warnings.append(
            f"srun: error: Required nodelist includes more nodes than permitted by max-node "
            f"count ({len(names)} > {high}). Eliminating nodes from the nodelist."
        )
        names = names[:high]
        fields["nodelist"] = hostlist.compress(names)
    fields["nodes"] = (max(low, len(names)), high)
    return names, error


def _finish(
    command,
    fields,
    ignored,
    given,
    environ,
    cwd,
    *,
    script,
    script_path,
    script_args,
    default_name,
    modules,
) -> JobRequest:
    chdir = fields.get("chdir")
    # as Slurm keeps it: made absolute, not normalised (-D . is WorkDir=<cwd>/.)
    workdir = os.path.join(cwd, chdir) if chdir else cwd
    for key in ("ntasks", "ntasks_per_node", "cpus_per_task"):
        if fields.get(key) is not None and fields[key] < 1:
            raise SlurmError(f"Invalid --{key.replace('_', '-')} specification", exit_code=255)
    if fields.get("gpus_per_task") is not None and fields.get("ntasks") is None:
        if fields.get("nodes"):  # a task per node (Slurm sets the count: SLURM_NTASKS)
            fields["ntasks"] = fields["nodes"][0] * (fields.get("ntasks_per_node") or 1)
        elif fields.get("gpus") is None:
            raise SlurmError(
                "Failed to validate job spec. --gpus-per-task used without either "
                "--gpus or -n/--ntasks is not allowed.",
                "Invalid generic resource (gres) specification",
            )
    if fields.get("cpus_per_gpu") is not None and fields.get("cpus_per_task") is not None:
        raise SlurmError(
            "--cpus-per-gpu is mutually exclusive with --cpus-per-task",
            "Invalid generic resource (gres) specification",
        )
    for key in ("output", "error", "input"):  # "none", any case: /dev/null (opt.c)
        if str(fields.get(key, "")).lower() == "none":
            fields[key] = "/dev/null"
    warnings = ignored_warnings(command, Parsed(given=given))
    named, too_many = _named_nodes(command, fields, warnings)
    nodes, ntasks = fields.get("nodes"), fields.get("ntasks")
    cant_run = []
    if command != "srun" and nodes and ntasks is not None and ntasks < nodes[0]:
        cant_run = [
            f"{command}: Warning: can't run {ntasks} processes on {nodes[0]} nodes, "
            f"setting nnodes to {ntasks}"
        ]
        warnings.insert(0, cant_run[0])
        fields["nodes"] = (ntasks, min(nodes[1], ntasks) if nodes[1] else ntasks)
    if too_many:  # sbatch's error, then its warning: it goes on checking before it exits
        raise SlurmError("{prog}: error: " + too_many, *cant_run, bare=True)
    if named and fields["nodes"][1] and len(named) > fields["nodes"][1]:
        fields["nodelist"] = hostlist.compress(named[: fields["nodes"][1]])
    from slurmsky.parse.shown import set_options

    shown = set_options(given, fields, ignored, cwd)
    job_name = fields.pop("job_name", None) or default_name
    if fields.get("bbf") is not None:
        script = _spliced(script, os.path.join(cwd, fields["bbf"]))
    return JobRequest(
        command=command,
        script=script,
        script_path=script_path,
        script_args=script_args,
        job_name=job_name or command,
        name_unset=not job_name,
        submit_dir=cwd,
        workdir=workdir,
        submit_env=dict(environ),
        modules=modules,
        ignored=ignored,
        warnings=tuple(warnings),
        set_options=shown,
        **fields,
    )
