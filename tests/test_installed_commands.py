"""The commands as users install them (issue 36): the wheel, built and installed in a fresh
virtual environment, gives bash launchers (install/scripts/) that start Python as the
checkout's bin/ do, so a Ctrl-C, SIGTERM or SIGHUP at any moment of start-up ends the command
without a traceback (pip's console-script wrappers printed one in up to 1 of 3)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (
    "sacct",
    "sacctmgr",
    "salloc",
    "sbatch",
    "scancel",
    "scontrol",
    "seff",
    "sinfo",
    "slurmsky",
)
COMMANDS += ("sattach", "sbcast", "sdiag", "sprio", "sreport", "squeue", "srun", "sshare")
COMMANDS += ("sstat", "strigger")
TRIALS = 40
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, timeout=300)


def _new_setuptools() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with the wheel of this checkout installed (--no-deps): the test venv's
    packages reach it by a .pth, so it is fast and offline (the build's setuptools aside)."""
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"  # a copy: the build's build/ and egg-info stay out of the checkout
    shutil.copytree(ROOT / "slurmsky", src / "slurmsky", ignore=shutil.ignore_patterns("__py*"))
    shutil.copytree(ROOT / "install", src / "install", symlinks=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    isolation = ["--no-build-isolation"] if _new_setuptools() else []
    _pip("wheel", "--no-deps", *isolation, "-w", str(tmp / "wheel"), str(src))
    (wheel,) = (tmp / "wheel").glob("slurmsky-*.whl")
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    _pip("--python", str(env / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel))
    site = subprocess.run(
        [env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "_test_venv.pth").write_text("\n".join(sorted(ours)) + "\n")
    return env


def _env(tmp_path: Path) -> dict:
    keep = ("PATH", "LANG", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep} | {
        "HOME": str(tmp_path),
        "SLURMSKY_HOME": str(tmp_path / "state"),
        "SLURMSKY_CONFIG": str(tmp_path / "none.yaml"),
    }


def test_every_command_is_a_launcher_of_the_venvs_python(venv, tmp_path):
    assert sorted(COMMANDS) == sorted(os.listdir(ROOT / "bin"))  # the checkout's, all of them
    bindir = venv / "bin"
    first = (bindir / "slurmsky-python").read_text().splitlines()[0]
    assert first == f"#!{bindir / 'python'}"  # pip wrote the interpreter in
    for command in COMMANDS:
        assert (bindir / command).read_text().startswith("#!/bin/bash\n"), command
    where = subprocess.run(
        [bindir / "python", "-c", "import slurmsky; print(slurmsky.__file__)"],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(venv))  # the wheel's slurmsky, not the checkout's
    out = subprocess.run(
        [bindir / "sbatch", "--version"], env=_env(tmp_path), capture_output=True, text=True
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "slurm-wlm 22.05.8\n", "")
    tool = subprocess.run([bindir / "slurmsky", "--help"], capture_output=True, text=True)
    assert tool.returncode == 0 and tool.stdout.startswith("Usage: slurmsky ")


@pytest.mark.parametrize(
    "argv", [("sbatch", "--test-only", "--wrap", "true"), ("srun", "--test-only", "true")]
)
def test_a_signal_during_start_up_never_prints_a_traceback(venv, tmp_path, argv):
    """TRIALS runs, each sent SIGINT, SIGTERM or SIGHUP at a random moment up to 1.2 times
    what an undisturbed run takes: each ends by that signal, with no traceback, or finishes."""
    seed = int(os.environ.get("SLURMSKY_SIGNAL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    env, exe = _env(tmp_path), [str(venv / "bin" / argv[0]), *argv[1:]]

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            exe, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    took = []
    for _ in range(3):
        begun = time.monotonic()
        assert start().wait(timeout=60) == 0
        took.append(time.monotonic() - begun)
    span = 1.2 * sorted(took)[1]
    killed, bad = 0, []
    for _ in range(TRIALS):
        proc = subprocess.Popen(
            exe, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(rng.uniform(0, span))
        sig = rng.choice(SIGNALS)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if proc.returncode < 0:
            killed += 1
            if -proc.returncode != sig or "Traceback" in err or "KeyboardInterrupt" in err:
                bad.append((sig, proc.returncode, err))
        elif proc.returncode != 0 or "Traceback" in err:
            bad.append((sig, proc.returncode, err))
    print(f"seed {seed}: {argv[0]} {span / 1.2 * 1000:.0f} ms; {killed} of {TRIALS} ended by it")
    assert bad == [], (seed, bad[:3])
    assert killed > 0, seed
