"""Bad input never raises a traceback and never stores a job: a clean Slurm-style message instead.

Generated argv and scripts run in-process (fast, many examples); a corpus of hostile files
runs through the real sbatch as a subprocess and must leave the state without a job.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from slurmsky.errors import SlurmError
from slurmsky.options import options_for
from slurmsky.request import build_batch_request, parse_command_line

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted({f"--{o.long}" for o in options_for("sbatch")} | {f"-{o.short}" for o in options_for("sbatch") if o.short})
WORD = st.one_of(st.sampled_from(NAMES), st.text(max_size=12),
                 st.sampled_from(NAMES).flatmap(lambda n: st.text(max_size=8).map(lambda v: f"{n}={v}")))


def _build(argv, script: bytes):
    try:
        cli = parse_command_line("sbatch", argv)
        return build_batch_request(cli, {}, "/nonexistent-dir", lambda: script)
    except SlurmError as exc:
        assert exc.lines and exc.exit_code in (1, 255)
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(WORD, max_size=6))
def test_generated_argv_is_accepted_or_cleanly_refused(argv):
    _build(argv, b"#!/bin/sh\ntrue\n")


@settings(max_examples=400, deadline=None)
@given(st.lists(WORD, max_size=6))
def test_generated_directives_are_accepted_or_cleanly_refused(words):
    line = " ".join(words).replace("\n", " ")
    _build([], f"#!/bin/sh\n#SBATCH {line}\ntrue\n".encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_a_script(data):
    _build([], data)


HOSTILE = {
    "nul.sh": b"#!/bin/sh\n#SBATCH -J x\x00y\ntrue\n",
    "latin1.sh": b"#!/bin/sh\n# caf\xe9\ntrue\n",
    "crlf.sh": b"#!/bin/sh\r\n#SBATCH -t 5\r\ntrue\r\n",
    "only-spaces.sh": b"   \n\n  \n",
    "unclosed.sh": b"#!/bin/sh\n#SBATCH --comment=\"abc\ntrue\n",
    "huge-array.sh": b"#!/bin/sh\n#SBATCH --array=0-5000\ntrue\n",
    "bad-mem.sh": b"#!/bin/sh\n#SBATCH --mem=12Q\ntrue\n",
    "bad-signal.sh": b"#!/bin/sh\n#SBATCH --signal=NOPE@10\ntrue\n",
    "bad-begin.sh": b"#!/bin/sh\n#SBATCH --begin=yesterday-ish\ntrue\n",
    "bad-open-mode.sh": b"#!/bin/sh\n#SBATCH --open-mode=sideways\ntrue\n",
    "bad-gres.sh": b"#!/bin/sh\n#SBATCH --gres=gpu:-1\ntrue\n",
    "bad-ntasks.sh": b"#!/bin/sh\n#SBATCH --ntasks=0\ntrue\n",
    "bad-export.sh": b"#!/bin/sh\n#SBATCH --uid=0\ntrue\n",
    "long-header.sh": b"#!/bin/sh\n" + b"#SBATCH --comment=x\n" * 10000 + b"#SBATCH --time=bad\ntrue\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_scripts_store_nothing(tmp_path, name):
    (tmp_path / name).write_bytes(HOSTILE[name])
    home = tmp_path / "state"
    out = subprocess.run([sys.executable, str(ROOT / "bin/sbatch"), name], cwd=tmp_path,
                         capture_output=True, timeout=60,
                         env=dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(home)))
    err = out.stderr.decode()
    assert out.returncode in (1, 255), err
    if name == "bad-begin.sh":  # Slurm's parse_time says where it gave up, unprefixed
        note = "Invalid time specification (pos=0): yesterday-ish\n"
        assert err.startswith(note), err
        err = err[len(note):]
    assert err.startswith("sbatch: ") and "Traceback" not in err, err
    assert out.stdout == b""
    db = home / "state.db"
    if db.exists():  # refusals after validation may consume an id, never run a job
        with sqlite3.connect(db) as conn:
            states = [r[0] for r in conn.execute("SELECT state FROM jobs")]
        assert set(states) <= {"FAILED"}, states


def test_a_directory_is_not_a_script(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bin/sbatch"), "."], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, HOME=str(tmp_path), SLURMSKY_HOME=str(tmp_path / "s")))
    assert (out.returncode, out.stderr) == (1, "sbatch: error: Unable to open file .\n")
