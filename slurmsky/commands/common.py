"""What every command shares: Slurm-style error exits."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from slurmsky.core import state
from slurmsky.errors import SlurmError
from slurmsky.runtime.getopt_long import UsageError
from slurmsky.runtime.launch import undo_locale_coercion


def other_command(prog: str) -> str | None:
    """Another `prog` on PATH than this one: a real Slurm's, when slurmsky's was found first
    (a venv shared with a real cluster)."""
    mine = os.path.realpath(sys.argv[0])
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder or ".", prog)
        if os.access(candidate, os.X_OK) and os.path.realpath(candidate) != mine:
            try:
                with open(candidate, "rb") as fh:
                    if b"slurmsky" in fh.read(4096):  # another copy of ours (bin/, a venv's)
                        continue
            except OSError:
                continue
            return candidate
    return None


def _step_aside(prog: str) -> None:
    """Inside a real Slurm cluster's job (SLURM_JOB_ID set, SLURM_CLUSTER_NAME not this
    config's cluster_name), the real `prog` on PATH answers: `scontrol requeue
    $SLURM_JOB_ID` requeues on that cluster (replaces this process)."""
    cluster = os.environ.get("SLURM_CLUSTER_NAME")
    if not cluster or not os.environ.get("SLURM_JOB_ID") or prog == "slurmsky":
        return
    real = other_command(prog)
    if real is None:
        return
    from slurmsky.config import load_config

    try:
        ours = load_config().cluster_name
    except SlurmError:
        return
    if cluster != ours:
        os.execv(real, [real, *sys.argv[1:]])


def run(prog: str, body: Callable[[list[str]], int | None]) -> None:
    """Run a command body; a SlurmError becomes `<prog>: error: ...`, a UsageError its
    lines verbatim, each with its exit code; a closed stdout (`| head`) ends quietly. A
    state database that fails after it opened (locked, full) is a SlurmError too."""
    undo_locale_coercion()
    _step_aside(prog)
    for stream in (sys.stdout, sys.stderr):  # bytes that are not UTF-8 go out as they came
        if hasattr(stream, "reconfigure"):  # a test's StringIO has none
            stream.reconfigure(errors="surrogateescape")
    try:
        try:
            code = body(sys.argv[1:])
        except state.StateError as exc:
            raise _state_failed(prog, exc) from None
        except Exception as exc:
            sqlite3 = sys.modules.get("sqlite3")  # not imported where the state is PostgreSQL's
            if sqlite3 is None or not isinstance(exc, sqlite3.Error):
                raise
            raise state.unusable(exc) from None
    except (SlurmError, UsageError) as exc:
        sys.stdout.flush()
        text = (
            exc.render(prog)
            if isinstance(exc, SlurmError)
            else "".join(line + "\n" for line in exc.lines)
        )
        sys.stderr.write(text)
        code = exc.exit_code
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug, or a state no command expects (a garbled row)
        if os.environ.get("SLURMSKY_DEBUG"):
            raise
        sys.stdout.flush()
        said = " ".join(str(exc).split())
        sys.stderr.write(
            f"{prog}: error: unexpected {type(exc).__name__}"
            f"{': ' + said if said else ''} (SLURMSKY_DEBUG=1 shows where)\n"
        )
        code = 1
    sys.exit(code or 0)


# What each command says when the controller (here: the state's PostgreSQL server) cannot be
# reached, as Slurm 22.05's do with slurmctld (for sacct: slurmdbd) stopped, and its exit code.
NO_CONTROLLER = "Unable to contact slurm controller (connect failure)"
_UNREACHABLE = {
    "sbatch": f"sbatch: error: Batch job submission failed: {NO_CONTROLLER}",
    "salloc": f"salloc: error: Job submit/allocate failed: {NO_CONTROLLER}",
    "srun": f"srun: error: Unable to allocate resources: {NO_CONTROLLER}",
    "sinfo": f"slurm_load_partitions: {NO_CONTROLLER}",
}


def _unreachable(prog: str, argv: list[str]) -> tuple[list[str], int]:
    """The lines and exit code of `prog argv` with the controller unreachable."""
    if prog in _UNREACHABLE:
        return [_UNREACHABLE[prog]], 1
    ids = [a for a in argv if a[:1].isdigit()]
    if prog == "scancel" and ids and len(ids) == len(argv):  # ids alone: a kill each
        return [f"scancel: error: Kill job error on job id {i}: {NO_CONTROLLER}" for i in ids], 8
    if prog == "sstat":
        return [f"sstat: error: couldn't get steps for job {i}" for i in ids[:1]], 0
    if prog == "sacct":  # slurmdbd's host:port: the database's (libpq's default port)
        host = state.location().split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]
        where = host if ":" in host else f"{host or os.environ.get('PGHOST', 'localhost')}:5432"
        return [
            "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent "
            f"connection to host:{where}: Connection refused",
            "sacct: error: Sending PersistInit msg: Connection refused",
            "sacct: error: Problem talking to the database: Connection refused",
        ], 1
    if prog == "scontrol" and len(argv) > 1 and argv[0] == "show":
        what = argv[1].lower()
        if what.startswith("part"):
            return [f"slurm_load_partitions error: {NO_CONTROLLER}"], 1
        if what.startswith("node"):
            return [f"slurm_load_node error: {NO_CONTROLLER}"], 1
    return [f"slurm_load_jobs error: {NO_CONTROLLER}"], 1


def _state_failed(prog: str, exc) -> SlurmError:
    """A PostgreSQL state's failure in Slurm's words: an unreachable server as a dead
    controller (_unreachable), anything else naming the database's own words."""
    if exc.unreachable:
        lines, code = _unreachable(prog, sys.argv[1:])
        return SlurmError(*lines, bare=True, exit_code=code)
    return SlurmError(f"slurmsky state failed ({exc})")


def plugin_lines(prog: str) -> list[str]:
    """What Slurm 22.05's clients log at -v as they load the select plugins (Debian's
    slurm-client has these four; SelectTypeParameters CR_CPU_MEMORY is linear's 20), as
    `scontrol show config` names select/cons_tres."""
    return [
        f"{prog}: select/cons_tres: common_init: select/cons_tres loaded",
        f"{prog}: select/cray_aries: init: Cray/Aries node selection plugin loaded",
        f"{prog}: select/linear: init: Linear node selection plugin loaded with argument 20",
        f"{prog}: select/cons_res: common_init: select/cons_res loaded",
    ]


def propagating_lines(prog: str) -> list[str]:
    """What sbatch logs at -vv (debug) as it reads what it hands the job: its soft limits
    (unlimited as 2**64 - 1), its nice value and umask."""
    import resource

    from slurmsky.runtime.launch import PROPAGATED

    lines = []
    for name in PROPAGATED:
        soft = resource.getrlimit(getattr(resource, "RLIMIT_" + name))[0]
        lines.append(f"{prog}: debug:  propagating RLIMIT_{name}={soft % 2**64}")
    mask = os.umask(0)
    os.umask(mask)
    return lines + [
        f"{prog}: debug:  propagating SLURM_PRIO_PROCESS={os.getpriority(os.PRIO_PROCESS, 0)}",
        f"{prog}: debug:  propagating UMASK={mask:04o}",
    ]


def auth_lines(prog: str) -> list[str]:
    """The plugins a client loads after select's, logged at -vv (debug)."""
    return [
        f"{prog}: debug:  auth/munge: init: Munge authentication plugin loaded",
        f"{prog}: debug:  hash/k12: init: init: KangarooTwelve hash plugin loaded",
    ]


def warn(lines) -> None:
    for line in lines:
        sys.stderr.write(line + "\n")
