"""Lanes (backends/sky/lanes.py): an array as a few managed jobs, each running its share of
elements one after another, every element with its own row, files, exit code and cancel.

The lane's `run` runs for real on a "node" here (bash, the node runtime, the emitters). The
executor tests drive the real scheduler and SkyExecutor in this process, the real sbatch,
scancel and sacct as subprocesses, with SkyPilot replaced by the shared fake SkyClient
(fake_sky.py): managed jobs that run their task's `run` here.
"""

from __future__ import annotations

import time

import pytest
from fake_sky import sky_world
from test_sky_units import _job, _request, run_on_node

from slurmsky.backends.sky.executor import SkyExecutor
from slurmsky.backends.sky.lanes import LaneReader, lane_run
from slurmsky.backends.sky.output import NODE_OUT, LogReader
from slurmsky.backends.sky.task import translate
from slurmsky.config import Config

SCRIPT = (
    "#!/bin/bash\n"
    "echo task $SLURM_ARRAY_TASK_ID job $SLURM_JOB_ID of $SLURM_ARRAY_JOB_ID\n"
    '[ "$SLURM_ARRAY_TASK_ID" != 2 ] || exit 5\n'
)


def test_a_lane_runs_its_elements_in_turn_each_with_its_files_and_result(tmp_path):
    req = _request(tmp_path, SCRIPT, "--array=1-3", "-o", "x")
    spec = translate(req, Config(path="x"), job_id=100).spec
    lane = [[1, 101], [2, 102], [3, 100]]
    node = dict(spec, output=NODE_OUT, array=dict(spec["array"], lane=lane))
    run = run_on_node(
        tmp_path, lane_run(node, None, 3), SKYPILOT_TASK_ID="t", SKYPILOT_MANAGED_JOB_ID="7"
    )
    assert run.returncode == 0, run.stderr
    events = []
    reader = LaneReader(
        {seq: LogReader(_job(tmp_path, f"got-{seq}.txt"), append=False) for seq in range(3)},
        lambda: events.append(1),
    )
    reader.write(run.stdout)
    for seq, (index, job_id) in enumerate(lane):
        got = (tmp_path / f"got-{seq}.txt").read_text()
        assert got == f"task {index} job {job_id} of 100\n"
    results = [reader.members[seq].result for seq in range(3)]
    assert [(r["state"], r["exit_code"]) for r in results] == [
        ("COMPLETED", 0),
        ("FAILED", 5),
        ("COMPLETED", 0),
    ]
    assert sorted(reader.started) == [0, 1, 2]
    assert reader.started[0] <= reader.started[1] <= reader.started[2]
    assert results[0]["end"] <= reader.started[1] + 0.5
    assert len(events) == 6  # each element's start and end
    assert reader.running() == []


def test_lane_lines_of_elements_no_longer_followed_are_skipped(tmp_path):
    reader = LaneReader({1: LogReader(_job(tmp_path, "one.txt"), append=False)}, lambda: None)
    reader.write("SLURMSKY-IO s 0 MTIzLjU= 0\nSLURMSKY-IO o 0 eA== 0\nSLURMSKY-IO s 0 MTI0 1\n")
    reader.write("SLURMSKY-IO o 0 eQo= 1\nSLURMSKY-IO o 0 eg== \n")
    assert reader.started == {1: 124.0}
    assert (tmp_path / "one.txt").read_text() == "y\n"
    assert reader.running() == [1]


# --- the executor, with SkyPilot's managed jobs run here -------------------------------------


@pytest.fixture
def lanes_world(cluster, tmp_path, monkeypatch):
    """A sky-backend cluster whose partition runs arrays in 2 lanes."""
    with sky_world(
        cluster, tmp_path, monkeypatch, "  lanes:\n    default: true\n    lanes: 2\n"
    ) as world:
        yield world


def _elements(cluster, array_id):
    """(index, state, exit code, start, end, stdout) of every element, by index."""
    with cluster.db() as conn:
        return conn.execute(
            "SELECT array_task_id, state, exit_code, start_time, end_time, stdout FROM jobs "
            "WHERE array_job_id = ? ORDER BY array_task_id",
            (array_id,),
        ).fetchall()


def _done(cluster, array_id, count):
    rows = _elements(cluster, array_id)
    active = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")
    return len(rows) == count and all(r[1] not in active for r in rows)


