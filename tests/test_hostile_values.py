"""Absurd sizes and odd bytes, from outside, as real Slurm 22.05 answers them (checked on the
peer: /usr/bin/sbatch): accepted and pending, or refused at once with Slurm's line; bounded in
time and memory; never a traceback."""

from __future__ import annotations

import gc
import os
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
        # -t all: a one-node job may have started and ended by now (the more, the busier)
        shown = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%T %D %l")
        shown = shown.stdout.split()
        if args == ["-N", "4294967297"]:  # one node: it may start (and end) at once
            assert shown[1] == "1"
        else:
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


# --- bytes that are not UTF-8 ----------------------------------------------------------------


def raw(cluster, command: str, *args: str) -> subprocess.CompletedProcess:
    """A command's output as bytes (what it printed, undecoded)."""
    return subprocess.run(
        [sys.executable, str(BIN / command), *args],
        cwd=cluster.cwd,
        env=cluster.env,
        capture_output=True,
        timeout=60,
    )


def test_names_paths_and_scripts_in_bytes_that_are_not_utf8_run_as_on_slurm(cluster):
    """As on the peer: the job runs, its files land under the names given, squeue and scontrol
    print the bytes, sacct a ? for each (slurmdbd keeps UTF-8)."""
    (cluster.cwd / "lat.sh").write_bytes(b'#!/bin/bash\n#SBATCH -J caf\xe9\necho "caf\xe9"\n')
    os.mkdir(os.path.join(os.fsencode(cluster.cwd), b"d\xff"))
    named = raw(
        cluster,
        "sbatch",
        "--parsable",
        "-J",
        "n\udcffx",
        "--comment",
        "c\udcfe",
        "-o",
        "o\udcff-%j.out",
        "--wrap",
        "echo w\udce9",
    )
    latin = raw(cluster, "sbatch", "--parsable", "lat.sh")
    where = raw(cluster, "sbatch", "--parsable", "-D", "d\udcff", "--wrap", "pwd")
    for out in (named, latin, where):
        assert (out.returncode, out.stderr) == (0, b"")
    ids = [int(out.stdout) for out in (named, latin, where)]
    assert [r[1] for r in cluster.wait_done(*ids)] == ["COMPLETED"] * 3
    work = os.fsencode(cluster.cwd)
    with open(os.path.join(work, b"o\xff-%d.out" % ids[0]), "rb") as fh:
        assert fh.read() == b"w\xe9\n"
    assert (cluster.cwd / f"slurm-{ids[1]}.out").read_bytes() == b"caf\xe9\n"
    with open(os.path.join(work, b"d\xff", b"slurm-%d.out" % ids[2]), "rb") as fh:
        assert fh.read() == work + b"/d\xff\n"
    listed = raw(cluster, "squeue", "-h", "-t", "all", "-o", "%i %j").stdout
    assert listed == b"%d n\xffx\n%d caf\xe9\n%d wrap\n" % tuple(ids)
    accounted = raw(cluster, "sacct", "-X", "-n", "-P", "-o", "jobid,jobname").stdout
    assert accounted == b"%d|n?x\n%d|caf?\n%d|wrap\n" % tuple(ids)
    shown = raw(cluster, "scontrol", "show", "job", str(ids[0])).stdout
    assert b"JobName=n\xffx\n" in shown and b"Comment=c\xfe " in shown
    assert b"StdOut=" + work + b"/o\xff-%d.out\n" % ids[0] in shown
    by_name = raw(cluster, "squeue", "-h", "-t", "all", "-n", "n\udcffx", "-o", "%i").stdout
    assert by_name == b"%d\n" % ids[0]


