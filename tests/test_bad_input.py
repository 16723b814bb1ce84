"""Bad input never raises a traceback and never stores a runnable job: a Slurm-style message
and a non-zero exit instead.

Generated argv, scripts and directive lines run in-process (fast, many examples), for every
command with an in-process entry point. A corpus of bad inputs runs through the real commands
as subprocesses (the `cluster` fixture): exact message, exit code, and the state afterwards.
"""

from __future__ import annotations

import contextlib
import io
import sys

import pytest
from captures import read_capture, read_expected
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmsky.commands import sacct, scancel, scontrol, sinfo, squeue
from slurmsky.errors import SlurmError
from slurmsky.parse.options import OPTIONS, options_for
from slurmsky.parse.request import build_batch_request, build_step_request, parse_command_line
from slurmsky.runtime.getopt_long import UsageError


def _names(command: str) -> list[str]:
    rows = options_for(command)
    return sorted({f"--{o.long}" for o in rows} | {f"-{o.short}" for o in rows if o.short})


# Values that have broken parsers: ids beyond SQLite's integers, reversed or open ranges.
TRICKY = [
    "99999999999999999999999",
    "1_99999999999999999999999",
    "1_[0-99999999999]",
    "1_[5-3]",
    "n[5-1]",
    "n[1-",
    "n[01-3]",
    "-1",
    "0",
    "1_",
    "1.",
    "%",
    "%999",
    "all",
]


def _words(names: list[str]):
    """An argv word: an option name, free text or a tricky value, or an option with a
    value attached."""
    value = st.one_of(st.text(max_size=8), st.sampled_from(TRICKY))
    return st.one_of(
        st.sampled_from(names),
        value,
        st.sampled_from(names).flatmap(lambda n: value.map(lambda v: f"{n}={v}")),
    )


def _refused_cleanly(exc: Exception) -> None:
    assert exc.lines and all(isinstance(line, str) for line in exc.lines)
    assert exc.exit_code in (1, 255)


def _build(argv, script: bytes):
    try:
        cli = parse_command_line("sbatch", argv)
        return build_batch_request(cli, {}, "/nonexistent-dir", lambda: script)
    except SlurmError as exc:
        _refused_cleanly(exc)
        return None


# --- in-process: sbatch's argv, scripts and directive lines -----------------------------


@settings(max_examples=400, deadline=None)
@given(st.lists(_words(_names("sbatch")), max_size=6))
def test_generated_argv_is_accepted_or_cleanly_refused(argv):
    _build(argv, b"#!/bin/sh\ntrue\n")


@settings(max_examples=400, deadline=None)
@given(st.lists(_words(_names("sbatch")), max_size=6))
def test_generated_directives_are_accepted_or_cleanly_refused(words):
    line = " ".join(words).replace("\n", " ")
    _build([], f"#!/bin/sh\n#SBATCH {line}\ntrue\n".encode("utf-8", "surrogatepass"))


