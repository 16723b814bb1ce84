"""Files the job writes in its working directory, sent home through the node's log.

A SkyPilot node shares no filesystem with the submit host, and its copy of the workdir goes
with the node. Each node snapshots the working directory when the job starts (path, size,
mtime, mode: what came with the workdir and stays unchanged is never sent), then FIRST
seconds after the start, twice as long after each send up to ``interval`` seconds, and once
at the end sends what was created or changed since (the sends before the first interval:
only what has not changed for QUIET seconds, so that a file still being written is not sent
at each of them, every send counting against the cap) as frame
lines on its stdout (SkyPilot's run log), which the agent at home reassembles
(backends/sky/files_home.py) into the job's submit directory.

A frame line is ``SLURMSKY-FILE <n> <body>``, ``n`` the length of the body, so that a line
the log copy cut in two is told from a whole one and joined again. Bodies (words of
``[A-Za-z0-9+/=.-]``; NAME is the base64 of the path's bytes, relative to the workdir)::

    b FID NAME MODE SIZE     a file begins (MODE octal, SIZE bytes)
    c FID INDEX DATA         its INDEX-th chunk (base64 of CHUNK bytes at most)
    e FID COUNT SHA256       its end: COUNT chunks whose bytes have this sha256
    a FID                    dropped: it changed while being read (sent again later)
    x FID NAME SIZE CAP NOTE over the job's CAP MB: listed, left on the node; NOTE (base64)
                             is the line the job's error file got, after its prefix

Not sent: the job's own output files, the ``.slurmsky`` directory, the partition's exclude
patterns (.skyignore style), symbolic links that point out of the workdir. Node 0 leaves a
mark in its workdir; another node that sees it there shares node 0's filesystem and sends
nothing.
"""

import base64
import fnmatch
import hashlib
import os
import shlex
import threading
import time

PREFIX = "SLURMSKY-FILE "
FIRST = 2  # s before the first send: SkyPilot's cancel ends the log's reader with the job, so
# what the job wrote before a cancel comes home only from a send before it
QUIET = 1.0  # s a file must be unchanged for a send before the first interval to take it
CHUNK = 2048  # bytes a chunk frame carries: its line stays under PIPE_BUF and the log's cut
RUNTIME_DIR = ".slurmsky"


def frame(*words):
    """The line of one frame."""
    body = " ".join(str(w) for w in words)
    return "%s%d %s\n" % (PREFIX, len(body), body)


def name64(rel):
    """A relative path's frame word: base64 of its bytes (any name survives)."""
    return base64.b64encode(os.fsencode(rel)).decode()


def _stdout(line):
    data = line.encode()
    while data:
        data = data[os.write(1, data) :]


class Excludes:
    """.skyignore-style patterns: ``name`` anywhere, ``dir/`` directories only, a pattern
    with a slash (``/top``, ``logs/*.log``) from the workdir, a wildcard for one name each."""

    def __init__(self, patterns):
        self.patterns = []
        for p in patterns:
            dir_only = p.endswith("/")
            p = p.rstrip("/")
            anchored = "/" in p
            if p:
                self.patterns.append((p.lstrip("/"), dir_only, anchored))

    def __call__(self, rel, is_dir):
        for pat, dir_only, anchored in self.patterns:
            if dir_only and not is_dir:
                continue
            if anchored:
                names, pats = rel.split("/"), pat.split("/")
                if len(names) == len(pats) and all(map(fnmatch.fnmatchcase, names, pats)):
                    return True
            elif fnmatch.fnmatchcase(os.path.basename(rel), pat):
                return True
        return False


