"""The session's leftover check ends only this run's processes: one started by another pytest
run (a second checkout's suite, started before this one ended) is not this run's to end."""

from __future__ import annotations

import os
import subprocess
import sys

import conftest
import psutil


def _sleeper(token: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_SLURMSKY_RUN"}
    if token is not None:
        env["PYTEST_SLURMSKY_RUN"] = token
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)


def test_a_process_is_this_runs_by_its_token_and_another_runs_by_its_own():
    assert os.environ["PYTEST_SLURMSKY_RUN"] == conftest.RUN_TOKEN
    procs = {
        "ours": _sleeper(conftest.RUN_TOKEN),
        "other": _sleeper("12345-1"),
        None: _sleeper(None),
    }
    try:
        for verdict, proc in procs.items():
            assert conftest._verdict(psutil.Process(proc.pid), "/nowhere") == verdict
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(timeout=30)
