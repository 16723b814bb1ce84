"""Read a real-Slurm capture from shared/reference/slurm-captures (the oracle).

A capture holds `$ command`, then `--- stdout`, `--- stderr`, `--- exit N` sections.
"""

from __future__ import annotations

import grp
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

CAPTURES = (
    Path(__file__).resolve().parent / "fixtures" / "slurm-captures"
)  # a copy of shared/reference/slurm-captures


@dataclass(frozen=True)
class Capture:
    command: str
    stdout: str
    stderr: str
    exit: int


def read_capture(name: str) -> Capture:
    """The first probe of a capture file (most hold one)."""
    text = (CAPTURES / name).read_text()
    m = re.match(r"\$ (.*?)\n--- stdout\n(.*?)--- stderr\n(.*?)--- exit (\d+)", text, re.S)
    if not m:
        raise ValueError(f"{name}: not a capture")
    return Capture(m.group(1), m.group(2), m.group(3), int(m.group(4)))


def assert_as_the_peer(cluster, name: str) -> None:
    """The capture's command, run by `cluster`, answers the capture's stdout, stderr and exit
    code (a command that needs no job of the peer's)."""
    cap = read_capture(name)
    out = cluster.run(*cap.command.split())
    assert (out.stdout, out.stderr, out.returncode) == (cap.stdout, cap.stderr, cap.exit)


EXPECTED = Path(__file__).resolve().parent / "compat" / "expected"


def read_expected(case: str) -> list[Capture]:
    """Every probe of a compat case's stored real-Slurm answer (tests/compat/expected)."""
    text = (EXPECTED / f"{case}.txt").read_text()
    probes = re.findall(
        r"^\$ (.*?)\n--- stdout\n(.*?)--- stderr\n(.*?)--- exit (\d+)\n", text, re.S | re.M
    )
    if not probes:
        raise ValueError(f"{case}: no probes")
    return [Capture(c, out, err, int(rc)) for c, out, err, rc in probes]


def peer_group() -> tuple[int, str]:
    """A gid for the peer's peeruser's jobs (1001 in the captures) and the name this machine
    gives it: 1001 where it names a group here (not always peeruser's), else our own group."""
    for gid in (1001, os.getgid()):
        try:
            return gid, grp.getgrgid(gid).gr_name
        except KeyError:
            pass
    pytest.skip("neither gid 1001 nor our own gid names a group on this machine")
