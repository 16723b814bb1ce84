"""The batch step on node 0: the script run through its shebang, as slurmstepd runs it.

The script is copied to ``slurm_script`` (0700) in the node's rundir, so ``$0`` is that copy as
on Slurm; it runs in the working directory with stdout/stderr on the expanded --output /
--error files (stderr joins stdout when --error is absent or names the same file), stdin
from --input or /dev/null, in its own process group.
"""

import json
import os
import threading
import time

from . import filepattern, procs

OUTPUTS = "outputs.json"


class LaunchError(Exception):
    """The batch script could not be started (Slurm: JobLaunchFailure)."""


class Batch:
    def __init__(self, job, node_dir, reaper, env, on_exit, sampler):
        self.job, self.node_dir, self.reaper, self.env = job, node_dir, reaper, env
        self.on_exit = on_exit
        self.usage = sampler.track(job.names[0], 0)  # the batch step's one task
        self.pid = self.status = self.started = None
        self.done = threading.Event()
        self._err_fd = None
        spec = job.spec
        self.stdout_path = self._path(spec["output"])
        self.stderr_path = self._path(spec["error"]) if spec["error"] else self.stdout_path
        self.stdin_path = self._path(spec["input"]) if spec["input"] else os.devnull

    def _say_outputs(self):
        """OUTPUTS in the job's rundir: the files the script writes, once they are open (a
        SkyPilot job's emitter follows them, never a file an earlier job left there)."""
        path = os.path.join(os.path.dirname(self.node_dir), OUTPUTS)
        with open(path + ".tmp", "w") as f:
            json.dump({"o": self.stdout_path, "e": self.stderr_path}, f)
        os.replace(path + ".tmp", path)

    def _path(self, pattern):
        job = self.job
        name = filepattern.expand(
            pattern,
            job_id=job.job_id,
            array_job_id=job.array_job_id,
            array_task_id=job.array_task_id,
            job_name="(null)" if job.spec["job_name_unset"] else job.spec["job_name"],
            user=job.spec["user"],
            node_name=job.names[0],
            node_id=0,
            task_id=0,
        )
        return os.path.join(job.workdir, name)

    def start(self):
        spec = self.job.spec
        if not os.path.isdir(self.job.workdir):
            raise LaunchError(
                "couldn't chdir to `%s': No such file or directory" % self.job.workdir
            )
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | (os.O_APPEND if spec["open_mode"] == "append" else os.O_TRUNC)
        )
        try:
            out_fd = _open(self.stdout_path, flags)
            self._err_fd = (
                out_fd if self.stderr_path == self.stdout_path else _open(self.stderr_path, flags)
            )
            in_fd = _relayed(spec.get("stdin_relay")) or os.open(self.stdin_path, os.O_RDONLY)
        except OSError as e:
            raise LaunchError("%s: %s" % (e.filename, e.strerror)) from None
        self._say_outputs()
        script = os.path.join(self.node_dir, "slurm_script")
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(spec["script"])  # its bytes as sbatch read them
        umask = int(spec["umask"], 8) if spec["umask"] else _current_umask()
        argv = procs.launch_argv(
            self.job.names[0], umask, self.job.workdir, [script] + list(spec["script_args"])
        )
        self.started = time.time()
        try:
            self.pid = self.usage.pid = self.reaper.spawn(
                argv, self.env, in_fd, out_fd, self._err_fd, self._exited
            )
        finally:
            os.close(in_fd)
            if out_fd != self._err_fd:
                os.close(out_fd)

    def _exited(self, status, rusage):
        self.usage.finish(rusage)
        self.status = status
        self.done.set()
        self.on_exit()

    def write_error(self, line):
        """A slurmstepd line in the job's stderr file (kept open for this); -> the offset it
        went to (the job may write beside it: a hint), None if it went nowhere."""
        if self._err_fd is not None:
            data = (line + "\n").encode()
            try:
                os.write(self._err_fd, data)
                return os.lseek(self._err_fd, 0, os.SEEK_CUR) - len(data)
            except OSError:
                pass
        return None

    def close(self):
        if self._err_fd is not None:
            os.close(self._err_fd)
            self._err_fd = None


def _open(path, flags):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)  # as the local backend promises (client contract)
    return os.open(path, flags, 0o666)


def _current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _relayed(path):
    """An srun-made allocation's batch (its srun): the stdin of the srun that made it
    (spec "stdin_relay"), or None where that is gone or cannot be opened (a socket)."""
    if not path:
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_NOCTTY)  # a terminal never becomes ours
    except OSError:
        return None
