"""`backend: sky` where SkyPilot cannot be imported (a bare install, issue 36): sbatch and
doctor say which extra to install; translate, which needs no SkyPilot, still works."""

from __future__ import annotations

import sys
import time

import pytest

HIDE_SKY = """import sys


class NoSky:
    def find_spec(self, name, path=None, target=None):
        if name == "sky" or name.startswith("sky."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoSky())
"""
WORDS = (
    f"the sky backend needs SkyPilot, which {sys.executable} cannot import (pip install "
    "'slurmsky[aws]', or the extra of your infra: [gcp], [azure], [kubernetes], [slurm], "
    "[ssh], ... or [sky] for SkyPilot alone)"
)


@pytest.fixture
def no_sky(cluster, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE_SKY)
    return {"PYTHONPATH": str(shim), "SLURMSKY_BACKEND": "sky"}


def test_sbatch_says_which_extra_to_install(cluster, no_sky):
    out = cluster.run("sbatch", "--wrap", "true", env=no_sky, timeout=30)
    assert (out.returncode, out.stdout, out.stderr) == (1, "", f"sbatch: error: {WORDS}\n")
    assert cluster.jobs() == []


def test_doctor_says_it_and_translate_needs_no_skypilot(cluster, no_sky):
    out = cluster.run("slurmsky", "doctor", env=no_sky, timeout=30)
    assert out.returncode == 1 and out.stdout.startswith(f"backend:     sky: {WORDS}\n")
    out = cluster.run("slurmsky", "translate", "--", "--wrap", "true", env=no_sky, timeout=30)
    assert out.returncode == 0 and "run: " in out.stdout, out.stderr


def test_an_agent_that_cannot_import_its_backend_runs_the_rest_and_idles(cluster, no_sky):
    """The agent's configured backend (sky) cannot import SkyPilot where it runs: no pass
    fails, the local jobs run, and the agent idles (issue 50: a pass that raises each time
    leaves the started jobs unwatched)."""
    import psutil

    held = [cluster.sbatch("--hold", "--wrap", "sleep 5") for _ in range(2)]
    cluster.stop_agents()
    cluster.run("scontrol", "release", ",".join(map(str, held)), env=no_sky)
    cluster.wait_for(lambda: len(cluster.jobs("state = 'RUNNING'")) == 2, 30, "both running")
    agent = psutil.Process(cluster.agent_pid())
    before = sum(agent.cpu_times()[:2])
    time.sleep(3)
    assert sum(agent.cpu_times()[:2]) - before < 1.0  # of 3 s: near idle
    rows = cluster.wait_done(*held, timeout=60)
    assert [r[1:3] for r in rows] == [("COMPLETED", 0)] * 2
    log = (cluster.state / "agent.log").read_text()
    assert "Traceback" not in log and "pass failed" not in log, log[-3000:]
