"""sattach: attach to a running step's output, as Slurm 22.05's sattach answers.

Where the backend can tap a step's output from here (Feature.STEP_IO: the local backend's
steps run on this machine), sattach leaves a tap in the step's folder (runtime/attach.py)
and writes what the step's tasks write from then on, stdout to stdout and stderr to
stderr, until the step ends (exit 0, as Slurm's). `-l` labels every line `T: ` (T the task
id, as wide as the step's largest), `--output-filter`/`--error-filter` keep one task's,
`--layout` prints the step's layout and leaves. `--input-filter` is checked and accepted;
stdin is not forwarded (the step's tasks read what srun gives them). The batch step has no
tap: sattach answers it as a step that does not run.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from slurmsky import backends
from slurmsky.commands.common import run
from slurmsky.commands.read_options import Opt, Table, answered
from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.record import Record
from slurmsky.runtime import attach

USAGE = "Usage: sattach [options] <jobid.stepid>"
NO_INFO = "Could not get job step info: "
INVALID = "Invalid job id specified"
PENDING = "Job is pending execution"
ENDED = "Job/step already completing or completed"
POLL = 0.1  # seconds between reads of the tap
LIVE_CHECK = 1.0  # seconds between looks whether the step still runs (its srun may be gone)
TAP_WAIT = 2 * attach.LOOK + 1  # seconds srun has to find the tap before sattach checks again


class SattachArgs(Record, frozen=False):
    """What sattach's options ask."""

    output_filter: int | None = None
    error_filter: int | None = None
    input_filter: int | None = None
    label: bool = False
    layout: bool = False
    action: str | None = None


def _numeric(name: str):
    def convert(text: str, ns: object = None) -> int:
        if not _number(text):
            raise SlurmError(f'Invalid numeric value "{text}" for {name}.')
        return int(text)

    return convert