def test_an_array_named_and_placed_in_bytes_that_are_not_utf8_runs_every_element(cluster):
    """The elements' paths (expanded from the pending record's patterns when each is split
    off) keep the bytes given: both elements run, their files land under those names."""
    os.mkdir(os.path.join(os.fsencode(cluster.cwd), b"d\xff"))
    out = raw(
        cluster,
        "sbatch",
        "--parsable",
        "--array=1-2",
        "-D",
        "d\udcff",
        "-J",
        "n\udcffx",
        "-o",
        "o\udcff-%A_%a.out",
        "--wrap",
        "echo $SLURM_ARRAY_TASK_ID",
    )
    assert (out.returncode, out.stderr) == (0, b"")
    array = int(out.stdout)
    assert [r[1] for r in cluster.wait_done(array)] == ["COMPLETED"] * 2
    where = os.path.join(os.fsencode(cluster.cwd), b"d\xff")
    for index in (1, 2):
        with open(os.path.join(where, b"o\xff-%d_%d.out" % (array, index)), "rb") as fh:
            assert fh.read() == b"%d\n" % index
    listed = raw(cluster, "squeue", "-h", "-t", "all", "-o", "%i %j").stdout
    assert sorted(listed.splitlines()) == [b"%d_1 n\xffx" % array, b"%d_2 n\xffx" % array]


# --- unusable state, configuration or rows: one Slurm-style line ---------------------------


COMMANDS = [
    ["sbatch", "--wrap", "true"],
    ["srun", "true"],
    ["salloc", "true"],
    ["sinfo"],
    ["scancel", "1"],
    ["scontrol", "hold", "1"],
]


def one_line(out: subprocess.CompletedProcess, prog: str) -> str:
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(f"{prog}: error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


@pytest.mark.parametrize("argv", COMMANDS[:4], ids=lambda a: a[0])
def test_a_binary_configuration_file(cluster, argv):
    """The commands that read the configuration (squeue reads it only for a sky backend)."""
    config = cluster.home / "slurmsky.yaml"
    config.write_bytes(bytes(range(256)) * 3)
    said = one_line(cluster.run(*argv), argv[0])
    assert said == (
        f"{argv[0]}: error: {config}: cannot read the configuration: 'utf-8' codec can't "
        "decode byte 0x80 in position 128: invalid start byte\n"
    )
    assert not (cluster.state / "state.db").exists() or cluster.jobs() == []


@pytest.fixture
def read_only_state(tmp_path, cluster):
    """The cluster's state on a tmpfs remounted read-only after a job ran (root and mount(8)
    needed, else skipped: as root, a 0555 directory is writable)."""
    where = tmp_path / "ro"
    where.mkdir()
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True
    )
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {out.stderr.decode().strip()}")
    try:
        cluster.state = where / "state"
        cluster.env["SLURMSKY_HOME"] = str(cluster.state)
        job = cluster.sbatch("--wrap", "true")
        cluster.wait_done(job)
        assert cluster.run("slurmsky", "agent", "stop").returncode == 0
        gc.collect()  # cluster.jobs()' connections, left to the collector
        deadline = time.monotonic() + 10  # the stopped agent may hold its files a moment
        while subprocess.run(["mount", "-o", "remount,ro", str(where)]).returncode != 0:
            assert time.monotonic() < deadline, "the state stayed busy"
            time.sleep(0.2)
        yield cluster.state
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_read_only_state_directory(read_only_state, cluster, argv):
    said = one_line(cluster.run(*argv, timeout=30), argv[0])
    assert said.startswith(f"{argv[0]}: error: slurmsky state {read_only_state}")
    assert "SLURMSKY_HOME" in said


GARBLED = [
    "name = CAST(x'ff41' AS TEXT)",
    "tasks_per_node = 'garbage'",
    "result = '[1, 2]'",
    "submit_time = 'x'",
    "time_limit = 'zz'",
    "end_time = 1e300",
]


@pytest.mark.parametrize("garble", GARBLED)
def test_scontrol_show_job_of_a_garbled_row(cluster, garble):
    """A row changed behind slurmsky's back: one error line, never a traceback."""
    job = cluster.sbatch("--wrap", "true")
    cluster.wait_done(job)
    assert cluster.run("slurmsky", "agent", "stop").returncode == 0
    with cluster.db() as conn:
        conn.execute(f"UPDATE jobs SET {garble}")
    for argv in (["scontrol", "show", "job", str(job)], ["squeue", "-t", "all"], ["sacct"]):
        out = cluster.run(*argv)
        if out.returncode:
            one_line(out, argv[0])
        assert "Traceback" not in out.stderr
