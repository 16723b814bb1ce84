"""Files a sky job writes beside itself come home through its log: the node runtime's sender
(runtime/filesync.py) and the agent's receiver (backends/sky/files_home.py, through the
LogReader that reads the log), both ways, with lines the log copy cut in two."""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmsky.backends.sky import files_home
from slurmsky.backends.sky.files_home import FilesHome, Frames
from slurmsky.backends.sky.output import LogReader, sky_run
from slurmsky.backends.sky.task import translate
from slurmsky.config import Config, load_config
from slurmsky.errors import SlurmError
from slurmsky.parse.request import build_batch_request, parse_command_line
from slurmsky.render.sacct_format import SACCT_VALUES
from slurmsky.runtime import filesync
from slurmsky.runtime.filesync import FileSync, frame, name64

ROOT = Path(__file__).resolve().parent.parent
NODE = "(worker1, rank=1, pid=4242, ip=10.0.0.2) "  # SkyPilot's prefix of a node's lines
# another writer's whole line, which the log copy may put between a cut line and its rest:
# inside the cut line (as seen on the sky-e2e stack) or on a line of its own
OTHER = "(head, rank=0, pid=22871) 2026-11-27 16:04:34,710 slurmsky-runtime[node0]: job 1: done"
# the same from a one-node job, whose prefix is its task's name (a 5 MB file's chunk on the stack)
ONE_NODE = (
    "(blob.sh, pid=21949) 2026-11-27 23:01:58,414 slurmsky-runtime[node0]: job 1: COMPLETED 0:0"
)
BETWEEN = st.sampled_from(["", "inside", "inside one-node", "own line"])


def _cut(line: str, at: int, prefixed: bool, between: str) -> str:
    """`line` cut at `at` by the log copy: its rest on the next log line (with SkyPilot's
    node prefix or not), another writer's whole line `between` them."""
    rest = (NODE if prefixed else "") + line[at:]
    if between.startswith("inside"):
        return line[:at] + (ONE_NODE if between.endswith("one-node") else OTHER) + "\n" + rest
    if between == "own line":
        return line[:at] + "\n" + OTHER + "\n" + rest
    return line[:at] + "\n" + rest


SETTINGS = {"cap_mb": 100, "exclude": [], "interval": 3600}


def _sender(workdir: Path, rank: int = 0, own=(), **given) -> tuple[FileSync, list[str], list]:
    """A node's FileSync on `workdir` whose frame lines and error-file lines are kept."""
    lines: list[str] = []
    said: list[str] = []
    job = SimpleNamespace(job_id=7, rank=rank, workdir=str(workdir))
    sync = FileSync(job, dict(SETTINGS, **given), said.append, own, lines.append)
    return sync, lines, said


def _reader(home: Path) -> LogReader:
    return LogReader(
        SimpleNamespace(
            job_id=7, stdout=str(home / "out"), stderr=str(home / "out"), workdir=str(home)
        ),
        append=False,
    )


def _snapshot(sync: FileSync) -> None:
    """start()'s snapshot without its thread (sends happen when the test says)."""
    sync.sent = {rel: (s.st_size, s.st_mtime_ns, s.st_mode) for rel, s in sync._scan()}


def _names(lines: list[str]) -> list[bytes]:
    import base64

    return sorted(
        base64.b64decode(line.split(" ")[4]) for line in lines if line.split(" ")[2] in ("b", "x")
    )


# -- framing, both ways --------------------------------------------------------------------

