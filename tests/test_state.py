"""The state database: ids, rows, filters, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest
from builders import job_row

from slurmsky.core import state


@pytest.fixture
def conn(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    return state.connect()


def test_ids_are_consecutive_and_never_reused(conn):
    assert state.allocate_ids(conn, 1) == 1
    assert state.allocate_ids(conn, 1000) == 2
    assert state.allocate_ids(conn, 1) == 1002


def _allocate_many(home: str, n: int, queue) -> None:
    os.environ["SLURMSKY_HOME"] = home
    c = state.connect()
    queue.put([state.allocate_ids(c, 1) for _ in range(n)])


def test_concurrent_allocation_gives_distinct_ids(tmp_path):
    home = str(tmp_path / "home")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate_many, args=(home, 25, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert sorted(ids) == list(range(1, 151))


def test_state_dir_is_private(conn, tmp_path):
    mode = os.stat(tmp_path / "home").st_mode
    assert stat.S_IMODE(mode) == 0o700
    assert not os.stat(tmp_path / "home" / "state.db").st_mode & stat.S_IWOTH


def test_records_and_filters(conn):
    state.add_submission(conn, 1, {"script": "x"}, None, [job_row(1, 1, name="a")])
    rows = [
        job_row(2 + k, 2, array_job_id=2, array_task_id=k, array_rank=k, user="v") for k in range(3)
    ]
    state.add_submission(conn, 2, {"script": "y"}, None, rows)
    rec = state.get_job(conn, 1)
    assert rec.display_id == "1" and rec.state_code == "PD" and rec.exit_text == "0:0"
    assert rec.tasks_per_node == [1] and rec.executor_ref is None
    assert state.get_spec(conn, 2) == ({"script": "y"}, None)
    assert [r.display_id for r in state.find_jobs(conn, ids=[2])] == ["2_0", "2_1", "2_2"]
    assert [r.job_id for r in state.find_jobs(conn, tasks=[(2, 1)])] == [3]
    assert [r.job_id for r in state.find_jobs(conn, users=["u"])] == [1]
    assert [r.job_id for r in state.find_jobs(conn, names=["a"], states=["PENDING"])] == [1]

    assert state.update_job(
        conn,
        1,
        where_state=("PENDING",),
        state="COMPLETED",
        end_time=50.0,
        exit_code=3,
        exit_signal=0,
        executor_ref={"pid": 9},
    )
    assert not state.update_job(conn, 1, where_state=("PENDING",), state="RUNNING")
    rec = state.get_job(conn, 1)
    assert rec.finished and rec.exit_text == "3:0" and rec.executor_ref == {"pid": 9}
    assert [r.job_id for r in state.active_jobs(conn)] == [2, 3, 4]
    assert 1 not in [r.job_id for r in state.find_jobs(conn, active_or_ended_after=60.0)]
    assert 1 in [r.job_id for r in state.find_jobs(conn, active_or_ended_after=40.0)]


def test_listing_records_read_the_rest_of_their_row_when_needed(conn):
    """find_jobs(light=True) selects LIST_COLUMNS; any other column is read on first use,
    and every attribute equals the full record's."""
    state.add_submission(
        conn,
        1,
        {"script": "x"},
        None,
        [job_row(1, 1, comment="c", executor_ref={"pid": 9}, result={"steps": []}, requeue=1)],
    )
    (full,) = state.find_jobs(conn, ids=[1])
    statements = []
    conn.set_trace_callback(statements.append)
    (light,) = state.find_jobs(conn, ids=[1], light=True)
    assert all(getattr(light, c) == getattr(full, c) for c in state.LIST_COLUMNS)
    assert len(statements) == 1  # the listing's own query, nothing more
    assert (light.comment, light.executor_ref, light.requeue) == ("c", {"pid": 9}, True)
    assert len(statements) == 2  # the rest of the row, once
    assert all(getattr(light, c) == getattr(full, c) for c in state.records._COLUMNS)
    assert len(statements) == 2
    with pytest.raises(AttributeError):
        light.no_such_column


