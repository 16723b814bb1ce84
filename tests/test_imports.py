"""Heavy modules stay off the paths that don't need them (measured, not timed)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PARSE_AND_TRANSLATE = """
import sys
from slurmsky.config import Config
from slurmsky.request import build_batch_request, parse_command_line
from slurmsky.translate import translate
script = b"#!/bin/bash\\n#SBATCH -N 2 --gres=gpu:A100:1\\nmodule load cuda\\nsrun hostname\\n"
req = build_batch_request(parse_command_line("sbatch", ["-t", "5"]), {}, "/tmp", lambda: script)
translate(req, Config(path="x"))
print(sorted(m for m in ("sky", "yaml", "psutil", "click") if m in sys.modules))
"""


def test_parse_and_translate_import_no_skypilot():
    out = subprocess.run([sys.executable, "-c", PARSE_AND_TRANSLATE], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_importing_the_package_imports_nothing_third_party():
    code = "import sys, slurmsky; print(sorted(m for m in ('lark', 'sky', 'yaml', 'click', 'psutil') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"