NAME_PART = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(NAME_PART, min_size=1, max_size=3),
    data=st.binary(max_size=7000),
    mode=st.integers(0, 0o777).map(lambda m: m | 0o400),
    cut=st.tuples(st.integers(0, 10_000), st.integers(0, 100_000), st.booleans(), BETWEEN),
)
def test_any_file_round_trips_through_frames_cut_anywhere(parts, data, mode, cut):
    """Arbitrary bytes, any name (not UTF-8 too) and mode come home identical, also when
    one frame line is cut at any point into two log lines (the second with or without
    SkyPilot's node prefix), another writer's line between them or not."""
    rel = b"/".join(parts)
    if parts[0] == b".slurmsky":
        return  # the runtime's own directory is never sent
    with tempfile.TemporaryDirectory() as node, tempfile.TemporaryDirectory() as home:
        path = os.path.join(os.fsencode(node), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        sync, lines, _ = _sender(Path(node))
        sync.send()
        which, at, prefixed, between = cut
        line = lines[which % len(lines)].rstrip("\n")
        lines[which % len(lines)] = _cut(line, at % (len(line) + 1), prefixed, between) + "\n"
        reader = _reader(Path(home))
        reader.write("".join(NODE + x for x in lines))
        got = os.path.join(os.fsencode(home), rel)
        with open(got, "rb") as f:
            assert f.read() == data
        assert os.stat(got).st_mode & 0o7777 == mode
        assert reader.files.notes == []


def test_a_frame_cut_inside_its_marker_is_joined_and_others_are_left_alone():
    body = "e 1.0.1 0 " + hashlib.sha256(b"").hexdigest()
    line = frame(*body.split(" ")).rstrip("\n")
    for at in range(len(line) + 1):
        frames = Frames()
        got = frames.feed("x" + line[:at]) + frames.feed(NODE + line[at:])
        assert got == [body], at
    frames = Frames()
    assert frames.feed("an ordinary line ending in S") == []
    assert frames.feed(line) == [body]  # the S was no frame's start
    assert frames.feed(line[:-3]) + frames.feed("not its rest") + frames.feed(line) == [body]


def test_a_file_with_a_missing_chunk_is_named_not_written(tmp_path):
    node, home = tmp_path / "node", tmp_path / "home"
    node.mkdir()
    home.mkdir()
    (home / "ckpt.bin").write_bytes(b"what was home before")
    sync, lines, _ = _sender(node)
    _snapshot(sync)
    (node / "ckpt.bin").write_bytes(os.urandom(5000))  # three chunks
    sync.send()
    assert [line.split(" ")[2] for line in lines] == ["b", "c", "c", "c", "e"]
    reader = _reader(home)
    reader.write("".join(lines[:2] + lines[3:]))
    assert (home / "ckpt.bin").read_bytes() == b"what was home before"
    assert reader.files.notes == ["ckpt.bin: a chunk missing in the log, not written"]
    reader.write(lines[0])  # a begin whose end never comes
    reader.result = {"state": "COMPLETED"}
    assert reader.final() == {
        "state": "COMPLETED",
        "files_home": "files home: ckpt.bin: a chunk missing in the log, not written; "
        "ckpt.bin: incomplete in the log, not written",
    }
    assert sorted(os.listdir(home)) == ["ckpt.bin"]  # no temporary file left


# -- the receiver ---------------------------------------------------------------------------


def _frames_of(name: bytes, data: bytes, fid: str = "7.0.1") -> str:
    import base64

    return (
        frame("b", fid, base64.b64encode(name).decode(), "644", len(data))
        + frame("c", fid, 0, base64.b64encode(data).decode())
        + frame("e", fid, 1, hashlib.sha256(data).hexdigest())
    )


def test_paths_that_leave_the_job_directory_are_refused(tmp_path):
    home, outside = tmp_path / "home", tmp_path / "outside"
    home.mkdir()
    outside.mkdir()
    (home / "link").symlink_to(outside)
    got = FilesHome(str(home))
    frames = Frames()
    names = [b"../escaped", b"/abs/escaped", b"a/../../escaped", b"link/escaped", b"./x"]
    for name in names:
        for line in _frames_of(name, b"x").splitlines():
            for body in frames.feed(line):
                got.frame(body)
    assert got.notes == [
        "../escaped: a path outside the job's directory, refused",
        "/abs/escaped: a path outside the job's directory, refused",
        "a/../../escaped: a path outside the job's directory, refused",
        "link/escaped: a symbolic link on its path here, refused",
        "./x: a path outside the job's directory, refused",
    ]
    assert os.listdir(outside) == [] and sorted(os.listdir(home)) == ["link"]
    assert not (tmp_path / "escaped").exists()


def test_a_write_error_here_is_recorded_and_files_already_home_stay(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    reader = _reader(home)
    reader.write(_frames_of(b"first.txt", b"one\n"))
    assert (home / "first.txt").read_bytes() == b"one\n"

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files_home.os, "replace", full)
    reader.write(_frames_of(b"first.txt", b"two\n", "7.0.2") + _frames_of(b"new", b"3", "7.0.3"))
    assert (home / "first.txt").read_bytes() == b"one\n"
    assert sorted(os.listdir(home)) == ["first.txt"]  # no partial or temporary file
    reader.result = {"state": "COMPLETED"}
    comment = (
        "files home: first.txt: not written here: No space left on device; "
        "new: not written here: No space left on device"
    )
    assert reader.final()["files_home"] == comment
    row = SimpleNamespace(
        step=None, job=SimpleNamespace(rec=SimpleNamespace(result=reader.final()))
    )
    assert SACCT_VALUES["Comment"](row) == comment


@pytest.fixture
def full_disk(tmp_path):
    """A directory on a 1 MB tmpfs (root only: skipped elsewhere), unmounted after."""
    home = tmp_path / "small"
    home.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(home)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"no tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield home
    finally:
        subprocess.run(["umount", str(home)], check=True, timeout=30)


def test_a_full_disk_here_names_what_did_not_come_and_keeps_what_did(full_disk):
    """A real full filesystem at home (1 MB): a file that fits arrives; one that does not
    is named (No space left on device) and leaves no partial or temporary file; a newer
    version of a file already home that does not fit leaves the old one whole; a small
    file after them still arrives. The job's Comment says what did not come."""
    home = full_disk
    reader = _reader(home)
    first, newer = os.urandom(600_000), os.urandom(500_000)
    reader.write(_frames_of(b"first.bin", first))
    reader.write(_frames_of(b"second.bin", os.urandom(600_000), "7.0.2"))
    reader.write(_frames_of(b"first.bin", newer, "7.0.3"))
    reader.write(_frames_of(b"small.txt", b"fits\n", "7.0.4"))
    assert (home / "first.bin").read_bytes() == first
    assert (home / "small.txt").read_bytes() == b"fits\n"
    assert sorted(os.listdir(home)) == ["first.bin", "small.txt"]
    assert reader.final() == {
        "files_home": "files home: second.bin: not written here: No space left on device; "
        "first.bin: not written here: No space left on device"
    }


def test_output_a_full_disk_here_cannot_hold_is_named_and_the_read_goes_on(full_disk):
    """The job's output past what the disk holds: named once in the record (Comment), the
    read goes on (the RESULT is read), and a file that came home before stays whole."""
    import base64
    import json

    home = full_disk
    reader = _reader(home)
    chunk = os.urandom(300_000)
    lines = ["SLURMSKY-IO s 0 "] + [
        f"SLURMSKY-IO o {at} {base64.b64encode(chunk).decode()}"
        for at in range(0, 1_200_000, 300_000)
    ]
    result = base64.b64encode(json.dumps({"state": "COMPLETED"}).encode()).decode()
    reader.write("\n".join(lines[:2]) + "\n")
    reader.write(_frames_of(b"small.txt", b"fits\n"))
    reader.write("\n".join(lines[2:]) + f"\nSLURMSKY-IO r 0 {result}\n")
    assert (home / "small.txt").read_bytes() == b"fits\n"
    assert (home / "out").read_bytes()[:300_000] == chunk
    assert reader.final() == {
        "state": "COMPLETED",
        "files_home": f"files home: {home}/out: output not written here: No space left on device",
    }


# -- the sender -----------------------------------------------------------------------------


def test_only_what_the_job_created_or_changed_is_sent(tmp_path):
    node, outside = tmp_path / "node", tmp_path / "outside"
    node.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    (node / "input.csv").write_text("uploaded with the workdir\n")
    (node / "data").mkdir()
    (node / "data" / "kept.txt").write_text("kept\n")
    sync, lines, _ = _sender(node, own=[str(node / "slurm-7.out")])
    _snapshot(sync)
    (node / "slurm-7.out").write_text("the job's own output\n")
    (node / ".slurmsky").mkdir()
    (node / ".slurmsky" / "stdout-7").write_text("node output\n")
    (node / "data" / "kept.txt").write_text("changed\n")
    (node / "result.txt").write_text("new\n")
    (node / "out-link").symlink_to(outside / "secret")
    (node / "in-link").symlink_to(node / "result.txt")
    (node / "dir-link").symlink_to(outside)
    sync.send()
    assert _names(lines) == [b"data/kept.txt", b"in-link", b"result.txt"]
    lines.clear()
    sync.send()
    assert lines == []  # nothing changed since
    (node / "result.txt").write_text("newer\n")
    sync.send()
    assert _names(lines) == [b"in-link", b"result.txt"]


def test_excluded_patterns_are_not_sent(tmp_path):
    node = tmp_path / "node"
    for rel in (
        "a.tmp",
        "sub/b.tmp",
        "scratch/x",
        "sub/scratch/y",
        "top.txt",
        "sub/top.txt",
        "logs/run.log",
        "logs/deep/run.log",
        "keep.txt",
        "scratch-file",
    ):
        (node / rel).parent.mkdir(parents=True, exist_ok=True)
        (node / rel).write_text(rel)
    sync, lines, _ = _sender(node, exclude=["*.tmp", "scratch/", "/top.txt", "logs/*.log"])
    sync.send()
    assert _names(lines) == [b"keep.txt", b"logs/deep/run.log", b"scratch-file", b"sub/top.txt"]


def test_over_the_cap_a_file_is_listed_in_the_error_file_and_the_comment(tmp_path):
    node, home = tmp_path / "node", tmp_path / "home"
    node.mkdir()
    home.mkdir()
    sync, lines, said = _sender(node, cap_mb=1)
    (node / "small.txt").write_bytes(b"s" * 1000)
    (node / "z-big.bin").write_bytes(b"b" * 1048576)  # with small.txt: past the 1 MB cap
    sync.send()
    assert said == [
        "slurmsky: files home: z-big.bin (1048576 bytes) over the 1 MB cap, left on the node"
    ]
    (node / "z-big.bin").write_bytes(b"b" * 1048577)
    sync.send()  # listed once
    assert len(said) == 1
    reader = _reader(home)
    reader.write("".join(lines))
    assert (home / "small.txt").read_bytes() == b"s" * 1000
    assert not (home / "z-big.bin").exists()
    reader.result = {"state": "COMPLETED"}
    assert reader.final()["files_home"] == (
        "files home: z-big.bin (1048576 bytes) over the 1 MB cap, left on the node"
    )


@pytest.mark.parametrize("rank", [0, 1])
def test_a_file_past_the_cap_says_how_to_fetch_it(tmp_path, rank):
    """The spec's `left` (a salloc step's: its cluster stays until salloc ends) ends the line
    in the error file and the Comment: the path shell-quoted where it says {path}, the
    node's ssh name (SkyPilot's: the cluster, CLUSTER-workerN for node N) at {worker}."""
    node, home = tmp_path / "node", tmp_path / "home"
    node.mkdir()
    home.mkdir()
    left = (
        "left on the node until salloc ends; fetch it from here with: "
        "rsync -Pavz c1{worker}:sky_workdir/{path} {path}"
    )
    sync, lines, said = _sender(node, rank=rank, cap_mb=1, left=left)
    (node / "my model.bin").write_bytes(b"m" * 1048577)
    sync.send()
    host = "c1-worker1" if rank else "c1"
    line = (
        "my model.bin (1048577 bytes) over the 1 MB cap, left on the node until salloc ends; "
        f"fetch it from here with: rsync -Pavz {host}:sky_workdir/'my model.bin' 'my model.bin'"
    )
    assert said == [f"slurmsky: files home: {line}"]
    reader = _reader(home)
    reader.write("".join(lines))
    assert reader.final() == {"files_home": f"files home: {line}"}
    assert os.listdir(home) == []


def test_a_node_that_shares_node0s_filesystem_sends_nothing(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    node0, lines0, _ = _sender(shared, rank=0)
    node1, lines1, _ = _sender(shared, rank=1)
    node0.start()
    node1.start()
    (shared / "out.txt").write_text("once\n")
    node1.finish()
    node0.finish()
    assert lines1 == [] and _names(lines0) == [b"out.txt"]
    alone = tmp_path / "alone"  # a node with its own disk sends its own files
    alone.mkdir()
    node1, lines1, _ = _sender(alone, rank=1)
    node1.start()
    (alone / "out.txt").write_text("node 1\n")
    node1.finish()
    assert _names(lines1) == [b"out.txt"] and lines1[0].split(" ")[3] == "7.1.1"


# -- config, spec and notes -----------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config({"SLURMSKY_CONFIG": str(path), "HOME": str(tmp_path)})


def _request(tmp_path: Path, *argv: str):
    (tmp_path / "job.sh").write_text("#!/bin/bash\ntrue\n")
    return build_batch_request(
        parse_command_line("sbatch", [*argv, "job.sh"]), {"HOME": "/h"}, str(tmp_path), lambda: b""
    )


def test_files_home_config_is_off_or_a_mapping_and_reaches_the_spec(tmp_path):
    cfg = _config(
        tmp_path,
        "backend: sky\npartitions:\n  plain: {default: true}\n  none: {files_home: false}\n"
        "  tuned: {files_home: {cap_mb: 5, exclude: ['*.tmp'], interval: 10}}\n",
    )
    spec = translate(_request(tmp_path), cfg).spec
    left = (
        "left on the node, which goes when the job ends: raise partitions.{0}.files_home.cap_mb,"
        " or write it to a bucket (partitions.{0}.file_mounts)"
    )
    assert spec["files_home"] == {
        "cap_mb": 10,
        "exclude": [],
        "interval": 60,
        "left": left.format("plain"),
    }
    assert translate(_request(tmp_path, "-p", "none"), cfg).spec["files_home"] is None
    tuned = translate(_request(tmp_path, "-p", "tuned"), cfg)
    assert tuned.spec["files_home"] == {
        "cap_mb": 5,
        "exclude": ["*.tmp"],
        "interval": 10,
        "left": left.format("tuned"),
    }
    described = load_backend_describe(tuned, cfg, tmp_path)
    assert (
        f"# files home: what the job creates or changes in the workdir on its nodes comes back "
        f"to {tmp_path}, except *.tmp, every 10 s while it runs and at its end; past 5 MB a "
        "file stays on the node (partitions.tuned.files_home)\n"
    ) in described
    far = translate(_request(tmp_path, "-D", "/only/on/the/cluster"), cfg)
    assert far.spec["files_home"] is None  # its files are on the cluster, where it asked
    for bad in ("files_home: true", "files_home: {cap_mb: '1'}", "files_home: {size: 1}"):
        with pytest.raises(SlurmError):
            _config(tmp_path, f"partitions:\n  p: {{{bad}}}\n")


def load_backend_describe(translation, cfg: Config, tmp_path: Path) -> str:
    """What sbatch --test-only prints of a translated job (the backend's describe)."""
    from slurmsky import backends
    from slurmsky.core.planning import build

    plan = build(_request(tmp_path, "-p", "tuned"), cfg, backends.get("sky"))
    assert plan.spec["files_home"] == translation.spec["files_home"]
    return backends.get("sky").describe(plan)


# -- the real runtime on a node here, its log read home -------------------------------------


def _node_run(tmp_path: Path, script: str, *argv: str, cap_mb: int = 100, interval: int = 60):
    """The task's `run` of a job, as SkyPilot's bash runs it on one node here (its synced
    workdir: a copy of the submit directory), started; its stdout is the run log."""
    home_dir, workdir, node_home = tmp_path / "home", tmp_path / "sky_workdir", tmp_path / "nh"
    for d in (home_dir, workdir, node_home / ".slurmsky" / "runtime"):
        d.mkdir(parents=True)
    (node_home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
    (home_dir / "job.sh").write_text(script)
    (workdir / "job.sh").write_text(script)  # uploaded with the workdir: never sent back
    files = {"cap_mb": cap_mb, "exclude": ["*.tmp"], "interval": interval}
    cfg = Config(path="x", backend="sky", partitions={"p": {"files_home": files}})
    req = build_batch_request(
        parse_command_line("sbatch", ["-p", "p", *argv, "job.sh"]), {}, str(home_dir), lambda: b""
    )
    spec = translate(req, cfg, job_id=5).spec
    node = dict(spec, output=".slurmsky/stdout-5", error=None)  # as launch_task makes it
    proc = subprocess.Popen(
        ["bash", "-c", sky_run(node, workdir=None)],
        cwd=workdir,
        env={
            "HOME": str(node_home),
            "PATH": os.environ["PATH"],
            "SKYPILOT_NODE_RANK": "0",
            "SKYPILOT_NODE_IPS": "127.0.0.1",
            "SKYPILOT_NUM_NODES": "1",
            "SKYPILOT_TASK_ID": "t-5",
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    job = SimpleNamespace(
        job_id=5,
        stdout=str(home_dir / "slurm-5.out"),
        stderr=str(home_dir / "slurm-5.out"),
        workdir=str(home_dir),
    )
    return proc, LogReader(job, append=False), home_dir, workdir


def _finish(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def test_a_jobs_files_come_home_from_the_real_runtime(tmp_path):
    """The node runtime's sender and the agent's receiver, with the emitter beside them:
    what the job wrote (a subdirectory, an executable, a name that is not UTF-8) is in the
    submit directory at the end; a scratch file excluded, one past the cap listed in the
    job's error file and the job's Comment, the uploaded script not sent back."""
    script = (
        "#!/bin/bash\n"
        "mkdir -p results\n"
        "printf 'a,b\\n1,2\\n' > results/table.csv\n"
        "printf '#!/bin/sh\\necho hi\\n' > run.sh; chmod 750 run.sh\n"
        "printf 'bytes' > $'caf\\xe9.txt'\n"
        "echo scratch > x.tmp\n"
        "head -c 1100000 /dev/zero > zz-big.bin\n"
        "echo done\n"
    )
    proc, reader, home, workdir = _node_run(tmp_path, script, cap_mb=1)
    reader.write(_finish(proc))
    assert proc.returncode == 0
    assert (home / "results" / "table.csv").read_text() == "a,b\n1,2\n"
    assert (home / "run.sh").stat().st_mode & 0o777 == 0o750
    assert (home / os.fsdecode(b"caf\xe9.txt")).read_bytes() == b"bytes"
    assert not (home / "x.tmp").exists() and not (home / "zz-big.bin").exists()
    assert not (home / ".slurmsky").exists()
    over = (
        "zz-big.bin (1100000 bytes) over the 1 MB cap, left on the node, which goes when the "
        "job ends: raise partitions.p.files_home.cap_mb, or write it to a bucket "
        "(partitions.p.file_mounts)"
    )
    assert (home / "slurm-5.out").read_text() == f"done\nslurmsky: files home: {over}\n"
    assert reader.final()["files_home"] == f"files home: {over}"
    assert sorted(os.listdir(home)) == sorted(
        ["job.sh", "results", "run.sh", os.fsdecode(b"caf\xe9.txt"), "slurm-5.out"]
    )


def _runtime_pid(pid: int) -> int | None:
    """The node runtime among the descendants of `pid` (by /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if b"slurmsky.runtime\0node" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    except OSError:
        return None
    for child in children:
        found = _runtime_pid(int(child))
        if found:
            return found
    return None


def test_a_checkpoint_comes_home_while_the_job_runs_and_a_cancel_still_sends(tmp_path):
    """Every interval the node sends what changed: the checkpoint is home before the job
    ends; the job is then cancelled (SIGTERM to the runtime, as SkyPilot's cancel) and what
    it wrote meanwhile comes home from the runtime's end."""
    gate = tmp_path / "gate"
    script = (
        "#!/bin/bash\n"
        "echo step1 > ckpt.txt\n"
        f"while [ ! -e {gate} ]; do sleep 0.1; done\n"
        "echo step2 > ckpt.txt\n"
        "echo last > last.txt\n"
        "exec sleep 600\n"
    )
    proc, reader, home, workdir = _node_run(tmp_path, script, interval=1)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while not (home / "ckpt.txt").exists():
        assert time.monotonic() < deadline
        line = proc.stdout.readline()
        assert line, "the run ended before the checkpoint came home"
        reader.write(line)
    assert (home / "ckpt.txt").read_text() == "step1\n"
    assert reader.result is None  # the job still runs
    gate.touch()
    while not (workdir / "last.txt").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    runtime = _runtime_pid(proc.pid)
    assert runtime is not None
    os.kill(runtime, signal.SIGTERM)
    reader.write(_finish(proc))
    assert (home / "ckpt.txt").read_text() == "step2\n"
    assert (home / "last.txt").read_text() == "last\n"
    assert reader.result["state"] == "CANCELLED"


def test_a_send_before_the_first_interval_skips_a_file_still_being_written(tmp_path):
    """The sends of a job's first seconds take what has not changed for QUIET s: a file
    being written is not sent at each of them (every send counts against the cap); the
    sends at the interval and the last one take everything."""
    sync, lines, _said = _sender(tmp_path)
    _snapshot(sync)
    (tmp_path / "done.txt").write_text("done\n")
    (tmp_path / "growing.log").write_text("1\n")
    old = time.time() - 2 * filesync.QUIET
    os.utime(tmp_path / "done.txt", (old, old))
    sync.send(filesync.QUIET)
    assert _names(lines) == [b"done.txt"]
    sync.send()
    assert _names(lines) == [b"done.txt", b"growing.log"]


def test_what_a_job_writes_first_comes_home_in_seconds_whatever_the_interval(tmp_path):
    """The first sends come 2, 4, 8 ... s after the start (a cancel through SkyPilot ends the
    log's reader with the job, so only a send before it brings the files home), whatever
    the interval; the job is ended by its gate, not waited for."""
    gate = tmp_path / "gate"
    script = f"#!/bin/bash\necho early > early.txt\nwhile [ ! -e {gate} ]; do sleep 0.1; done\n"
    proc, reader, home, _workdir = _node_run(tmp_path, script, interval=3600)
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()  # the log's lines, read in a thread (no wait blocks)
    pump = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True)
    pump.start()
    deadline = time.monotonic() + 60
    try:
        while not (home / "early.txt").exists():
            assert time.monotonic() < deadline, "not home within 60 s"
            assert proc.poll() is None, "the run ended before the file came home"
            try:
                reader.write(lines.get(timeout=0.5))
            except queue.Empty:
                pass
        assert reader.result is None  # the job still runs
    finally:
        gate.touch()
        proc.wait(timeout=60)
        pump.join(10)
        reader.write("".join(lines.queue))
    assert (home / "early.txt").read_text() == "early\n"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(min_size=1, max_size=6000),
    cut=st.tuples(
        st.integers(0, 10),
        st.one_of(st.integers(0, 40), st.integers(0, 10_000)),  # in the marker, or anywhere
        st.booleans(),
        BETWEEN,
    ),
)
def test_output_lines_cut_in_two_still_write_the_output_file(tmp_path_factory, data, cut):
    """The emitter's SLURMSKY-IO lines, one cut at any point into two log lines (the second
    with or without SkyPilot's node prefix, another writer's line between them or not): the
    --output file holds exactly the job's bytes and the RESULT is read."""
    import base64
    import json

    home = tmp_path_factory.mktemp("home")
    lines = ["SLURMSKY-IO s 0 "]
    for at in range(0, len(data), 2048):
        lines.append(f"SLURMSKY-IO o {at} {base64.b64encode(data[at : at + 2048]).decode()}")
    result = json.dumps({"state": "COMPLETED", "exit_code": 0}).encode()
    lines.append(f"SLURMSKY-IO r 0 {base64.b64encode(result).decode()}")
    which, at, prefixed, between = cut
    line = lines[which % len(lines)]
    lines[which % len(lines)] = _cut(line, at % (len(line) + 1), prefixed, between)
    reader = _reader(home)
    reader.write("".join(NODE + x + "\n" for x in lines))
    assert (home / "out").read_bytes() == data
    assert reader.result == {"state": "COMPLETED", "exit_code": 0}


def test_output_lines_cut_at_every_point_still_write_the_output_file(tmp_path):
    """The same, exhaustively where a cut is hardest (in the marker, at the end)."""
    import base64
    import json

    data = bytes(range(256)) * 9  # two chunks: offsets 0 and 2048
    result = json.dumps({"state": "COMPLETED"}).encode()
    lines = [
        "SLURMSKY-IO s 0 ",
        f"SLURMSKY-IO o 0 {base64.b64encode(data[:2048]).decode()}",
        f"SLURMSKY-IO o 2048 {base64.b64encode(data[2048:]).decode()}",
        f"SLURMSKY-IO r 0 {base64.b64encode(result).decode()}",
    ]
    for which in range(1, 4):
        end = len(lines[which])  # every point of the marker and the tag, every 13th between
        for at in {*range(40), *range(0, end, 13), *range(end - 8, end + 1)}:
            for how in (
                (p, b) for p in (False, True) for b in ("", "inside", "inside one-node", "own line")
            ):
                cut = list(lines)
                cut[which] = _cut(cut[which], at, *how)
                reader = _reader(tmp_path)
                reader.write("".join(NODE + x + "\n" for x in cut))
                assert (tmp_path / "out").read_bytes() == data, (which, at, how)
                assert reader.result == {"state": "COMPLETED"}, (which, at, how)


def test_what_did_not_come_home_is_kept_whatever_ends_the_job(tmp_path):
    """A cancelled job's RESULT is SkyPilot's, and a log may hold none: what of the job's
    files did not come home is in the recorded RESULT all the same."""
    from slurmsky.backends.sky import sync as skysync

    reader = _reader(tmp_path)
    reader.write(frame("x", "7.0.1", name64("big.bin"), 5000000, 1))
    note = "files home: big.bin (5000000 bytes) over the 1 MB cap, left on the node"
    assert reader.final() == {"files_home": note}  # no RESULT in the log
    cancelled = skysync.result_of({"status": "CANCELLED", "end_at": 9.0}, reader.final())
    assert (cancelled["state"], cancelled["files_home"]) == ("CANCELLED", note)
    done = skysync.result_of({"status": "SUCCEEDED", "end_at": 9.0}, reader.final())
    assert (done["state"], done["files_home"]) == ("COMPLETED", note)
    reader.result = {"state": "TIMEOUT", "exit_code": 0, "signal": 0, "end": 8.0}
    timeout = skysync.result_of({"status": "SUCCEEDED", "end_at": 9.0}, reader.final())
    assert (timeout["state"], timeout["files_home"]) == ("TIMEOUT", note)


@pytest.mark.parametrize("shared", [False, True])
def test_two_nodes_send_their_own_files_unless_they_share_node0s(tmp_path, shared):
    """A 2-node job run by the real runtime on two "nodes" here (their logs interleaved as
    SkyPilot's, node 1's lines under its prefix): each node's srun task writes a file in its
    workdir. With workdirs of their own, each node sends its file; sharing node 0's, node 1
    sees node 0's mark and sends nothing, node 0 sends both."""
    home, node_home = tmp_path / "home", tmp_path / "nh"
    workdirs = [tmp_path / "w0", tmp_path / ("w0" if shared else "w1")]
    for d in (home, *workdirs, node_home / ".slurmsky" / "runtime"):
        d.mkdir(parents=True, exist_ok=True)
    (node_home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
    # srun's tasks start in its directory, w0 here; on a node of its own that path is its
    # own copy of the workdir: w1 stands for node 1's
    into = "." if shared else "../w$SLURM_NODEID"
    script = f"#!/bin/bash\nsrun bash -c 'echo node $SLURM_NODEID > {into}/out-$SLURM_NODEID.txt'\n"
    (home / "job.sh").write_text(script)
    cfg = Config(path="x", backend="sky", partitions={"p": {"files_home": SETTINGS}})
    req = build_batch_request(
        parse_command_line("sbatch", ["-p", "p", "-N", "2", "job.sh"]),
        {},
        str(home),
        lambda: b"",
    )
    spec = translate(req, cfg, job_id=6).spec
    run = sky_run(dict(spec, output=".slurmsky/stdout-6", error=None), workdir=None)
    procs = [
        subprocess.Popen(
            ["bash", "-c", run],
            cwd=workdirs[rank],
            env={
                "HOME": str(node_home),  # shared, as on SkyPilot's Slurm infra: one rundir
                "PATH": os.environ["PATH"],
                "SKYPILOT_NODE_RANK": str(rank),
                "SKYPILOT_NODE_IPS": "127.0.0.1\n127.0.0.2",
                "SKYPILOT_NUM_NODES": "2",
                "SKYPILOT_TASK_ID": "t-6",
                "SLURMSKY_STEP_SECRET": "s" * 64,
            },
            stdout=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = [_finish(proc) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0]
    reader = LogReader(
        SimpleNamespace(
            job_id=6, stdout=str(home / "o"), stderr=str(home / "o"), workdir=str(home)
        ),
        False,
    )
    reader.write(outs[0] + "".join(NODE + line + "\n" for line in outs[1].splitlines()))
    assert (home / "out-0.txt").read_text() == "node 0\n"
    assert (home / "out-1.txt").read_text() == "node 1\n"
    assert ("SLURMSKY-FILE" in outs[1]) == (not shared)
    assert reader.final() == reader.result and reader.result["state"] == "COMPLETED"


def test_srun_outside_a_job_sends_its_files_home(cluster, tmp_path, monkeypatch):
    """`srun CMD` with no job on the sky backend: a managed job whose batch script is the
    node's srun; what CMD writes in the workdir on the node comes to srun's directory."""
    import http.server
    import threading

    from conftest import BIN
    from fake_sky import sky_world

    # srun asks the API server's health first: any HTTP answer is one
    health = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{health.server_port}"
    with sky_world(cluster, tmp_path, monkeypatch, "  p:\n    default: true\n") as world:
        cluster, fake, drive = world
        srun = subprocess.Popen(
            [sys.executable, str(BIN / "srun"), "bash", "-c", "echo made > made.txt; echo hi"],
            cwd=cluster.cwd,
            env=dict(cluster.env, SKYPILOT_API_SERVER_ENDPOINT=endpoint),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            drive(lambda: srun.poll() is not None, timeout=90)
            out, err = srun.communicate(timeout=10)
        finally:
            if srun.poll() is None:
                srun.kill()
                srun.wait()
            health.shutdown()
            health.server_close()
        assert (srun.returncode, out) == (0, "hi\n"), err
        assert (cluster.cwd / "made.txt").read_text() == "made\n"


LOST = {  # what SkyPilot's live stream may lose without an error (the fake's live_lost)
    "all but its first line": lambda line: "SLURMSKY-IO s" not in line,
    "a file's begin": lambda line: re.search(r"SLURMSKY-FILE \d+ b ", line) is not None,
    "a whole file": lambda line: re.search(r"SLURMSKY-FILE \d+ [bce] \d+\.0\.1 ", line) is not None,
    "the output, not its end": lambda line: re.search(r"IO [oe] \d+ \S", line) is not None,
}


@pytest.mark.parametrize("lost", LOST)
def test_a_live_read_that_lost_lines_is_done_again_whole(cluster, tmp_path, monkeypatch, lost):
    """SkyPilot's live stream of a big log can stall or lose a stretch without an error, and
    a whole read just after the job's end may get nothing (on the stack, 50 and 100 MB files:
    jobs COMPLETED without the file, or without output and RESULT): a read that missed the
    RESULT, a file's frames, a numbered send or output before the stream's end is done again
    whole after the job ended, a while apart, until it has them; everything comes home."""
    from fake_sky import sky_world

    from slurmsky.backends.sky import logs

    monkeypatch.setattr(logs, "AGAIN", 0.2)
    with sky_world(cluster, tmp_path, monkeypatch, "  p:\n    default: true\n") as world:
        cluster, fake, drive = world
        fake.live_lost = LOST[lost]
        fake.unstored = 2
        script = (  # a moment before it ends: the agent follows its log while it runs
            "#!/bin/bash\nsleep 3\necho one > one.txt\necho two > two.txt\necho hi\necho err >&2\n"
        )
        cluster.script("job.sh", script)
        job = cluster.sbatch("-o", "job.out", "-e", "job.err", "job.sh")

        def ended():
            out = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job), "-o", "State,Comment")
            return out.stdout if "COMPLETED" in out.stdout else None

        assert drive(ended, timeout=120) == "COMPLETED|\n"
    assert (cluster.cwd / "job.out").read_text() == "hi\n"
    assert (cluster.cwd / "job.err").read_text() == "err\n"
    assert (cluster.cwd / "one.txt").read_text() == "one\n"
    assert (cluster.cwd / "two.txt").read_text() == "two\n"
    # a live read if the agent saw the job run (under load it may not), then whole reads
    # until one got the log: two that got nothing (not stored yet), then the whole log
    reads = [(follow, size > 0) for _, _, follow, size in fake.tailed]
    assert reads[-3:] == [(False, False), (False, False), (False, True)], reads
    assert reads[:-3] in ([], [(True, True)]), reads


def test_a_whole_read_that_never_returns_is_given_up_and_done_again(cluster, tmp_path, monkeypatch):
    """A whole read of an ended job's log that SkyPilot never answers holds nothing: it is
    given up after executor.BOUND s (a failed read) and done again; everything comes home."""
    from fake_sky import sky_world

    from slurmsky.backends.sky import executor, logs

    monkeypatch.setattr(logs, "AGAIN", 0.2)
    monkeypatch.setattr(executor, "BOUND", 1.0)
    with sky_world(cluster, tmp_path, monkeypatch, "  p:\n    default: true\n") as world:
        cluster, fake, drive = world
        fake.live_lost = LOST["all but its first line"]
        fake.stuck_reads = 1
        cluster.script("job.sh", "#!/bin/bash\nsleep 3\necho one > one.txt\necho hi\n")
        job = cluster.sbatch("-o", "job.out", "job.sh")
        drive(lambda: cluster.jobs("job_id = ? AND state = 'COMPLETED'", job), timeout=60)
        assert fake.stuck_reads == 0
        fake.unstuck.set()
    assert (cluster.cwd / "job.out").read_text() == "hi\n"
    assert (cluster.cwd / "one.txt").read_text() == "one\n"
