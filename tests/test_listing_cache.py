"""Long listings kept until a job changes (render/listing_cache.py): `squeue` and `sacct`
over a long quiet state print again what they printed, byte for byte what they would
compute; any change to a job, and the passing of time where it shows, gives a fresh answer."""

import shutil

from builders import job_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_formats import NOW, T0, World

from slurmsky.core import state
from slurmsky.render import listing_cache, sacct_format

COUNT = listing_cache.MIN_LINES + 20


def _row(job_id: int, **fields) -> dict:
    mine = dict(
        submission=1,
        name=f"j{job_id % 7}",
        user="root",
        uid=0,
        gid=0,
        account="research",
        partition=("debug", "gpu")[job_id % 2],
        submit_dir="/",
        workdir="/",
        reason="Priority",
        submit_time=T0,
    )
    return job_row(job_id, **{**mine, **fields})


def _finished(job_id: int) -> dict:
    return _row(
        job_id,
        state=("COMPLETED", "FAILED")[job_id % 5 == 0],
        reason="None",
        start_time=T0 + 1,
        end_time=T0 + 2,
        exit_code=int(job_id % 5 == 0),
        exit_signal=0,
        nodelist="127.0.0.1",
        batch_host="127.0.0.1",
        eligible_time=T0,
    )


def _world(tmp_path, rows) -> World:
    world = World(tmp_path)
    keys = sorted({k for row in rows for k in row})  # one submission's rows: the same columns
    rows = [{k: row.get(k) for k in keys} for row in rows]
    state.add_submission(world.conn, 1, {"script": ""}, None, rows)
    return world


def _stored(world: World, command: str) -> list:
    folder = world.state / "listings"
    return sorted(folder.glob(f"{command}-*")) if folder.exists() else []


def _kept(path) -> tuple[int, bytes, bytes]:
    """A kept answer's generation, key and bytes."""
    head, rest = path.read_bytes().split(b"\n", 1)
    generation, _computed_at, key_length, length = map(float, head.split())
    generation, key_length, length = int(generation), int(key_length), int(length)
    assert len(rest) == key_length + length
    return generation, rest[:key_length], rest[key_length:]


