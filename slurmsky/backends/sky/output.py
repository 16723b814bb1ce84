"""A sky job's output, from its node to the submit host.

Node 0 runs an emitter beside the node runtime (EMITTER, in the task's `run`: sky_run): it
prints the batch script's stdout/stderr files (relative to the spec's workdir), as they grow,
as base64 `SLURMSKY-IO` lines into SkyPilot's run log, and at the end each file's length (a
read that lost output knows it) and the runtime's RESULT (a lane's elements each have their own emitter, whose lines carry the element's position in
the lane: lanes.py). The agent reads that log with `jobs.tail_logs` and LogReader writes the
bytes at their offsets into the --output/--error files on the submit host; the RESULT gives
sacct the job's own state and exit code.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re

from slurmsky.backends.sky.files_home import NODE, FilesHome, Frames, display, segments
from slurmsky.backends.sky.task import run_command, rundir_lines
from slurmsky.core import state
from slurmsky.core.state import JobRecord

# In the job's workdir on the node, each job's own (%j: jobs may share a -D, and a pool
# worker runs job after job in one workdir)
NODE_OUT, NODE_ERR = ".slurmsky/stdout-%j", ".slurmsky/stderr-%j"
# kind (start, out, err, result), offset, base64 data, and a lane element's position
MARKER = re.compile(r"SLURMSKY-IO ([soer]) (\d+) ([A-Za-z0-9+/=]*)(?: (\d+))?\s*$")
IO_HEAD = "SLURMSKY-IO "
IO_START = re.compile(r"SLURMSKY-IO (?:[soer](?: \d*)?)?")  # a marker cut before its data
IO_REST = re.compile(r"[A-Za-z0-9+/=]+(?: \d+)?\s*")  # what a line cut in its data goes on with
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Node 0's emitter (python3, stdlib): argv = rundir [tag]; it follows the files the batch
# step names in the rundir's outputs.json once they are open (runtime/batch.py). A tagged
# emitter's (a lane element's) lines end with the tag, and its start says when (node clock).
EMITTER = r"""
import base64, json, os, sys, time
rundir, offsets, pairs = sys.argv[1], {"o": 0, "e": 0}, None
tag = " " + sys.argv[2] if len(sys.argv) > 2 else ""
def out(kind, offset, data):
    sys.stdout.write("SLURMSKY-IO %s %d %s%s\n" % (kind, offset, base64.b64encode(data).decode(), tag))
    sys.stdout.flush()
out("s", 0, str(time.time()).encode() if tag else b"")
done = os.path.join(rundir, "emitter.done")
while True:
    last = os.path.exists(done)
    if pairs is None:
        try:
            with open(os.path.join(rundir, "outputs.json")) as f:
                paths = json.load(f)
            pairs = [("o", paths["o"])] + ([("e", paths["e"])] if paths["e"] != paths["o"] else [])
        except (OSError, ValueError, KeyError):
            pass
    for stream, path in pairs or ():
        try:
            with open(path, "rb") as f:
                f.seek(offsets[stream])
                for data in iter(lambda: f.read(2048), b""):
                    out(stream, offsets[stream], data)
                    offsets[stream] += len(data)
        except OSError:
            pass
    if last:
        for stream, path in pairs or ():  # each stream's end: a read missing output sees it
            out(stream, offsets[stream], b"")
        try:
            with open(os.path.join(rundir, "result.json"), "rb") as f:
                out("r", 0, f.read())
        except OSError:
            out("r", 0, b"")
        break
    for _ in range(10):  # the files each second; the end within a tenth (a lane's next element waits)
        if os.path.exists(done):
            break
        time.sleep(0.1)
