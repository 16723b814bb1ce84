"""srun --mpi=pmi2: the PMI world srun serves (runtime/pmi.py), against the Slurm 22.05 peer.

The wire transcripts below are what the peer's mpi/pmi2 plugin answered a stdlib PMI client
(PROBE) run as `srun --mpi=pmi2 -N2 -n4 --ntasks-per-node=2`, captured side by side; the mpi4py tests need the
`mpi` extra (mpich + mpi4py wheels) and skip without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmsky.runtime import pmi

# A PMI client with the standard library: speaks PMI-1 (argv[1] == "1") or PMI-2 on PMI_FD
# and prints rank 0's answers, the job id written <kvs>; a PMI-2 frame's length must be
# Slurm's (%-6d of the body).
PROBE = r"""
import os, socket, sys
s = socket.socket(fileno=int(os.environ["PMI_FD"]))
rank, kvs = os.environ["PMI_RANK"], os.environ["PMI_JOBID"]
def read(n):
    buf = b""
    while len(buf) < n:
        buf += s.recv(n - len(buf))
    return buf
def v1(line):
    s.sendall(line.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        buf += s.recv(4096)
    return buf.decode().rstrip("\n")
def v2(body):
    s.sendall(b"%-6d" % len(body) + body.encode())
    head = read(6)
    got = read(int(head))
    assert head == b"%-6d" % len(got), head
    return got.decode()
if sys.argv[1] == "1":
    out = [v1("cmd=init pmi_version=1 pmi_subversion=1"), v1("cmd=get_maxes"),
           v1("cmd=get_universe_size"), v1("cmd=get_appnum"), v1("cmd=get_my_kvsname"),
           v1("cmd=get kvsname=%s key=PMI_process_mapping" % kvs),
           v1("cmd=get kvsname=%s key=nokey" % kvs),
           v1("cmd=put kvsname=%s key=k%s value=v%s" % (kvs, rank, rank)),
           v1("cmd=barrier_in"), v1("cmd=get kvsname=%s key=k3" % kvs), v1("cmd=finalize")]
else:
    out = [v1("cmd=init pmi_version=2 pmi_subversion=0"),
           v2("cmd=fullinit;pmijobid=%s;pmirank=%s;threaded=FALSE;" % (kvs, rank)),
           v2("cmd=job-getid;"), v2("cmd=info-getjobattr;key=PMI_process_mapping;"),
           v2("cmd=info-getjobattr;key=universeSize;"), v2("cmd=info-getnodeattr;key=none;"),
           v2("cmd=info-putnodeattr;key=na%s;value=x%s;" % (rank, rank)),
           v2("cmd=info-getnodeattr;key=na%s;" % rank), v2("cmd=kvs-put;key=k%s;value=v%s;" % (rank, rank)),
           v2("cmd=kvs-fence;"), v2("cmd=kvs-get;jobid=%s;srcid=-1;key=k3;" % kvs),
           v2("cmd=kvs-get;key=nokey;"), v2("cmd=finalize;")]
if rank == "0":
    print("\n".join(out).replace(kvs, "<kvs>"))
"""

PEER_V1 = """\
cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1
cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024
cmd=universe_size rc=0 size=4
cmd=appnum rc=0 appnum=-1
cmd=my_kvsname rc=0 kvsname=<kvs>
cmd=get_result rc=0 value=(vector,(0,2,2))
cmd=get_result rc=1
cmd=put_result rc=0
cmd=barrier_out rc=0
cmd=get_result rc=0 value=v3
cmd=finalize_ack rc=0
"""

PEER_V2 = """\
cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0
cmd=fullinit-response;rc=0;pmi-version=2;pmi-subversion=0;rank=0;size=4;appnum=-1;\
debugged=FALSE;pmiverbose=FALSE;
cmd=job-getid-response;rc=0;jobid=<kvs>;
cmd=info-getjobattr-response;rc=0;found=TRUE;value=(vector,(0,2,2));
cmd=info-getjobattr-response;rc=0;found=TRUE;value=4;
cmd=info-getnodeattr-response;rc=0;found=FALSE;
cmd=info-putnodeattr-response;rc=0;
cmd=info-getnodeattr-response;rc=0;found=TRUE;value=x0;
cmd=kvs-put-response;rc=0;
cmd=kvs-fence-response;rc=0;
cmd=kvs-get-response;rc=0;found=TRUE;value=v3;
cmd=kvs-get-response;rc=0;found=FALSE;
cmd=finalize-response;rc=0;
"""

WORLD = "from mpi4py import MPI; c=MPI.COMM_WORLD; print(c.rank, c.size, c.allreduce(c.rank))"
# Rank 1 aborts, the others wait to be killed; first each prints the shared memory MPICH
# mapped, which a killed MPICH leaves in /dev/shm (the test removes it).
ABORT = """\
import time
from mpi4py import MPI
c = MPI.COMM_WORLD
with open("/proc/self/maps") as maps:
    print(*sorted({x.split()[-1] for x in maps if "/dev/shm/mpich" in x}), sep="\\n", flush=True)
c.Barrier()
if c.rank == 1:
    c.Abort(3)
time.sleep(60)
"""
UNKNOWN_TYPE = """\
srun: error: Couldn't find the specified plugin name for mpi/foo looking at all files
srun: error: cannot find mpi plugin for mpi/foo
srun: error: MPI: Cannot create context for mpi/foo
srun: error: MPI: Unable to load any plugin
srun: error: Invalid MPI type 'foo', --mpi=list for acceptable types
"""


def _has_mpi4py() -> bool:
    check = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True)
    return check.returncode == 0


needs_mpi = pytest.mark.skipif(
    not _has_mpi4py(), reason="mpi4py over MPICH not installed (pip install '.[mpi]')"
)


# -- the protocol, in process --------------------------------------------------------------


@pytest.mark.parametrize(
    "tasks,mapping",
    [  # the peer's answers for -N2 -n4, -N2 -n4 -m cyclic, -N2 -n3
        ([[0, 1], [2, 3]], "(vector,(0,2,2))"),
        ([[0, 2], [1, 3]], "(vector,(0,2,1),(0,2,1))"),
        ([[0, 1], [2]], "(vector,(0,1,2),(1,1,1))"),
        ([[0], [1], [2, 3]], "(vector,(0,2,1),(2,1,2))"),
    ],
)
def test_process_mapping_is_slurms(tasks, mapping):
    assert pmi.process_mapping(tasks) == mapping


def _frame(body: str) -> bytes:
    return b"%-6d" % len(body) + body.encode()


# Two tasks on two nodes, in the order real clients write: task 0 speaks PMI-1, task 1 PMI-2
# (threaded: its thrid comes back); a fence is one over both wires.
SESSION = [
    (0, b"cmd=init pmi_version=1 pmi_subversion=1\ncmd=put kvsname=7.0 key=a value=x\\ y\n"),
    (0, b"cmd=barrier_in\n"),
    (1, b"cmd=init pmi_version=2 pmi_subversion=0\n"),
    (1, _frame("cmd=fullinit;pmirank=1;threaded=FALSE;") + _frame("cmd=kvs-put;key=b;value=z;")),
    (1, _frame("cmd=kvs-fence;")),
    (0, b"cmd=get kvsname=7.0 key=b\n"),
    (1, _frame("cmd=kvs-get;key=a;thrid=0x9;")),
]


def _session(chunks_of):
    """SESSION with each write cut as chunks_of(bytes) says -> every answer, by task."""
    server = pmi.Server("7.0", [[0], [1]])
    answers = {0: b"", 1: b""}
    for gid, wrote in SESSION:
        for chunk in chunks_of(wrote):
            for task, answer in server.feed(gid, chunk):
                answers[task] += answer
    return answers


def test_a_fence_spans_both_wires_and_values_come_back_as_written():
    assert _session(lambda data: [data]) == {
        0: b"cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1\ncmd=put_result rc=0\n"
        b"cmd=barrier_out rc=0\ncmd=get_result rc=0 value=z\n",
        1: b"cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0\n"
        + _frame(
            "cmd=fullinit-response;rc=0;pmi-version=2;pmi-subversion=0;rank=1;size=2;"
            "appnum=-1;debugged=FALSE;pmiverbose=FALSE;"
        )
        + _frame("cmd=kvs-put-response;rc=0;")
        + _frame("cmd=kvs-fence-response;rc=0;")
        + _frame("cmd=kvs-get-response;rc=0;found=TRUE;value=x\\ y;thrid=0x9;"),
    }


@given(st.data())
def test_commands_cut_anywhere_read_the_same(data):
    def chunks_of(raw: bytes) -> list[bytes]:
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=8)))
        return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]

    assert _session(chunks_of) == _session(lambda raw: [raw])


def test_abort_unsupported_and_unwired_input():
    server = pmi.Server("7.0", [[0, 1]])
    assert server.feed(0, b"cmd=publish_name service=s port=p\n") == [
        (0, b"cmd=publish_result rc=-1 msg=not_supported_by_slurmsky\n")
    ]
    assert server.feed(0, _frame("cmd=abort;isworld=FALSE;")) == [] and not server.aborted
    assert server.feed(1, b"garbage that is no PMI at all\n") == []
    assert server.feed(1, b"cmd=abort exitcode=3\n") == [] and server.aborted


def test_mpi_types_as_slurm_takes_them():
    assert pmi.mpi_type("pmi2") == ("pmi2", None)
    assert pmi.mpi_type("none") == pmi.mpi_type("openmpi") == (None, None)
    for served_elsewhere in ("pmix", "pmix_v4", "cray_shasta"):
        assert pmi.mpi_type(served_elsewhere)[1].startswith("srun: warning: --mpi=")
    for unknown in ("foo", "PMI2"):
        with pytest.raises(pmi.MpiTypeError):
            pmi.mpi_type(unknown)


# -- real commands ------------------------------------------------------------------------


@pytest.mark.parametrize("wire,expected", [("1", PEER_V1), ("2", PEER_V2)])
def test_wire_transcripts_match_the_peer(cluster, wire, expected):
    cluster.script("probe.py", PROBE)
    out = cluster.run(
        "srun", "--mpi=pmi2", "-N2", "-n4", "--ntasks-per-node=2", sys.executable, "probe.py", wire
    )
    assert (out.returncode, out.stderr, out.stdout) == (0, "", expected)


def test_task_environment_in_a_batch_job(cluster):
    """The in-job srun, with SLURM_MPI_TYPE as its --mpi (an input variable)."""
    job = cluster.sbatch(
        "-N2",
        "-n2",
        "-o",
        "out.txt",
        "--wrap",
        "SLURM_MPI_TYPE=pmi2 srun -l bash -c 'env | grep -E \"^(PMI_|SLURM_MPI)\" | sort'",
    )
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    got = re.sub(r"PMI_JOBID=\S+", "PMI_JOBID=J", (cluster.cwd / "out.txt").read_text())
    assert sorted(re.sub(r"PMI_FD=\d+", "PMI_FD=N", got).splitlines()) == [
        f"{t}: {var}"
        for t in (0, 1)
        for var in ("PMI_FD=N", "PMI_JOBID=J", f"PMI_RANK={t}", "PMI_SIZE=2", "SLURM_MPI_TYPE=pmi2")
    ]
    jobid = re.search(r"PMI_JOBID=(\S+)", (cluster.cwd / "out.txt").read_text())
    assert jobid and jobid.group(1).startswith(f"{job}.0.")


def test_mpi_list_unknown_and_unserved_types(cluster):
    listed = cluster.run("srun", "--mpi=list")
    assert (listed.returncode, listed.stdout) == (0, "MPI plugin types are...\n\tnone\n\tpmi2\n")
    unknown = cluster.run("srun", "--mpi=foo", "true")
    assert (unknown.returncode, unknown.stderr) == (1, UNKNOWN_TYPE)
    assert cluster.jobs() == []  # refused before anything was allocated
    pmix = cluster.run("srun", "--mpi=pmix", "bash", "-c", 'echo "${PMI_FD-none}"')
    assert (pmix.returncode, pmix.stdout) == (0, "none\n")
    assert pmix.stderr == (
        "srun: warning: --mpi=pmix is not served by slurmsky (pmi2 is): start MPI programs "
        "that need it with mpirun inside the allocation\n"
    )


@needs_mpi
def test_mpi4py_world(cluster):
    out = cluster.run(
        "srun", "--mpi=pmi2", "-N2", "-n4", "--ntasks-per-node=2", sys.executable, "-c", WORLD
    )
    assert (out.returncode, out.stderr) == (0, "")
    assert sorted(out.stdout.splitlines()) == ["0 4 6", "1 4 6", "2 4 6", "3 4 6"]


@needs_mpi
def test_mpi4py_abort_kills_the_step(cluster):
    """As on the peer: srun's abort line, slurmstepd's, every task Killed, exit 128+9."""
    cluster.script("abort.py", ABORT)
    out = cluster.run("srun", "--mpi=pmi2", "-N2", "-n2", sys.executable, "abort.py")
    for path in set(out.stdout.split()):
        if path.startswith("/dev/shm/mpich") and os.path.exists(path):
            os.unlink(path)
    assert out.returncode == 137
    lines = out.stderr.splitlines()
    assert "srun: Job step aborted: Waiting up to 3 seconds for job step to finish." in lines
    assert any(
        re.fullmatch(r"slurmstepd-\S+: error: \*\*\* STEP \d+\.0 ON .* \*\*\*", x) for x in lines
    )
    assert sorted(re.sub(r"^srun: error: \S+: ", "", x) for x in lines if x.endswith("Killed")) == [
        "task 0: Killed",
        "task 1: Killed",
    ]
    assert any(x.startswith("Abort(3) on node 1") for x in lines)


@pytest.mark.peer
@pytest.mark.parametrize("wire,expected", [("1", PEER_V1), ("2", PEER_V2)])
def test_the_peer_still_answers_so(tmp_path, wire, expected):
    """The transcripts above, live from the peer's srun (skipped when it is down)."""
    srun = "/usr/bin/srun"
    if not os.access(srun, os.X_OK) or "UP" not in _scontrol_ping():
        pytest.skip("the Slurm peer is not up")
    (tmp_path / "probe.py").write_text(PROBE)
    out = subprocess.run(
        [
            srun,
            "--mpi=pmi2",
            "-N2",
            "-n4",
            "--ntasks-per-node=2",  # the layout of the transcripts, however busy the peer is
            "-J",
            "slurmsky-pmi-test",
            shutil.which("python3") or sys.executable,
            str(tmp_path / "probe.py"),
            wire,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (out.returncode, out.stdout) == (0, expected)


def _scontrol_ping() -> str:
    try:
        return subprocess.run(
            ["/usr/bin/scontrol", "ping"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
