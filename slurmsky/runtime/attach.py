"""sattach's taps on a running step's output (the local backend: the job's run directory is
on this machine).

A step's srun keeps ``RUNDIR/attach/<step>/`` while the step runs: ``layout.json`` (its
nodes' names and each node's task ids, for ``sattach --layout``) and one file per attached
sattach, named after its pid, which sattach creates (mode 0600) and removes when it leaves.
srun looks for new taps at most every LOOK seconds and appends to each what its tasks write,
framed: a header (HEADER: the stream, 1 or 2, the task id, the length) then the bytes; at the
step's end a header with stream 0 (END), then it removes the folder. Nothing is written
while nobody is attached. Standard library only (it runs inside the job).
"""

import json
import os
import shutil
import struct
import time

HEADER = struct.Struct("!BII")  # stream (1 stdout, 2 stderr, 0 the end), task id, length
END = 0
LOOK = 0.5  # seconds between srun's looks for new taps
LAYOUT = "layout.json"


def step_dir(run_dir, step_id):
    return os.path.join(run_dir, "attach", str(step_id))


class Taps:
    """srun's side: the step's folder, and the taps attached to it."""

    def __init__(self, run_dir, step_id, names, tasks):
        self.dir = step_dir(run_dir, step_id)
        self.fds = {}  # tap name -> fd
        self.looked = 0.0
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            tmp = os.path.join(self.dir, LAYOUT + ".tmp")
            with open(tmp, "w") as fh:
                json.dump({"names": names, "tasks": tasks}, fh)
            os.replace(tmp, os.path.join(self.dir, LAYOUT))
        except OSError:
            self.dir = None

    def _look(self):
        self.looked = time.monotonic()
        try:
            names = {n for n in os.listdir(self.dir) if n.isdigit()}
        except OSError:
            names = set()
        for gone in set(self.fds) - names:
            os.close(self.fds.pop(gone))
        for name in names - set(self.fds):
            try:
                self.fds[name] = os.open(os.path.join(self.dir, name), os.O_WRONLY | os.O_APPEND)
            except OSError:
                pass

    def write(self, gid, fd, data):
        if self.dir is None:
            return
        if time.monotonic() - self.looked >= LOOK:
            self._look()
        if not self.fds:
            return
        frame = HEADER.pack(fd, gid, len(data)) + data
        for name, target in list(self.fds.items()):
            try:
                os.write(target, frame)
            except OSError:
                os.close(self.fds.pop(name))

    def close(self):
        if self.dir is None:
            return
        self._look()
        self.write(0, END, b"")
        for target in self.fds.values():
            os.close(target)
        self.fds = {}
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(self.dir))  # the last step's end leaves no attach/
        except OSError:
            pass
        self.dir = None


def frames(buffer):
    """The whole frames at the start of `buffer`: ([(stream, task, bytes)], what is left)."""
    found = []
    pos = 0
    while len(buffer) - pos >= HEADER.size:
        stream, task, size = HEADER.unpack_from(buffer, pos)
        if len(buffer) - pos - HEADER.size < size:
            break
        start = pos + HEADER.size
        found.append((stream, task, bytes(buffer[start : start + size])))
        pos = start + size
    return found, buffer[pos:]
