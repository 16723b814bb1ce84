"""The tasks of srun steps on this node: what slurmstepd does for a step on one node.

Each task runs through launch.py in its own process group with its stdout/stderr on pipes;
output is sent on as it comes (``out`` messages), and so is what a task of an
``srun --mpi=pmi2`` step writes on its PMI socket (``pmi``; srun's answers come back through
pmi(): see pmi.py), exits are reported grouped by status as
slurmstepd groups them (``exit``), and when the last local task has exited its leftovers
are killed, the pipes drained (bounded) and ``done`` is sent with the tasks' usage
(usage.py); at each sample the running steps' usage goes out too (``usage``). Messages go to
``send``: the step channel on an agent, node 0's router on node 0.
"""

import os
import queue
import signal
import socket
import threading
import time

from . import env as envmod
from . import filepattern, launch, procs

EXIT_GRACE = 0.2  # seconds to let a task's pipes drain after it exits, before reporting
DRAIN_TIMEOUT = 2.0  # seconds to wait for pipes held open by killed leftovers
GROUP_WINDOW = 0.03  # exits this close together are reported as one, as slurmstepd does
IDLE_WAIT = 1.0  # seconds between looks at a step whose tasks all run (exits notify)
EPILOG_WAIT = 5.0  # seconds a --task-epilog may run before it is killed (slurmstepd's)
KILL_GROUP = 1.0  # seconds after a SIGKILL to the step in which its tasks' exits wait for
#                   each other: tasks killed together share one report, however loaded the node
PMI_SEND_TIMEOUT = 10.0  # seconds a task has to take srun's PMI answer off its socket


class NodeSteps:
    """The steps running on this node, by step id (launch, signal)."""

    def __init__(self, job, reaper, send, bin_dir, node_environ, sampler):
        self.job, self.reaper, self.send, self.sampler = job, reaper, send, sampler
        self.bin_dir, self.node_environ = bin_dir, node_environ
        self._lock = threading.Lock()
        self._steps = {}

    def launch(self, step):
        local = _LocalStep(self, step)
        with self._lock:
            self._steps[step["id"]] = local
        local.start()

    def signal(self, signum, step_ids=None):
        """signum to every process of the given steps (all running steps when None)."""
        with self._lock:
            steps = [s for i, s in self._steps.items() if step_ids is None or i in step_ids]
        for step in steps:
            step.signal(signum)

    def pmi(self, step_id, gid, data):
        """srun's PMI answer to task gid of a step on this node."""
        with self._lock:
            step = self._steps.get(step_id)
        if step is not None:
            step.pmi_answer(gid, data)

    def stdin(self, step_id, data):
        """srun's own stdin (b"": its end) to the tasks of a step on this node that read it."""
        with self._lock:
            step = self._steps.get(step_id)
        if step is not None:
            for task in step.tasks:
                if task.feed is not None:
                    task.feed.put(data)

    def report_usage(self):
        """Send each running step's usage on this node (after a sample)."""
        with self._lock:
            steps = list(self._steps.values())
        for step in steps:
            step.send_usage("usage")

    def _finished(self, step_id):
        with self._lock:
            self._steps.pop(step_id, None)


class _Task:
    """One task: its pid, wait status, and how many of its output pipes are still open."""

    def __init__(self, gid, usage):
        self.gid, self.pid, self.status, self.usage = gid, None, None, usage
        self.exited_at = None
        self.open_pipes = 2
        self.reported = False
        self.pmi = None  # our end of its PMI socket (srun --mpi=pmi2)
        self.env = None  # its environment as launched (a --task-epilog runs in it)
        self.feed = None  # its stdin from srun's, when it reads that (_Feed)


class _Feed:
    """A task's stdin from srun's own: a pipe that a thread of its own writes (a task that
    does not read never holds up the node), closed at the end of srun's stdin."""

    def __init__(self, fd):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._write, args=(fd,), daemon=True).start()

    def put(self, data):
        self.queue.put(data)

    def _write(self, fd):
        alive = True
        while True:
            data = self.queue.get()
            if not data:
                break
            while alive and data:  # a task gone (EPIPE): the rest is dropped
                try:
                    data = data[os.write(fd, data) :]
                except OSError:
                    alive = False
        os.close(fd)


