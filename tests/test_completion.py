"""`slurmsky completion bash|zsh` (issue 36): scripts generated from the option table that
list every option of each command, that bash accepts, and that complete as Slurm's do."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import BIN

from slurmsky.parse.completion import COMMANDS, script, words
from slurmsky.runtime.options import NO_ARG, OPTIONS, REQUIRED


def _printed(shell: str) -> str:
    out = subprocess.run(
        [sys.executable, str(BIN / "slurmsky"), "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_script_lists_every_option_of_the_table(shell):
    text = _printed(shell)
    assert text == script(shell)
    for opt in OPTIONS:
        for command in opt.commands:
            line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{command})"))
            listed = line.split("'")[1].split()
            long = f"--{opt.long}=" if opt.arg == REQUIRED else f"--{opt.long}"
            assert long in listed, (command, opt)
            assert opt.arg == NO_ARG or f"--{opt.long}=" in listed, (command, opt)
            assert opt.short is None or f"-{opt.short}" in listed, (command, opt)
            assert listed == words(command)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_shell_accepts_it(shell, tmp_path):
    if shell == "zsh" and subprocess.run(["sh", "-c", "command -v zsh"]).returncode:
        pytest.skip("no zsh here")
    path = tmp_path / f"completion.{shell}"
    path.write_text(script(shell))
    out = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_bash_completes_options_and_leaves_the_rest_to_file_names():
    probe = "\n".join(
        [
            script("bash"),
            'c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=();',
            '  _slurmsky_options "$1" "${@: -1}" "${@: -2:1}"; echo "${COMPREPLY[*]}"; }',
            "c sbatch --ti",
            "c /usr/bin/srun --ntasks-per-n",
            "c salloc job.sh",
            "complete -p sbatch srun salloc",
        ]
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "--time= --time-min=",
        "--ntasks-per-node=",
        "",
        *(f"complete -o default -F _slurmsky_options {c}" for c in COMMANDS),
    ]