def test_signal_queue(conn):
    state.add_signal(conn, 5, 10, "batch")
    state.add_signal(conn, 6, 12, "full")
    assert state.take_signals(conn) == [(5, 10, "batch"), (6, 12, "full")]
    assert state.take_signals(conn) == []


def test_needs_agent_only_for_jobs_that_can_progress(conn):
    state.add_submission(
        conn,
        1,
        {},
        None,
        [
            job_row(1, 1, reason="JobHeldUser", held="user"),
            job_row(2, 1, reason="DependencyNeverSatisfied", held=None),
        ],
    )
    assert state.active_jobs_exist(conn) and not state.needs_agent(conn)
    state.update_job(conn, 2, reason="BeginTime")
    assert state.needs_agent(conn)
    state.update_job(conn, 2, state="RUNNING", reason="None")
    assert state.needs_agent(conn)
    executor = conn.execute("SELECT executor FROM jobs WHERE job_id = 2").fetchone()[0]
    # a job running in an outside queue the backend follows: the backend judges it
    assert not state.needs_agent(conn, (executor,))
    assert state.needs_agent(conn, ("another",))


def test_specs_and_environments_are_stored_once(conn):
    """Jobs submitted from one shell share its environment, and a loop's jobs their spec but
    for their ids: each is stored once, and each job's spec is whole again when read."""
    env = {"PATH": "/usr/bin", "HOME": "/h", "LANG": "C"}
    array = {"job_id": 1, "ranges": "0-9", "count": 10, "throttle": None}
    for job_id in (1, 2):
        spec = {"job_id": job_id, "script": "s", "array": dict(array, job_id=job_id)}
        state.add_submission(
            conn, job_id, dict(spec, environment=env), None, [job_row(job_id, job_id)]
        )
    other = {"job_id": 3, "script": "t", "environment": dict(env, HOME="/x")}
    state.add_submission(conn, 3, other, None, [job_row(3, 3)])
    assert state.get_spec(conn, 2)[0] == {
        "job_id": 2,
        "script": "s",
        "array": dict(array, job_id=2),
        "environment": env,
    }
    assert state.get_spec(conn, 3) == (other, None)
    assert list(state.get_spec(conn, 3)[0]["environment"]) == ["PATH", "HOME", "LANG"]
    assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 4  # 2 specs, 2 envs
    assert conn.execute("SELECT spec FROM submissions WHERE id = 2").fetchone()[0] == (
        '{"job_id": 2}'
    )


def _before_the_het_index(conn) -> None:
    """Take a new state back to schema 8 (no index of het_job_id)."""
    conn.execute("DROP INDEX jobs_het")


def _before_hetjobs(conn) -> None:
    """Take a new state back to before heterogeneous jobs (schema 7)."""
    _before_the_het_index(conn)
    conn.execute("DROP TRIGGER jobs_het_follow")
    conn.execute("ALTER TABLE jobs DROP COLUMN het_job_offset")
    conn.execute("ALTER TABLE jobs DROP COLUMN het_job_id")


def _schema_3_pending_index(conn) -> None:
    """Take a new state back to schema 3's tables and pending index."""
    _before_hetjobs(conn)
    conn.execute("DROP INDEX jobs_waiting")
    conn.execute("DROP INDEX IF EXISTS jobs_pending")
    conn.execute("ALTER TABLE jobs DROP COLUMN array_pending")
    conn.execute("DROP TABLE submissions")
    conn.execute("CREATE TABLE submissions (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, task TEXT)")
    conn.execute("DROP TABLE blobs")
    conn.execute("CREATE INDEX jobs_pending ON jobs(state, submission, IFNULL(array_task_id, 0))")


def test_schema_1_gains_max_nodes(tmp_path, monkeypatch):
    """A state database of schema 1 (before --nodes' maximum was kept) is migrated in place."""
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    old.execute("ALTER TABLE jobs DROP COLUMN max_nodes")
    _schema_3_pending_index(old)
    old.execute("PRAGMA user_version = 1")
    old.close()
    conn = state.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    state.add_submission(conn, 1, {}, None, [job_row(1, 1, max_nodes=2)])
    assert state.get_job(conn, 1).max_nodes == 2


