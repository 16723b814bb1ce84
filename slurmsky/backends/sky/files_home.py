"""The files a sky job writes beside itself, home from its log (runtime/filesync.py sends).

`Frames` finds the SLURMSKY-FILE frames in the log's lines, joining one that the log copy cut
in two (its length says whether it is whole); `FilesHome` reassembles each file from its
frames, checks its size and sha256 and only then puts it in place: a temporary file beside
it, renamed over it (its mode kept). A file whose frames are missing or wrong, whose path
would leave the target directory (absolute, `..`, a symbolic link here on the way), or that
cannot be written here is never half-written: it is named in `notes`, which the job's
record keeps (sacct's Comment).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile

from slurmsky.runtime.filesync import PREFIX

WORD = re.compile(r"[A-Za-z0-9+/=.-]+")
HEAD = re.compile(re.escape(PREFIX) + r"(\d+) ")
NODE = re.compile(r"\([^()]*\) ")  # SkyPilot's `(worker1, rank=1, pid=.., ip=..) ` before a line
# the same, where the log copy put a whole line of another writer inside a line it cut
INSIDE = re.compile(r"\([^()]*\bpid=\d+[^()]*\) ")
# why a file did not come: what this read of the log lacked (a read of the whole log may not)
MISSING = "a chunk missing in the log, not written"
INCOMPLETE = "incomplete in the log, not written"
BAD = "a bad frame in the log, not written"
SPOOL_MEMORY = 8 << 20  # bytes of a file held in memory until its end frame, past that on disk


def _state(text: str) -> str | None:
    """`text` from PREFIX on: "whole", "part" (a frame cut short) or None (no frame)."""
    if len(text) < len(PREFIX) + 1:
        return "part" if PREFIX.startswith(text) else None
    head = HEAD.match(text)
    if head is None:
        rest = text[len(PREFIX) :]
        return "part" if text.startswith(PREFIX) and rest.isdigit() and len(rest) < 12 else None
    body = text[head.end() :]
    if body and not all(WORD.fullmatch(w) for w in body.split(" ") if w):
        return None
    size = int(head.group(1))
    return "whole" if len(body) == size else "part" if len(body) < size else None


def segments(line: str) -> list[str]:
    """`line` as the lines it holds: SkyPilot's log copy may cut a line and put another
    writer's whole line (with its node prefix) inside it, the cut line's rest coming next."""
    bounds = [0, *(m.start() for m in INSIDE.finditer(line) if m.start() > 0), len(line)]
    return [line[a:b] for a, b in zip(bounds, bounds[1:])]


class Frames:
    """The frame bodies in a stream of log lines (segments); a frame cut at the end of a
    line is joined with the next line (with or without SkyPilot's node prefix) that is not
    another writer's whole line."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, line: str) -> list[str]:
        if self.pending:
            pending, self.pending = self.pending, ""
            node = NODE.match(line)
            for rest in (line, line[node.end() :]) if node else (line,):
                state = _state(pending + rest)
                if state == "whole":
                    return [_body(pending + rest)]
                if state == "part":
                    self.pending = pending + rest
                    return []
            if node:  # another writer's whole line came between the cut and its rest
                bodies = self._line(line)
                self.pending = self.pending or pending
                return bodies
        return self._line(line)

    def _line(self, line: str) -> list[str]:
        at = line.find(PREFIX)
        if at < 0:  # perhaps a frame cut inside its PREFIX: the line's end is its start
            ends = range(max(0, len(line) - len(PREFIX)), len(line))
            at = next((i for i in ends if PREFIX.startswith(line[i:])), -1)
            if at < 0:
                return []
        state = _state(line[at:])
        if state == "part":
            self.pending = line[at:]
        return [_body(line[at:])] if state == "whole" else []


def _body(text: str) -> str:
    head = HEAD.match(text)
    assert head is not None
    return text[head.end() :]


def display(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


class _File:
    def __init__(self, name: bytes, mode: int, size: int):
        self.name, self.mode, self.size = name, mode, size
        self.chunks = 0
        self.digest = hashlib.sha256()
        self.spool = tempfile.SpooledTemporaryFile(SPOOL_MEMORY)
        self.broken: str | None = None


class FilesHome:
    """Reassembles the files of one job's frames into `target` (its submit or -D directory)."""

    def __init__(self, target: str):
        self.target = target
        self.open: dict[str, _File] = {}  # frame id -> the file being received
        self.notes: list[str] = []
        self.gaps = 0  # files this read lost frames of (a read of the whole log may have them)
        self.sends: dict[str, int] = {}  # "job.rank" -> the last send numbered in its frames
        self.written: list[str] = []  # relative paths put in place, in order

    def frame(self, body: str) -> None:
        words = body.split(" ")
        kind, fid = words[0], words[1] if len(words) > 1 else ""
        self._lost(kind, fid)
        try:
            if kind == "b" and len(words) == 5:
                self._drop(fid, INCOMPLETE)
                self.open[fid] = _File(_name(words[2]), int(words[3], 8), int(words[4]))
            elif kind == "c" and len(words) == 4 and fid in self.open:
                self._chunk(
                    self.open[fid], int(words[2]), base64.b64decode(words[3], validate=True)
                )
            elif kind == "e" and len(words) == 4 and fid in self.open:
                self._end(self.open.pop(fid), int(words[2]), words[3])
            elif kind == "a":
                self._drop(fid, None)
            elif kind == "x" and len(words) == 6:  # the line the job's error file got
                self.notes.append(display(_name(words[5])))
            elif kind == "x" and len(words) == 5:  # a runtime before that line came too
                self.notes.append(
                    f"{display(_name(words[2]))} ({int(words[3])} bytes) over the "
                    f"{int(words[4])} MB cap, left on the node"
                )
        except (ValueError, binascii.Error):
            self._drop(fid, BAD)

    def _lost(self, kind: str, fid: str) -> None:
        """Count what this read of the log lost: a file's chunk or end whose begin it never
        saw, or a send skipped (each node numbers its sends: job.rank.N)."""
        node, _, number = fid.rpartition(".")
        if kind in "ce" and fid not in self.open:
            self.gaps += 1
        elif kind in "bx" and number.isdigit():
            if int(number) > self.sends.get(node, 0) + 1:
                self.gaps += 1
            self.sends[node] = int(number)

    def rewind(self) -> None:
        """For a new read of the log from its start: what this read began or said is
        forgotten (the new read has it all again)."""
        for file in self.open.values():
            file.spool.close()
        self.open.clear()
        self.notes.clear()
        self.gaps = 0
        self.sends.clear()

    def finish(self) -> None:
        """The log is read: files whose end never came are named."""
        for fid in list(self.open):
            self._drop(fid, INCOMPLETE)

    def _drop(self, fid: str, why: str | None) -> None:
        file = self.open.pop(fid, None)
        if file is not None:
            file.spool.close()
            if why:
                self._missed(file, why)

    def _chunk(self, file: _File, index: int, data: bytes) -> None:
        if file.broken:
            return
        if index != file.chunks:
            file.broken = MISSING
            return
        try:
            file.spool.write(data)
        except OSError as exc:
            file.broken = f"not written here: {exc.strerror}"
            return
        file.digest.update(data)
        file.chunks += 1

    def _end(self, file: _File, count: int, sha: str) -> None:
        with file.spool:
            why = file.broken
            if why is None and (
                count != file.chunks
                or file.spool.tell() != file.size
                or file.digest.hexdigest() != sha
            ):
                why = MISSING
            if why is None:
                why = self._install(file)
        if why:
            self._missed(file, why)

    def _missed(self, file: _File, why: str) -> None:
        self.notes.append(f"{display(file.name)}: {why}")
        self.gaps += why in (MISSING, INCOMPLETE, BAD)

    def _install(self, file: _File) -> str | None:
        """Put the file in place (a temporary file renamed over it); why not, if not."""
        rel = os.fsdecode(file.name)
        parts = rel.split("/")
        if (
            not rel
            or rel.startswith("/")
            or "\0" in rel
            or any(p in ("", ".", "..") for p in parts)
        ):
            return "a path outside the job's directory, refused"
        parent = self.target
        try:
            for part in parts[:-1]:
                parent = os.path.join(parent, part)
                if os.path.islink(parent):
                    return "a symbolic link on its path here, refused"
                if not os.path.isdir(parent):
                    os.mkdir(parent)
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=".slurmsky-home-")  # any name fits
            try:
                with os.fdopen(fd, "wb") as out:
                    file.spool.seek(0)
                    while data := file.spool.read(1 << 20):
                        out.write(data)
                    os.fchmod(out.fileno(), file.mode & 0o7777)
                os.replace(tmp, os.path.join(parent, parts[-1]))
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            return f"not written here: {exc.strerror or exc}"
        self.written.append(rel)
        return None


def _name(word: str) -> bytes:
    return base64.b64decode(word, validate=True)