def _fresh(world: World, command: str, *args: str, env: dict) -> str:
    """What the command computes with no answer kept."""
    shutil.rmtree(world.state / "listings", ignore_errors=True)
    out = world.run(command, *args, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_long_quiet_queue_is_answered_again_until_a_job_changes(tmp_path):
    world = _world(tmp_path, [_row(i, held="user" if i % 3 else None) for i in range(1, COUNT)])
    first = world.run("squeue")
    assert first.returncode == 0 and len(first.stdout.splitlines()) == COUNT
    [kept] = _stored(world, "squeue")
    assert _kept(kept)[2] == first.stdout.encode()
    assert world.run("squeue").stdout == first.stdout
    # The kept answer is what a second call prints (made different here to see it)
    generation, key, _ = _kept(kept)
    at = kept.read_bytes().split()[1]  # when it was computed
    kept.write_bytes(b"%d %s %d 6\n%skept!\n" % (generation, at, len(key), key))
    assert world.run("squeue").stdout == "kept!\n"
    assert world.run("squeue", "-h").stdout != "kept!\n"  # other arguments, another answer
    # a job changes: the answer is computed again, and kept for the new generation
    world.conn.execute("UPDATE jobs SET name = 'renamed' WHERE job_id = 5")
    second = world.run("squeue")
    assert "renamed" in second.stdout
    assert second.stdout == _fresh(world, "squeue", env=world.env)
    assert world.run("squeue").stdout == second.stdout
    world.conn.execute("DELETE FROM jobs WHERE job_id = 5")
    assert "renamed" not in world.run("squeue").stdout
    world.close()


def test_answers_the_time_changes_are_not_kept(tmp_path):
    """A running job's time, a begin time still to come, `-l`'s clock, a short queue."""
    rows = [_row(i) for i in range(1, COUNT)]
    running = _row(COUNT, state="RUNNING", reason="None", start_time=NOW - 60, nodelist="n1")
    world = _world(tmp_path, [*rows, running])
    at = lambda t: dict(world.env, SLURMSKY_NOW=repr(t))  # noqa: E731
    one = world.run("squeue", env=at(NOW)).stdout
    two = world.run("squeue", env=at(NOW + 61)).stdout
    assert " R       1:00      1 n1" in one and " R       2:01      1 n1" in two
    assert world.run("squeue", "-t", "PD").returncode == 0
    assert len(_stored(world, "squeue")) == 1  # only the pending jobs' listing
    [kept] = _stored(world, "squeue")
    world.conn.execute(f"UPDATE jobs SET begin_time = {NOW + 30} WHERE job_id = 3")
    world.run("squeue", "-t", "PD", env=at(NOW))
    world.run("squeue", "-l", env=at(NOW))
    world.run("squeue", "-w", "n1", env=at(NOW))
    assert _stored(world, "squeue") == [kept]
    assert _kept(kept)[0] != state.generation(world.conn)
    world.close()


def test_sacct_keeps_its_history_till_a_job_changes_or_now_takes_in_more(tmp_path):
    world = _world(tmp_path, [_finished(i) for i in range(1, COUNT)])
    args = ("-X", "-a", "-S", "2026-11-22T00:00:00")
    first = world.run("sacct", *args)
    assert first.returncode == 0 and len(first.stdout.splitlines()) == COUNT + 1
    assert len(_stored(world, "sacct")) == 1
    assert world.run("sacct", *args).stdout == first.stdout
    world.conn.execute("UPDATE jobs SET state = 'RUNNING', end_time = NULL WHERE job_id = 9")
    running = world.run("sacct", *args).stdout
    assert "RUNNING" in running
    assert world.run("sacct", *args).stdout == running  # kept: its cells have no time
    # a job submitted after the clock's now (another host's clock): the window till now
    # takes it in when now comes
    world.conn.execute(f"UPDATE jobs SET submit_time = {NOW + 50} WHERE job_id = 9")
    at = lambda t: dict(world.env, SLURMSKY_NOW=repr(t))  # noqa: E731
    assert "RUNNING" not in world.run("sacct", *args, env=at(NOW)).stdout
    assert "RUNNING" in world.run("sacct", *args, env=at(NOW + 60)).stdout
    world.close()


QUEUE_ARGS = st.sampled_from(
    [(), ("-r",), ("-h", "-o", "%i %T %M %r"), ("-t", "all"), ("-p", "gpu"), ("-u", "root")]
)
HISTORY_ARGS = st.tuples(
    st.sampled_from([("-X", "-a"), ("-a", "-p"), ("-a", "-E", "now"), ("-a", "-s", "CD")]),
    st.lists(st.sampled_from(sorted(sacct_format.SACCT_SQL)), min_size=1, max_size=4),
).map(lambda a: (*a[0], "-S", "2026-11-22T00:00:00", "-o", ",".join(a[1])))
CHANGES = st.lists(
    st.tuples(
        st.integers(1, COUNT - 1),
        st.sampled_from(
            [
                "state = 'RUNNING', start_time = {now} - 7, nodelist = 'n2', reason = 'None'",
                "state = 'COMPLETED', end_time = {now} - 400, reason = 'None'",
                "state = 'COMPLETED', end_time = {now} - 5, reason = 'None'",
                "begin_time = {now} + 20",
                "begin_time = {now} + 200",
                "held = 'user', reason = 'JobHeldUser'",
                "name = 'other'",
                "submit_time = {now} + 50",
            ]
        ),
    ),
    max_size=3,
)


STEPS = st.lists(
    st.tuples(CHANGES, st.integers(0, 400), st.sampled_from([0, 1, 30, 250])),
    min_size=1,
    max_size=4,
)


def _steps(world: World, command: str, args: tuple, steps: list) -> None:
    """Each step: jobs change, a call at a time, a call as much later as given: the later
    call prints what is computed then with no answer kept."""
    try:
        for changes, now, later in steps:
            for job_id, change in changes:
                sql = change.format(now=NOW + now)
                world.conn.execute(f"UPDATE jobs SET {sql} WHERE job_id = ?", (job_id,))
            first = world.run(command, *args, env=dict(world.env, SLURMSKY_NOW=repr(NOW + now)))
            assert first.returncode == 0, first.stderr
            env = dict(world.env, SLURMSKY_NOW=repr(NOW + now + later))
            answered = world.run(command, *args, env=env).stdout
            assert answered == _fresh(world, command, *args, env=env)
            world.run(command, *args, env=env)  # kept again, for the next step to meet
    finally:
        world.close()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=QUEUE_ARGS, steps=STEPS)
def test_a_kept_queue_is_the_queue(tmp_path_factory, args, steps):
    """squeue, over pending jobs and some that ended, whatever changes and whenever."""
    rows = [_row(i) for i in range(1, COUNT)] + [_finished(i) for i in range(COUNT, COUNT + 50)]
    _steps(_world(tmp_path_factory.mktemp("queue"), rows), "squeue", args, steps)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=HISTORY_ARGS, steps=STEPS)
def test_a_kept_history_is_the_history(tmp_path_factory, args, steps):
    """sacct, over finished jobs, whatever changes and whenever."""
    rows = [_finished(i) for i in range(1, COUNT)]
    _steps(_world(tmp_path_factory.mktemp("history"), rows), "sacct", args, steps)


def test_a_state_from_before_gains_the_generation(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    old = state.connect()
    for change in ("insert", "update", "delete"):
        old.execute(f"DROP TRIGGER jobs_{change}")
    old.execute("DELETE FROM meta WHERE key = 'generation'")
    old.execute("DROP INDEX jobs_het")  # before the index of heterogeneous jobs (schema 8)
    old.execute("DROP TRIGGER jobs_het_follow")  # and before heterogeneous jobs (schema 7)
    old.execute("ALTER TABLE jobs DROP COLUMN het_job_offset")
    old.execute("ALTER TABLE jobs DROP COLUMN het_job_id")
    old.execute("PRAGMA user_version = 5")
    old.close()
    conn = state.connect()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == state.SCHEMA_VERSION
    before = state.generation(conn)
    state.add_submission(conn, 1, {}, None, [_row(1, submission=1)])
    assert state.generation(conn) == before + 1
    conn.execute("UPDATE jobs SET name = 'x'")
    conn.execute("DELETE FROM jobs")
    assert state.generation(conn) == before + 3
