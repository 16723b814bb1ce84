"""Absurd sizes and odd bytes, from outside, as real Slurm 22.05 answers them (checked on the
peer: /usr/bin/sbatch): accepted and pending, or refused at once with Slurm's line; bounded in
time and memory; never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import BIN

# (argv, what real sbatch did: exit code, its stderr) -- measured on the peer
SIZES = [
    (["-N", "10000000"], 0, ""),
    (["-N", "2147483647"], 0, ""),
    (["-n", "2147483647"], 0, ""),
    (["-N", "4294967297"], 0, ""),  # Slurm's (int) cast: one node
    (["-t", "99999999999999999999"], 0, ""),
    (
        ["-N", "99999999999999999999"],
        255,
        'error: "99999999999999999999" is not a valid node count',
    ),
    (["-N", "2147483648"], 255, 'error: "2147483648" is not a valid node count'),
    (
        ["-N", "8589934592"],
        1,
        "error: Batch job submission failed: Node count specification invalid",
    ),
    (
        ["-N", "1-99999999999999999999"],
        255,
        "error: Maximum node count -1 is less than minimum node count 1",
    ),
    (
        ["-n", "99999999999999999999"],
        1,
        "error: Numeric argument (9223372036854775807) to big for --ntasks.",
    ),
    (["--mem", "99999999999999999999"], 255, "error: Invalid --mem specification"),
]


def timed(cluster, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run sbatch; (its result, seconds)."""
    began = time.monotonic()
    out = cluster.run("sbatch", *args, timeout=30)
    return out, time.monotonic() - began


@pytest.mark.parametrize("args,code,said", SIZES)
def test_absurd_sizes_as_slurm_answers_them(cluster, args, code, said):
    out, seconds = timed(cluster, "--parsable", *args, "--wrap", "true")
    assert out.returncode == code, out.stderr
    assert out.stderr == (f"sbatch: {said}\n" if said else "")
    assert "Traceback" not in out.stderr
    assert seconds < 10  # 5.6 s and 720 MB for -N 10000000 when layouts were built per node
    if code == 0:
        job = int(out.stdout)
        shown = cluster.run("squeue", "-h", "-j", str(job), "-o", "%T %D %l").stdout.split()
        assert shown[0] == "PENDING" or args[0] == "-t"
        if args == ["-N", "2147483647"]:
            assert shown[1:] == ["2147483647", "UNLIMITED"]
        if args[0] == "-t":
            assert shown[2] == "UNLIMITED"  # Slurm: C int wrap to 0 minutes
    else:
        assert cluster.jobs() == [] or all(r[1] == "FAILED" for r in cluster.jobs())


def test_a_huge_node_count_costs_no_memory(cluster):
    """Measured in a child of its own: its peak RSS stays near an ordinary sbatch's."""
    probe = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], capture_output=True, timeout=30);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )

    def peak(*args: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", probe, sys.executable, str(BIN / "sbatch"), *args],
            env=cluster.env,
            cwd=cluster.cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return int(out.stdout)

    small = peak("--wrap", "true")
    huge = peak("-N", "2147483647", "--wrap", "true")
    assert huge < small + 20_000  # KB; MemoryError before


def test_test_only_of_more_nodes_than_there_are(cluster):
    out = cluster.run("sbatch", "--test-only", "-N", "10000000", "--wrap", "true")
    assert (out.returncode, out.stdout, out.stderr) == (
        1,
        "",
        "allocation failure: Requested node configuration is not available\n",
    )