def test_a_throttled_array_runs_in_lanes_each_element_its_own(lanes_world):
    cluster, fake, drive = lanes_world
    cluster.script("job.sh", SCRIPT + "sleep 0.3\n")
    array_id = cluster.sbatch("--array=1-5%3", "-o", "%A_%a.out", "job.sh")
    drive(lambda: _done(cluster, array_id, 5))
    rows = _elements(cluster, array_id)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (1, "COMPLETED", 0),
        (2, "FAILED", 5),
        (3, "COMPLETED", 0),
        (4, "COMPLETED", 0),
        (5, "COMPLETED", 0),
    ]
    assert len(fake.jobs) == 2  # min(lanes 2, throttle 3) managed jobs for five elements
    assert fake.most_at_once <= 2
    lanes = [fake.jobs[i]["task"]["_metadata"]["slurmsky"]["lane"] for i in (1, 2)]
    ids = {r[0]: job_id for r, job_id in zip(rows, _ids(cluster, array_id), strict=True)}
    assert lanes == [[ids[1], ids[3], ids[5]], [ids[2], ids[4]]]
    by_index = {r[0]: r for r in rows}
    assert by_index[1][4] <= by_index[3][3] + 0.5  # one after another in a lane
    assert by_index[3][4] <= by_index[5][3] + 0.5
    for index, job_id in ids.items():
        out = (cluster.cwd / f"{array_id}_{index}.out").read_text()
        assert out == f"task {index} job {job_id} of {array_id}\n"
    assert _sacct(cluster, array_id, "JobID,State,ExitCode") == [
        f"{array_id}_1|COMPLETED|0:0",
        f"{array_id}_2|FAILED|5:0",
        f"{array_id}_3|COMPLETED|0:0",
        f"{array_id}_4|COMPLETED|0:0",
        f"{array_id}_5|COMPLETED|0:0",
    ]


def test_elements_whose_start_and_end_come_at_once_name_their_lanes_node(lanes_world):
    """A lane's log read only after it ended (as SkyPilot streams it at first, in bursts):
    each element goes from PENDING to its end in one read, and sacct still names the node
    its lane ran on, not `None assigned`."""
    cluster, fake, drive = lanes_world
    fake.burst = True
    cluster.script("job.sh", SCRIPT)
    array_id = cluster.sbatch("--array=1-4", "-o", "%A_%a.out", "job.sh")
    drive(lambda: _done(cluster, array_id, 4))
    ended = {1: "COMPLETED", 2: "FAILED", 3: "COMPLETED", 4: "COMPLETED"}
    assert _sacct(cluster, array_id, "JobID,State,NodeList") == [
        f"{array_id}_{i}|{state}|fake-node-{2 - i % 2}" for i, state in ended.items()
    ]


def _sacct(cluster, array_id: int, fields: str) -> list[str]:
    out = cluster.run("sacct", "-X", "-n", "-P", "-j", str(array_id), "-o", fields)
    return out.stdout.splitlines()


def _ids(cluster, array_id):
    with cluster.db() as conn:
        rows = conn.execute(
            "SELECT job_id FROM jobs WHERE array_job_id = ? ORDER BY array_task_id", (array_id,)
        )
        return [r[0] for r in rows]


def test_scancel_of_one_element_stops_only_that_element(lanes_world):
    """Lanes [1,3,5] and [2,4,6]: element 2 is cancelled while it runs (its lane stops at
    once), element 3 while it waits behind 1 (its lane stops once 1 ends). The elements
    those lanes had not run go out again in new lanes; every other element completes."""
    cluster, fake, drive = lanes_world
    gate = cluster.cwd / "gate"  # 1 and 2 run until the cancels are in (not a sleep: load)
    cluster.script(
        "slow.sh",
        "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\n"
        f"case $SLURM_ARRAY_TASK_ID in 1|2) while [ ! -e {gate} ]; do sleep 0.1; done;; esac\n",
    )
    array_id = cluster.sbatch("--array=1-6", "-o", "%A_%a.out", "slow.sh")

    def running():
        rows = {r[0]: r[1] for r in _elements(cluster, array_id)}
        return rows.get(1) == "RUNNING" and rows.get(2) == "RUNNING"

    drive(running)
    out = cluster.run("scancel", f"{array_id}_2", f"{array_id}_3")
    assert out.returncode == 0, out.stderr
    drive(lambda: _elements(cluster, array_id)[1][1] == "CANCELLED")  # element 2's lane cut
    gate.touch()
    drive(lambda: _done(cluster, array_id, 6))
    states = {r[0]: r[1] for r in _elements(cluster, array_id)}
    assert states == {
        1: "COMPLETED",
        2: "CANCELLED",
        3: "CANCELLED",
        4: "COMPLETED",
        5: "COMPLETED",
        6: "COMPLETED",
    }
    assert fake.most_at_once <= 2
    for index in (1, 4, 5, 6):
        assert (cluster.cwd / f"{array_id}_{index}.out").read_text() == f"task {index}\n"
    assert not (cluster.cwd / f"{array_id}_3.out").exists()


