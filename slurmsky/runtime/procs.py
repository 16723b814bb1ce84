"""Processes of the job on this node: spawning, reaping, and signalling whole trees.

The node runtime makes itself a child subreaper (Linux prctl), so whatever a task leaves
behind -- daemons that double-fork or call setsid -- is re-parented to it instead of to init:
"every descendant of the runtime" is then exactly "every process of the job on this node",
which is what Slurm's cgroup-based process tracking gives slurmstepd. One reaper thread
collects every child's status (adopted orphans included), so nothing else may wait() here.
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
LAUNCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch.py")


def become_subreaper():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: leftovers of a task may then escape the final sweep


def launch_argv(node_name, umask, cwd, argv):
    """The exec trampoline (launch.py) that turns into argv the way slurmstepd would."""
    return [sys.executable, "-I", "-S", LAUNCH, node_name, "%04o" % umask, cwd, "--"] + list(argv)


class Reaper:
    """Spawns children and hands each one's wait status and usage to its callback: its
    rusage (CPU time and peak RSS, its reaped descendants' included: what Slurm accounts a
    task by) as the task's own (own_usage), None where unknown."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callbacks = {}
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="reaper", daemon=True).start()

    def spawn(self, argv, env, stdin, stdout, stderr, on_exit, pass_fds=()):
        """Start launch.py's argv (it puts itself in its own process group, but in the
        runtime's session: the local executor finds a node's processes by session) with every
        signal blocked, so a signal sent while Python starts waits until launch.py has reset
        the dispositions and unblocks: it then acts as on the task itself, never as a
        KeyboardInterrupt; -> pid. (No process_group=: the runtime runs on Python 3.8.)
        launch.py reports what the process used before it became the task on a pipe
        (LAUNCH_REPORT), read when it ends."""
        with self._lock:
            report, report_w = os.pipe()
            env = dict(os.environ if env is None else env)
            env[LAUNCH_REPORT] = str(report_w)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            try:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    close_fds=True,
                    pass_fds=tuple(pass_fds) + (report_w,),
                )
            except BaseException:
                os.close(report)
                raise
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                os.close(report_w)
            self._callbacks[proc.pid] = (proc, on_exit, report)
        self._wake.set()
        return proc.pid

    def _run(self):
        while True:
            self._wake.clear()
            try:
                pid, status, rusage = os.wait4(-1, 0)
            except ChildProcessError:
                self._wake.wait(0.5)
                continue
            with self._lock:
                proc, on_exit, report = self._callbacks.pop(pid, (None, None, None))
            if proc is not None:
                proc.returncode = status  # keeps Popen from ever waiting on this pid
                on_exit(status, own_usage(rusage, _read_report(report)))


LAUNCH_REPORT = "SLURMSKY_LAUNCH_REPORT"  # launch.REPORT_VAR (launch.py imports nothing)
# How much the launch's RSS may still grow between its report and the exec (PATH search,
# argv and environment made C arrays), in KiB: a peak no more above the report than this
# may be the launch's own
REPORT_SLACK_KIB = 1024


class Usage:
    """The parts of an rusage the accounting reads (usage.TaskUsage.finish)."""

    def __init__(self, ru_maxrss, ru_utime, ru_stime):
        self.ru_maxrss, self.ru_utime, self.ru_stime = ru_maxrss, ru_utime, ru_stime


def own_usage(rusage, before):
    """A task's rusage less what its process used before it became the task (`before`:
    launch.py's report, (peak KiB, user s, sys s), or None if it never exec'd). Linux keeps
    a process's peak RSS across exec, and a child made by vfork starts from its parent's,
    so the runtime's and launch.py's own peak is a floor under every task's ru_maxrss: a
    peak above that floor is the task's (its process or a descendant), one at it is unknown
    (0: the samples tell, as Slurm's sampler alone does). CPU time adds up across exec: the
    launch's is taken off."""
    if before is None:
        return Usage(0, rusage.ru_utime, rusage.ru_stime)
    floor, user, system = before
    return Usage(
        rusage.ru_maxrss if rusage.ru_maxrss > floor + REPORT_SLACK_KIB else 0,
        max(rusage.ru_utime - user, 0.0),
        max(rusage.ru_stime - system, 0.0),
    )


def _read_report(fd):
    """launch.py's report from the pipe's read end (closed), or None."""
    try:
        words = os.read(fd, 256).split()
        return int(words[0]), float(words[1]), float(words[2])
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(fd)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_KIB = (os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096) // 1024


def proc_stat(pid):
    """(ppid, user ticks, system ticks, vsize KiB, rss KiB) of a process from /proc, or None.
    User and system time include its reaped children's (cutime, cstime)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    try:
        # after the command: state ppid ... utime(12) stime cutime cstime ... vsize(21) rss
        return (
            int(fields[1]),
            int(fields[11]) + int(fields[13]),
            int(fields[12]) + int(fields[14]),
            int(fields[20]) // 1024,
            int(fields[21]) * PAGE_KIB,
        )
    except (IndexError, ValueError):
        return None


def snapshot():
    """pid -> proc_stat(pid) for every process visible in /proc ({} without /proc)."""
    found = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit():
            info = proc_stat(int(entry))
            if info is not None:
                found[int(entry)] = info
    return found


def children_of(stats):
    """parent pid -> its children's pids, from a snapshot()."""
    children = {}
    for pid, info in stats.items():
        children.setdefault(info[0], []).append(pid)
    return children


def descendants(pid, children=None):
    """Every process below pid (children first; pid itself excluded), from `children`
    (children_of a snapshot) or from /proc now."""
    if children is None:
        children = children_of(snapshot())
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def kill(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def kill_groups(pgids, sig):
    """sig to each of the process groups that still holds a process of this job. The id of
    a group whose last process has gone is free: the system may give it to a stranger's new
    group (pids wrap within minutes on a busy host), so a group is signalled only while a
    descendant of the runtime (a subreaper: every process of the job is one) is in it."""
    pgids = set(pgids)
    held = set()
    for pid in descendants(os.getpid()):
        try:
            pgid = os.getpgid(pid)
        except OSError:
            continue
        if pgid in pgids:
            held.add(pgid)
    for pgid in held:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass


def signal_trees(roots, sig, groups=()):
    """sig once to every process of the given process groups that is still the job's (the
    roots' own included: unreaped, they are) and to every descendant of the roots that has
    left them (setsid daemons, new groups)."""
    groups = set(groups) | set(roots)
    strays = {pid for root in roots for pid in descendants(root)}
    kill_groups(groups, sig)
    for pid in strays:
        try:
            if os.getpgid(pid) in groups:
                continue
        except OSError:
            continue
        kill(pid, sig)


def signal_everything(sig):
    """sig to every process of the job on this node (all descendants of the runtime)."""
    for pid in descendants(os.getpid()):
        kill(pid, sig)


def kill_everything(timeout=5.0):
    """SIGKILL every descendant until none is left (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = descendants(os.getpid())
        if not left:
            return True
        for pid in left:
            kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return not descendants(os.getpid())
