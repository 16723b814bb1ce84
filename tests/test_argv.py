"""getopt_long over the table: every form Slurm accepts, and its messages word for word."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.errors import SlurmError
from slurmsky.parse.argv import OptionParser

P = OptionParser("sbatch")


def values(words):
    return P.parse(words).values


@pytest.mark.parametrize("words", [["--time=5"], ["--time", "5"], ["-t", "5"], ["-t5"]])
def test_argument_forms(words):
    assert values(words) == {"time": 5}


def test_unambiguous_prefixes():
    assert values(["--part=gpu", "--job", "x"]) == {"partition": "gpu", "job_name": "x"}
    assert _error(["--ti=5"])[0].startswith(
        "sbatch: option '--ti' is ambiguous; possibilities: '--time' '--time-min'"
    )


def test_short_cluster_and_attached_value():
    assert values(["-Ht5"]) == {"hold": True, "time": 5}
    assert values(["-Qc", "4"]) == {"quiet": True, "cpus_per_task": 4}


def test_optional_argument_never_takes_the_next_word():
    parsed = P.parse(["--exclusive", "job.sh", "--exclusive"])
    assert parsed.values == {"exclusive": "exclusive"}
    assert parsed.rest == ["job.sh", "--exclusive"]
    assert values(["--exclusive=user"]) == {"exclusive": "user"}


def test_parsing_stops_at_the_script():
    parsed = P.parse(["-J", "x", "job.sh", "-J", "y", "two words"])
    assert parsed.values == {"job_name": "x"}
    assert parsed.rest == ["job.sh", "-J", "y", "two words"]
    assert P.parse(["--", "-weird.sh"]).rest == ["-weird.sh"]


def _error(words, **kw):
    with pytest.raises(SlurmError) as exc:
        P.parse(words, **kw)
    return exc.value.render("sbatch"), exc.value.exit_code


def test_messages_are_getopts():
    try_help = 'Try "sbatch --help" for more information\n'
    assert _error(["--bogus", "job.sh"]) == (
        "sbatch: unrecognized option '--bogus'\n" + try_help,
        255,
    )
    assert _error(["--frobnicate=3"]) == (
        "sbatch: unrecognized option '--frobnicate=3'\n" + try_help,
        255,
    )
    assert _error(["-z"]) == ("sbatch: invalid option -- 'z'\n" + try_help, 255)
    assert _error(["--time"]) == ("sbatch: option '--time' requires an argument\n" + try_help, 255)
    assert _error(["-t"]) == ("sbatch: option requires an argument -- 't'\n" + try_help, 255)
    assert _error(["--hold=1"]) == (
        "sbatch: option '--hold' doesn't allow an argument\n" + try_help,
        255,
    )
    assert _error(["--mem-per=1"])[0].startswith(
        "sbatch: option '--mem-per' is ambiguous; possibilities: '--mem-per-cpu' '--mem-per-gpu'"
    )


def test_value_errors_are_slurms():
    assert _error(["--time=xx"]) == ("sbatch: error: Invalid --time specification\n", 255)
    assert _error(["--nodes=abc"]) == ('sbatch: error: "abc" is not a valid node count\n', 255)
    assert _error(["--dependency=afterfoo:1"]) == (
        "sbatch: error: Batch job submission failed: Job dependency problem\n",
        1,
    )
    # 22.05 knows two --gres-flags (compat: srun-gres-flags-2205-values)
    assert _error(["--gres-flags=allow-task-sharing"]) == (
        "sbatch: error: Invalid --gres-flags specification\n",
        255,
    )
    assert OptionParser("sbatch").parse(["--gres-flags=Enforce-Binding"]).values == {
        "gres_flags": "Enforce-Binding"
    }


def test_directive_words_reject_non_options():
    assert _error(["--job-name=my", "job"], directive=True) == (
        "sbatch: error: Invalid directive found in batch script: job\n",
        255,
    )


def test_refused_options_say_why():
    text, code = _error(["--uid=0"])
    assert code == 255 and "--uid is not supported by slurmsky" in text


def test_environment_reads_input_variables():
    from slurmsky.parse.options import input_env

    parsed = P.parse_env(
        {"SBATCH_TIMELIMIT": "30", "SBATCH_JOB_NAME": "e", "SBATCH_REQUEUE": "1"},
        input_env("sbatch"),
    )
    assert parsed.values == {"job_name": "e", "time": 30, "requeue": True}


@pytest.mark.parametrize(
    "text, sets",
    [("", True), ("yes", True), ("YES", True), ("1", True), ("2", True), (" 3", True),
     ("0", False), ("no", False), ("x", False), ("1x", False)],
)  # fmt: skip
def test_input_variables_of_flags_read_as_slurm_opt_c(text, sets):
    """SBATCH_DEBUG (-v), SBATCH_WAIT: set when empty, `yes` or a non-zero number."""
    from slurmsky.parse.options import input_env

    parsed = P.parse_env({"SBATCH_DEBUG": text, "SBATCH_WAIT": text}, input_env("sbatch"))
    level = int(text) if text.strip().isdigit() else 1  # arg_set_verbose: a number is the level
    assert parsed.values == ({"verbose": level, "wait": True} if sets else {})


def test_srun_reads_its_stdio_mode_variables():
    from slurmsky.parse.argv import OptionParser
    from slurmsky.parse.options import input_env

    names = dict(input_env("srun"))
    assert [names[n].long for n in ("SLURM_STDINMODE", "SLURM_STDOUTMODE", "SLURM_STDERRMODE")] == [
        "input",
        "output",
        "error",
    ]
    assert "SLURM_STDOUTMODE" not in dict(input_env("sbatch"))
    parsed = OptionParser("srun").parse_env({"SLURM_STDOUTMODE": "o-%t"}, input_env("srun"))
    assert parsed.values == {"output": "o-%t"}


OPTION_VALUES = {
    "time": st.sampled_from(["5", "1:30", "1-0", "2-12:30:00", "UNLIMITED"]),
    "nodes": st.integers(1, 64).map(str),
    "ntasks": st.integers(1, 512).map(str),
    "cpus-per-task": st.integers(1, 64).map(str),
    "mem": st.sampled_from(["100", "2G", "1500M", "0"]),
    "job-name": st.text("abcxyz-_.0189", min_size=1, max_size=12),
    "array": st.sampled_from(["1-10", "0-99:3", "1,5,7", "0-999%10"]),
    "dependency": st.sampled_from(
        ["afterok:1", "afterany:3:4", "singleton", "afterok:1?afterany:2"]
    ),
    "partition": st.sampled_from(["debug", "gpu"]),
}


@given(
    st.dictionaries(st.sampled_from(sorted(OPTION_VALUES)), st.none(), min_size=1).flatmap(
        lambda d: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in d})
    )
)
def test_directive_and_command_line_agree(opts):
    words = [f"--{k}={v}" for k, v in opts.items()]
    spaced = [w for k, v in opts.items() for w in (f"--{k}", v)]
    assert P.parse(words, directive=True).values == P.parse(spaced).values


@pytest.mark.parametrize("command", ["srun", "salloc"])
def test_batch_signal_is_sbatchs_only(command):
    assert P.parse(["--signal=B:USR1@30"]).values["signal"].batch
    with pytest.raises(SlurmError) as exc:
        OptionParser(command).parse(["--signal=B:USR1", "true"])
    assert (exc.value.render(command), exc.value.exit_code) == (
        f"{command}: error: Invalid --signal specification\n",
        255,
    )
    assert OptionParser(command).parse(["--signal=R:USR1@5"]).values["signal"].reservation