def test_an_agent_restarted_while_a_cut_waits_still_cuts_the_lane(lanes_world, tmp_path):
    """Element 3 is cancelled while it waits in lane [1,3] behind 1; the agent that took the
    scancel is then replaced by a new one (it knew the cut only in memory). The new agent
    leaves 1 running (its row says it runs before the new agent has read the log) and cuts
    the lane once 1 ends: 3 never runs on the node, 1 is not run again."""
    from slurmsky.core import state
    from slurmsky.core.scheduler import Scheduler

    cluster, fake, drive = lanes_world
    gate, ran = tmp_path / "gate", tmp_path / "ran-3"
    cluster.script(
        "cut.sh",
        "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\ncase $SLURM_ARRAY_TASK_ID in\n"
        f"  1) while [ ! -e {gate} ]; do sleep 0.1; done;;\n  3) sleep 3; touch {ran};;\nesac\n",
    )
    array_id = cluster.sbatch("--array=1-4", "-o", "%A_%a.out", "cut.sh")
    drive(lambda: {r[0]: r[1] for r in _elements(cluster, array_id)}.get(1) == "RUNNING")
    assert cluster.run("scancel", f"{array_id}_3").returncode == 0
    with cluster.db() as conn:
        taken = "SELECT 1 FROM jobs WHERE array_job_id = ? AND array_task_id = 3 AND kill_sent > 0"
        drive(lambda: conn.execute(taken, (array_id,)).fetchone() is not None)
    conn = state.connect()
    restarted = Scheduler(conn, backend="sky")
    executor = restarted.executors["sky"] = SkyExecutor(fake)

    def passes(until, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not until():
            assert time.monotonic() < deadline, _elements(cluster, array_id)
            restarted.run_pass(time.time())
            time.sleep(0.1)

    try:
        passes(lambda: list(executor.lanes.cuts.values()) == [None], 30)
        settle = time.monotonic() + 1
        passes(lambda: time.monotonic() > settle, 30)
        assert not any(job["cancelled"] for job in fake.jobs.values())  # 1 runs on
        gate.touch()
        passes(lambda: _done(cluster, array_id, 4), 60)
    finally:
        executor.shutdown()
        conn.close()
    states = {r[0]: r[1] for r in _elements(cluster, array_id)}
    assert states == {1: "COMPLETED", 2: "COMPLETED", 3: "CANCELLED", 4: "COMPLETED"}
    time.sleep(3.5)  # what element 3 would have taken to leave its mark
    assert not ran.exists()
    assert len(fake.jobs) == 2
    assert (cluster.cwd / f"{array_id}_1.out").read_text() == "task 1\n"


def test_dependencies_on_an_array_in_lanes_wait_for_every_element(lanes_world):
    """afterany:ARRAY starts once every element has ended; afterok:ARRAY, with element 2
    FAILED, never can (PENDING, DependencyNeverSatisfied), as on Slurm."""
    cluster, fake, drive = lanes_world
    cluster.script("job.sh", SCRIPT + "sleep 0.3\n")
    array_id = cluster.sbatch("--array=1-3", "-o", "%A_%a.out", "job.sh")
    after_any = cluster.sbatch("-d", f"afterany:{array_id}", "-o", "any.out", "--wrap", "echo any")
    after_ok = cluster.sbatch("-d", f"afterok:{array_id}", "--wrap", "echo ok")

    def states():
        with cluster.db() as conn:
            return {
                job: (state, reason)
                for job, state, reason in conn.execute(
                    "SELECT job_id, state, reason FROM jobs WHERE job_id IN (?, ?)",
                    (after_any, after_ok),
                )
            }

    drive(lambda: states()[after_any][0] == "COMPLETED")
    drive(lambda: states()[after_ok][1] == "DependencyNeverSatisfied")
    assert states()[after_ok] == ("PENDING", "DependencyNeverSatisfied")
    ends = [r[4] for r in _elements(cluster, array_id)]
    with cluster.db() as conn:
        (start,) = conn.execute(
            "SELECT start_time FROM jobs WHERE job_id = ?", (after_any,)
        ).fetchone()
    assert [r[1] for r in _elements(cluster, array_id)] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert start >= max(ends)
    assert (cluster.cwd / "any.out").read_text() == "any\n"
    squeue = cluster.run("squeue", "-h", "-j", str(after_ok), "-o", "%i %t %r")
    assert squeue.stdout == f"{after_ok} PD DependencyNeverSatisfied\n"


def test_test_only_and_translate_say_an_array_runs_in_lanes(cluster):
    (cluster.home / "slurmsky.yaml").write_text(
        "backend: sky\npartitions:\n  lanes:\n    default: true\n    lanes: 4\n"
        "  wide:\n    lanes: 4\n"
    )
    cluster.script("job.sh", "#!/bin/bash\necho hi\n")
    said = "array: slurmsky runs it as 3 lanes (partitions.lanes.lanes): managed jobs that each"
    out = cluster.run("sbatch", "--test-only", "--array=1-20%3", "job.sh")
    assert out.returncode == 0 and f"\n# {said} " in out.stderr, out.stderr
    out = cluster.run("slurmsky", "translate", "--array=1-2", "job.sh")
    assert "array: slurmsky runs it as 2 lanes" in out.stderr, out.stderr
    out = cluster.run("sbatch", "--test-only", "-p", "wide", "-N", "2", "--array=1-20", "job.sh")
    assert out.returncode == 0 and "runs it as" not in out.stderr, out.stderr  # one job each


def test_each_element_of_a_lane_sends_its_own_files_home(cluster, tmp_path, monkeypatch):
    """One lane runs elements 1, 2, 3 in turn; each element's runtime snapshots the lane's
    workdir when it starts, so it sends what IT created or changed (element 3 does not send
    element 1's files again; shared.txt is the last writer's, as on a shared filesystem).
    Element 2's file past the 1 MB cap is named in its own Comment and error file only."""
    parts = "  lanes:\n    default: true\n    lanes: 1\n    files_home: {cap_mb: 1}\n"
    with sky_world(cluster, tmp_path, monkeypatch, parts) as (cluster, fake, drive):
        cluster.script(
            "job.sh",
            "#!/bin/bash\n"
            "i=$SLURM_ARRAY_TASK_ID\n"
            "mkdir -p res; echo element $i > res/$i.txt; echo by $i > shared.txt\n"
            '[ "$i" != 2 ] || head -c 1100000 /dev/zero > big.bin\n'
            '[ "$i" != 3 ] || exit 4\n',
        )
        array_id = cluster.sbatch("--array=1-3", "-o", "%A_%a.out", "job.sh")
        drive(lambda: _done(cluster, array_id, 3))
        for index in (1, 2, 3):
            assert (cluster.cwd / "res" / f"{index}.txt").read_text() == f"element {index}\n"
        assert (cluster.cwd / "shared.txt").read_text() == "by 3\n"
        assert not (cluster.cwd / "big.bin").exists()
        assert len(fake.jobs) == 1
        lane, ids = fake.jobs[1]["log"].read_text(), ids_of(cluster, array_id)
        assert [lane.count(f" b {ids[index]}.0.") for index in (1, 2, 3)] == [2, 2, 2]
        assert lane.count(f" x {ids[2]}.0.") == 1
        over = (
            "big.bin (1100000 bytes) over the 1 MB cap, left on the node, which goes when the "
            "job ends: raise partitions.lanes.files_home.cap_mb, or write it to a bucket "
            "(partitions.lanes.file_mounts)"
        )
        assert _sacct(cluster, array_id, "JobID,State,ExitCode,Comment") == [
            f"{array_id}_1|COMPLETED|0:0|",
            f"{array_id}_2|COMPLETED|0:0|files home: {over}",
            f"{array_id}_3|FAILED|4:0|",
        ]
        assert (cluster.cwd / f"{array_id}_2.out").read_text() == f"slurmsky: files home: {over}\n"
        assert (cluster.cwd / f"{array_id}_1.out").read_text() == ""


def ids_of(cluster, array_id) -> dict[int, int]:
    """Each element's job id, by its index."""
    with cluster.db() as conn:
        rows = conn.execute(
            "SELECT array_task_id, job_id FROM jobs WHERE array_job_id = ?", (array_id,)
        )
        return dict(rows.fetchall())
