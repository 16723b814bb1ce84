"""sbatch's error paths against the real-Slurm captures: same bytes, same exit code, nothing stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from captures import read_capture, read_expected

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "job.sh": "#!/bin/bash\necho hi\n",
    "badnodes.sh": "#!/bin/bash\n#SBATCH --nodes=abc\necho hi\n",
    "badtime.sh": "#!/bin/bash\n#SBATCH --time=xx\necho hi\n",
    "d-unknown.sh": "#!/bin/bash\n#SBATCH --frobnicate=3\necho hi\n",
    "d-unquoted.sh": "#!/bin/bash\n#SBATCH --job-name=my job\n#SBATCH --time=2\necho hi\n",
    "noshebang.sh": "echo no shebang\n",
}


def sbatch(tmp_path, *args, stdin=b""):
    env = dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(tmp_path / "state"))
    for name, text in SCRIPTS.items():
        (tmp_path / name).write_text(text)
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / "sbatch"), *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
    )


CASES = [
    ("sbatch-bogus-option.txt", ["--bogus", "job.sh"]),
    ("directive-unknown-option.txt", ["--hold", "d-unknown.sh"]),
    ("directive-unquoted-space.txt", ["--hold", "d-unquoted.sh"]),
    ("sbatch-bad-directive-nodes.txt", ["badnodes.sh"]),
    ("sbatch-bad-directive-time.txt", ["badtime.sh"]),
    ("sbatch-bad-time.txt", None),
    ("sbatch-no-shebang.txt", ["noshebang.sh"]),
    ("sbatch-missing-file.txt", ["does-not-exist.sh"]),
    ("sbatch-empty-stdin.txt", []),
    ("dependency-bad-syntax.txt", ["--dependency=afterfoo:1", "--wrap", "true"]),
    ("sbatch-version.txt", ["--version"]),
]


@pytest.mark.parametrize("capture,args", CASES)
def test_matches_real_slurm(tmp_path, capture, args):
    real = read_capture(capture)
    if args is None:  # the capture's own command line
        args = real.command.split()[1:]
    got = sbatch(tmp_path, *args)
    expected_stdout = real.stdout.split("===\n", 1)[-1]  # some probes `cat` the script first
    assert (got.stdout.decode(), got.stderr.decode(), got.returncode) == (
        expected_stdout,
        real.stderr,
        real.exit,
    )
    assert not (tmp_path / "state").exists() or real.exit == 0, "a rejected job left state behind"


def test_wrap_refuses_script_arguments(tmp_path):
    got = sbatch(tmp_path, "--wrap", "true", "extra")
    assert (
        got.stderr.decode() == "sbatch: error: Script arguments not permitted with --wrap option\n"
    )
    assert got.returncode == 1


def test_help_lists_options_and_fates(tmp_path):
    got = sbatch(tmp_path, "--help")
    assert got.returncode == 0
    out = got.stdout.decode()
    assert "-t, --time=value" in out and "Ignored options:" in out and "--account" in out


@pytest.mark.parametrize("command", ["sbatch", "srun", "salloc"])
def test_bad_begin_prints_parse_times_line_first(tmp_path, command):
    """Real Slurm: parse_time's own line, unprefixed, then the option's error; 255."""
    env = dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(tmp_path / "state"))
    got = subprocess.run(
        [sys.executable, str(ROOT / "bin" / command), "--begin=now+1x", "true"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert (got.stdout, got.stderr.decode(), got.returncode) == (
        b"",
        f"Invalid time specification (pos=4): now+1x\n"
        f"{command}: error: Invalid --begin specification\n",
        255,
    )
    assert not (tmp_path / "state").exists()


def test_bad_begin_matches_real_slurm(tmp_path):
    real = read_expected("begin-bad")[0]
    got = sbatch(tmp_path, "--begin=notatime", "--wrap", "true")
    assert (got.stdout.decode(), got.stderr.decode(), got.returncode) == (
        real.stdout,
        real.stderr,
        real.exit,
    )


@pytest.mark.parametrize(
    "command, env",
    [("srun", None), ("salloc", None), ("srun", "SLURM_SIGNAL"), ("salloc", "SALLOC_SIGNAL")],
)
def test_step_batch_signal_refused(tmp_path, command, env):
    """srun and salloc refuse sbatch's B: form, on the command line and from their input
    variable, before anything is allocated (compat case srun-signal)."""
    args = ["true"] if env else ["--signal=B:USR1", "true"]
    environ = dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(tmp_path / "state"))
    if env:
        environ[env] = "B:USR1"
    got = subprocess.run(
        [sys.executable, str(ROOT / "bin" / command), *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        timeout=60,
    )
    assert (got.stdout, got.stderr.decode(), got.returncode) == (
        b"",
        f"{command}: error: Invalid --signal specification\n",
        255,
    )
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args", [[], ["-N1", "-n1"]])
def test_srun_without_a_command_is_fatal(tmp_path, args):
    """Real Slurm (compat case srun-no-command): a fatal, not an error; exit 1, nothing run."""
    real = read_expected("srun-no-command")[0]
    env = dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(tmp_path / "state"))
    got = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "srun"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert (
        (got.stdout.decode(), got.stderr.decode(), got.returncode)
        == (real.stdout, real.stderr, real.exit)
        == ("", "srun: fatal: No command given to execute.\n", 1)
    )
    assert not (tmp_path / "state").exists()