"""


def sky_run(spec: dict, workdir: str | None) -> str:
    """The task's `run`: translate's node runtime command (in `workdir`, None: SkyPilot's),
    with node 0's emitter beside it, which follows the batch step's output and error files."""
    return rundir_lines(spec) + emitted(run_command(spec, workdir)) + "exit $SLURMSKY_RC\n"


def emitted(command: str, tag: str = "") -> str:
    """Lines that run `command` in a subshell with node 0's emitter beside it (tagged with
    `tag`, a shell word), leaving its exit code in SLURMSKY_RC."""
    return (
        "SLURMSKY_EMITTER=\n"
        'if [ "${SKYPILOT_NODE_RANK:-0}" = 0 ]; then\n'
        '  rm -f "$SLURMSKY_RUNDIR/emitter.done" "$SLURMSKY_RUNDIR/outputs.json"\n'
        f"  python3 -u -S - \"$SLURMSKY_RUNDIR\" {tag} <<'SLURMSKY_EMITTER_EOF' &\n"
        f"{EMITTER.strip()}\n"
        "SLURMSKY_EMITTER_EOF\n"
        "  SLURMSKY_EMITTER=$!\n"
        "fi\n"
        f"(\n{command})\n"
        "SLURMSKY_RC=$?\n"
        # node 0's own end only: nodes that share $HOME (Slurm infra) share the rundir
        'if [ -n "$SLURMSKY_EMITTER" ]; then\n'
        '  touch "$SLURMSKY_RUNDIR/emitter.done"\n'
        '  wait "$SLURMSKY_EMITTER"\n'
        "fi\n"
    )


def _io_start(line: str) -> str:
    """The end of `line` that may begin a SLURMSKY-IO line cut in two ("" if none)."""
    at = line.rfind(IO_HEAD)
    if at >= 0:
        return line[at:] if IO_START.fullmatch(line, at) else ""
    ends = range(max(0, len(line) - len(IO_HEAD) + 1), len(line))
    return next((line[i:] for i in ends if IO_HEAD.startswith(line[i:])), "")


class MarkerStream:
    """A file-like sink for `tail_logs` (write, flush) that hands each SLURMSKY-IO line of
    the log to _marker: kind, offset, data and the lane element's tag (None: not a lane's);
    and each SLURMSKY-FILE frame (whole, or joined again where the log copy cut its line in
    two: files_home.Frames) to _file."""

    partial = ""
    frames: Frames | None = None
    last_io = ""  # the last SLURMSKY-IO line (or its start), from its marker on: the next
    # line may continue it

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        if self.frames is None:
            self.frames = Frames()
        for raw in lines:
            for line in segments(ANSI.sub("", raw).rstrip("\r")):
                self._line(line, self.frames)
        return len(text)

    def _line(self, line: str, frames: Frames) -> None:
        for body in frames.feed(line):
            self._file(body)
        node = NODE.match(line)
        rest = line[node.end() :] if node else line
        held = ""
        if self.last_io:  # this line may be the rest of one the log copy cut in two
            applied = MARKER.match(self.last_io) is not None
            joined, self.last_io = self.last_io + rest, ""
            goes_on = IO_REST.fullmatch(rest) and not IO_HEAD.startswith(rest)
            if (goes_on or not applied) and self._io(joined, again=applied):
                return
            if node:  # another writer's whole line came between the cut and its rest
                held = joined[: len(joined) - len(rest)]
        found = MARKER.search(line)
        if found:
            self.last_io = line[found.start() :]
            self._io(self.last_io, again=False)
        else:
            self.last_io = _io_start(line) or held

    def _io(self, text: str, again: bool) -> bool:
        """One SLURMSKY-IO line to _marker, unless its data do not decode (a line cut short:
        its rest comes next): whether it was. `again`: the line's start was handed already,
        so only output (written again whole, at its offset) and the RESULT are."""
        found = MARKER.match(text)
        if found is None:
            return False
        kind, offset, data, tag = found.groups()
        try:
            raw = base64.b64decode(data, validate=True)
            if kind == "r" and raw:
                json.loads(raw)
        except (binascii.Error, ValueError):
            return False
        if not again or kind in "oer":
            self._marker(kind, int(offset), raw, tag)
        return True

    def flush(self) -> None:
        pass

    def _marker(self, kind: str, offset: int, data: bytes, tag: str | None = None) -> None:
        raise NotImplementedError

    def _file(self, body: str) -> None:
        """A file frame: the files of a job that is not followed here stay on its node."""


class LogReader(MarkerStream):
    """Writes the SLURMSKY-IO lines of one job's log into its files on the submit host.

    The runs of `log` (its server and managed job id) whose start it applied, and where each
    file's output of the last one begins, are kept in the job's run directory here
    (jobs/<id>/output.json, which retention purges): an agent that restarted reads the log
    from its start again and goes on after them (an appending job's files would get its
    runs' output twice). A requeued job's new managed job has a log of its own. None: a
    log read once (nothing kept)."""

    def __init__(self, job: JobRecord, append: bool, log: str | None = None):
        self.paths = {"o": job.stdout, "e": job.stderr if job.stderr != job.stdout else None}
        self.append = append
        self.kept = os.path.join(state.home(), "jobs", str(job.job_id), "output.json")
        self.log = log
        self.base = {"o": 0, "e": 0}
        self.next = {"o": 0, "e": 0}  # each stream's offset this read has all output before
        self.holes = 0  # output this read skipped (a later offset came first)
        self.result: dict | None = None
        self.partial = ""
        self.starts = self.applied = 0  # start markers seen in this read, and ever applied
        self.job_id = job.job_id
        self.files = FilesHome(job.workdir)
        # the CANCELLED line a SIGTERM made the run write: (stream, offset, text)
        self.cancel_line: tuple[str, int, str] | None = None
        if log:
            self._restore()

    def rewind(self) -> LogReader:
        """For a new read of the same log from its start: starts already applied are not
        applied again (an appending job's files would get its output twice); the RESULT is
        this read's."""
        self.partial, self.starts, self.frames, self.last_io = "", 0, None, ""
        self.result = None
        self.next, self.holes = {"o": 0, "e": 0}, 0
        self.files.rewind()
        return self

    def whole(self) -> bool:
        """Whether this read saw the RESULT and every file it began whole (no frame missing)."""
        return (
            self.result is not None
            and not self.holes
            and not self.files.open
            and not self.files.gaps
        )

    def final(self) -> dict | None:
        """The RESULT once the log is read whole, with what of the job's files did not
        come home (`files_home`, sacct's Comment; alone where the log held no RESULT)."""
        self.files.finish()
        if not self.files.notes:
            return self.result
        return dict(self.result or {}, files_home="files home: " + "; ".join(self.files.notes))

    def _file(self, body: str) -> None:
        self.files.frame(body)

    def _marker(self, kind: str, offset: int, data: bytes, tag: str | None = None) -> None:
        if kind == "r":
            self.result = json.loads(data) if data else {}
            line = self.result.get("cancel_line")
            if line:
                self.cancel_line = ("e" if self.paths["e"] else "o", line[0], line[1])
            return
        if kind == "s":  # the job (re)started: files start afresh, or after what they hold
            self.starts += 1
            self.next = {"o": 0, "e": 0}
            if self.starts <= self.applied:
                return
            self.drop_cancel_line()  # SkyPilot recovered the run before: its node was lost
            self.applied += 1
            for stream, path in self.paths.items():
                if path:
                    try:
                        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                        with open(path, "ab") as fh:
                            self.base[stream] = fh.tell() if self.append else 0
                            if not self.append:
                                fh.truncate(0)
                    except OSError as exc:
                        self._unwritten(path, exc)
            self._keep()
            return
        if self.starts < self.applied:  # a run before a recovery's, read again: replaced
            return
        self.holes += offset > self.next[kind]
        self.next[kind] = max(self.next[kind], offset + len(data))
        path = self.paths.get(kind) or self.paths["o"]
        assert path is not None  # a slurmsky job always has its stdout path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
            try:
                at = self.base[kind] + offset
                while data:  # a short write (the disk filled) raises on the next one
                    done = os.pwrite(fd, data, at)
                    data, at = data[done:], at + done
            finally:
                os.close(fd)
        except OSError as exc:
            self._unwritten(path, exc)

    def _restore(self) -> None:
        """What an earlier agent's reader of the same log applied (none: a first read)."""
        try:
            with open(self.kept) as fh:
                kept = json.load(fh)
            if kept["log"] == self.log:
                self.applied, self.base = int(kept["applied"]), {"o": 0, "e": 0, **kept["base"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _keep(self) -> None:
        """The runs applied and their files' bases, for the next agent (written whole)."""
        if not self.log:
            return
        try:
            os.makedirs(os.path.dirname(self.kept), exist_ok=True)
            with open(self.kept + ".new", "w") as fh:
                json.dump({"log": self.log, "applied": self.applied, "base": self.base}, fh)
            os.replace(self.kept + ".new", self.kept)
        except OSError:  # (a full disk: the output itself is said unwritten)
            pass

    def drop_cancel_line(self) -> None:
        """Take the CANCELLED line the last run wrote out of its file: its SIGTERM was a
        lost node's (Slurm prints nothing for one), not scancel's."""
        if self.cancel_line is None:
            return
        kind, offset, text = self.cancel_line
        self.cancel_line = None
        path = self.paths.get(kind) or self.paths["o"]
        assert path is not None
        line, at = text.encode(), self.base[kind] + offset
        start = max(at - 65536, 0)  # the job may have written beside it: look near
        try:
            with open(path, "r+b") as fh:
                fh.seek(start)
                tail = fh.read()
                found = at - start if tail[at - start :].startswith(line) else tail.find(line)
                if found >= 0:
                    fh.seek(start + found)
                    fh.write(tail[found + len(line) :])
                    fh.truncate()
        except OSError as exc:
            self._unwritten(path, exc)

    def _unwritten(self, path: str, exc: OSError) -> None:
        """Output that cannot be written here (a full disk): named once in the job's record
        beside its files (sacct's Comment); the read goes on (the RESULT, later files)."""
        note = f"{display(os.fsencode(path))}: output not written here: {exc.strerror or exc}"
        if note not in self.files.notes:
            self.files.notes.append(note)
