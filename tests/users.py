"""Tests that run slurmsky's commands as another user (`nobody`, `peeruser`): whether that user
can, and if not, why (the reason a test skips with).

Running as another user needs root, the user, a python3 that user may run
(`other_users_python`), and a checkout that user can read: a clone inside a private (0700)
home gives `Permission denied` on bin/. `cannot_run_as` finds out by running what the tests
run (`python bin/squeue --version`) as that user, once per user and run.
"""

from __future__ import annotations

import functools
import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"


@functools.cache
def other_users_python() -> str | None:
    """A python3 (3.8+) that another user may run: ours may live under root's home."""
    import shutil

    for candidate in (shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3"):
        if not candidate:
            continue
        path = Path(os.path.realpath(candidate))
        try:
            if not all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents]):
                continue
        except OSError:
            continue
        check = subprocess.run(
            [str(path), "-c", "import sys; print(sys.version_info >= (3, 8))"],
            capture_output=True,
            text=True,
        )
        if check.stdout.strip() == "True":
            return str(path)
    return None


@functools.cache
def cannot_run_as(user: int | str) -> str | None:
    """None when `user` (a uid or a name) can run this checkout's commands; else why not."""
    if os.geteuid() != 0:
        return "running a command as another user needs root"
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError:
        return f"no user {user} on this machine"
    python = other_users_python()
    if python is None:
        return "no python3 (3.8+) that another user may run"
    argv = [python, str(BIN / "squeue"), "--version"]
    try:
        out = subprocess.run(
            argv,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "HOME": "/"},
            user=entry.pw_uid,
            group=entry.pw_uid,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{entry.pw_name} cannot run {' '.join(argv)}: {exc}"
    if out.returncode != 0:
        said = (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
        return (
            f"{entry.pw_name} (uid {entry.pw_uid}) cannot run this checkout's commands "
            f"({' '.join(argv)}: {said}); is the checkout in a private directory?"
        )
    return None


def needs_user(user: int | str):
    """Skip the test, saying why, unless it can run commands as `user`."""
    reason = cannot_run_as(user)
    return pytest.mark.skipif(reason is not None, reason=reason or "")