def test_schema_2_gains_the_indexes_of_the_queries_commands_make(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    state.add_submission(old, 1, {}, None, [job_row(1, 1)])
    for index in ("jobs_pending", "jobs_reason", "jobs_executor"):
        old.execute(f"DROP INDEX {index}")
    old.execute("CREATE INDEX jobs_state ON jobs(state)")
    _schema_3_pending_index(old)
    old.execute("PRAGMA user_version = 2")
    old.close()
    conn = state.connect()
    indexes = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'jobs_%'"
        )
    }
    assert indexes == {
        "jobs_array",
        "jobs_user",
        "jobs_name",
        "jobs_end",
        "jobs_submit",
        "jobs_pending",
        "jobs_reason",
        "jobs_executor",
        "jobs_waiting",
        "jobs_het",
        "jobs_nice",
    }
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    assert state.get_job(conn, 1).state == "PENDING"


def test_schema_3_arrays_become_pending_records(tmp_path, monkeypatch):
    """Schema 3 kept a row per array element from submission on: the never-started ones that
    wait as the row with the array's id does become its pending record; the rest stay rows,
    and the stored spec carries the indices as ranges."""
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    _schema_3_pending_index(old)
    arr = dict(array_job_id=2, user="v")
    rows = [
        job_row(3, 2, array_task_id=0, array_rank=0, state="RUNNING", start_time=5.0, **arr),
        job_row(4, 2, array_task_id=2, array_rank=1, held="user", **arr),
        job_row(5, 2, array_task_id=4, array_rank=2, stdout="/w/o-5", **arr),
        job_row(6, 2, array_task_id=6, array_rank=3, stdout="/w/o-6", **arr),
        job_row(2, 2, array_task_id=8, array_rank=4, stdout="/w/o-2", **arr),
    ]
    keys = {k for row in rows for k in row}
    rows = [{k: row.get(k) for k in sorted(keys)} for row in rows]
    array = {"job_id": 2, "indices": [0, 2, 4, 6, 8], "job_ids": [3, 4, 5, 6, 2], "throttle": None}
    spec = {"script": "", "output": "o-%j", "array": array}
    old.execute("INSERT INTO submissions VALUES (2, ?, NULL)", (json.dumps(spec),))
    for row in (state.records._bind(old, r) for r in rows):
        old.execute(
            f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
    old.execute("PRAGMA user_version = 3")
    old.close()
    conn = state.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    got = conn.execute(
        "SELECT job_id, array_task_id, array_pending, stdout FROM jobs ORDER BY job_id"
    ).fetchall()
    assert got == [(2, None, "4-8:2", "o-%j"), (3, 0, None, None), (4, 2, None, None)]
    assert state.get_spec(conn, 2)[0]["array"] == {
        "job_id": 2,
        "ranges": "0-8:2",
        "count": 5,
        "throttle": None,
    }
    shown = [r.display_id for r in state.find_jobs(conn, tasks=[(2, 6), (2, 2), (2, 3)])]
    assert sorted(shown) == ["2_2", "2_6"]


def test_schema_4_gains_the_index_of_the_pending_jobs_a_pass_reads(tmp_path, monkeypatch):
    """jobs_waiting: the pending jobs but the held ones with nothing to do, in a pass's order."""
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    state.add_submission(old, 1, {}, None, [job_row(1, 1, held="user", reason="JobHeldUser")])
    state.add_submission(old, 2, {}, None, [job_row(2, 2)])
    old.execute("DROP INDEX jobs_waiting")
    _before_hetjobs(old)
    old.execute("PRAGMA user_version = 4")
    old.close()
    conn = state.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    sql = "SELECT job_id FROM jobs INDEXED BY jobs_waiting WHERE state = 'PENDING' AND NOT ({})"
    assert conn.execute(sql.format(state.db._IDLE)).fetchall() == [(2,)]
    assert [j.job_id for j in state.pending_jobs(conn)] == [2]


def _migrated(tmp_path, monkeypatch, back, version: int):
    """A new state taken back to schema `version` by `back`, then opened: migrated."""
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    back(old)
    old.execute(f"PRAGMA user_version = {version}")
    old.close()
    conn = state.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    return conn


def test_schema_7_gains_heterogeneous_jobs(tmp_path, monkeypatch):
    """het_job_id and het_job_offset, and the trigger that makes a component follow its
    leader: whatever moves J+0 moves J+1 in the same write."""
    conn = _migrated(tmp_path, monkeypatch, _before_hetjobs, 7)
    rows = [
        job_row(1, 1, het_job_id=1, het_job_offset=0, num_cpus=1),
        job_row(2, 1, het_job_id=1, het_job_offset=1, num_cpus=2),
        job_row(3, 3, het_job_id=None, het_job_offset=None),
    ]
    state.add_submission(conn, 1, {}, None, rows[:2])
    state.add_submission(conn, 3, {}, None, rows[2:])
    state.update_job(conn, 1, state="CANCELLED", end_time=5.0, exit_code=0, reason="None")
    got = {j.job_id: (j.state, j.end_time, j.num_cpus, j.display_id) for j in state.find_jobs(conn)}
    assert got == {
        1: ("CANCELLED", 5.0, 1, "1+0"),
        2: ("CANCELLED", 5.0, 2, "1+1"),
        3: ("PENDING", None, 1, "3"),
    }
    # a component alone changes alone (its leader is not moved by it)
    state.update_job(conn, 2, state="PENDING")
    assert state.get_job(conn, 1).state == "CANCELLED"


def test_schema_8_gains_the_index_of_heterogeneous_jobs(tmp_path, monkeypatch):
    """`-j J` reads J's components by het_job_id: the query's plan uses that index."""
    conn = _migrated(tmp_path, monkeypatch, _before_the_het_index, 8)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT job_id FROM jobs "
        "WHERE job_id IN (5) OR array_job_id IN (5) OR het_job_id IN (5)"
    ).fetchall()
    assert "USING INDEX jobs_het (het_job_id=?)" in " ".join(row[-1] for row in plan)