class _LocalStep:
    """This node's share of one step: its tasks, their output pumps and their finisher."""

    def __init__(self, node, step):
        self.node, self.step = node, step
        self.id = step["id"]
        pos = step["nodes"].index(node.job.rank)
        self.tasks = [
            _Task(gid, node.sampler.track(node.job.name, gid)) for gid in step["tasks"][pos]
        ]
        self.cond = threading.Condition()
        self.killed_at = float("-inf")

    def _stepd(self, level, text):
        """A line of slurmstepd's log to the step's srun, at --slurmd-debug's level or above
        (srun.LOG_LEVELS: 4 verbose, 5 debug, 6 debug2)."""
        if self.step.get("stepd_level", 0) >= level:
            self._send(
                {
                    "t": "msg",
                    "step": self.id,
                    "text": "slurmstepd-%s: %s" % (self.node.job.name, text),
                }
            )

    def start(self):
        node, step = self.node, self.step
        level = step.get("stepd_level", 0)
        if level >= 4:
            from slurmsky.runtime.srun import LOG_LEVELS

            self._stepd(
                4,
                "debug levels are stderr='%s', logfile='info', syslog='fatal'" % LOG_LEVELS[level],
            )
        self._stepd(5, "debug:  IO handler started pid=%d" % os.getpid())
        self._stepd(4, "starting %d tasks" % len(self.tasks))
        with open(os.devnull, "rb") as devnull:
            for local_id, task in enumerate(self.tasks):
                ours, theirs = socket.socketpair() if step.get("pmi_jobid") else (None, None)
                env = envmod.task_env(
                    step["env"],
                    node.job,
                    step,
                    node.node_environ,
                    node.bin_dir,
                    local_id,
                    theirs.fileno() if theirs else None,
                )
                if step.get("task_epilog"):
                    task.env = dict(env, SLURM_SCRIPT_CONTEXT="epilog_task")
                if step.get("rlimits"):
                    env[launch.LIMITS_VAR] = step["rlimits"]
                if step.get("task_prolog"):
                    env[launch.PROLOG_VAR] = step["task_prolog"]
                if step.get("debugger_test") or step.get("suspended"):
                    env[launch.STOP_VAR] = "1"
                program = (step.get("programs") or {}).get(str(task.gid), step["argv"])
                argv = procs.launch_argv(node.job.name, step["umask"], step["cwd"], program)
                r_out, w_out = os.pipe()
                r_err, w_err = os.pipe()
                stdin = None
                try:
                    stdin = self._stdin(env, task.gid)
                    if stdin is None and step.get("stdin_to") in ("all", task.gid):
                        stdin, fed = os.pipe()
                        task.feed = _Feed(fed)
                    task.pid = task.usage.pid = node.reaper.spawn(
                        argv,
                        env,
                        devnull if stdin is None else stdin,
                        w_out,
                        w_err,
                        lambda status, rusage, t=task: self._exited(t, status, rusage),
                        (theirs.fileno(),) if theirs else (),
                    )
                except OSError as e:  # fork failed: the task exits 1, as after a launch error
                    os.write(w_err, ("slurmstepd-%s: error: %s\n" % (node.job.name, e)).encode())
                    self._exited(task, 1 << 8, None)
                finally:
                    os.close(w_out)
                    os.close(w_err)
                    if stdin is not None:
                        os.close(stdin)
                    if theirs:
                        theirs.close()
                if task.pid is not None:
                    when = time.strftime("%Y-%m-%dT%H:%M:%S")
                    self._stepd(4, "task %d (%d) started %s" % (task.gid, task.pid, when))
                    self._stepd(
                        6,
                        "debug2: adding task %d pid %d on node %d to jobacct"
                        % (task.gid, task.pid, node.job.rank),
                    )
                for fd, num in ((r_out, 1), (r_err, 2)):
                    threading.Thread(target=self._pump, args=(task, fd, num), daemon=True).start()
                if ours:
                    ours.settimeout(PMI_SEND_TIMEOUT)
                    task.pmi = ours
                    threading.Thread(target=self._pmi_pump, args=(task,), daemon=True).start()
        self._stepd(5, "debug:  Sending launch resp rc=0")
        if step.get("debugger_test"):  # srun prints the tasks' table (MPIR proctable)
            pids = {str(t.gid): t.pid for t in self.tasks if t.pid is not None}
            self._send({"t": "pids", "step": self.id, "pids": pids})
        threading.Thread(target=self._finish, name="step-%d" % self.id, daemon=True).start()

    def _stdin(self, env, gid):
        """srun -i FILE: the task's stdin opened (srun's file, or its own name of a %t %n %N
        pattern, as slurmstepd expands it), or None: /dev/null."""
        given = self.step.get("stdin")
        if not given:
            return None
        path, per_task = given
        if per_task:
            pos = self.step["nodes"].index(self.node.job.rank)
            path = filepattern.expand_in_job(
                path,
                env,
                node_name=self.node.job.name,
                node_id=pos,
                task_id=gid,
                step_id=self.id,
            )
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as e:  # the task fails to start, as after a launch error
            raise OSError("Could not open stdin file %s: %s" % (path, e.strerror)) from None

    def _pump(self, task, fd, num):
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                self.node.send({"t": "out", "step": self.id, "task": task.gid, "fd": num}, data)
            except OSError:
                pass  # the step's srun is gone: keep draining so the task never blocks
        os.close(fd)
        with self.cond:
            task.open_pipes -= 1
            self.cond.notify_all()

    def _pmi_pump(self, task):
        """What the task writes on its PMI socket -> the step's srun, until the task and
        whatever inherited the socket are gone."""
        while True:
            try:
                data = task.pmi.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                break
            self._send({"t": "pmi", "step": self.id, "task": task.gid}, data)
        task.pmi.close()

    def pmi_answer(self, gid, data):
        for task in self.tasks:
            if task.gid == gid and task.pmi is not None:
                try:
                    task.pmi.sendall(data)
                except OSError:  # gone, or not reading (timed out): its own loss
                    pass

    def _exited(self, task, status, rusage):
        task.usage.finish(rusage)
        if task.env is not None:  # its exit counts once the epilog is done
            args = (task, status)
            threading.Thread(target=self._epilog, args=args, daemon=True).start()
            return
        self._ended(task, status)

    def _epilog(self, task, status):
        """srun --task-epilog after a task, as slurmstepd runs it: in the task's environment
        and the step's directory, its output nowhere, in its own process group, killed with
        whatever is left in that group when it exits or after EPILOG_WAIT."""
        done = threading.Event()
        path = self.step["task_epilog"]
        path = path if "/" in path else "./" + path  # execve's: no PATH search
        argv = procs.launch_argv(self.node.job.name, self.step["umask"], self.step["cwd"], [path])
        try:
            with open(os.devnull, "r+b") as null:
                pid = self.node.reaper.spawn(
                    argv, task.env, null, null, null, lambda *_: done.set()
                )
            done.wait(EPILOG_WAIT)
            procs.kill_groups([pid], signal.SIGKILL)
        except OSError:
            pass
        self._ended(task, status)

    def _ended(self, task, status):
        with self.cond:
            task.status, task.exited_at = status, time.monotonic()
            self.cond.notify_all()

    def _finish(self):
        """Report exits (grouped by status, after the task's output), then leftovers, done."""
        while True:
            with self.cond:
                if any(t.status is not None and not t.reported for t in self.tasks):
                    self.cond.wait(GROUP_WINDOW)  # siblings ending together share one report
                else:
                    self.cond.wait(IDLE_WAIT)  # until a task exits (notified)
                now = time.monotonic()
                ended = [t for t in self.tasks if t.status is not None and not t.reported]
                ready = [t for t in ended if t.open_pipes == 0 or now - t.exited_at >= EXIT_GRACE]
                # a sibling with the same status still draining its output: its group waits
                # for it (EXIT_GRACE at most), so that tasks killed together share one line
                draining = {t.status for t in ended if t not in ready}
                if now - self.killed_at < KILL_GROUP and any(t.status is None for t in self.tasks):
                    ready = []
                groups = {}
                for t in ready:
                    if t.status not in draining:
                        groups.setdefault(t.status, []).append(t.gid)
                        t.reported = True
                finished = all(t.reported for t in self.tasks)
            for status, gids in groups.items():
                for task in (t for t in self.tasks if t.gid in gids and t.pid is not None):
                    self._stepd(
                        6, "debug2: removing task %d pid %d from jobacct" % (task.gid, task.pid)
                    )
                    if os.WIFSIGNALED(status):
                        how = "exited. Killed by signal %d." % os.WTERMSIG(status)
                    else:
                        how = "exited with exit code %d." % os.WEXITSTATUS(status)
                    self._stepd(4, "task %d (%d) %s" % (task.gid, task.pid, how))
                self._send(
                    {
                        "t": "exit",
                        "step": self.id,
                        "node": self.node.job.rank,
                        "tasks": gids,
                        "status": status,
                    }
                )
            if finished:
                break
        for line in ("signaling condition", "Waiting for IO", "Closing debug channel"):
            self._stepd(5, "debug:  " + line)
        # what the tasks left in their process groups
        procs.kill_groups([t.pid for t in self.tasks if t.pid is not None], signal.SIGKILL)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        with self.cond:
            while any(t.open_pipes for t in self.tasks) and time.monotonic() < deadline:
                self.cond.wait(0.05)
        self.node._finished(self.id)
        self.node.sampler.forget([t.usage for t in self.tasks])
        self.send_usage("done")

    def send_usage(self, kind):
        records = [dict(t.usage.record) for t in self.tasks]
        self._send({"t": kind, "step": self.id, "node": self.node.job.rank, "usage": records})

    def _send(self, msg, payload=b""):
        try:
            self.node.send(msg, payload)
        except OSError:
            pass

    def signal(self, signum):
        """signum to the tasks' process groups and to the trees of tasks still running."""
        with self.cond:
            if signum == signal.SIGKILL:
                self.killed_at = time.monotonic()
            live = [t.pid for t in self.tasks if t.pid is not None and t.status is None]
            groups = [t.pid for t in self.tasks if t.pid is not None]
        procs.signal_trees(live, signum, groups)
