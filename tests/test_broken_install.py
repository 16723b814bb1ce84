"""A broken install (psutil missing, hidden here by a sitecustomize on PYTHONPATH): the
commands say it once, no job hangs, the agent does not loop over the error."""

from __future__ import annotations

import sys

import pytest

HIDE_PSUTIL = '''import sys


class NoPsutil:
    """`import psutil` fails, as where it is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "psutil" or name.startswith("psutil."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoPsutil())
'''
WORDS = f"the local backend needs psutil, which {sys.executable} cannot import (pip install psutil)"


@pytest.fixture
def broken(cluster, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE_PSUTIL)
    return {"PYTHONPATH": str(shim)}


def test_the_shim_hides_psutil(cluster, broken):
    out = cluster.run("sbatch", "--version", env=broken)  # any command: the shim loads
    check = __import__("subprocess").run(
        [sys.executable, "-c", "import psutil"],
        env={**cluster.env, **broken},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and check.returncode == 1 and "psutil" in check.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("sbatch", "--wrap", "true"),
        ("sbatch", "-W", "--wrap", "true"),  # returns at once: nothing to wait for
        ("srun", "true"),
        ("salloc", "true"),
    ],
)
def test_submitting_says_what_is_missing_once_and_stores_nothing(cluster, broken, argv):
    out = cluster.run(*argv, env=broken, timeout=30)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == f"{argv[0]}: error: {WORDS}\n"
    assert cluster.jobs() == []


def test_an_agent_without_psutil_fails_its_jobs_once_and_goes_on(cluster, broken):
    """Jobs stored by a healthy install, then run by an agent that cannot import psutil:
    each ends FAILED (JobLaunchFailure) at once, the agent says why once, no traceback, and
    it keeps serving (the read commands work, and a later job fails the same way)."""
    held = [cluster.sbatch("--hold", "--wrap", "true") for _ in range(3)]
    cluster.stop_agents()
    cluster.run("scontrol", "release", ",".join(map(str, held)), env=broken)
    rows = cluster.wait_done(*held, timeout=60)
    assert {(r[1], r[3], r[4]) for r in rows} == {("FAILED", 53, "JobLaunchFailure")}
    later = cluster.sbatch("--hold", "--wrap", "true")
    cluster.run("scontrol", "release", str(later), env=broken)
    assert cluster.wait_done(later, timeout=60)[0][4] == "JobLaunchFailure"
    log = (cluster.state / "agent.log").read_text()
    said = [line for line in log.splitlines() if WORDS in line]
    assert len(said) == 5  # once when the agent met it, then one line per job
    assert said[0].endswith(f" ERROR the local backend cannot run jobs: {WORDS}")
    assert all(" launch failed: the local backend cannot run jobs: " in line for line in said[1:])
    assert "Traceback" not in log
    sacct = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", env=broken)
    assert sacct.stdout.splitlines()[0] == f"{held[0]}|FAILED|0:53"


def test_doctor_says_what_to_install_instead_of_failing_on_it(cluster, broken):
    """Issue 36: `slurmsky doctor` names the backend's missing dependency as its problem
    and what to install; the backend's own checks, which would need it, are left out."""
    out = cluster.run("slurmsky", "doctor", env=broken, timeout=30)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"backend:     local: {WORDS}"
    assert lines[1] == f"{'':<12} remedy: install what it names"
    assert lines[-1] == "doctor: 1 problem"
