"""A node's private run directory (``RUNDIR/node<rank>``, mode 0700) and how commands inside
the job find their node runtime through it.

It holds the copy of the batch script (``slurm_script``), the job's ``srun`` and ``scontrol``
(``bin/``, put first on the job's PATH), ``control.json`` (node 0's channel address and the
``local`` key, mode 0600: this is how srun, scontrol and the ``signal`` command authenticate,
and how the agents of the nodes on this machine find node 0's port, which the OS chose;
the job secret itself is never written anywhere) and ``job.json`` (for scontrol show job).
RUNDIR may be shared by the nodes of one machine, hence one subdirectory per rank.
"""

import errno
import json
import os
import shlex
import sys
import time

from . import PACKAGE_PARENT, channel

TOOLS = ("srun", "scontrol")
REPLY_TIMEOUT = 30  # seconds a control request (signal, requeue) waits for node 0
# -I: the job's PYTHONPATH and user site cannot break the tools; the package is put on
# sys.path by the wrapper itself, so the job's environment is left untouched. SIGINT is
# ignored while Python starts (its own handler would turn one into a KeyboardInterrupt
# traceback, or a fatal error in its init, where Slurm's C tools just end), then has its
# default action while the tool imports, until it sets its own (srun does). bash, not sh:
# dash drops the environment's names that are no shell identifiers (TEST_ENV_17.14), which
# Slurm's srun hands on to its tasks.
WRAPPER = """#!/bin/bash
trap '' INT
exec {python} -I -S -c 'import _signal, sys; \
_signal.signal(2, _signal.SIG_DFL); \
sys.path.insert(0, sys.argv.pop(1)); \
from slurmsky.runtime.{tool} import main; sys.exit(main(sys.argv[2:], sys.argv[1]))' \
{parent} {node_dir} "$@"
"""


def node_dir(rundir, rank):
    path = os.path.join(os.path.abspath(rundir), "node%d" % rank)
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path, text, mode=0o600):
    """Write text atomically (a temporary file renamed over path), with mode."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


RESULT_RESERVE = 64 * 1024  # bytes held beside RESULT from the job's start (it is ~1 KiB)
RESULT_RETRY = 300  # seconds write_result waits for space when even the reserve is gone


def reserve(path):
    """Hold RESULT_RESERVE bytes beside `path` (`path.reserve`), unless held already: space
    that write_result frees if the disk has filled meanwhile. Best effort: a disk full
    already holds none."""
    try:
        fd = os.open(path + ".reserve", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    try:
        os.write(fd, bytes(RESULT_RESERVE))  # real blocks, on any filesystem
    except OSError:
        pass
    finally:
        os.close(fd)


def write_result(path, text):
    """Write RESULT (write_private); if the disk is full, free the reserve and write again,
    then retry each second for RESULT_RETRY s: a job that ended is recorded as it ended,
    not lost to ENOSPC (its node runtime lives on meanwhile: no NODE_FAIL)."""
    deadline = time.monotonic() + RESULT_RETRY
    try:
        while True:
            try:
                write_private(path, text)
                return
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT) or time.monotonic() > deadline:
                    raise
                _unlink("%s.tmp%d" % (path, os.getpid()))
                if not os.path.exists(path + ".reserve"):
                    time.sleep(1)
                _unlink(path + ".reserve")
    finally:
        _unlink(path + ".reserve")


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# BASH_ENV of a script whose shebang asks for a login shell (#!/bin/bash -l): bash reads it
# after the profile, which may have reset PATH; the job's srun and scontrol come first again.
LOGIN_ENV = """case "$PATH" in {bin_dir}|{bin_dir}:*) ;; *) PATH={bin_dir}${{PATH:+:$PATH}}; export PATH;; esac
"""


def install_tools(path):
    """-> the bin directory holding the job's srun and scontrol (beside it: bash_env,
    LOGIN_ENV)."""
    bin_dir = os.path.join(path, "bin")
    os.makedirs(bin_dir, exist_ok=True)
    write_private(os.path.join(path, "bash_env"), LOGIN_ENV.format(bin_dir=shlex.quote(bin_dir)))
    for tool in TOOLS:
        write_private(
            os.path.join(bin_dir, tool),
            WRAPPER.format(
                python=shlex.quote(sys.executable),
                parent=shlex.quote(PACKAGE_PARENT),
                tool=tool,
                node_dir=shlex.quote(path),
            ),
            mode=0o700,
        )
    return bin_dir


def write_control(path, job_id, host, port, key):
    write_private(
        os.path.join(path, "control.json"),
        json.dumps({"job_id": job_id, "host": host, "port": port, "key": key.hex()}),
    )


def published_port(run_dir):
    """[node 0's channel port] once node 0 has published it in the shared rundir, else []."""
    try:
        with open(os.path.join(run_dir, "node0", "control.json")) as f:
            return [json.load(f)["port"]]
    except (OSError, ValueError, KeyError):
        return []


def connect(path, timeout=None):
    """A command inside the job: its authenticated connection to node 0 (replies are
    awaited for at most timeout seconds; None: srun, which waits for its step)."""
    with open(os.path.join(path, "control.json")) as f:
        control = json.load(f)
    conn = channel.connect(
        control["host"], control["port"], control["job_id"], "local", bytes.fromhex(control["key"])
    )
    conn.sock.settimeout(timeout)
    return conn


def signal_job(run_dir, signum, target):
    """scancel --signal's delivery to the job whose node 0 has run_dir: signum to its steps,
    its batch shell, or both ("steps", "batch", "full"). Raises OSError or ChannelError."""
    conn = connect(os.path.join(run_dir, "node0"), REPLY_TIMEOUT)
    try:
        conn.send({"t": "signal", "signum": signum, "target": target})
        conn.recv()
    finally:
        conn.close()


def write_job_info(path, info):
    write_private(os.path.join(path, "job.json"), json.dumps(info))


def read_job_info(path):
    with open(os.path.join(path, "job.json")) as f:
        return json.load(f)
