"""The test command is one command: the README gives it, CONTRIBUTING.md repeats it, `.ci/run`
runs exactly it (with --durations through PYTEST_ADDOPTS), under what is left of its 60
minutes; and every option it names is this checkout's (pytest-xdist in the `test` extra)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_command() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running the tests", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no ```sh block under README's 'Running the tests'"
    (line,) = [ln for ln in block.group(1).splitlines() if "pytest" in ln]
    return line.strip()


def test_ci_runs_exactly_the_readme_command():
    command = readme_command()
    assert command.startswith("python -m pytest ") and command.endswith(" tests")
    ci = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")
    runs = [ln for ln in ci.splitlines() if "python -m pytest" in ln and " tests || " in ln]
    assert len(runs) == 1, runs
    assert f" {command} || tests=$?" in " ".join(runs[0].split()), runs[0]
    assert "timeout --signal=INT" in runs[0] and "--durations=25" in runs[0]
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    assert re.search(rf"^{re.escape(command)}\s+#", contributing, re.M), "CONTRIBUTING.md"


def test_the_command_s_plugins_are_in_the_test_extra():
    argv = shlex.split(readme_command())
    pyproject = (ROOT / "pyproject.toml").read_text()
    test_extra = pyproject.split("test = [", 1)[1].split("]", 1)[0]
    if "-n" in argv:
        assert '"pytest-xdist' in test_extra


def test_ci_reruns_alone_exactly_the_tests_that_failed(tmp_path):
    """The rerun after a failed run takes each failed test once, whatever phase failed."""
    ci = (ROOT / ".ci" / "run").read_text()
    (awk,) = re.findall(r"mapfile -t failed < <\((awk .*?)\)\n", ci)
    durations = tmp_path / "durations"
    durations.write_text(
        "1700000000.00\tstart\ttests/test_a.py::test_ok\t\n"
        "0.10\tcall\ttests/test_a.py::test_ok\tpassed\n"
        "0.20\tcall\ttests/test_b.py::test_x[a b-1]\tfailed\n"
        "0.01\tteardown\ttests/test_b.py::test_x[a b-1]\tfailed\n"
        "3.00\tsetup\ttests/test_c.py::test_y\tfailed\n"
    )
    script = f'mapfile -t failed < <({awk}); printf "<%s>\\n" "${{failed[@]}}"'
    out = subprocess.run(
        ["bash", "-c", script.replace('"$durations"', shlex.quote(str(durations)))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "<tests/test_b.py::test_x[a b-1]>\n<tests/test_c.py::test_y>\n"
