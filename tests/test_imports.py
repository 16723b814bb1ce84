"""Heavy modules stay off the paths that don't need them (measured, not timed)."""

import ast
import subprocess
import sys
from pathlib import Path

from builders import job_row

ROOT = Path(__file__).resolve().parent.parent

PARSE_AND_TRANSLATE = """
import sys
from slurmsky.config import Config
from slurmsky.parse.request import build_batch_request, parse_command_line
from slurmsky.backends.sky.task import translate
script = b"#!/bin/bash\\n#SBATCH -N 2 --gres=gpu:A100:1\\nmodule load cuda\\nsrun hostname\\n"
req = build_batch_request(parse_command_line("sbatch", ["-t", "5"]), {}, "/tmp", lambda: script)
translate(req, Config(path="x"))
print(sorted(m for m in ("sky", "yaml", "psutil", "click") if m in sys.modules))
"""


def test_parse_and_translate_import_no_skypilot():
    out = subprocess.run(
        [sys.executable, "-c", PARSE_AND_TRANSLATE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_importing_the_package_imports_nothing_third_party():
    code = "import sys, slurmsky; print(sorted(m for m in ('lark', 'sky', 'yaml', 'click', 'psutil') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# hmac: the step channel's (runtime/channel.py, with hashlib and socket), which only jobs need
HEAVY = ("sky", "lark", "yaml", "psutil", "click", "dataclasses", "hmac")
PROBE = (
    "import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write('HEAVY %s\\n' % "
    f"sorted(m for m in {HEAVY!r} if m in sys.modules))); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def test_each_command_imports_only_what_it_needs(tmp_path, cluster):
    """The commands tools call in loops, as subprocesses on the local backend: which heavy
    modules each one's import graph pulled in by the time it exited. (`cluster` shares
    tmp_path's state dir: its teardown stops the agent sbatch spawned.)"""
    import os

    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH -t 5\nmodule load x\ntrue\n")
    (tmp_path / "plain.sh").write_text("#!/bin/bash\n#SBATCH -t 5\n\ntrue\n")
    env = dict(
        os.environ,
        HOME=str(tmp_path),
        SLURMSKY_HOME=str(tmp_path / "state"),
        SLURMSKY_CONFIG=str(tmp_path / "none.yaml"),
    )
    expected = [
        (["sbatch", "--hold", "--wrap", "true"], []),
        (["sbatch", "--hold", "plain.sh"], []),  # #SBATCH lines only: read without the parser
        (
            ["sbatch", "--hold", "job.sh"],
            ["dataclasses"],
        ),  # the generated parser (Lark's code) imports it
        (["squeue"], []),
        (["squeue", "-j", "1"], []),
        (["sacct", "-j", "1"], []),
        (["scontrol", "show", "job", "1"], []),
        (["scancel", "1"], []),
        (["sstat", "-a", "-j", "1"], []),
        (["seff", "1"], []),
    ]
    got = []
    for argv, _ in expected:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(ROOT / "bin" / argv[0]), *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, (argv, out.stderr)
        got.append((argv, ast.literal_eval(out.stderr.rsplit("HEAVY ", 1)[1])))
    assert got == expected


def test_listings_import_no_re_json_enum_or_signal(tmp_path):
    """squeue and sacct, polled in loops, import none of re, json, enum and signal (a good
    part of their import time): core/state/ and backends/sky/sync.py import them where used."""
    import os

    light = ("re", "json", "enum", "signal")
    probe = PROBE.replace(repr(HEAVY), repr(light))
    env = dict(
        os.environ,
        HOME=str(tmp_path),
        SLURMSKY_HOME=str(tmp_path / "state"),
        SLURMSKY_CONFIG=str(tmp_path / "none.yaml"),
    )
    (tmp_path / "noop.py").write_text("")

    def imported(script, *args):
        out = subprocess.run(
            [sys.executable, "-c", probe, str(script), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, (script, out.stderr)
        return ast.literal_eval(out.stderr.rsplit("HEAVY ", 1)[1])

    runpy_own = imported(tmp_path / "noop.py")  # run_path's own imports (pkgutil's re)
    for argv in (["squeue"], ["squeue", "-l"], ["sacct"]):
        assert imported(ROOT / "bin" / argv[0], *argv[1:]) == runpy_own, argv
    # a held job: squeue asks whether the agent is needed (every backend, SkyPilot's sync
    # file too), and sacct lists it
    from slurmsky.core import state

    conn = state.connect(env)
    row = job_row(1, 1, uid=os.getuid(), reason="JobHeldUser", held="user")
    state.add_submission(conn, 1, {}, None, [row])
    conn.close()
    for argv in (["squeue"], ["sacct", "-S", "1970-01-02"]):
        assert imported(ROOT / "bin" / argv[0], *argv[1:]) == runpy_own, argv
