"""The scheduler's state machine driven pass by pass: an in-memory backend (fake_backend),
explicit `now` values, no agent, no processes."""

from __future__ import annotations

import os

import fake_backend
import pytest
from builders import job_row as stored_row
from fake_backend import FakeExecutor

from slurmsky import backends
from slurmsky.backends import Feature
from slurmsky.core import daemon, jobcontrol, scheduler, state
from slurmsky.core.scheduler import KILL_GRACE, Scheduler

T0 = 1_000_000.0


def job_row(job_id: int, submission: int | None = None, **extra) -> dict:
    """A pending one-node batch job of this user on the fake backend."""
    row = stored_row(
        job_id,
        submission or job_id,
        name=f"job{job_id}",
        user="me",
        uid=os.getuid(),
        gid=os.getgid(),
        partition="debug",
        stdin="/dev/null",
        requeue=1,
        batch=1,
        submit_time=T0 - 10,
        executor="fake",
    )
    row.update(extra)
    if row["num_nodes"] > 1 and "cpus_per_node" not in extra:
        row.update(cpus_per_node=[1] * row["num_nodes"], tasks_per_node=[1] * row["num_nodes"])
    return row


class Clock:
    """Stands for the scheduler module's `time`: _launch stamps start_time with time.time()."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


class World:
    """One test's state: the agent's connection and scheduler, a command's connection, the
    fake executor, and the clock."""

    def __init__(self, ex: FakeExecutor, clock: Clock):
        self.conn = state.connect()  # the agent's
        self.cmd = state.connect()  # a command's (its commits bump the agent's data_version)
        self.ex = ex
        self.clock = clock
        self.sched = Scheduler(self.conn, backend="fake")
        self.spec = {"kill_wait": 5}

    def submit(self, *rows: dict) -> None:
        state.add_submission(self.cmd, rows[0]["submission"], self.spec, None, list(rows))

    def submit_array(self, first: int, count: int, throttle: int | None = None) -> list[int]:
        """An array as sbatch stores it (one pending record); the ids its elements get as
        they start in index order (the last takes the array's own id)."""
        record = job_row(
            first,
            first,
            array_job_id=first,
            array_pending=f"0-{count - 1}",
            array_throttle=throttle,
            stdout="slurm-%A_%a.out",
        )
        array = {"job_id": first, "ranges": f"0-{count - 1}", "count": count, "throttle": throttle}
        state.add_submission(self.cmd, first, dict(self.spec, array=array), None, [record])
        return [first + 1 + k for k in range(count - 1)] + [first]

    def run(self, now: float) -> tuple[bool, float | None]:
        self.clock.now = now
        return self.sched.run_pass(now)

    def job(self, job_id: int) -> state.JobRecord:
        return state.get_job(self.cmd, job_id)

    def look(self, job_id: int, *columns: str) -> tuple:
        job = self.job(job_id)
        return tuple(getattr(job, c) for c in columns)


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SLURMSKY_SECONDS_PER_MINUTE", raising=False)
    monkeypatch.setitem(backends.REGISTRY, "fake", "fake_backend")
    ex = FakeExecutor(nodes=2)
    monkeypatch.setattr(fake_backend.BACKEND, "current", ex)
    monkeypatch.setattr(fake_backend.BACKEND, "unsupported", fake_backend.only())
    clock = Clock(T0)
    monkeypatch.setattr(scheduler, "time", clock)
    monkeypatch.setattr(daemon, "wake", lambda: False)  # no agent is started
    w = World(ex, clock)
    yield w
    w.conn.close()
    w.cmd.close()


def done(code: int = 0, state_: str = "COMPLETED", **extra) -> dict:
    return {
        "state": state_,
        "exit_code": code,
        "signal": 0,
        "start": T0,
        "end": T0 + 50,
        "reason": None,
        **extra,
    }


# --- a job's life ----------------------------------------------------------------------------


def test_job_is_placed_prepared_launched_polled_and_completes(world):
    ex = world.ex
    seen_at_launch = []
    ex.on_launch = lambda job: seen_at_launch.append(
        world.look(job.job_id, "state", "executor_ref", "start_time")
    )
    world.submit(job_row(1))

    changed, wake = world.run(T0)
    assert (changed, wake) == (True, None)  # poll_interval None: the job's end wakes the agent
    assert ex.calls == [("place", 1), ("prepare", 1, [0]), ("launch", 1)]
    # the prepared ref is stored, CONFIGURING, before launch() is called
    assert seen_at_launch == [("CONFIGURING", {"nodes": [0], "names": ["fake0"], "pids": []}, T0)]
    assert world.look(
        1, "state", "reason", "nodelist", "batch_host", "start_time", "eligible_time"
    ) == ("RUNNING", "None", "fake0", "fake0", T0, T0)
    assert world.job(1).executor_ref["pids"] == [[100001, 0.0]]

    assert world.run(T0 + 10) == (False, None)  # polled, still running
    assert world.job(1).state == "RUNNING"

    ex.results[1] = done(0)
    assert world.run(T0 + 60)[0] is True
    assert ex.calls[3:] == [("poll", 1), ("poll", 1), ("cleanup", 1)]
    assert world.look(
        1, "state", "reason", "exit_code", "exit_signal", "start_time", "end_time", "kill_action"
    ) == ("COMPLETED", "None", 0, 0, T0, T0 + 50, None)
    assert world.job(1).result == done(0)
    assert world.run(T0 + 70) == (False, None)
    assert len(ex.calls) == 6  # a finished job is neither polled nor placed again


@pytest.mark.parametrize(
    "result, exit_text, reason",
    [
        (done(3, "FAILED"), (3, 0), "NonZeroExitCode"),
        (done(0, "FAILED", signal=9), (0, 9), "RaisedSignal:9(Killed)"),
        (done(0, "TIMEOUT"), (0, 0), "TimeLimit"),
    ],
)
def test_failed_end_takes_exit_code_and_reason(world, result, exit_text, reason):
    world.submit(job_row(1))
    world.run(T0)
    world.ex.results[1] = result
    world.run(T0 + 60)
    job = world.job(1)
    assert (job.state, (job.exit_code, job.exit_signal), job.reason) == (
        result["state"],
        exit_text,
        reason,
    )


def test_poll_interval_and_begin_time_set_the_wake_time(world):
    world.ex.interval = 7.0
    world.submit(job_row(1))
    world.submit(job_row(2, begin_time=T0 + 5))
    world.run(T0)  # 1 starts; 2 waits for its begin time
    assert world.run(T0 + 1) == (False, T0 + 5)  # the begin time, before the next poll
    assert world.run(T0 + 5) == (True, T0 + 5 + 7.0)  # 2 started: the next poll of 1
    assert world.ex.called("poll") == [1, 1]


# --- waiting for resources -------------------------------------------------------------------


def test_unplaceable_job_waits_with_the_executors_reason_then_starts(world):
    world.ex.nodes = 1
    world.submit(job_row(1))
    world.submit(job_row(2))
    world.run(T0)
    assert world.look(1, "state") == ("RUNNING",)
    assert world.look(2, "state", "reason", "start_time") == ("PENDING", "Resources", None)
    world.run(T0 + 10)
    assert world.look(2, "state", "reason") == ("PENDING", "Resources")

    world.ex.results[1] = done(0)
    assert world.run(T0 + 20)[0] is True  # 1's end and 2's start in one pass
    assert world.look(1, "state") == ("COMPLETED",)
    assert world.look(2, "state", "reason", "nodelist", "start_time") == (
        "RUNNING",
        "None",
        "fake0",
        T0 + 20,
    )
    assert world.ex.called("prepare") == [1, 2]


def test_blocked_job_holds_back_equal_asks_but_smaller_jobs_fill_in(world):
    """Behind a job waiting for Resources the next that does not fit waits with Priority;
    one that fits still starts; one larger than the cluster gets PartitionNodeLimit."""
    world.submit(job_row(1))
    world.submit(job_row(2, num_nodes=2))
    world.submit(job_row(3, num_nodes=2))
    world.submit(job_row(4, num_nodes=3))
    world.submit(job_row(5))
    world.run(T0)
    assert [world.look(i, "state", "reason") for i in range(1, 6)] == [
        ("RUNNING", "None"),
        ("PENDING", "Resources"),
        ("PENDING", "Priority"),
        ("PENDING", "PartitionNodeLimit"),
        ("RUNNING", "None"),
    ]
    assert [c for c in world.ex.calls if c[0] == "prepare"] == [
        ("prepare", 1, [0]),
        ("prepare", 5, [1]),
    ]

    world.ex.results[1] = done(0)
    world.ex.results[5] = done(0)
    world.run(T0 + 10)
    assert world.look(2, "state", "nodelist") == ("RUNNING", "fake[0-1]")
    assert world.look(3, "state", "reason") == ("PENDING", "Resources")


# --- arrays ----------------------------------------------------------------------------------


def test_array_throttle_keeps_two_elements_started(world):
    world.ex.nodes = 10
    ids = world.submit_array(10, 5, throttle=2)
    assert ids == [11, 12, 13, 14, 10]
    now = T0
    for _ in range(10):
        world.run(now)
        rows = [r for r in map(world.job, ids) if r is not None]
        started = [r.job_id for r in rows if r.state in ("CONFIGURING", "RUNNING")]
        assert len(started) <= 2
        assert all(r.reason == "JobArrayTaskLimit" for r in rows if r.state == "PENDING")
        if not started:
            break
        world.ex.results[started[0]] = done(0)  # the oldest ends
        now += 10
    assert [world.job(i).state for i in ids] == ["COMPLETED"] * 5
    assert world.ex.called("launch") == ids  # index order, the array's own id last


# --- dependencies, holds, begin times --------------------------------------------------------


def test_afterok_waits_with_reason_dependency_then_starts(world):
    world.submit(job_row(1))
    world.submit(
        job_row(
            2, dependency_spec="afterok:1", dependency="afterok:1(unfulfilled)", reason="Dependency"
        )
    )
    world.run(T0)
    assert world.look(2, "state", "reason", "dependency", "eligible_time") == (
        "PENDING",
        "Dependency",
        "afterok:1(unfulfilled)",
        None,
    )
    assert world.ex.called("place") == [1]  # a job waiting for a dependency is not placed

    world.ex.results[1] = done(0)
    world.run(T0 + 30)
    assert world.look(2, "state", "reason", "dependency", "eligible_time", "start_time") == (
        "RUNNING",
        "None",
        None,
        T0 + 30,
        T0 + 30,
    )


def test_afterok_on_failed_job_is_never_satisfied(world):
    world.submit(job_row(1))
    world.submit(job_row(2, dependency_spec="afterok:1", reason="Dependency"))
    world.submit(
        job_row(3, dependency_spec="afterok:1", reason="Dependency", kill_on_invalid_dep=1)
    )
    world.run(T0)
    world.ex.results[1] = done(1, "FAILED")
    world.run(T0 + 30)
    world.run(T0 + 40)
    assert world.look(1, "state", "reason") == ("FAILED", "NonZeroExitCode")
    assert world.look(2, "state", "reason", "dependency") == (
        "PENDING",
        "DependencyNeverSatisfied",
        "afterok:1(failed)",
    )
    assert world.look(3, "state", "reason", "end_time", "exit_code") == (
        "CANCELLED",
        "DependencyNeverSatisfied",
        T0 + 30,
        0,
    )
    assert world.ex.called("place") == [1]


def test_held_job_waits_until_released(world):
    world.submit(job_row(1))
    assert jobcontrol.hold(world.cmd, world.job(1), admin=True) is None
    world.submit(job_row(2, held="user", reason="JobHeldUser"))
    for now in (T0, T0 + 10):
        world.run(now)
        assert world.look(1, "state", "reason") == ("PENDING", "JobHeldAdmin")
        assert world.look(2, "state", "reason") == ("PENDING", "JobHeldUser")
    assert world.ex.calls == []

    assert jobcontrol.release(world.cmd, world.job(2)) is None
    world.run(T0 + 20)
    assert world.look(2, "state", "held") == ("RUNNING", None)
    assert world.look(1, "state", "reason") == ("PENDING", "JobHeldAdmin")
    assert world.ex.called("launch") == [2]


def test_a_pass_costs_nothing_per_held_job(world):
    """Held jobs with nothing to update wait for `scontrol release`: a pass reads none of
    them (SQLite's own work, counted in VM instructions, stays as it was with 1000 more,
    the executors with jobs looked up anew after a commit too); a held job with a
    dependency keeps what it showed (slurmctld tests no held job's dependency), and the
    others are followed."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    world.submit(job_row(1, held="user", reason="JobHeldUser", num_nodes=3))
    world.submit(
        job_row(
            2,
            held="admin",
            reason="JobHeldAdmin",
            dependency_spec="afterok:1",
            dependency="afterok:1(unfulfilled)",  # as sbatch stores it
        )
    )
    world.run(T0)
    world.conn.set_progress_handler(count, 100)

    def cost() -> int:  # of a pass after a command's commit (which makes it look anew)
        state.allocate_ids(world.cmd, 1)
        steps[0] = 0
        world.run(T0 + 1)
        return steps[0]

    few = cost()
    with state.write(world.cmd):
        for job_id in range(3, 1003):
            world.submit(job_row(job_id, held="user", reason="JobHeldUser"))
    assert cost() <= few + 1  # 3 and 414 before: each job read, and scanned for its executor
    world.submit(job_row(1003))
    world.run(T0 + 2)
    assert world.look(2, "reason", "dependency") == ("JobHeldAdmin", "afterok:1(unfulfilled)")
    assert world.look(1003, "state") == ("RUNNING",)
    assert world.ex.called("place") == [1003]


def test_a_stop_asked_mid_pass_ends_it_between_job_starts(world):
    """`slurmsky agent stop` during a pass: the job being started is started whole, the
    others stay pending as stored (none half-started); the next pass starts them."""
    stop = []
    world.sched.stopping = lambda: bool(stop)
    world.ex.on_launch = lambda job: stop.append(job.job_id)
    world.submit(job_row(1), job_row(2, 1), job_row(3, 1))
    world.run(T0)
    assert [world.look(j, "state")[0] for j in (1, 2, 3)] == ["RUNNING", "PENDING", "PENDING"]
    assert world.ex.called("prepare") == [1]
    stop.clear()
    world.ex.on_launch = None
    world.run(T0 + 1)
    assert [world.look(j, "state")[0] for j in (1, 2, 3)] == ["RUNNING", "RUNNING", "PENDING"]


def test_begin_time_in_the_future_waits_with_reason_begintime(world):
    world.submit(job_row(1, begin_time=T0 + 100))
    assert world.run(T0) == (False, T0 + 100)
    assert world.look(1, "state", "reason", "eligible_time") == ("PENDING", "BeginTime", None)
    assert world.run(T0 + 99.5) == (False, T0 + 100)
    assert world.ex.calls == []
    assert world.run(T0 + 100)[0] is True
    assert world.look(1, "state", "eligible_time", "start_time") == ("RUNNING", T0 + 100, T0 + 100)


# --- scancel, requeue, signals ---------------------------------------------------------------


def test_scancel_of_running_job_cancels_it_through_the_executor(world):
    world.submit(job_row(1), job_row(2, submission=1))
    world.ex.nodes = 1
    world.run(T0)
    assert jobcontrol.cancel(world.cmd, [world.job(2)]) == {}  # pending: cancelled at once
    assert world.look(2, "state") == ("CANCELLED",)
    assert jobcontrol.cancel(world.cmd, [world.job(1)]) == {}
    assert world.look(1, "state", "kill_action") == ("COMPLETING", "cancel")

    assert world.run(T0 + 5)[0] is True
    assert world.ex.calls[4:] == [("cancel", 1), ("poll", 1), ("cleanup", 1)]
    assert world.look(
        1,
        "state",
        "reason",
        "exit_code",
        "exit_signal",
        "kill_action",
        "kill_sent",
        "end_time",
        "cancelled_by",
    ) == ("CANCELLED", "None", 0, 0, None, T0 + 5, T0 + 5, os.getuid())
    assert world.ex.called("place") == [1, 2]


def test_scancel_taken_while_the_job_ends_on_its_own_leaves_it_cancelled(world, monkeypatch):
    """scancel lands after the agent read the running job, which then exits 0 before any
    kill reaches it: CANCELLED, as slurmctld marks it at once (CI once saw COMPLETED)."""
    world.submit(job_row(1))
    world.run(T0)

    def poll_racing_scancel(job):
        assert job.kill_action is None  # the agent's row predates the scancel
        assert jobcontrol.cancel(world.cmd, [world.job(1)]) == {}
        return done(0)

    monkeypatch.setattr(world.ex, "poll", poll_racing_scancel)
    assert world.run(T0 + 5)[0] is True
    assert world.look(1, "state", "reason", "exit_code", "kill_action", "cancelled_by") == (
        "CANCELLED",
        "None",
        0,
        None,
        os.getuid(),
    )


def test_job_that_ignores_scancel_is_ended_after_kill_wait(world):
    world.ex.cancel_ends = False
    world.submit(job_row(1))
    world.run(T0)
    jobcontrol.cancel(world.cmd, [world.job(1)])
    deadline = T0 + 1 + world.spec["kill_wait"] + KILL_GRACE
    assert world.run(T0 + 1) == (False, deadline)
    assert world.run(deadline - 1) == (False, deadline)
    assert world.ex.called("cancel") == [1]  # asked once
    assert world.look(1, "state", "kill_sent") == ("COMPLETING", T0 + 1)
    assert world.run(deadline)[0] is True
    assert world.look(1, "state", "end_time", "exit_code") == ("CANCELLED", deadline, 0)


def test_requeue_ends_the_job_and_pends_it_again_after_two_minutes(world):
    world.submit(job_row(1))
    world.run(T0)
    assert jobcontrol.requeue(world.cmd, world.job(1)) is None
    world.run(T0 + 10)
    assert world.ex.calls[3:5] == [("cancel", 1), ("poll", 1)]
    assert world.look(
        1, "state", "reason", "begin_time", "restarts", "start_time", "executor_ref", "kill_action"
    ) == ("PENDING", "BeginTime", T0 + 130, 1, None, None, None)
    assert world.run(T0 + 20) == (False, T0 + 130)
    world.run(T0 + 130)
    assert world.look(1, "state", "start_time") == ("RUNNING", T0 + 130)
    assert world.ex.called("launch") == [1, 1]


def test_scancel_signal_is_delivered_to_the_executor(monkeypatch, world):
    monkeypatch.setattr(
        fake_backend.BACKEND, "unsupported", fake_backend.only(Feature.STEP_SIGNALS)
    )
    world.submit(job_row(1))
    world.run(T0)
    assert jobcontrol.signal(world.cmd, [world.job(1)], 10, "batch") == {}
    world.run(T0 + 1)
    assert ("signal", 1, 10, "batch") in world.ex.calls
    assert world.ex.calls.index(("signal", 1, 10, "batch")) < world.ex.calls.index(("poll", 1))
    assert world.job(1).state == "RUNNING"


def test_scancel_signal_is_refused_where_no_channel_reaches_the_steps(world):
    world.submit(job_row(1))
    world.run(T0)
    assert jobcontrol.signal(world.cmd, [world.job(1)], 10, "batch") == {1: jobcontrol.DISABLED}
    world.run(T0 + 1)
    assert not [c for c in world.ex.calls if c[0] == "signal"]


# --- backends that follow an outside queue ---------------------------------------------------


def test_queue_sync_backend_is_synced_every_pass_and_never_polled(monkeypatch, world):
    monkeypatch.setattr(fake_backend.BACKEND, "unsupported", fake_backend.only(Feature.QUEUE_SYNC))
    ends: dict[int, float] = {}

    def sync(conn, now, wake):
        wake.append(now + 30)
        moved = False
        for job_id, end in list(ends.items()):
            moved |= state.update_job(
                conn,
                job_id,
                where_state=("CONFIGURING", "COMPLETING"),
                state="COMPLETED",
                exit_code=0,
                exit_signal=0,
                end_time=end,
            )
            del ends[job_id]
        return moved

    world.ex.on_sync = sync
    assert world.run(T0) == (False, T0 + 30)  # synced with no job: the configured backend
    world.submit(job_row(1), job_row(2, submission=1))
    world.run(T0 + 1)
    assert world.ex.calls[1:] == [
        ("sync", T0 + 1),
        ("place", 1),
        ("place", 2),
        ("prepare", 1, [0]),
        ("launch", 1),
        ("prepare", 2, [1]),
        ("launch", 2),
    ]
    # launched: CONFIGURING until the queue says otherwise
    assert [world.job(i).state for i in (1, 2)] == ["CONFIGURING", "CONFIGURING"]

    jobcontrol.cancel(world.cmd, [world.job(2)])  # sync's to act on, not the scheduler's
    world.run(T0 + 2)
    ends[1] = T0 + 2
    assert world.run(T0 + 3) == (True, T0 + 33)
    assert world.ex.called("sync") == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert world.look(1, "state", "end_time") == ("COMPLETED", T0 + 2)
    assert world.look(2, "state", "kill_action") == ("COMPLETING", "cancel")
    assert not {c[0] for c in world.ex.calls} & {"poll", "cancel", "cleanup", "adopt"}


# --- failed launches -------------------------------------------------------------------------


def test_launch_oserror_fails_that_job_and_the_pass_goes_on(world):
    world.ex.launch_errors[1] = OSError("no such file")
    world.submit(job_row(1))
    world.submit(job_row(2))
    assert world.run(T0)[0] is True
    assert world.look(1, "state", "reason", "exit_code", "exit_signal", "end_time") == (
        "FAILED",
        "JobLaunchFailure",
        0,
        53,
        T0,
    )
    assert world.job(1).result == {"error": "no such file"}
    assert world.look(2, "state") == ("RUNNING",)
    world.run(T0 + 1)
    assert world.ex.called("poll") == [2]  # the failed job is not watched


@pytest.mark.parametrize("stage", ["place", "prepare", "launch"])
def test_a_job_whose_launch_raises_fails_alone_logged_once_and_the_queue_runs_on(
    world, monkeypatch, caplog, stage
):
    """Any exception while placing, preparing or launching one job (not only OSError) fails
    that job with JobLaunchFailure, logs it once with its traceback, and the jobs behind it
    start (its nodes are free again); later passes leave the failed job alone."""
    original = getattr(world.ex, stage)

    def broken(job, *args):
        if job.job_id == 1:
            raise RuntimeError("boom")
        return original(job, *args)

    monkeypatch.setattr(world.ex, stage, broken)
    world.submit(job_row(1))
    world.submit(job_row(2))
    world.submit(job_row(3))
    with caplog.at_level("INFO", logger="slurmsky.core.daemon"):
        assert world.run(T0)[0] is True
        for k in range(1, 4):
            world.run(T0 + k)
    assert world.look(1, "state", "reason", "exit_code", "exit_signal", "end_time") == (
        "FAILED",
        "JobLaunchFailure",
        0,
        53,
        T0,
    )
    assert world.job(1).result == {"error": "boom"}
    assert [world.job(i).state for i in (2, 3)] == ["RUNNING", "RUNNING"]
    failures = [r for r in caplog.records if "launch failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info
    assert 1 not in world.ex.called("poll")


def test_a_job_whose_poll_raises_is_logged_once_and_the_others_end(world, monkeypatch, caplog):
    world.submit(job_row(1))
    world.submit(job_row(2))
    world.run(T0)
    original = world.ex.poll
    monkeypatch.setattr(
        world.ex,
        "poll",
        lambda job: (_ for _ in ()).throw(KeyError("x")) if job.job_id == 1 else original(job),
    )
    world.ex.results[2] = done(0)
    with caplog.at_level("INFO", logger="slurmsky.core.daemon"):
        world.run(T0 + 1)
        world.run(T0 + 2)
    assert [world.job(i).state for i in (1, 2)] == ["RUNNING", "COMPLETED"]
    assert sum("watching it failed" in r.getMessage() for r in caplog.records) == 1


def test_half_started_job_found_running_is_adopted(world):
    """A CONFIGURING job whose ref has no pids (an agent died in launch): adopt()'s ref is
    stored and the job is RUNNING, then polled as usual."""
    world.submit(
        job_row(
            1,
            state="CONFIGURING",
            start_time=T0 - 5,
            executor_ref={"nodes": [1], "names": ["fake1"], "pids": []},
        )
    )
    world.ex.adopted[1] = {"nodes": [1], "names": ["fake1"], "pids": [[42, 1.0]]}
    world.ex.results[1] = done(0)
    world.run(T0)
    assert world.ex.calls == [("adopt", 1), ("poll", 1), ("cleanup", 1)]
    assert world.look(1, "state", "start_time", "executor_ref") == (
        "COMPLETED",
        T0 - 5,
        world.ex.adopted[1],
    )


def test_a_backend_that_cannot_be_made_is_tried_again_after_a_growing_delay(
    world, monkeypatch, caplog
):
    """An executor that cannot be made (a broken install): its jobs fail at launch, the
    error is logged once, and the executor is made again after 1, 2, 4 ... 30 s, so a fixed
    install serves again without restarting the agent."""
    calls = []

    def broken():
        calls.append(world.clock.now)
        raise ImportError("No module named 'thing'")

    monkeypatch.setattr(fake_backend.BACKEND, "executor", broken)
    times = [T0 + t for t in (0, 0.5, 1, 2, 3, 5, 7, 11, 15, 30, 31, 60, 61, 90, 91)]
    for now in times:
        world.clock.now = now
        assert isinstance(world.sched.executor("fake"), scheduler.Unavailable)
    assert [c - T0 for c in calls] == [0, 1, 3, 7, 15, 31, 61, 91]  # then every 30 s
    said = [r.getMessage() for r in caplog.records if "cannot run jobs" in r.getMessage()]
    assert said == ["the fake backend cannot run jobs: No module named 'thing'"]
    monkeypatch.setattr(fake_backend.BACKEND, "executor", lambda: world.ex)  # fixed
    world.clock.now = T0 + 121
    assert world.sched.executor("fake") is world.ex
    world.submit(job_row(1))
    world.run(T0 + 122)
    assert world.look(1, "state") == ("RUNNING",)
