"""Memory and rate of the files-home path with one big file: node sender -> log -> LogReader.

    python bench/files_home_memory.py [--mb 1024] [--dir DIR]

Writes a file of MB megabytes in a "node" workdir, then, each in a process of its own (so
each peak RSS is its own): the node runtime's sender (runtime/filesync.py, FileSync.send)
writes its frames to a log file, as its stdout goes into SkyPilot's run log; the agent's
LogReader (backends/sky/output.py, with files_home.py) reads that log in 64 KB pieces, as
`tail_logs` hands it, and puts the file home. Each side's peak RSS (VmHWM) beside its RSS
before the work (the interpreter and its imports), its MB/s, and whether the file at home
has the same sha256. The local pipe only: no SkyPilot, no API server, no network. Nothing
here is a test: it prints Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PIECE = 1 << 16  # bytes of the log handed to the reader at a time


def rss_kb(field: str) -> int:
    """VmRSS or VmHWM (peak) of this process, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def send(work: Path) -> dict:
    from types import SimpleNamespace

    from slurmsky.runtime.filesync import FileSync

    before = rss_kb("VmRSS")
    job = SimpleNamespace(job_id=1, rank=0, workdir=str(work / "node"))
    settings = {"cap_mb": 1 << 20, "exclude": [], "interval": 3600}
    sync = FileSync(job, settings, print)  # its frames on stdout (the log), as on a node
    t0 = time.perf_counter()
    sync.send()
    took = time.perf_counter() - t0
    return {"before_kb": before, "peak_kb": rss_kb("VmHWM"), "seconds": took}


def receive(work: Path) -> dict:
    from types import SimpleNamespace

    from slurmsky.backends.sky.output import LogReader

    before = rss_kb("VmRSS")
    home = work / "home"
    home.mkdir()
    job = SimpleNamespace(
        job_id=1, stdout=str(home / "out"), stderr=str(home / "out"), workdir=str(home)
    )
    reader = LogReader(job, append=False)
    t0 = time.perf_counter()
    with open(work / "run.log", encoding="utf-8") as log:
        while piece := log.read(PIECE):
            reader.write(piece)
    reader.write("\n")
    notes = reader.final()  # None: nothing left out
    took = time.perf_counter() - t0
    return {"before_kb": before, "peak_kb": rss_kb("VmHWM"), "seconds": took, "notes": notes}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            digest.update(data)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where the node, log and home dirs go")
    parser.add_argument("--side", choices=("send", "receive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # the figures on stderr: the sender's stdout is the log
        work = Path(args.dir)
        sys.stderr.write(json.dumps(send(work) if args.side == "send" else receive(work)))
        return
    work = Path(tempfile.mkdtemp(prefix="files-home-bench-", dir=args.dir))
    try:
        (work / "node").mkdir()
        block = os.urandom(1 << 20)
        with open(work / "node" / "big.bin", "wb") as f:
            for i in range(args.mb):
                f.write(i.to_bytes(8, "little") + block[8:])
        sides = {}
        for side in ("send", "receive"):
            with open(work / "run.log", "a") as log:
                out = subprocess.run(
                    [sys.executable, __file__, "--side", side, "--dir", str(work)],
                    stdout=log if side == "send" else subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    check=True,
                )
            sides[side] = json.loads(out.stderr)
        same = sha256(work / "node" / "big.bin") == sha256(work / "home" / "big.bin")
        log_mb = (work / "run.log").stat().st_size / 1048576
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"files home, one {args.mb} MB file through the local pipe (no SkyPilot): {cpu}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; the log: {log_mb:.0f} MB\n"
    )
    print("| side | RSS before | peak RSS | MB/s of the file |")
    print("|---|---|---|---|")
    for side, name in (("send", "node sender (FileSync)"), ("receive", "agent's LogReader")):
        got = sides[side]
        print(
            f"| {name} | {got['before_kb'] / 1024:.0f} MB | {got['peak_kb'] / 1024:.0f} MB | "
            f"{args.mb / got['seconds']:.1f} |"
        )
    print(f"\nidentical at home: {same}; notes: {sides['receive']['notes']}")


if __name__ == "__main__":
    main()
