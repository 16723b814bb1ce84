"""`--usage`, `--help` and `--version` of sbatch, srun and salloc: Slurm's bytes, exit 0."""

from __future__ import annotations

import pytest
from captures import read_expected

HELP_FIRST_LINE = {  # real Slurm 22.05 (the compat cases sbatch-help, srun-help, salloc-help)
    "sbatch": "Usage: sbatch [OPTIONS(0)...] [ : [OPTIONS(N)...]] script(0) [args(0)...]",
    "srun": "Usage: srun [OPTIONS(0)... [executable(0) [args(0)...]]] [ : [OPTIONS(N)...]] "
    "executable(N) [args(N)...]",
    "salloc": "Usage: salloc [OPTIONS(0)...] [ : [OPTIONS(N)]] [command(0) [args(0)...]]",
}


def _usage_capture(command):
    case = "salloc-version-usage" if command == "salloc" else f"{command}-usage"
    return next(p for p in read_expected(case) if p.command == f"{command} --usage")


@pytest.mark.parametrize("command", ["sbatch", "srun", "salloc"])
def test_usage_is_slurms_synopsis(cluster, command):
    real = _usage_capture(command)
    assert real.stdout.count("\n") > 20  # the multi-line synopsis, not one line
    got = cluster.run(command, "--usage")
    assert (got.stdout, got.stderr, got.returncode) == (real.stdout, real.stderr, real.exit)


@pytest.mark.parametrize("command", ["sbatch", "srun", "salloc"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_starts_with_slurms_line_then_the_table(cluster, command, flag):
    got = cluster.run(command, flag)
    assert got.returncode == 0 and got.stderr == ""
    lines = got.stdout.split("\n")
    assert lines[:2] == [HELP_FIRST_LINE[command], ""]
    assert "Supported options:" in lines and "--usage" in got.stdout


@pytest.mark.parametrize("command", ["sbatch", "srun", "salloc"])
def test_version(cluster, command):
    for flag in ("--version", "-V"):
        got = cluster.run(command, flag)
        assert (got.stdout, got.stderr, got.returncode) == ("slurm-wlm 22.05.8\n", "", 0)
