"""The option table: complete against Slurm 22.05's man pages and consistent with its users."""

from pathlib import Path

import pytest

from slurmsky.parse.argv import PARSERS
from slurmsky.parse.options import (
    OPTIONS,
    REFUSED,
    compat_matrix,
    help_text,
    input_env,
    options_for,
)
from slurmsky.parse.request import JobRequest

ROOT = Path(__file__).resolve().parent.parent
MANPAGE = [
    line.split()
    for line in (ROOT / "tests/fixtures/manpage_options.txt").read_text().splitlines()
    if not line.startswith("#")
]


@pytest.mark.parametrize("command,short,long", MANPAGE)
def test_every_manpage_option_is_a_row(command, short, long):
    rows = {o.long: o for o in options_for(command)}
    assert long in rows, f"{command} --{long} missing from the option table"
    if short != "-":
        assert rows[long].short == short


@pytest.mark.parametrize("command", ["sbatch", "srun", "salloc"])
def test_names_are_unique_per_command(command):
    longs = [o.long for o in options_for(command)]
    shorts = [o.short for o in options_for(command) if o.short]
    assert len(longs) == len(set(longs))
    assert len(shorts) == len(set(shorts))


def test_every_parser_exists():
    for opt in OPTIONS:
        if opt.parse:
            assert callable(PARSERS[opt.parse]), opt.long


def test_every_honoured_option_is_a_request_field():
    fields = set(JobRequest._fields)
    missing = {o.key for o in OPTIONS if o.fate not in ("ignored", REFUSED)} - fields
    assert not missing


def test_sbatch_input_variables_match_the_manpage():
    names = {name for name, _ in input_env("sbatch")}
    # a sample of the man page's INPUT ENVIRONMENT VARIABLES section
    for name in (
        "SBATCH_JOB_NAME",
        "SBATCH_PARTITION",
        "SBATCH_TIMELIMIT",
        "SBATCH_EXPORT",
        "SBATCH_ARRAY_INX",
        "SBATCH_MEM_PER_NODE",
        "SBATCH_OUTPUT",
        "SBATCH_NO_REQUEUE",
        "SLURM_CLUSTERS",
    ):
        assert name in names
    assert dict(input_env("salloc"))["SALLOC_PARTITION"].long == "partition"


def test_help_lists_every_option():
    text = help_text("sbatch")
    for opt in options_for("sbatch"):
        assert f"--{opt.long}" in text


def test_readme_matrix_is_current():
    readme = (ROOT / "README.md").read_text()
    assert compat_matrix() in readme, (
        "README matrix is stale: paste slurmsky.parse.options.compat_matrix()"
    )
