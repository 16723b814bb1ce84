"""JobRequest: Slurm's precedence, script sources, job-name defaults and warnings."""

from __future__ import annotations

import pytest

from slurmsky.errors import SlurmError
from slurmsky.parse.request import build_batch_request, parse_command_line

PREC = "#!/bin/bash\n#SBATCH --job-name=fromscript\n#SBATCH -p gpu\n#SBATCH --time=10\necho hi\n"


def request(tmp_path, argv, env=None, script=PREC, stdin=b""):
    (tmp_path / "prec.sh").write_text(script)
    return build_batch_request(
        parse_command_line("sbatch", argv), env or {}, str(tmp_path), lambda: stdin
    )


def picked(req):
    return req.job_name, req.partition, req.time


@pytest.mark.parametrize(
    "argv,env,expected",
    [
        # the four prec-*.txt captures: squeue -o "%j %P %l" of the same script
        (["prec.sh"], {}, ("fromscript", "gpu", 10)),
        (
            ["--job-name=fromcli", "-p", "debug", "--time=20", "prec.sh"],
            {},
            ("fromcli", "debug", 20),
        ),
        (
            ["prec.sh"],
            {"SBATCH_JOB_NAME": "fromenv", "SBATCH_PARTITION": "debug", "SBATCH_TIMELIMIT": "30"},
            ("fromenv", "debug", 30),
        ),
        (
            ["--job-name=fromcli", "-p", "gpu", "prec.sh"],
            {"SBATCH_JOB_NAME": "fromenv", "SBATCH_PARTITION": "debug"},
            ("fromcli", "gpu", 10),
        ),
    ],
)
def test_precedence(tmp_path, argv, env, expected):
    assert picked(request(tmp_path, argv, env)) == expected


def test_job_name_defaults(tmp_path):
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    (tmp_path / "sub/dir/myjob.sh").write_text("#!/bin/sh\ntrue\n")
    assert request(tmp_path, ["sub/dir/myjob.sh"]).job_name == "myjob.sh"
    assert request(tmp_path, ["--wrap", "echo hi"]).job_name == "wrap"
    assert request(tmp_path, [], stdin=b"#!/bin/sh\ntrue\n").job_name == "sbatch"
    # Slurm keeps no name for a script on stdin (the job sees SLURM_JOB_NAME empty)
    assert request(tmp_path, [], stdin=b"#!/bin/sh\ntrue\n").name_unset
    assert not request(tmp_path, ["-J", "n"], stdin=b"#!/bin/sh\ntrue\n").name_unset
    assert not request(tmp_path, ["--wrap", "true"]).name_unset
    assert not request(tmp_path, ["sub/dir/myjob.sh"]).name_unset


def test_wrap_script_is_slurms(tmp_path):
    req = request(tmp_path, ["--wrap", "echo wrapped; hostname"])
    assert (
        req.script
        == "#!/bin/sh\n# This script was created by sbatch --wrap.\n\necho wrapped; hostname\n"
    )


def test_script_arguments_and_text(tmp_path):
    req = request(tmp_path, ["prec.sh", "one", "two words"])
    assert req.script_args == ("one", "two words")
    assert req.script == PREC and req.script_path == "prec.sh"


def test_chdir_is_resolved_against_the_submit_dir(tmp_path):
    req = request(tmp_path, ["-D", "work", "prec.sh"])
    assert req.workdir == str(tmp_path / "work") and req.submit_dir == str(tmp_path)


def test_chdir_is_kept_as_given(tmp_path):  # compat: output-paths-as-given-held
    assert request(tmp_path, ["-D", ".", "prec.sh"]).workdir == f"{tmp_path}/."
    assert request(tmp_path, ["-D", "sub/", "prec.sh"]).workdir == f"{tmp_path}/sub/"
    assert request(tmp_path, ["-D", "/abs/x/..", "prec.sh"]).workdir == "/abs/x/.."


def test_deprecated_slurm_magic_is_read_and_said_first(tmp_path):
    """#SLURM lines count as #SBATCH lines; sbatch prints its note once, before any other
    message (compat: directive-deprecated-slurm-magic)."""
    note = (
        "sbatch: error: Change from #SLURM to #SBATCH in your script and verify the options"
        " are valid in sbatch"
    )
    script = "#!/bin/sh\n#SLURM --mem=300\n#SLURM -N5 -n3\n#SBATCH -t 10\ntrue\n"
    req = request(tmp_path, ["prec.sh"], script=script)
    assert (req.mem, req.time) == (300, 10)
    assert req.warnings[0] == note and len(req.warnings) == 2
    with pytest.raises(SlurmError) as info:
        request(tmp_path, ["prec.sh"], script="#!/bin/sh\n#SLURM --time=xx\ntrue\n")
    assert info.value.render("sbatch") == note + "\nsbatch: error: Invalid --time specification\n"
    assert request(tmp_path, ["prec.sh"]).warnings == ()


def test_ignored_options_warn_once_each(tmp_path):
    script = "#!/bin/sh\n#SBATCH --wckey=w\n#SBATCH --qos=normal\n#SBATCH -A physics\ntrue\n"
    req = request(tmp_path, ["--wckey=other", "prec.sh"], script=script)
    assert req.ignored == {"wckey": "other", "qos": "normal"}
    assert req.account == "physics"  # checked against the user's associations on a team's state
    assert req.warnings == (
        "sbatch: warning: --wckey=w ignored by slurmsky: no accounting keys",
        "sbatch: warning: --qos=normal ignored by slurmsky: no QOS",
    )


def test_memory_options_exclude_each_other_except_from_the_environment(tmp_path):
    # Slurm 22.05 (the peer): two memory options from #SBATCH/#PBS/argv are fatal, exit 1;
    # one given there drops another from SBATCH_* (slurm_opt.c _validate_memory_options)
    script = "#!/bin/sh\n#SBATCH --mem=1G\ntrue\n"
    with pytest.raises(SlurmError, match="mutually exclusive") as info:
        request(tmp_path, ["--mem-per-cpu=200", "prec.sh"], script=script)
    assert info.value.render("sbatch") == (
        "sbatch: fatal: --mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.\n"
    )
    assert info.value.exit_code == 1
    with pytest.raises(SlurmError, match="mutually exclusive"):
        request(tmp_path, ["--mem=1G", "--mem-per-cpu=2", "prec.sh"])
    req = request(tmp_path, ["prec.sh"], script=script, env={"SBATCH_MEM_PER_CPU": "200"})
    assert (req.mem, req.mem_per_cpu) == (1024, None)
    req = request(tmp_path, ["prec.sh"], script=script, env={"SBATCH_MEM_PER_NODE": "200"})
    assert (req.mem, req.mem_per_cpu) == (200, None)


def test_export_none_from_the_environment(tmp_path):
    req = request(tmp_path, ["prec.sh"], env={"SBATCH_EXPORT": "NONE"})
    assert req.export.mode == "NONE"


def test_the_submit_environment_stays_out_of_repr(tmp_path):
    """A request's repr (tracebacks, logs) never shows the environment's credentials."""
    req = request(tmp_path, ["prec.sh"], env={"AWS_SECRET_ACCESS_KEY": "hunter2"})
    assert req.submit_env["AWS_SECRET_ACCESS_KEY"] == "hunter2"
    assert "hunter2" not in repr(req) and "submit_env=" not in repr(req)
    assert "job_name=" in repr(req)