# Directive text rich in what the word scanner treats specially, and in any other character.
LINE = st.text(
    st.one_of(
        st.sampled_from(list("\"'\\ \t#=:,-%$`;()\v\f\r")),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\0"),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["", "--comment=", "-J ", "--export=", "--array=", "--output "]), LINE)
def test_directive_quotes_backslashes_unicode(prefix, text):
    _build([], f"#!/bin/sh\n#SBATCH {prefix}{text}\ntrue\n".encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_a_script(data):
    _build([], data)


# --- in-process: srun/salloc outside a job, and the read-side commands -------------------


@pytest.mark.parametrize("command", ["srun", "salloc"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_step_argv_is_accepted_or_cleanly_refused(command, data):
    argv = data.draw(st.lists(_words(_names(command)), max_size=6))
    try:
        build_step_request(command, parse_command_line(command, argv), {}, "/nonexistent-dir")
    except SlurmError as exc:
        _refused_cleanly(exc)


class _Iterating(Exception):
    """A generated `-i N` made a command loop; the first sleep ends the example."""


def _sleep(_seconds):
    raise _Iterating


MODULES = {
    "squeue": squeue,
    "scancel": scancel,
    "sacct": sacct,
    "scontrol": scontrol,
    "sinfo": sinfo,
}
SCONTROL_WORDS = [
    "show",
    "job",
    "hostnames",
    "hostlist",
    "config",
    "node",
    "partition",
    "hold",
    "uhold",
    "release",
    "requeue",
    "update",
    "JobId=",
    "TimeLimit=",
    "ping",
    "version",
    "step",
    "12",
    "12_3",
    "0",
    "-1",
    "abc",
]


def _command_words(module) -> list[str]:
    shorts = [f"-{c}" for c in module.OPTIONS.shortopts.replace(":", "")]
    return shorts + [f"--{name}" for name in module.OPTIONS.longopts]


@pytest.fixture
def private_state(tmp_path, monkeypatch):
    """Each generated command line reads an empty state of its own, never the caller's."""
    config = tmp_path / "slurmsky.yaml"
    config.write_text("kill_wait: 1\n")
    for name in ("SLURMSKY_BACKEND", "SQUEUE_FORMAT", "SQUEUE_FORMAT2", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("SLURMSKY_CONFIG", str(config))
    monkeypatch.setattr("time.sleep", _sleep)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.mark.parametrize("command", sorted(MODULES))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_command_argv_is_accepted_or_cleanly_refused(private_state, command, data):
    """Whatever the argv, the command prints, or refuses with its message lines: no other
    exception (a traceback in the real command)."""
    module = MODULES[command]
    extra = SCONTROL_WORDS if command == "scontrol" else []
    argv = data.draw(st.lists(_words(_command_words(module) + extra), max_size=5))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            module.body(argv)
        except (SlurmError, UsageError) as exc:
            _refused_cleanly(exc)
        except _Iterating:
            pass


# --- the corpus: real commands as subprocesses -------------------------------------------

# One bad value for each value type of the option table (its `parse` names): the option,
# the value, and real Slurm's answer (stderr, exit code).
BAD_VALUES = {
    "time": ("sbatch", "--time=xx", "sbatch: error: Invalid --time specification\n", 255),
    "mem": ("sbatch", "--mem=abc", "sbatch: error: Invalid --mem specification\n", 255),
    "int": (
        "sbatch",
        "--ntasks=zero",
        'sbatch: error: Invalid numeric value "zero" for --ntasks.\n',
        1,
    ),
    "nodes": ("sbatch", "--nodes=abc", 'sbatch: error: "abc" is not a valid node count\n', 255),
    "mail_type": (
        "sbatch",
        "--mail-type=BOGUS",
        "sbatch: error: Invalid --mail-type specification\n",
        255,
    ),
    "bool_yes_no": (
        "sbatch",
        "--kill-on-invalid-dep=maybe",
        "sbatch: error: Invalid --kill-on-invalid-dep specification\n",
        255,
    ),
    "open_mode": (
        "sbatch",
        "--open-mode=sideways",
        "sbatch: error: Invalid --open-mode argument: sideways. Ignored\n",
        255,
    ),
    "gres": (
        "sbatch",
        "--gres=gpu:a:b:c",
        "sbatch: error: Batch job submission failed: "
        "Invalid generic resource (gres) specification\n",
        1,
    ),
    "gpus": (
        "sbatch",
        "--gpus=a:b:c",
        "sbatch: error: Batch job submission failed: "
        "Invalid generic resource (gres) specification\n",
        1,
    ),
    "gres_flags": (
        "sbatch",
        "--gres-flags=allow-task-sharing",  # 22.05 knows disable- and enforce-binding only
        "sbatch: error: Invalid --gres-flags specification\n",
        255,
    ),
    "array": (
        "sbatch",
        "--array=a-b",
        "sbatch: error: Batch job submission failed: Invalid job array specification\n",
        1,
    ),
    "dependency": (
        "sbatch",
        "--dependency=afterfoo:1",
        "sbatch: error: Batch job submission failed: Job dependency problem\n",
        1,
    ),
    "signal": (
        "sbatch",
        "--signal=NOPE@10",
        "sbatch: error: Invalid --signal specification\n",
        255,
    ),
    "step_signal": (
        "srun",
        "--signal=B:USR1",
        "srun: error: Invalid --signal specification\n",
        255,
    ),
    "begin": (
        "sbatch",
        "--begin=notatime",
        "Invalid time specification (pos=0): notatime\n"
        "sbatch: error: Invalid --begin specification\n",
        255,
    ),
    "deadline": (
        "sbatch",
        "--deadline=garbage",
        "Invalid time specification (pos=0): garbage\n"
        "sbatch: error: Invalid --deadline specification\n",
        255,
    ),
    "nice": (
        "sbatch",
        "--nice=2147483646",
        "sbatch: error: Invalid --nice value, out of range (+/- 2147483645)\n",
        255,
    ),
    "immediate": (
        "srun",
        "--immediate=x",
        'srun: error: Invalid numeric value "x" for immediate.\n',
        1,
    ),
}
# Value types Slurm refuses no value of; where their text is shown to be data, not shell.
ACCEPTS_ANY = {"export": "tests/test_injection.py"}


def test_every_value_type_has_a_bad_sample():
    """A value type added to the option table must get a row in BAD_VALUES (or a reason)."""
    types = {o.parse for o in OPTIONS if o.parse}
    assert set(BAD_VALUES) | set(ACCEPTS_ANY) == types
    assert not set(BAD_VALUES) & set(ACCEPTS_ANY)


def test_bad_values_match_real_slurm():
    """The samples' answers are real Slurm's, where a capture holds them."""
    for kind, capture in (
        ("time", "sbatch-bad-time.txt"),
        ("nodes", "sbatch-bad-directive-nodes.txt"),
        ("dependency", "dependency-bad-syntax.txt"),
        ("deadline", "deadline-garbage-sbatch.txt"),
        ("immediate", "immediate-bad-srun.txt"),
    ):
        real = read_capture(capture)
        assert BAD_VALUES[kind][2:] == (real.stderr, real.exit)
    for kind, case in (
        ("mem", "sbatch-bad-mem"),
        ("begin", "begin-bad"),
        ("array", "array-bad-spec"),
    ):
        real = read_expected(case)
        assert any((r.stderr, r.exit) == BAD_VALUES[kind][2:] for r in real), kind


SCRIPT = b"#!/bin/sh\ntrue\n"
FILES = {
    "job.sh": SCRIPT,
    "nul.sh": b"#!/bin/sh\n#SBATCH -J x\x00y\ntrue\n",
    "binary.sh": b"\x7fELF" + bytes(range(256)) * 4,
    "crlf.sh": b"#!/bin/sh\r\n#SBATCH -t 5\r\ntrue\r\n",
    "only-spaces.sh": b"   \n\n  \n",
    "empty.sh": b"",
    "unclosed.sh": b'#!/bin/sh\n#SBATCH --comment="abc\ntrue\n',
    "unclosed-single.sh": b"#!/bin/sh\n#SBATCH -J 'abc\ntrue\n",
    "colon.sh": b"#!/bin/sh\n#SBATCH :\ntrue\n",
    "word.sh": b"#!/bin/sh\n#SBATCH job\ntrue\n",
    "long-header.sh": b"#!/bin/sh\n"
    + b"#SBATCH --comment=x\n" * 10000
    + b"#SBATCH --time=bad\ntrue\n",
    # over slurmctld's default max_script_size (4 MiB), by one byte
    "huge.sh": SCRIPT + b"#" * (4 * 1024 * 1024 - len(SCRIPT)) + b"\n",
}
NOT_A_SCRIPT = (
    "sbatch: error: This does not look like a batch script.  The first\n"
    "sbatch: error: line must start with #! followed by the path to an interpreter.\n"
    "sbatch: error: For instance: #!/bin/sh\n"
)
BAD_RANGE = "_parse_single_range: Invalid range: `5-1'"
CORPUS = {
    # value types
    **{
        f"value-{kind}": (cmd, [opt, "job.sh"] if cmd == "sbatch" else [opt, "true"], err, rc)
        for kind, (cmd, opt, err, rc) in BAD_VALUES.items()
    },
    # options
    "unknown-short": (
        "sbatch",
        ["-y", "job.sh"],
        "sbatch: invalid option -- 'y'\nTry \"sbatch --help\" for more information\n",
        255,
    ),
    "missing-argument": (
        "sbatch",
        ["--job-name"],
        "sbatch: option '--job-name' requires an "
        'argument\nTry "sbatch --help" for more information\n',
        255,
    ),
    "ambiguous": ("sbatch", ["--no", "job.sh"], None, 255),
    "refused-option": (
        "sbatch",
        ["--uid=0", "job.sh"],
        "sbatch: error: --uid is not supported "
        "by slurmsky: jobs always run as the submitting user\n",
        255,
    ),
    "array-over-max": (
        "sbatch",
        ["--array=0-1001", "job.sh"],
        "sbatch: error: Batch job submission failed: Invalid job array specification\n",
        1,
    ),
    "array-zero-step": (
        "sbatch",
        ["--array=1-5:0", "job.sh"],
        "sbatch: error: Batch job submission failed: Invalid job array specification\n",
        1,
    ),
    "self-dependency": (
        "sbatch",
        ["--dependency=afterok:1", "job.sh"],
        "sbatch: error: Batch job submission failed: Job dependency problem\n",
        1,
    ),
    "zero-nodes": (
        "sbatch",
        ["--nodes=0", "job.sh"],
        "sbatch: error: Batch job submission failed: Node count specification invalid\n",
        1,
    ),
    "name-too-long": (
        "sbatch",
        ["-J", "x" * 1025, "job.sh"],
        "sbatch: error: Batch job "
        "submission failed: Pathname of a file, directory or other parameter "
        "too long\n",
        1,
    ),
    # files
    "directory": ("sbatch", ["."], "sbatch: error: Unable to open file .\n", 1),
    "under-a-file": ("sbatch", ["job.sh/x"], "sbatch: error: Unable to open file job.sh/x\n", 1),
    "empty-file": ("sbatch", ["empty.sh"], "sbatch: error: Batch script is empty!\n", 1),
    "only-spaces": (
        "sbatch",
        ["only-spaces.sh"],
        "sbatch: error: Batch script contains only whitespace!\n",
        1,
    ),
    "nul": (
        "sbatch",
        ["nul.sh"],
        "sbatch: error: The Slurm controller does not allow scripts "
        "that\nsbatch: error: contain a NULL character '\\0'.\n",
        1,
    ),
    "binary": ("sbatch", ["binary.sh"], NOT_A_SCRIPT, 1),
    "crlf": (
        "sbatch",
        ["crlf.sh"],
        "sbatch: error: Batch script contains DOS line breaks "
        "(\\r\\n)\nsbatch: error: instead of expected UNIX line breaks (\\n).\n",
        1,
    ),
    "huge": (
        "sbatch",
        ["huge.sh"],
        "sbatch: error: Batch job submission failed: Pathname of "
        "a file, directory or other parameter too long\n",
        1,
    ),
    # directives
    "unclosed-quote": (
        "sbatch",
        ["unclosed.sh"],
        'sbatch: fatal: unclosed.sh: line 2: Unmatched `"` in [ --comment="abc]\n',
        1,
    ),
    "unclosed-single-quote": (
        "sbatch",
        ["unclosed-single.sh"],
        "sbatch: fatal: unclosed-single.sh: line 2: Unmatched `'` in [ 'abc]\n",
        1,
    ),
    "colon": (
        "sbatch",
        ["colon.sh"],
        "sbatch: fatal: colon.sh: line 2: Unexpected `:` in [ :]\n",
        1,
    ),
    "non-option-word": (
        "sbatch",
        ["word.sh"],
        "sbatch: error: Invalid directive found in batch script: job\n",
        255,
    ),
    "10000-directives": (
        "sbatch",
        ["long-header.sh"],
        "sbatch: error: Invalid --time specification\n",
        255,
    ),
    # the other commands
    "squeue-state": ("squeue", ["-t", "BOGUS"], read_capture("squeue-t-bad.txt").stderr, 1),
    "squeue-option": ("squeue", ["--bogus"], read_capture("squeue-bogus-option.txt").stderr, 1),
    "squeue-job-id": ("squeue", ["-j", "abc"], "squeue: error: Invalid job id: abc\n", 1),
    "scancel-job-id": ("scancel", ["abc"], read_capture("scancel-garbage.txt").stderr, 1),
    "scancel-signal": (
        "scancel",
        ["-s", "NOPE", "1"],
        "scancel: error: Invalid job signal: NOPE\n",
        1,
    ),
    "sacct-start": ("sacct", ["-S", "junk"], "Invalid time specification (pos=0): junk\n", 1),
    "sacct-field": (
        "sacct",
        ["-o", "Bogus"],
        'sacct: error: Invalid field requested: "Bogus"\n',
        1,
    ),
    "scontrol-job-id": (
        "scontrol",
        ["show", "job", "abc"],
        read_capture("scontrol-show-job-garbage.txt").stderr,
        1,
    ),
    "scontrol-keyword": ("scontrol", ["frobnicate"], "invalid keyword: frobnicate\n", 1),
    "sinfo-option": (
        "sinfo",
        ["--bogus"],
        "sinfo: unrecognized option '--bogus'\nTry \"sinfo --help\" for more information\n",
        1,
    ),
    "srun-option": (
        "srun",
        ["--bogus", "true"],
        "srun: unrecognized option '--bogus'\nTry \"srun --help\" for more information\n",
        255,
    ),
    # from the real Slurm peer: the hostlist parser's own error() line, then the command's
    "squeue-nodelist": (
        "squeue",
        ["-w", "n[5-1]"],
        f"squeue: error: {BAD_RANGE}\nsqueue: error: 'n[5-1]' invalid entry for --nodelist\n",
        1,
    ),
    "squeue-huge-id": (
        "squeue",
        ["-j", "99999999999999999999999"],
        read_capture("squeue-j-unknown.txt").stderr,
        1,
    ),
    "sinfo-nodes": (
        "sinfo",
        ["-n", "n[5-1]"],
        f"sinfo: error: {BAD_RANGE}\nsinfo: error: 'n[5-1]' invalid entry for --nodes\n",
        1,
    ),
    "scontrol-hostlist": (
        "scontrol",
        ["show", "hostlist", "n[5-1]"],
        f"scontrol: error: {BAD_RANGE}\nInvalid hostlist: n[5-1]\n",
        1,
    ),
    "scontrol-hostlist-huge": (
        "scontrol",
        ["show", "hostlist", "n[1-1000000000]"],
        "scontrol: error: _parse_single_range: Too many hosts in range "
        "`1-1000000000'\nInvalid hostlist: n[1-1000000000]\n",
        1,
    ),
    # unknown ids are silent for scancel (exit 0, as on Slurm), however large the range
    "scancel-huge-range": ("scancel", ["1_[0-99999999999]"], "", 0),
    "srun-zero-nodes": (
        "srun",
        ["-N0", "true"],
        "srun: error: Unable to allocate resources: Node count specification invalid\n",
        1,
    ),
}


@pytest.fixture(scope="module")
def grammar_cache(tmp_path_factory):
    """One Lark cache for the corpus' commands (each test has its own HOME)."""
    return str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_is_answered_as_slurm_and_stores_nothing(cluster, grammar_cache, name):
    command, argv, stderr, code = CORPUS[name]
    for file in {a.split("/")[0] for a in argv} & set(FILES):
        (cluster.cwd / file).write_bytes(FILES[file])
    out = cluster.run(command, *argv, input="", env={"XDG_CACHE_HOME": grammar_cache})
    assert (out.stdout, out.returncode) == ("", code), out.stderr
    assert "Traceback" not in out.stderr
    if stderr is None:  # no fixed text: a Slurm-style message
        assert out.stderr.startswith(f"{command}: "), out.stderr
    else:
        assert out.stderr == stderr
    assert cluster.jobs() == []


def test_no_dependency_cycle_can_form(cluster):
    """A job may name an id not yet submitted; as on Slurm, an unknown id is met at submission
    (dropped), so the later job that waits for it cannot close a cycle: both run in turn."""
    first = cluster.sbatch("--hold", "--dependency=afterok:2", "--wrap", "true")
    second = cluster.sbatch(f"--dependency=afterok:{first}", "--wrap", "true")
    assert second == first + 1
    shown = cluster.run("squeue", "-h", "-o", "%i %E")
    assert sorted(shown.stdout.splitlines()) == [
        f"{first} (null)",
        f"{second} afterok:{first}(unfulfilled)",
    ]
    assert cluster.run("scontrol", "release", str(first)).returncode == 0
    assert [r[1] for r in cluster.wait_done(first, second)] == ["COMPLETED", "COMPLETED"]