# fmt: off
OPTIONS = Table("sattach", (
    Opt("", ("input-filter",), 1, "input_filter", convert=_numeric("input-filter"),
        help="checked; stdin is not forwarded"),
    Opt("", ("output-filter",), 1, "output_filter", convert=_numeric("output-filter"),
        help="one task's stdout"),
    Opt("", ("error-filter",), 1, "error_filter", convert=_numeric("error-filter"),
        help="one task's stderr"),
    Opt("l", ("label",), dest="label", help="label lines with the task id"),
    Opt("", ("layout",), dest="layout", help="the step's layout"),
    Opt("Q", ("quiet",), help="accepted, no effect"),
    Opt("v", ("verbose",), help="accepted, no effect"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("h", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("u", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
))
# fmt: on


def _refuse(message: str) -> int:
    """An error sattach follows with its usage line (on stdout), as the peer's; exit 1."""
    sys.stderr.write(f"sattach: error: {message}\n")
    sys.stderr.flush()
    sys.stdout.write(USAGE + "\n")
    return 1


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_step(text: str) -> tuple[int, str]:
    """`JOB.STEP` -> (job id, step); ValueError where Slurm cannot parse a step id."""
    job, dot, step = text.partition(".")
    if not (dot and _number(job) and (_number(step) or step == "batch")):
        raise ValueError(text)
    return int(job), step


def _find(job_id: int, step: str):
    """The running job and the step's record, else Slurm's error."""
    rec = state.get_job(state.connect(), job_id)
    if rec is None:
        raise SlurmError(NO_INFO + INVALID)
    if rec.state == "PENDING":
        raise SlurmError(NO_INFO + PENDING)
    if rec.finished or rec.state == "COMPLETING":
        raise SlurmError(NO_INFO + ENDED)
    backend = backends.get(rec.executor)
    backend.require(backends.Feature.STEP_IO)
    if not any(str(s.get("id")) == step for s in backend.running_steps(rec)):
        raise SlurmError(NO_INFO + INVALID)
    return rec, backend


def _layout(folder: str) -> dict | None:
    import json

    try:
        with open(os.path.join(folder, attach.LAYOUT)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def print_layout(found: dict) -> None:
    names, tasks = found["names"], found["tasks"]
    from slurmsky.runtime.hostlist import compress

    out = [
        "Job step layout:",
        f"\t{sum(len(t) for t in tasks)} tasks, {len(names)} nodes ({compress(names)})",
        "",
    ]
    for pos, (name, gids) in enumerate(zip(names, tasks)):
        out.append(f"\tNode {pos} ({name}), {len(gids)} task(s): " + "".join(f"{g} " for g in gids))
    sys.stdout.write("\n".join(out) + "\n")


class Writer:
    """The tasks' bytes to our stdout and stderr: filtered, and labelled line by line."""

    def __init__(self, o: SattachArgs, ntasks: int):
        self.keep = {1: o.output_filter, 2: o.error_filter}
        self.label = o.label
        self.width = len(str(max(ntasks - 1, 0)))
        self.partial: dict[tuple[int, int], bytes] = {}

    def write(self, stream: int, task: int, data: bytes) -> None:
        if self.keep.get(stream) not in (None, task):
            return
        if self.label:
            data = self.partial.pop((task, stream), b"") + data
            cut = data.rfind(b"\n") + 1
            if cut < len(data):
                self.partial[task, stream] = data[cut:]
            data = self._labelled(task, data[:cut])
        self._out(stream, data)

    def _labelled(self, task: int, data: bytes) -> bytes:
        label = ("%*d: " % (self.width, task)).encode()
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        return b"".join(label + line + b"\n" for line in lines)

    def _out(self, stream: int, data: bytes) -> None:
        if data:
            target = sys.stdout if stream == 1 else sys.stderr
            target.buffer.write(data)
            target.flush()

    def flush(self) -> None:
        for (task, stream), rest in sorted(self.partial.items()):
            self._out(stream, self._labelled(task, rest))
        self.partial = {}


def follow(rec, backend, step: str, folder: str, writer: Writer) -> None:
    """Read the tap until the step's end (its END frame, or the step gone from the job)."""
    tap = os.path.join(folder, str(os.getpid()))
    fd = os.open(tap, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
    buffer = b""
    checked = time.monotonic()
    try:
        while True:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                found, buffer = attach.frames(buffer + chunk)
                for stream, task, data in found:
                    if stream == attach.END:
                        return
                    writer.write(stream, task, data)
                continue
            now = time.monotonic()
            if now - checked >= LIVE_CHECK:
                checked = now
                running = {str(s.get("id")) for s in backend.running_steps(rec)}
                if step not in running or not os.path.isdir(folder):
                    return
            time.sleep(POLL)
    finally:
        writer.flush()
        os.close(fd)
        try:
            os.unlink(tap)
        except OSError:
            pass


def body(argv: list[str]) -> int:
    o, rest = OPTIONS.parse(argv, SattachArgs())
    if answered(o, USAGE, "sattach"):
        return 0
    if len(rest) != 1:
        return _refuse("too many parameters")
    try:
        job_id, step = parse_step(rest[0])
    except ValueError:
        return _refuse("Failed to parse stepid from command line options")
    rec, backend = _find(job_id, step)
    base = backend.step_io_dir(rec)
    folder = os.path.join(base, step) if base and step != "batch" else ""
    found = _layout(folder) if folder else None
    if found is None:  # the batch step, or an srun without a tap (one older than sattach)
        raise SlurmError(NO_INFO + INVALID)
    if o.layout:
        print_layout(found)
        return 0
    writer = Writer(o, sum(len(t) for t in found["tasks"]))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # Ctrl-C detaches; the step runs on
    try:
        follow(rec, backend, step, folder, writer)
    except FileNotFoundError:  # the step ended as the tap was made
        pass
    return 0


def main() -> None:
    run("sattach", body)
