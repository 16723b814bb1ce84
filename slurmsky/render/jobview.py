"""One job as slurmctld holds it and every read command shows it: a record, or an array's
pending record (`N_[3-7%2]`), whose elements `squeue -r` lists one by one.
"""

from __future__ import annotations

import os

from slurmsky.core.states import FINISHED_STATES
from slurmsky.display import format_elapsed, format_mem
from slurmsky.render.common import clock, iso

PRIORITY_TOP = 0xFFFF0000  # basic priority of the first job; each later one gets one less


# Job.id_text in SQL, over a `jobs` row (the listings SQLite computes)
ID_TEXT_SQL = (
    "(CASE WHEN array_pending IS NOT NULL "
    "THEN array_job_id || '_[' || array_tasks(array_pending, array_throttle) || ']' "
    "WHEN array_job_id IS NOT NULL AND array_task_id IS NOT NULL "
    "THEN array_job_id || '_' || array_task_id "
    "WHEN het_job_id IS NOT NULL THEN het_job_id || '+' || het_job_offset "
    "ELSE CAST(job_id AS TEXT) END)"
)


class Job:
    """One job as slurmctld holds it: a record, or (`tasks` set: its indices, indexset's
    text) an array's pending record `N_[1-7%2]`, whose id is the array's."""

    __slots__ = ("rec", "tasks", "now", "het_set")

    def __init__(self, rec, tasks: str | None = None, now: float | None = None):
        self.rec = rec
        self.tasks = tasks
        self.now = clock() if now is None else now
        self.het_set: str | None = None  # a heterogeneous job's HetJobIdSet, where asked

    # ids
    @property
    def job_id(self) -> int:
        return self.rec.array_job_id if self.tasks is not None else self.rec.job_id

    @property
    def task_string(self) -> str:
        from slurmsky.runtime.indexset import display

        assert self.tasks is not None
        return display(self.tasks, self.rec.array_throttle)

    @property
    def id_text(self) -> str:
        """%i / JobArrayID / sacct JobID: `12`, `7_3`, `7_[1-3%2]`."""
        rec = self.rec
        if self.tasks is not None:
            return f"{rec.array_job_id}_[{self.task_string}]"
        if rec.array_job_id is not None and rec.array_task_id is not None:
            return f"{rec.array_job_id}_{rec.array_task_id}"
        if rec.het_job_id is not None:
            return f"{rec.het_job_id}+{rec.het_job_offset}"
        return str(rec.job_id)

    @property
    def array_job_text(self) -> str:
        rec = self.rec
        return str(rec.array_job_id if rec.array_job_id is not None else rec.job_id)

    @property
    def task_text(self) -> str:
        if self.tasks is not None:
            return self.task_string
        if self.rec.array_task_id is not None:
            return str(self.rec.array_task_id)
        return "N/A"

    # state and times
    @property
    def started(self) -> bool:
        return self.rec.start_time is not None and self.rec.state != "PENDING"

    @property
    def priority(self) -> int:
        rec = self.rec
        if rec.held:
            return 0
        if rec.priority is not None:  # priority/multifactor's (core/fairshare.py)
            return rec.priority
        return max(PRIORITY_TOP - rec.submission - (rec.nice or 0), 1)

    def used(self) -> int:
        """Seconds run so far (squeue's job_time_used)."""
        rec = self.rec
        if not self.started:
            return 0
        end = rec.end_time or self.now
        return max(int(end - rec.start_time), 0)

    def start_shown(self) -> float:
        """squeue's start time: the expected start of a pending job, 0 when unknown."""
        rec = self.rec
        if rec.state == "PENDING":
            return rec.begin_time or 0
        return rec.start_time or 0

    def end_shown(self) -> str:
        rec = self.rec
        limit = rec.time_limit
        if rec.state in FINISHED_STATES:
            return iso(rec.end_time, "N/A")
        base = (
            rec.start_time if self.started else (rec.begin_time if rec.state == "PENDING" else None)
        )
        if not base:
            return "N/A"
        if limit is None:
            return "NONE"
        return iso(base + limit * 60, "N/A")

    def time_left(self) -> str:
        limit = self.rec.time_limit
        if limit is None:
            return "UNLIMITED"
        left = limit * 60 - self.used()
        return format_elapsed(left)

    @property
    def reason_list(self) -> str:
        """%R: `(Reason)` for pending/failed/timed-out jobs, else the node list."""
        rec = self.rec
        if rec.state in ("PENDING", "TIMEOUT", "FAILED", "OUT_OF_MEMORY", "DEADLINE"):
            return f"({rec.reason})"
        return rec.nodelist or ""

    @property
    def min_memory(self) -> str:
        rec = self.rec
        if rec.mem_per_cpu is not None:
            return format_mem(rec.mem_per_cpu)
        if rec.mem_per_node is not None:
            return format_mem(rec.mem_per_node)
        return "0"

    @property
    def total_mem(self) -> int:
        rec = self.rec
        if rec.mem_per_node is not None:
            return rec.mem_per_node * rec.num_nodes
        if rec.mem_per_cpu is not None:
            return rec.mem_per_cpu * rec.num_cpus
        return 0

    @property
    def gres(self) -> str | None:
        rec = self.rec
        if rec.gres:
            return rec.gres
        if rec.gpus_per_node:
            return f"gpu:{rec.gpus_per_node}"
        return None

    @property
    def gpu_count(self) -> int:
        """The job's GPUs in all (its gres per node times its nodes)."""
        gres = self.gres
        if not gres:
            return 0
        count = gres.rsplit(":", 1)[-1]
        return (int(count) if count.isdigit() else 1) * self.rec.num_nodes

    @property
    def tres_per_node(self) -> str:
        gres = self.gres
        return f"gres:{gres}" if gres else "N/A"

    def std_path(self, which: str) -> str:
        """StdOut/StdErr/StdIn as scontrol shows them. A record holds its own paths, expanded
        at submission (with `%N` left for the node); an array's pending record holds the
        patterns, shown expanded for the array itself (`slurm-7_4294967294.out`)."""
        rec = self.rec
        if self.tasks is not None:
            default = "/dev/null" if which == "in" else "slurm-%A_%a.out"
            pattern = {"out": rec.stdout, "err": rec.stderr or rec.stdout, "in": rec.stdin}[which]
            return self._expand(pattern or default, None)
        path = {"out": rec.stdout, "err": rec.stderr or rec.stdout, "in": rec.stdin}[which]
        if which == "in":
            return path or "/dev/null"
        if not path:
            default = "slurm-%A_%a.out" if rec.array_job_id is not None else "slurm-%j.out"
            return self._expand(default, rec.array_task_id)
        if "%N" in path and rec.batch_host and self.started:
            path = path.replace("%N", rec.batch_host)
        return os.path.join(rec.workdir, path)

    def _expand(self, pattern: str, task: int | None) -> str:
        from slurmsky.runtime.filepattern import expand

        rec = self.rec
        name = expand(
            pattern,
            job_id=self.job_id,
            array_job_id=rec.array_job_id,
            array_task_id=task,
            job_name=rec.name,
            user=rec.user,
            node_name="%N",
        )
        return os.path.join(rec.workdir, name)


def collapse(records, *, expand: bool = False, now: float | None = None) -> list[Job]:
    """Jobs as slurmctld holds them: an array's pending record is one job, or with `expand`
    (`squeue -r`) one per element."""
    from slurmsky.core.state import pending_element
    from slurmsky.runtime import indexset

    now = clock() if now is None else now
    jobs: list[Job] = []
    for rec in records:
        if rec.array_pending is None:
            jobs.append(Job(rec, None, now))
        elif expand:
            jobs.extend(
                Job(pending_element(rec, index), None, now)
                for index in indexset.iterate(indexset.parse(rec.array_pending))
            )
        else:
            jobs.append(Job(rec, rec.array_pending, now))
    return jobs


def tres(job: Job, mem: str | None = None) -> str:
    """The job's TRES string (``mem`` as the caller formats it, else squeue's units)."""
    rec = job.rec
    mem = format_mem(job.total_mem) if mem is None else mem
    text = f"cpu={rec.num_cpus},mem={mem},node={rec.num_nodes},billing={rec.num_cpus}"
    if job.gres:
        text += f",gres/gpu={job.gpu_count}"
    return text
