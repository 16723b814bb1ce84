"""`--dependency`: `afterok:12:13,afterany:14_2`, `?` for any of them, `singleton`, and
its text as Slurm shows it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from slurmsky.parse.scalars import rejected
from slurmsky.record import Record

DEPENDENCY_KINDS = ("afternotok", "aftercorr", "afterany", "afterok", "afterburstbuffer", "after")


class DepItem(Record):
    """One dependency on one job.

    kind: after, afterany, afterburstbuffer, aftercorr, afternotok, afterok or
    singleton (job_id None); a bare job id is afterany. task: None for the whole
    job, ``"*"`` for every task of an array, or an index as text (``12_3``).
    minutes: the ``after:ID+MIN`` delay.
    """

    kind: str
    job_id: int | None
    task: str | None = None
    minutes: int = 0


class Dependency(Record):
    """``--dependency``: all items must hold, or any (``?`` separator)."""

    items: tuple[DepItem, ...]
    any_of: bool


_DEP_JOB = re.compile(r"[0-9]+(?:_(?:\*|[0-9]+))?(?:\+[0-9]+)?")


def _dep_job(kind: str, text: str) -> DepItem:
    match = _DEP_JOB.fullmatch(text)
    if not match:
        raise ValueError(text)
    job, _, minutes = text.partition("+")
    job_id, _, task = job.partition("_")
    if int(job_id) == 0 or (minutes and (kind != "after" or int(minutes) == 0)):
        raise ValueError(text)
    if task and task != "*":
        task = str(int(task))
    # Slurm's job ids are 32-bit: a larger one reads as 4294967295 (afterok:4294967295)
    return DepItem(kind, min(int(job_id), 2**32 - 1), task or None, int(minutes or 0))


def _dep_part(part: str, following: str) -> tuple[DepItem, ...]:
    """One item between separators; ``following`` is the text after it."""
    lower = part.lower()
    if lower == "singleton":
        return (DepItem("singleton", None),)
    kind, colon, jobs = lower.partition(":")
    if not colon:  # the old form, a bare job id: Slurm takes it only when no ':'
        # follows anywhere and it is not followed by '?'
        if ":" in following or following.startswith("?"):
            raise ValueError(part)
        return (_dep_job("afterany", part),)
    if kind not in DEPENDENCY_KINDS:
        raise ValueError(part)
    return tuple(_dep_job(kind, job) for job in jobs.split(":"))


def parse_dependency(text: str, opt: str) -> Dependency:
    """``afterok:1:2,afterany:3``, ``afterok:1?afterok:2``, ``after:1+5``,
    ``afterok:12_3``, ``afterok:12_*``, ``singleton``, a bare ``12``; ``""`` and
    ``0`` mean none. Bad syntax is rejected by the controller (exit 1)."""
    if text in ("", "0"):
        return Dependency((), False)
    if "," in text and "?" in text:
        raise rejected("Job dependency problem")
    separator = "?" if "?" in text else ","
    items: list[DepItem] = []
    try:
        parts = text.split(separator)
        for n, part in enumerate(parts):
            following = "".join(separator + later for later in parts[n + 1 :])
            items.extend(_dep_part(part, following))
    except ValueError:
        raise rejected("Job dependency problem") from None
    return Dependency(tuple(items), separator == "?")


def format_dependency(
    dependency: Dependency, status: Callable[[DepItem], str] | Mapping[DepItem, str]
) -> str:
    """squeue ``%E`` / scontrol ``Dependency=``: ``afterok:67(unfulfilled)``, joined by
    ``,`` or ``?``; ``(null)`` when no item is left. ``status`` gives each item's
    word (unfulfilled, failed, ...); pass ``task="*"`` items for array targets
    (``afterok:130_*``), as Slurm shows them."""
    word = status if callable(status) else status.__getitem__
    shown = ["%s(%s)" % (item_text(item), word(item)) for item in dependency.items]
    return ("?" if dependency.any_of else ",").join(shown) or "(null)"


def target_text(item: DepItem) -> str:
    """An item's target as written: ``12``, ``14_1``, ``15+30``."""
    text = "%d" % (item.job_id or 0) + ("_" + item.task if item.task else "")
    return text + ("+%d" % item.minutes if item.minutes else "")


def item_text(item: DepItem) -> str:
    """One item as written: ``afterok:12``, ``singleton``."""
    return "singleton" if item.kind == "singleton" else f"{item.kind}:{target_text(item)}"


def dependency_text(dependency: Dependency) -> str:
    """The dependency as the job sees it in SLURM_JOB_DEPENDENCY: as written, the ids of
    one kind joined by ``:`` (``afterok:12:13,afterany:14_1``, ``singleton``)."""
    groups: list[list[str]] = []
    last = None
    for item in dependency.items:
        if item.kind == "singleton":
            groups.append(["singleton"])
            last = None
            continue
        target = target_text(item)
        if item.kind == last:
            groups[-1].append(target)
        else:
            groups.append([item.kind, target])
        last = item.kind
    return ("?" if dependency.any_of else ",").join(":".join(g) for g in groups)
