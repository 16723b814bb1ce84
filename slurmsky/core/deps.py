"""Job dependencies (--dependency) evaluated against the state, with Slurm's semantics.

Each item is met, unmet (`unfulfilled`) or can never be met (`failed`). Met items drop out
of what squeue's %E shows; `?` needs one met item, `,` all of them. A job id the state does
not know when the job is submitted (never existed, or purged on Slurm) counts as met, as
Slurm treats it: `at_submission` drops it then, so a job waits only for jobs submitted
before it, and no dependency cycle can form.
"""

from __future__ import annotations

from dataclasses import dataclass

from slurmsky.core import state
from slurmsky.core.state import JobRecord
from slurmsky.errors import SlurmError
from slurmsky.parse.dependency import (
    Dependency,
    DepItem,
    format_dependency,
    item_text,
    parse_dependency,
)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


MET, UNMET, FAILED = "met", "unfulfilled", "failed"
RUNNING_STATES = ("CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED")


@dataclass(frozen=True)
class Verdict:
    status: str  # MET, UNMET or FAILED (never satisfiable)
    shown: str | None  # squeue %E; None once met
    recheck: float | None = None  # when time alone may change it (after:N+minutes)


def _memo(memo: dict | None, key: tuple, compute):
    """compute(), or what it gave for `key` earlier in this `memo` (one pass's snapshot:
    10 000 jobs that wait on one job read it once)."""
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _targets(
    conn: Connection, item: DepItem, job: JobRecord, memo: dict | None = None
) -> list[JobRecord]:
    """The jobs an item waits for: a job, a whole array, or one element of it."""
    assert item.job_id is not None  # not singleton: _item_status answers that itself
    corr = job.array_task_id if item.kind == "aftercorr" else None
    return _memo(memo, ("targets", item, corr), lambda: _find_targets(conn, item, job))


def _find_targets(conn: Connection, item: DepItem, job: JobRecord) -> list[JobRecord]:
    assert item.job_id is not None
    if item.task is not None and item.task != "*":
        return state.find_jobs(conn, tasks=[(item.job_id, int(item.task))])
    elements = conn.execute(
        "SELECT 1 FROM jobs WHERE array_job_id = ? LIMIT 1", (item.job_id,)
    ).fetchone()
    if elements is None:
        found = state.get_job(conn, item.job_id)
        return [found] if found else []
    if item.kind == "aftercorr" and job.array_task_id is not None:
        return state.find_jobs(conn, tasks=[(item.job_id, job.array_task_id)])
    return state.find_jobs(conn, ids=[item.job_id])


def _item_status(
    conn: Connection,
    item: DepItem,
    job: JobRecord,
    now: float,
    recheck: list[float],
    memo: dict | None,
) -> str:
    if item.kind == "singleton":
        return _singleton(conn, job, memo)
    targets = _targets(conn, item, job, memo)
    if item.kind == "after":
        started = [t.start_time or now for t in targets if t.state != "PENDING"]
        if len(started) < len(targets):
            return UNMET
        ready = max(started, default=now) + item.minutes * 60
        if ready > now:
            recheck.append(ready)
            return UNMET
        return MET
    if not all(t.finished for t in targets):
        return UNMET
    if item.kind in ("afterany", "afterburstbuffer"):
        return MET
    ok = [t.state == "COMPLETED" for t in targets]
    if item.kind == "afternotok":
        return MET if not all(ok) or not targets else FAILED
    return MET if all(ok) else FAILED  # afterok, aftercorr


def _singleton(conn: Connection, job: JobRecord, memo: dict | None = None) -> str:
    """Wait while a same-name job of the same user runs, or an earlier one is pending, with
    or without a singleton of its own (slurmctld's _find_singleton_job)."""
    namesakes = _memo(
        memo,
        ("singleton", job.name, job.user),
        lambda: state.find_jobs(
            conn, names=[job.name], users=[job.user], states=RUNNING_STATES + ("PENDING",)
        ),
    )
    for other in namesakes:
        if other.job_id == job.job_id:
            continue
        if other.state in RUNNING_STATES or other.job_id < job.job_id:
            return UNMET
    return MET


def evaluate(conn: Connection, job: JobRecord, now: float, memo: dict | None = None) -> Verdict:
    """Where a job's dependency stands; `memo`: what this pass read before (one snapshot)."""
    assert job.dependency_spec is not None  # asked only about jobs with a dependency
    if job.held:  # slurmctld tests no held job's dependency: it shows what it last showed
        return Verdict(UNMET if job.dependency else MET, job.dependency)
    dep: Dependency = parse_dependency(job.dependency_spec, "--dependency")
    recheck: list[float] = []
    status = [_item_status(conn, item, job, now, recheck, memo) for item in dep.items]
    if not status or (MET in status if dep.any_of else all(v == MET for v in status)):
        return Verdict(MET, None)
    never = all(v == FAILED for v in status) if dep.any_of else FAILED in status
    left = [
        (_memo(memo, ("shown", item), lambda item=item: _shown_item(conn, item)), v)
        for item, v in zip(dep.items, status)
        if v != MET
    ]
    shown = format_dependency(Dependency(tuple(i for i, _ in left), dep.any_of), dict(left))
    return Verdict(FAILED if never else UNMET, shown, min(recheck, default=None))


def at_submission(conn: Connection, dep: Dependency, own_id: int) -> Dependency:
    """What slurmctld keeps of a job's --dependency when it creates job ``own_id``: naming
    the job itself is refused; an item on a job it does not know is met,
    so it is dropped (and a `?` list with one is met as a whole)."""
    if any(item.job_id == own_id for item in dep.items):
        raise SlurmError("Batch job submission failed: Job dependency problem")
    kept = tuple(item for item in dep.items if item.kind == "singleton" or _known(conn, item))
    if dep.any_of and len(kept) < len(dep.items):
        kept = ()
    return Dependency(kept, dep.any_of)


def _known(conn: Connection, item: DepItem) -> bool:
    if item.task is not None and item.task != "*":
        return bool(state.find_jobs(conn, tasks=[(item.job_id, int(item.task))]))
    return (
        conn.execute(
            "SELECT 1 FROM jobs WHERE job_id = ? OR array_job_id = ? LIMIT 1",
            (item.job_id, item.job_id),
        ).fetchone()
        is not None
    )


def to_text(dep: Dependency) -> str | None:
    """The stored form of a parsed --dependency (parse_dependency reads it back)."""
    return ("?" if dep.any_of else ",").join(item_text(i) for i in dep.items) or None


def describe_unmet(dependency_spec: str) -> str:
    """%E at submission, before the agent's first look: every item unfulfilled."""
    return format_dependency(parse_dependency(dependency_spec, "--dependency"), lambda item: UNMET)


def _shown_item(conn: Connection, item: DepItem) -> DepItem:
    """An item on a whole array is shown `N_*`, as Slurm does."""
    if (
        item.task is None
        and item.job_id is not None
        and conn.execute(
            "SELECT 1 FROM jobs WHERE array_job_id = ? LIMIT 1", (item.job_id,)
        ).fetchone()
    ):
        return DepItem(item.kind, item.job_id, "*", item.minutes)
    return item
