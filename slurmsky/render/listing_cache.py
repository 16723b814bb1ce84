"""Long listings kept until the jobs change: a polling `squeue` or `sacct` over a long, quiet
state prints what the previous call printed, without recomputing it.

An answer is stored (in the state directory's `listings/`) with the jobs' generation
(core/state's `generation`: it moves on with every change to a job) and a key made of
everything else it depends on: the command and its arguments, the environment, the user,
slurmsky's version and its code (the file is named by the key's CRC; the key itself is in
it, compared whole). The command stores only answers that the passing of time
cannot change (it checks that before storing: see squeue's and sacct's callers), so an
answer read back at the same generation, at the time it was computed or later, is byte for
byte the one it would compute (a clock set back may find a begin time ahead again).
"""

from __future__ import annotations

import os
import zlib

from slurmsky import __version__
from slurmsky.core import state

MIN_LINES = 1000  # shorter answers cost less to compute than a file does to keep
KEEP = 4  # answers kept (a few polling loops' each); the oldest goes first


class Answer:
    """The stored answer of one call at time `now` (`parts`: what it was asked, as text;
    `code`: the modules that compute it) at the jobs' current generation, and a stdout that
    keeps what the call writes."""

    def __init__(self, conn, out, command: str, parts: list[str], code: list[str], now: float):
        key = "\0".join((command, __version__, *map(_changed, code), *parts, *_caller(out)))
        self.key = key.encode("utf-8", "surrogateescape")
        self.folder = os.path.join(state.home(), "listings")
        self.path = os.path.join(self.folder, f"{command}-{zlib.crc32(self.key):08x}")
        self.generation = state.generation(conn)
        self.now = now
        self.out = out
        self.chunks: list[str] = []

    @classmethod
    def of(
        cls, conn, out, command: str, parts: list[str], code: list[str], now: float
    ) -> Answer | None:
        """The call's Answer; None where answers are not kept: stdout is not a file (a
        test's), or the state holds text that is not UTF-8."""
        if not hasattr(out, "buffer") or conn.text_factory is not str:
            return None
        return cls(conn, out, command, parts, code, now)

    def replay(self) -> bool:
        """Write the stored answer if there is one for this generation and key, computed no
        later than now."""
        try:
            with open(self.path, "rb") as f:
                head = f.readline().split()
                if len(head) != 4 or head[0] != b"%d" % self.generation:
                    return False
                if float(head[1]) > self.now or f.read(int(head[2])) != self.key:
                    return False
                data = f.read()
        except (OSError, ValueError):
            return False
        if len(data) != int(head[3]):
            return False  # cut short (a full disk)
        self.out.flush()
        self.out.buffer.write(data)
        return True

    def write(self, text: str) -> None:
        self.out.write(text)
        self.chunks.append(text)

    def flush(self) -> None:
        self.out.flush()

    def lines(self) -> int:
        """How many lines were written."""
        return sum(chunk.count("\n") for chunk in self.chunks)

    def store(self) -> None:
        """Keep what was written, for this generation (a whole file or none)."""
        data = "".join(self.chunks).encode(self.out.encoding, self.out.errors or "strict")
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            aside = f"{self.path}.{os.getpid()}"
            with open(aside, "wb") as f:
                head = f"{self.generation} {self.now!r} {len(self.key)} {len(data)}\n"
                f.write(head.encode())
                f.write(self.key)
                f.write(data)
            os.replace(aside, self.path)
            kept = sorted(
                (entry.stat().st_mtime, entry.path)
                for entry in os.scandir(self.folder)
                if entry.is_file()
            )
            for _, path in kept[:-KEEP]:
                os.unlink(path)
        except OSError:
            pass  # a cache: the answer was printed; the next call computes it again


def _changed(path: str) -> str:
    """When a module last changed: an answer other code rendered is not this code's."""
    try:
        return str(os.stat(path).st_mtime_ns)
    except OSError:
        return ""


def _caller(out) -> list[str]:
    """Who asks, in what environment: the users, stdout's encoding, every variable but the
    clock (a test's $SLURMSKY_NOW): a kept answer is one the time does not change."""
    environ = sorted(f"{k}={v}" for k, v in os.environ.items() if k != "SLURMSKY_NOW")
    return [f"{os.getuid()} {os.geteuid()} {out.encoding} {out.errors}", *environ]
