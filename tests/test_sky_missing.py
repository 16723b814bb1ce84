"""`backend: sky` where SkyPilot cannot be imported (a bare install, issue 36): sbatch and
doctor say which extra to install; translate, which needs no SkyPilot, still works."""

from __future__ import annotations

import sys

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
