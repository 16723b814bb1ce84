"""sacct's listing SQLite computes (sacct_format.listing_sql) says, byte for byte, what its
record-by-record rendering (sacct_lines over rows) says, for any jobs, fields and options."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from slurmsky.commands import sacct
from slurmsky.core import state
from slurmsky.core.states import ACTIVE_STATES, STATE_CODES
from slurmsky.render import sacct_format

NOW = 1_700_000_000.0
_STEP = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["batch", 0, 1, "0", "2", None, "extern"]),
        "name": st.sampled_from(["", "srun", "a-step-name-longer-than-ten", None]),
        "state": st.sampled_from(["", "COMPLETED", "FAILED", "OUT_OF_MEMORY", None]),
        "exit_code": st.sampled_from([0, 1, 2, None, ""]),
        "signal": st.sampled_from([0, 9, None]),
        "cpus": st.sampled_from([0, 1, 4, None]),
    },
)
_RESULT = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "exit_code": st.sampled_from([0, 1, None]),
        "signal": st.sampled_from([0, 9, 15, None]),
        "steps": st.lists(_STEP | st.sampled_from([42, "s"]), max_size=3),
    },
)
_JOB = st.fixed_dictionaries(
    {
        "state": st.sampled_from(sorted(STATE_CODES)),
        "started": st.booleans(),
        "ended": st.booleans(),
        "exit_code": st.sampled_from([0, 1, None]),
        "exit_signal": st.sampled_from([0, 9, None]),
        "cancelled_by": st.sampled_from([None, 0, 1000]),
        "batch": st.booleans(),
        "result": _RESULT,
        "account": st.sampled_from([None, "acct", "a-very-long-account"]),
        "name": st.text("ab é_-", max_size=13),
        "num_cpus": st.sampled_from([1, 2, 16]),
        "cpus_per_node": st.sampled_from([[1], [2]]),
        "num_nodes": st.sampled_from([1, 3]),
        "uid": st.sampled_from([0, 4321, 77]),
        # an array: None, its pending record (with these indices) or an element
        "array": st.sampled_from([None, None, "element", "0-3", "5,9-20:3", "7"]),
    }
)
_FIELDS = st.lists(
    st.tuples(
        st.sampled_from(sorted(sacct_format.SACCT_SQL)),
        st.sampled_from(["", "%1", "%3", "%-6", "%14"]),
    ),
    min_size=1,
    max_size=6,
).map(lambda fs: ",".join(name + width for name, width in fs))
_OPTIONS = st.lists(
    st.sampled_from(
        [
            ["-X"],
            ["-p"],
            ["-P"],
            ["-n"],
            ["-a"],
            ["--delimiter=%s;"],
            ["-s", "CD,CA,F,OOM,NF,TO,R,PD"],
            ["-S", "2023-11-14T22:13:25", "-E", "2023-11-14T22:13:40"],
        ]
    ),
    max_size=3,
)


def _store(conn, jobs: list[dict]) -> None:
    rows = []
    array = None  # the array id the next elements join
    for n, job in enumerate(jobs, start=1):
        finished = job["state"] not in ACTIVE_STATES
        row = dict(
            job_id=n,
            submission=n,
            name=job["name"],
            user="u",
            uid=job["uid"],
            gid=1,
            account=job["account"],
            partition="local",
            num_nodes=job["num_nodes"],
            num_cpus=job["num_cpus"],
            num_tasks=1,
            tasks_per_node=[1],
            cpus_per_node=job["cpus_per_node"],
            submit_dir="/tmp",
            workdir="/tmp",
            state=job["state"],
            submit_time=NOW + n,
            start_time=NOW + n + 1 if job["started"] else None,
            end_time=NOW + n + 5 if finished and job["ended"] else None,
            exit_code=job["exit_code"],
            exit_signal=job["exit_signal"],
            cancelled_by=job["cancelled_by"],
            batch=job["batch"],
            result=job["result"],
            executor="local",
        )
        kind = job["array"]
        if kind == "element" and array is not None:
            row.update(array_job_id=array, array_task_id=n - array + 100)
        elif kind not in (None, "element"):
            array = n
            row.update(array_job_id=n, array_pending=kind, array_throttle=2 if n % 2 else None)
            row.update(state="PENDING", start_time=None, end_time=None)
        rows.append(row)
    for row in rows:
        state.add_submission(conn, row["job_id"], {}, None, [row])


def _output(argv: list[str], listing: bool, euid: int) -> str:
    fits, geteuid = sacct_format.listing_fits, os.geteuid
    if not listing:
        sacct_format.listing_fits = lambda fields: False
    os.geteuid = lambda: euid  # (a user who is not root sees only their own jobs)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            sacct.body(argv)
    finally:
        sacct_format.listing_fits, os.geteuid = fits, geteuid
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(st.lists(_JOB, max_size=8), _FIELDS, _OPTIONS, st.sampled_from([0, 4321]))
def test_listing_is_the_rows_rendering(jobs, fields, options, euid):
    home = tempfile.mkdtemp()
    saved = {k: os.environ.get(k) for k in ("SLURMSKY_HOME", "SLURMSKY_NOW")}
    os.environ.update(SLURMSKY_HOME=home, SLURMSKY_NOW=str(NOW + 100))
    try:
        conn = state.connect()
        _store(conn, jobs)
        conn.close()
        argv = ["-o", fields, "-S", "2020-01-01", *(word for option in options for word in option)]
        listed = _output(argv, True, euid)
        assert listed == _output(argv, False, euid)
        assert listed.count("\n") >= (0 if "-n" in argv else 1)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home)
