"""sbcast: copy a file to a running job's nodes, as Slurm 22.05's sbcast answers.

The job is `-j/--jobid` (`JOB[+OFFSET][.STEP]`: a step must be running) or $SLURM_JOB_ID.
Where the backend's nodes see this machine's filesystem (Feature.STEP_IO: the local
backend's nodes are this machine) the file is written once, for all of them: a relative
DEST is relative to the job's working directory (the nodes' cwd), and it is created with the
source's mode, refused with Slurm's `REQUEST_FILE_BCAST(node): File exists` (exit 17, one
line per node) unless `-f/--force`; `-p/--preserve` gives it the source's times too. Slurm's
nodes on a shared filesystem race to write it (the peer answered File exists for all but the
first node even on the first copy); slurmsky writes it once and refuses only a file that was
there before. -C, -F, -s, -t, --exclude and --send-libs are accepted (one local copy has
nothing to compress, fan out, split or time out).
"""

from __future__ import annotations

import errno
import os
import sys

from slurmsky import backends
from slurmsky.commands.common import run
from slurmsky.commands.read_options import OPTIONAL, REQUIRED, Opt, Table, answered
from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.record import Record
from slurmsky.runtime.getopt_long import UsageError

USAGE = "Usage: sbcast [--exclude] [-CfFjpvV] [--send-libs] SOURCE DEST"
NEED_JOB = (
    "Need a job id to run this command.  Run from within a Slurm job or use the --jobid option."
)
# What slurm_sbcast_lookup answers of a job it cannot broadcast to (exit 255).
INVALID = "Invalid job id specified"
PENDING = "Job is pending execution"
ENDED = "Job/step already completing or completed"


class SbcastArgs(Record, frozen=False):
    """What sbcast's options ask."""

    job: str | None = None
    force: bool = False
    preserve: bool = False
    action: str | None = None


_ACCEPTED = "accepted, no effect (one local copy)"
# fmt: off
OPTIONS = Table("sbcast", (
    Opt("C", ("compress",), OPTIONAL, help=_ACCEPTED),
    Opt("", ("exclude",), REQUIRED, help=_ACCEPTED),
    Opt("f", ("force",), dest="force", help="replace the destination file"),
    Opt("F", ("fanout",), REQUIRED, help=_ACCEPTED),
    Opt("j", ("jobid",), REQUIRED, "job", help="the job (and step)"),
    Opt("p", ("preserve",), dest="preserve", help="the source's modes and times"),
    Opt("", ("send-libs",), OPTIONAL, help=_ACCEPTED),
    Opt("s", ("size",), REQUIRED, help=_ACCEPTED),
    Opt("t", ("timeout",), REQUIRED, help=_ACCEPTED),
    Opt("v", ("verbose",), help="accepted, no effect"),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("usage",), dest="action", const="usage", stop=True, help="the usage text"),
))
# fmt: on


def job_text(text: str) -> tuple[str, int, int | None]:
    """`-j`'s `JOB[+OFFSET][.STEP]` -> (as the errors name it, job id, step or None). As
    Slurm's strtol, what is no number is job 0 (which no job is)."""
    head, dot, step = text.partition(".")
    digits = ""
    for ch in head.strip():
        if ch not in "0123456789":
            break
        digits += ch
    job = int(digits or 0)
    if dot:
        return f"{job}.{step}", job, int(step) if step.isascii() and step.isdigit() else -1
    return str(job), job, None


def _lookup(shown: str, job_id: int, step: int | None):
    """The running job (and step) to broadcast to, else Slurm's lookup error."""

    def refuse(why: str) -> SlurmError:
        return SlurmError(f"Slurm job {shown} lookup error: {why}", exit_code=255)

    rec = state.get_job(state.connect(), job_id) if job_id > 0 else None
    if rec is None:
        raise refuse(INVALID)
    if rec.state == "PENDING":
        raise refuse(PENDING)
    if rec.finished or rec.state == "COMPLETING":
        raise refuse(ENDED)
    backend = backends.get(rec.executor)
    backend.require(backends.Feature.STEP_IO)
    if step is not None and not any(
        str(s.get("id")) == str(step) for s in backend.running_steps(rec)
    ):
        raise refuse(INVALID)
    return rec


def _copy(source: str, fd_in: int, dest: str, force: bool, preserve: bool) -> int:
    """Write the source's bytes to dest once; the errno that refused it, or 0."""
    st = os.fstat(fd_in)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(dest, flags, st.st_mode & 0o7777)
    except OSError as exc:
        return exc.errno or errno.EIO
    try:
        os.fchmod(fd, st.st_mode & 0o7777)
        while True:
            chunk = os.read(fd_in, 1 << 20)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        if preserve:
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError as exc:
        return exc.errno or errno.EIO
    finally:
        os.close(fd)
    return 0


def body(argv: list[str]) -> int:
    o, names = OPTIONS.parse(argv, SbcastArgs())
    if answered(o, USAGE, "sbcast"):
        return 0
    if len(names) != 2:
        raise UsageError(
            f"Need two file names, have {len(names)} names",
            'Try "sbcast --help" for more information',
        )
    text = o.job if o.job is not None else os.environ.get("SLURM_JOB_ID")
    if text is None:
        raise SlurmError(NEED_JOB)
    shown, job_id, step = job_text(text)
    source, dest = names
    try:
        fd_in = os.open(source, os.O_RDONLY)
    except OSError as exc:
        raise SlurmError(f"Can't open `{source}`: {os.strerror(exc.errno or 0)}", exit_code=255)
    try:
        if os.path.isdir(source):
            raise SlurmError(f"Can't mmap file `{source}`, No such device.", exit_code=255)
        rec = _lookup(shown, job_id, step)
        from slurmsky.runtime.hostlist import expand

        where = os.path.join(rec.workdir or rec.submit_dir or "/", dest)
        failed = _copy(source, fd_in, where, o.force, o.preserve)
    finally:
        os.close(fd_in)
    if failed:
        for node in expand(rec.nodelist or "") or [rec.batch_host or "?"]:
            sys.stderr.write(f"sbcast: error: REQUEST_FILE_BCAST({node}): {os.strerror(failed)}\n")
        return failed
    return 0


def main() -> None:
    run("sbcast", body)
