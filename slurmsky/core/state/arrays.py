"""An array's pending record and its elements: elements taken out of it (scancel
`ID_INDEX`) or split off into rows of their own (`split_element`), at the ids reserved for
them at submission (`element_id`)."""

from __future__ import annotations

from slurmsky.core.state.db import write
from slurmsky.core.state.records import (
    _COLUMNS,
    JobRecord,
    _bind,
    _mark,
    element_path,
    get_job,
    names_sql,
    pending_element,
)
from slurmsky.core.state.submissions import allocate_ids

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from slurmsky.core.state.engine import Connection


def remove_pending_tasks(conn: Connection, array_job_id: int, indices) -> int | None:
    """Take never-started pending elements out of an array, as `scancel ID_INDEX` does on
    Slurm: they leave the array's pending record, and nothing lists or accounts them after.

    When none remains, Slurm cancels the pending record itself, shown by the array's id
    alone: its id is returned for the caller to cancel; otherwise None.
    """
    from slurmsky.runtime import indexset

    with write(conn):
        row = conn.execute(
            "SELECT array_pending FROM jobs WHERE job_id = ? AND state = 'PENDING' "
            "AND array_pending IS NOT NULL",
            (array_job_id,),
        ).fetchone()
        if row is None:
            return None
        items = indexset.parse(row[0])
        for index in indices:
            items = indexset.remove(items, index)
        conn.execute(
            "UPDATE jobs SET array_pending = ? WHERE job_id = ?",
            (indexset.text(items) or None, array_job_id),
        )
        return None if items else array_job_id


def element_id(array: dict, record_id: int, index: int, last: bool) -> int | None:
    """The id an element split off a pending record takes: the record's own when it is the
    last to leave it, else the id reserved for its rank at submission (array id + 1 + rank;
    the highest index's reserved id is the array's: None, a fresh id is needed)."""
    if last:
        return record_id
    from slurmsky.runtime import indexset

    rank = indexset.rank(indexset.parse(array["ranges"]), index)
    return record_id + 1 + rank if rank < array["count"] - 1 else None


def split_element(
    conn: Connection,
    record_id: int,
    index: int,
    spec: dict,
    *,
    job_id: int | None = None,
    unheld: bool = False,
    **fields,
) -> JobRecord | None:
    """Split element `index` off the pending record `record_id` into a row of its own, with
    `fields` set (a compare-and-set: None if the record is no longer pending, or no longer
    holds that index, or, with `unheld`, is held). `job_id`: element_id's, or None to have
    it chosen here. Returns the element's record."""
    from slurmsky.runtime import indexset

    array = spec["array"]
    with write(conn):
        row = conn.execute(
            "SELECT array_pending, held FROM jobs WHERE job_id = ? AND state = 'PENDING'",
            (record_id,),
        ).fetchone()
        if row is None or row[0] is None or (unheld and row[1]):
            return None
        items = indexset.parse(row[0])
        if not indexset.contains(items, index):
            return None
        rest = indexset.remove(items, index)
        if job_id is None:
            job_id = element_id(array, record_id, index, not rest)
            if job_id is None:
                job_id = allocate_ids(conn, 1)
        record = get_job(conn, record_id)
        assert record is not None
        element = pending_element(record, index)
        name = "(null)" if spec.get("job_name_unset") else spec.get("job_name") or record.name
        values: dict = {
            key: element_path(pattern, element, job_id, name) if pattern else None
            for key, pattern in element.__dict__["_patterns"].items()
        }
        values.update(
            array_task_id=index,
            array_pending=None,
            array_rank=indexset.rank(indexset.parse(array["ranges"]), index),
            **fields,
        )
        values = _bind(conn, values)
        if rest:
            conn.execute(
                "UPDATE jobs SET array_pending = ? WHERE job_id = ?",
                (indexset.text(rest), record_id),
            )
            values["job_id"] = job_id
            cols = ", ".join(_mark(c) if c in values else names_sql([c]) for c in _COLUMNS)
            conn.execute(
                f"INSERT INTO jobs ({names_sql(_COLUMNS)}) SELECT {cols} FROM jobs "
                "WHERE job_id = ?",
                [*(values[c] for c in _COLUMNS if c in values), record_id],
            )
        else:
            sets = ", ".join(f"{names_sql([k])} = {_mark(k)}" for k in values)
            conn.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", [*values.values(), record_id])
        return get_job(conn, job_id)


def set_array_throttle(conn: Connection, array_job_id: int, throttle: int) -> bool:
    """scontrol update ArrayTaskThrottle=N: the array's %N (0: none) on its pending record
    and every element; whether the array exists."""
    with write(conn):
        sql = "UPDATE jobs SET array_throttle = ? WHERE array_job_id = ?"
        return conn.execute(sql, (throttle or None, array_job_id)).rowcount > 0
