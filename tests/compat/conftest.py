"""The `peer` fixture: real Slurm for the live tests of the harness.

It uses the peer when it is up. Otherwise, as root with SLURMSKY_COMPAT_START_PEER=1, it starts
it with shared/tools/slurm-peer-up.sh and stops it with slurm-peer-down.sh at the end of the
session (only a peer this session started is stopped). Else the live tests are skipped.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import harness


@pytest.fixture(scope="session")
def peer():
    if harness.PeerSide.is_up():
        yield "up"
        return
    up = harness.PEER_TOOLS / "slurm-peer-up.sh"
    if os.environ.get("SLURMSKY_COMPAT_START_PEER") != "1" or os.geteuid() != 0 or not up.exists():
        pytest.skip("the Slurm peer is not up (SLURMSKY_COMPAT_START_PEER=1 starts it, as root)")
    subprocess.run(["bash", str(up)], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, timeout=900)
    try:
        yield "started"
    finally:
        subprocess.run(["bash", str(harness.PEER_TOOLS / "slurm-peer-down.sh")], check=False,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)