def test_a_new_state_made_by_many_commands_at_once(tmp_path):
    """Commands that start together on a state no one made yet all get it, whole, in WAL
    mode; none fails with `database is locked` (one in a hundred or so did, at once, when
    each made it in place and switched it to WAL)."""
    ctx = multiprocessing.get_context("fork")
    for i in range(60):
        home = str(tmp_path / f"h{i}")
        start, queue = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_first_id, args=(home, start, queue)) for _ in range(8)]
        for p in procs:
            p.start()
        outcomes = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert sorted(outcomes, key=str) == list(range(1, 9))
        assert [n for n in os.listdir(home) if ".new." in n] == []  # nothing left aside
        conn = state.connect({"SLURMSKY_HOME": home})
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _first_id(home: str, start, queue) -> None:
    start.wait(timeout=60)
    try:
        queue.put(state.allocate_ids(state.connect({"SLURMSKY_HOME": home}), 1))
    except Exception as exc:  # the outcome, compared by the test
        queue.put(repr(exc))


def test_a_state_from_before_gains_the_runs_of_requeued_jobs(tmp_path, monkeypatch):
    """Schema 6 -> 7: the attempts table (sacct -D), emptied with its job's row."""
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    _before_hetjobs(old)
    old.execute("DROP TRIGGER jobs_attempts")
    old.execute("DROP TABLE attempts")
    old.execute("PRAGMA user_version = 6")
    old.close()
    conn = state.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    state.add_submission(conn, 1, {}, None, [job_row(1, state="COMPLETED", end_time=1.0)])
    job = state.get_job(conn, 1)
    state.keep_attempt(conn, job, state="REQUEUED")
    state.keep_attempt(conn, job, state="NODE_FAIL")  # the same run again: kept once
    (run,) = state.attempts_of(conn, [job])[1]
    assert (run.job_id, run.state, run.finished, run.name) == (1, "REQUEUED", True, job.name)
    conn.execute("DELETE FROM jobs WHERE job_id = 1")
    assert conn.execute("SELECT count(*) FROM attempts").fetchone() == (0,)