class FileSync:
    """One node's sender: start() at the job's start, finish() at its end."""

    def __init__(self, job, settings, say, own=(), out=_stdout):
        self.job_id, self.rank = job.job_id, job.rank
        self.workdir = os.path.abspath(job.workdir)
        self.real = os.path.realpath(self.workdir)
        self.cap_mb = settings["cap_mb"]
        self.left = settings.get("left") or "left on the node"
        self.interval = settings["interval"]
        self.excluded = Excludes(settings.get("exclude") or ())
        self.say, self.out = say, out
        self.own = {os.path.abspath(p) for p in own}
        self.mark = os.path.join(self.workdir, RUNTIME_DIR, "files-home-node0-%d" % job.job_id)
        self.sent = {}  # relative path -> (size, mtime_ns, mode) as last sent (or listed)
        self.total = 0  # bytes sent: the cap counts every send of the job
        self.listed = set()  # the files said to be over the cap
        self.seq = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = None

    def start(self):
        """Snapshot the workdir (node 0 marks it first) and send changes: FIRST s on, then
        twice as long after each send, up to every interval."""
        if self.rank == 0:
            try:
                os.makedirs(os.path.dirname(self.mark), exist_ok=True)
                open(self.mark, "w").close()
            except OSError:
                pass
        self.sent = {rel: _key(st) for rel, st in self._scan()}
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def finish(self):
        """The last send, at the job's end (whatever its state)."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        self.send()

    def _loop(self):
        wait = min(FIRST, self.interval)
        while not self.stopped.wait(wait):
            self.send(QUIET if wait < self.interval else 0)
            wait = min(wait * 2, self.interval)

    def send(self, quiet=0):
        """Send every file created or changed since it was last sent (and unchanged for the
        last `quiet` seconds)."""
        with self.lock:
            if self.rank != 0 and os.path.exists(self.mark):
                return  # node 0's filesystem: node 0 sends
            settled = time.time() - quiet
            try:
                for rel, st in self._scan():
                    if self.sent.get(rel) != _key(st) and (not quiet or st.st_mtime <= settled):
                        self._send_file(rel, st)
            except OSError:  # the log cannot be written (nobody reads it any more)
                self.stopped.set()

    def _scan(self):
        """(relative path, stat) of each regular file under the workdir to consider."""
        for top, dirs, files in os.walk(self.workdir):
            reltop = os.path.relpath(top, self.workdir)
            reltop = "" if reltop == "." else reltop
            dirs[:] = [
                d
                for d in sorted(dirs)
                if not (reltop == "" and d == RUNTIME_DIR)
                and not self.excluded(os.path.join(reltop, d), True)
            ]
            for name in sorted(files):
                rel = os.path.join(reltop, name)
                path = os.path.join(top, name)
                if path in self.own or self.excluded(rel, False):
                    continue
                try:
                    if os.path.islink(path):
                        target = os.path.realpath(path)
                        if os.path.commonpath([self.real, target]) != self.real:
                            continue  # never followed out of the workdir
                    st = os.stat(path)
                except (OSError, ValueError):
                    continue
                if os.path.isfile(path):
                    yield rel, st

    def _send_file(self, rel, st):
        self.seq += 1
        fid = "%d.%d.%d" % (self.job_id, self.rank, self.seq)
        name = name64(rel)
        if self.total + st.st_size > self.cap_mb * 1048576:
            self.sent[rel] = _key(st)
            if rel in self.listed:
                return  # said once
            self.listed.add(rel)
            shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
            note = "%s (%d bytes) over the %d MB cap, %s" % (
                shown,
                st.st_size,
                self.cap_mb,
                self.left.replace("{path}", shlex.quote(shown)).replace(
                    "{worker}", "-worker%d" % self.rank if self.rank else ""
                ),
            )
            self.out(frame("x", fid, name, st.st_size, self.cap_mb, name64(note)))
            self.say("slurmsky: files home: " + note)
            return
        try:
            f = open(os.path.join(self.workdir, rel), "rb")
        except OSError:
            return
        with f:
            self.out(frame("b", fid, name, "%o" % (st.st_mode & 0o7777), st.st_size))
            digest, count, left = hashlib.sha256(), 0, st.st_size
            while left:
                data = f.read(min(CHUNK, left))
                if not data:
                    break
                digest.update(data)
                self.out(frame("c", fid, count, base64.b64encode(data).decode()))
                count, left = count + 1, left - len(data)
            now = os.fstat(f.fileno())
        if left or _key(now) != _key(st):
            self.out(frame("a", fid))  # it changed while read: the next send has it whole
            return
        self.out(frame("e", fid, count, digest.hexdigest()))
        self.sent[rel] = _key(st)
        self.total += st.st_size


def _key(st):
    return (st.st_size, st.st_mtime_ns, st.st_mode)


def start(job, say, own=()):
    """The node's FileSync, started, or None when the spec sends no files home."""
    settings = job.spec.get("files_home")
    if not settings:
        return None
    return FileSync(job, settings, say, own).start()
