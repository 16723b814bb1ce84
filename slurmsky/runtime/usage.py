"""What each task of the job uses on this node, as Slurm's jobacct_gather/linux samples it.

Every ``acct_gather_frequency`` seconds (Slurm's JobAcctGatherFrequency, 30 by default) one
pass over /proc sums each task's process tree: resident and virtual memory (their peaks are
MaxRSS and MaxVMSize) and CPU time, its own and its reaped children's. When a task ends, the
wait4 rusage of its process, less what that process used before it exec'd the task
(procs.own_usage), gives the final user and system CPU and a floor for its peak RSS
(``ru_maxrss``: the largest single process), so a task shorter than the interval still
reports a peak above the runtime's own; a smaller one that no sample saw is unknown, and
its step shows no memory, as Slurm's does. Without /proc (not Linux) only the end's rusage
counts.

A task's record, the unit every step's usage is made of (sacct and sstat derive MaxRSS,
AveRSS, MaxRSSNode/Task, TotalCPU, AveCPU, MinCPU... from a step's records)::

    {"node": str, "task": int,             # node name, the task's rank in the step
     "rss": int, "vm": int,                # peak KiB
     "cur_rss": int, "cur_vm": int,        # KiB at the last sample (sstat's AveRSS)
     "user": float, "sys": float}          # CPU seconds
"""

import threading
import time

from . import procs


def tree_totals(root, stats, children):
    """(user s, system s, vm KiB, rss KiB) summed over root and its descendants, from a
    procs.snapshot() and its procs.children_of()."""
    user = system = vm = rss = 0
    for pid in [root] + procs.descendants(root, children):
        _, u, s, v, r = stats[pid]
        user, system, vm, rss = user + u, system + s, vm + v, rss + r
    return user / procs.CLOCK_TICKS, system / procs.CLOCK_TICKS, vm, rss


class TaskUsage:
    """One task's usage on this node (see the module's record)."""

    def __init__(self, node, task):
        self.pid = None  # set once spawned (its end may come first: then it stays ended)
        self.record = {
            "node": node,
            "task": task,
            "rss": 0,
            "vm": 0,
            "cur_rss": 0,
            "cur_vm": 0,
            "user": 0.0,
            "sys": 0.0,
        }
        self.ended = False

    def sample(self, stats, children):
        if self.ended or self.pid not in stats:
            return
        user, system, vm, rss = tree_totals(self.pid, stats, children)
        rec = self.record
        rec["cur_rss"], rec["cur_vm"] = rss, vm
        rec["rss"], rec["vm"] = max(rec["rss"], rss), max(rec["vm"], vm)
        rec["user"], rec["sys"] = max(rec["user"], user), max(rec["sys"], system)

    def finish(self, rusage):
        """The task's process was reaped with this rusage (None: unknown)."""
        self.ended = True
        rec = self.record
        rec["cur_rss"] = rec["cur_vm"] = 0
        if rusage is not None:
            rec["user"], rec["sys"] = rusage.ru_utime, rusage.ru_stime
            rec["rss"] = max(rec["rss"], rusage.ru_maxrss)


class Sampler:
    """Samples the tracked tasks every `interval` seconds (0: never, only their ends count),
    then calls `on_sample()` (node 0 publishes usage for sstat; agents send it to node 0)."""

    def __init__(self, interval, on_sample=None):
        self.interval, self.on_sample = interval, on_sample
        self._lock = threading.Lock()
        self._tasks = []
        if interval and interval > 0:
            threading.Thread(target=self._run, name="acct-gather", daemon=True).start()

    def track(self, node, task):
        usage = TaskUsage(node, task)
        with self._lock:
            self._tasks.append(usage)
        return usage

    def forget(self, usages):
        with self._lock:
            self._tasks = [u for u in self._tasks if u not in usages]

    def sample_now(self):
        with self._lock:
            tasks = [u for u in self._tasks if not u.ended]
        if tasks:  # one pass over /proc for every task
            stats = procs.snapshot()
            children = procs.children_of(stats)
            for usage in tasks:
                usage.sample(stats, children)

    def _run(self):
        while True:
            time.sleep(self.interval)
            self.sample_now()
            if self.on_sample is not None:
                self.on_sample()
