"""Lanes (backends/sky/lanes.py): an array as a few managed jobs, each running elements one
after another (its dealt share; on Slurm infra, whichever it claims first), every element
with its own row, files, exit code and cancel.

The lane's `run` runs for real on a "node" here (bash, the node runtime, the emitters). The
executor tests drive the real scheduler and SkyExecutor in this process, the real sbatch,
scancel and sacct as subprocesses, with SkyPilot replaced by the shared fake SkyClient
(fake_sky.py): managed jobs that run their task's `run` here.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import time

import pytest
from fake_sky import ROOT, sky_world
from test_sky_units import _job, _request, run_on_node

from slurmsky.backends.sky import room
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.executor import SkyExecutor
from slurmsky.backends.sky.infra import shares_base
from slurmsky.backends.sky.lanes import LaneReader, claim_run, lane_run
from slurmsky.backends.sky.output import NODE_OUT, LogReader
from slurmsky.backends.sky.task import translate
from slurmsky.config import Config
from slurmsky.core.state import JobRecord

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
    active = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED")
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
        "  wide:\n    lanes: 4\n  onprem:\n    infra: slurm/peer\n    lanes: 4\n"
    )
    cluster.script("job.sh", "#!/bin/bash\necho hi\n")
    said = "array: slurmsky runs it as 3 lanes (partitions.lanes.lanes): managed jobs that each"
    out = cluster.run("sbatch", "--test-only", "--array=1-20%3", "job.sh")
    assert out.returncode == 0 and f"\n# {said} " in out.stderr, out.stderr
    assert f"{said} run their share of elements one after another\n" in out.stderr
    out = cluster.run("slurmsky", "translate", "--array=1-2", "job.sh")
    assert "array: slurmsky runs it as 2 lanes" in out.stderr, out.stderr
    out = cluster.run("sbatch", "--test-only", "-p", "onprem", "--array=1-20", "job.sh")
    claims = "managed jobs that each run the next element none has taken, one after another"
    assert out.returncode == 0 and claims in out.stderr, out.stderr
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


# --- a release's lanes claim its elements (Slurm infra: a filesystem the lanes share) -------

ELEMENT = "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID lane $SKYPILOT_MANAGED_JOB_ID\n"


def _slurm_node(tmp_path, run: str, cluster: str, **env: str):
    """A lane's `run` as it starts on a cluster of SkyPilot's Slurm infra: $HOME is
    BASE/.sky_clusters/<cluster> (fresh: a recovered cluster's too), BASE the one every
    cluster shares; the runtime where the file mount puts it."""
    home = tmp_path / "base" / ".sky_clusters" / cluster
    shutil.rmtree(home, ignore_errors=True)
    (home / ".slurmsky" / "runtime").mkdir(parents=True)
    (home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
    workdir = tmp_path / "sky_workdir"
    workdir.mkdir(exist_ok=True)
    base = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "SKYPILOT_NODE_RANK": "0",
        "SKYPILOT_NODE_IPS": "127.0.0.1",
        "SKYPILOT_NUM_NODES": "1",
        "SKYPILOT_TASK_ID": f"t-{cluster}",
    }
    return subprocess.Popen(
        ["bash", "-c", run],
        cwd=workdir,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _release_run(tmp_path, script: str, count: int, lanes: int) -> tuple[str, list[list[int]]]:
    """The `run` of every lane of a release of elements 1..count (ids 101.., the last 100)."""
    req = _request(tmp_path, script, f"--array=1-{count}", "-o", "x")
    spec = translate(req, Config(path="x"), job_id=100).spec
    ids = [[i, 100 + i if i < count else 100] for i in range(1, count + 1)]
    node = dict(spec, output=NODE_OUT, array=dict(spec["array"], lane=ids))
    return claim_run(node, None, count, lanes, "tok"), ids


def _starts(log: str) -> list[int]:
    """The seqs a lane's log shows starting, in order."""
    return [int(line.split()[-1]) for line in log.splitlines() if line.startswith("SLURMSKY-IO s ")]


def test_the_lanes_of_a_release_run_each_element_once_and_a_late_lane_finds_none(tmp_path):
    """Two lanes at once over six elements: each element runs once, in whichever lane
    claimed it; a third lane that starts after them finds nothing left and ends 0."""
    run, ids = _release_run(tmp_path, ELEMENT + "sleep 0.2\n", 6, 3)
    both = [
        _slurm_node(
            tmp_path, run, f"c{n}", SKYPILOT_MANAGED_JOB_ID=str(n), SKYPILOT_JOB_RANK=str(n)
        )
        for n in (1, 2)
    ]
    logs = [lane.communicate(timeout=60)[0] for lane in both]
    assert [lane.returncode for lane in both] == [0, 0]
    ran = [_starts(log) for log in logs]
    assert sorted(ran[0] + ran[1]) == list(range(6)), ran
    assert ran[0] and ran[1]  # both lanes took some
    for log, mine in zip(logs, ran, strict=True):
        reader = LaneReader(
            {},
            lambda: None,
            {
                s: functools.partial(LogReader, _job(tmp_path, f"got-{s}.txt"), False)
                for s in range(6)
            },
        )
        reader.write(log)
        assert sorted(reader.members) == sorted(mine) == sorted(reader.last)
        assert reader.running() == []
        for seq in mine:
            assert reader.members[seq].result["state"] == "COMPLETED"
            index, job_id = ids[seq]
            lane = 1 if log is logs[0] else 2
            assert (tmp_path / f"got-{seq}.txt").read_text() == f"task {index} lane {lane}\n"
    late = _slurm_node(tmp_path, run, "c3", SKYPILOT_MANAGED_JOB_ID="3", SKYPILOT_JOB_RANK="2")
    out, err = late.communicate(timeout=60)
    assert late.returncode == 0, err
    assert "SLURMSKY-IO" not in out
    claims = tmp_path / "base" / ".slurmsky" / "claims" / "tok"
    owners = {seq: os.readlink(claims / str(seq)) for seq in range(6)}
    assert owners == {seq: f"lane-{1 if seq in ran[0] else 2}" for seq in range(6)}
    assert all((claims / f"{seq}.done").exists() for seq in range(6))


def test_a_recovered_lane_first_runs_again_the_element_it_claimed_and_did_not_finish(tmp_path):
    """Lane 5 had claimed element seq 1 when its node was lost (no .done); lane 4 had run
    seq 0. SkyPilot runs lane 5's `run` again in a fresh home: it runs seq 1, then claims
    seq 2; seq 0 not again."""
    run, _ = _release_run(tmp_path, ELEMENT, 3, 2)
    claims = tmp_path / "base" / ".slurmsky" / "claims" / "tok"
    claims.mkdir(parents=True)
    os.symlink("lane-4", claims / "0")
    (claims / "0.done").touch()
    os.symlink("lane-5", claims / "1")
    lane = _slurm_node(tmp_path, run, "c5", SKYPILOT_MANAGED_JOB_ID="5", SKYPILOT_JOB_RANK="1")
    out, err = lane.communicate(timeout=60)
    assert lane.returncode == 0, err
    assert _starts(out) == [1, 2]
    assert os.readlink(claims / "2") == "lane-5"
    assert (claims / "1.done").exists() and (claims / "2.done").exists()


def test_a_release_lane_without_a_shared_base_runs_its_dealt_share(tmp_path):
    """A node whose $HOME is not a Slurm infra cluster's (no BASE every lane shares): lane
    rank 1 of 2 runs the elements dealt to it, claiming none (so none runs twice)."""
    run, _ = _release_run(tmp_path, ELEMENT, 5, 2)
    done = run_on_node(tmp_path, run, SKYPILOT_MANAGED_JOB_ID="8", SKYPILOT_JOB_RANK="1")
    assert done.returncode == 0, done.stderr
    assert _starts(done.stdout) == [1, 3]
    assert not (tmp_path / "nodehome" / ".slurmsky" / "claims").exists()


def test_lanes_claim_only_where_every_candidate_is_one_slurm_cluster():
    def task(resources, **meta):
        return {"resources": resources, "_metadata": {"slurmsky": meta}}

    assert shares_base(task({"infra": "slurm/peer"}))
    assert shares_base(task({"infra": "slurm/peer/debug"}))
    assert shares_base(task({"ordered": [{"infra": "slurm/peer/debug"}, {"infra": "slurm/peer"}]}))
    assert not shares_base(task({"ordered": [{"infra": "slurm/peer"}, {"infra": "aws"}]}))
    assert not shares_base(task({"any_of": [{"infra": "slurm/a"}, {"infra": "slurm/b"}]}))
    assert not shares_base(task({"infra": "k8s"})) and not shares_base(task({}))
    assert not shares_base(task({"infra": "slurm"}))  # which Slurm cluster: unknown
    assert shares_base(task({"infra": "slurm"}), ["AWS", "Slurm/peer"])
    assert not shares_base(task({"infra": "slurm"}), ["Slurm/a", "Slurm/b"])
    assert not shares_base(task({"infra": "slurm/peer"}, pool="p"))


def _row(state: str, ref: dict | None) -> JobRecord:
    job = JobRecord.__new__(JobRecord)
    job.__dict__.update(num_nodes=1, state=state, executor_ref=ref)
    return job


def test_a_release_holds_its_lanes_until_each_element_started_then_one_per_element():
    release = {"token": "r", "lane": 0, "lanes": 3}
    assert room.held([_row("PENDING", release), _row("RUNNING", release)]) == 3
    assert room.held([_row("RUNNING", release), _row("RUNNING", release)]) == 2
    assert room.held([_row("RUNNING", release), _row("PENDING", {"token": "d", "lane": 0})]) == 2


@pytest.fixture
def claims_world(cluster, tmp_path, monkeypatch):
    """A sky-backend cluster whose partition, on Slurm infra, runs arrays in 3 lanes; minutes
    of 0.1 s (a requeued element's BeginTime)."""
    monkeypatch.setenv("SLURMSKY_SECONDS_PER_MINUTE", "0.1")
    cluster.env["SLURMSKY_SECONDS_PER_MINUTE"] = "0.1"
    partition = "  claims:\n    default: true\n    infra: slurm/peer\n    lanes: 3\n"
    with sky_world(cluster, tmp_path, monkeypatch, partition) as world:
        yield world


def _lane_of(cluster, array_id) -> dict[int, int | None]:
    """The lane (SkyPilot id) each element's ref names, by index."""
    with cluster.db() as conn:
        rows = conn.execute(
            "SELECT array_task_id, executor_ref FROM jobs WHERE array_job_id = ?", (array_id,)
        ).fetchall()
    return {index: json.loads(ref or "{}").get("sky_job_id") for index, ref in rows}


def _ran(tmp_path, index: int) -> list[str]:
    """The lanes that ran element `index` (its script notes each run)."""
    path = tmp_path / f"ran-{index}"
    return path.read_text().split() if path.exists() else []


def _final(fake) -> bool:
    """Every managed job of the fake's has ended."""
    return all(
        fake.record(job, sky_id)["status"] in skysync.FINAL
        for world in fake.worlds.values()
        for sky_id, job in world.items()
    )


def test_the_lanes_that_start_take_every_element_of_a_lane_slow_to_start(claims_world, tmp_path):
    """Three lanes, the third's cluster 10 minutes away: the two that start run all six
    elements between them, each element once with its own output, exit code, sacct state
    and node; an element is R only while a lane runs it. Once every element has started the
    third lane, still starting, is cancelled: nothing is left for it."""
    cluster, fake, drive = claims_world
    fake.delays[3] = 600
    note = f"echo $SKYPILOT_MANAGED_JOB_ID >> {tmp_path}/ran-$SLURM_ARRAY_TASK_ID\nsleep 0.3\n"
    cluster.script("job.sh", SCRIPT.replace("\n", "\n" + note, 1))
    array_id = cluster.sbatch("--array=1-6", "-o", "%A_%a.out", "job.sh")
    running = []

    def done():
        rows = _elements(cluster, array_id)
        running.append(sum(r[1] == "RUNNING" for r in rows))
        return _done(cluster, array_id, 6)

    drive(done)
    assert max(running) <= 2 and max(running) > 0
    rows = _elements(cluster, array_id)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (1, "COMPLETED", 0),
        (2, "FAILED", 5),
        (3, "COMPLETED", 0),
        (4, "COMPLETED", 0),
        (5, "COMPLETED", 0),
        (6, "COMPLETED", 0),
    ]
    assert len(fake.jobs) == 3  # one launch of three lanes
    ids = _ids(cluster, array_id)
    assert [fake.jobs[n]["task"]["_metadata"]["slurmsky"]["lane"] for n in (1, 2, 3)] == [ids] * 3
    lanes = _lane_of(cluster, array_id)
    for index, job_id in ids_of(cluster, array_id).items():
        assert _ran(tmp_path, index) == [str(lanes[index])]
        assert lanes[index] in (1, 2)
        out = (cluster.cwd / f"{array_id}_{index}.out").read_text()
        assert out == f"task {index} job {job_id} of {array_id}\n"
    assert set(lanes.values()) == {1, 2}  # both lanes took some
    sacct = _sacct(cluster, array_id, "JobID,State,ExitCode,NodeList")
    assert sacct == [
        f"{array_id}_{i}|{'FAILED' if i == 2 else 'COMPLETED'}|{5 if i == 2 else 0}:0|"
        f"fake-node-{lanes[i]}"
        for i in range(1, 7)
    ]
    drive(lambda: _final(fake))
    assert fake.record(fake.jobs[3], 3)["status"] == "CANCELLED"
    assert fake.jobs[3]["proc"] is None  # it never ran


def test_an_element_is_r_while_it_runs_though_skypilot_still_says_its_lane_starts(
    claims_world, tmp_path
):
    """SkyPilot's controller says RUNNING a minute after a lane's run started, and its stream
    of the lane waits for that: the lane's log is read from its cluster meanwhile, so each
    element is R while it runs and ends with its own state, all while SkyPilot's queue says
    STARTING; once SkyPilot names the lanes' nodes, the elements that ran have their lane's
    as their NodeList."""
    cluster, fake, drive = claims_world
    fake.controller_lag = 60
    wait = f"while [ ! -e {tmp_path}/gate-$((SLURM_ARRAY_TASK_ID / 3)) ]; do sleep 0.1; done\n"
    cluster.script("job.sh", SCRIPT.replace("\n", "\n" + wait, 1))
    array_id = cluster.sbatch("--array=1-3", "-o", "%A_%a.out", "job.sh")
    drive(lambda: {r[1] for r in _elements(cluster, array_id)} == {"RUNNING"}, 20)
    assert {fake.record(job, n)["status"] for n, job in fake.jobs.items()} == {"STARTING"}
    (tmp_path / "gate-0").touch()  # elements 1 and 2 end; 3 runs on
    ended = [(1, "COMPLETED", 0), (2, "FAILED", 5)]
    drive(lambda: [r[:3] for r in _elements(cluster, array_id)][:2] == ended, 20)
    assert all(fake._lagging(job) for job in fake.jobs.values())  # SkyPilot still lagged
    nodes = _sacct(cluster, array_id, "JobID,NodeList")
    assert nodes == [f"{array_id}_{i}|None assigned" for i in (1, 2, 3)]
    fake.controller_lag = 0  # SkyPilot says RUNNING, and names the lanes' nodes
    lanes = _lane_of(cluster, array_id)
    named = [f"{array_id}_{i}|fake-node-{lanes[i]}" for i in (1, 2, 3)]
    drive(lambda: _sacct(cluster, array_id, "JobID,NodeList") == named, 20)
    (tmp_path / "gate-1").touch()
    drive(lambda: _done(cluster, array_id, 3), 20)
    assert _sacct(cluster, array_id, "JobID,NodeList") == named
    ids = ids_of(cluster, array_id)
    for index in (1, 2, 3):
        out = (cluster.cwd / f"{array_id}_{index}.out").read_text()
        assert out == f"task {index} job {ids[index]} of {array_id}\n"


def test_lanes_that_ran_their_elements_are_not_cancelled_while_skypilot_says_they_start(
    claims_world, tmp_path
):
    """Every element ended (the lanes' logs read from their clusters) while SkyPilot still
    says the lanes start: they ran and end by themselves, so none is cancelled (one still
    starting would be: nothing is left for it); once SkyPilot names their nodes (the array
    ended long before), the elements have them as their NodeList."""
    cluster, fake, drive = claims_world
    fake.controller_lag = 30
    gate = tmp_path / "gate"  # each element holds its lane until all three run: one a lane
    cluster.script(
        "job.sh", SCRIPT.replace("\n", f"\nwhile [ ! -e {gate} ]; do sleep 0.1; done\n", 1)
    )
    array_id = cluster.sbatch("--array=1-3", "-o", "%A_%a.out", "job.sh")
    drive(lambda: {r[1] for r in _elements(cluster, array_id)} == {"RUNNING"}, 20)
    gate.touch()
    drive(lambda: _done(cluster, array_id, 3), 20)
    states = [("COMPLETED", 0), ("FAILED", 5), ("COMPLETED", 0)]
    assert [r[1:3] for r in _elements(cluster, array_id)] == states
    until = time.monotonic() + 4  # passes while SkyPilot says STARTING, squeue read (the
    # agent asks SkyPilot's queue while its answers are read)
    drive(lambda: cluster.run("squeue").returncode == 0 and time.monotonic() > until)
    assert {fake.record(job, n)["status"] for n, job in fake.jobs.items()} == {"STARTING"}
    assert not any(job["cancelled"] for job in fake.jobs.values())
    fake.controller_lag = 0  # SkyPilot says they ran, and names their nodes
    lanes = _lane_of(cluster, array_id)
    named = [f"{array_id}_{i}|fake-node-{lanes[i]}" for i in (1, 2, 3)]
    drive(lambda: _sacct(cluster, array_id, "JobID,NodeList") == named, 20)
    assert {fake.record(job, n)["status"] for n, job in fake.jobs.items()} == {"SUCCEEDED"}


def test_where_the_server_cannot_read_a_lanes_cluster_skypilots_stream_is_read(claims_world):
    """A jobs controller of its own (the lanes' clusters are not the server's): the lanes'
    logs are read through SkyPilot's stream once it says RUNNING, every element with its own
    state; once a lane ran, the next array's lanes do not ask for their clusters."""
    cluster, fake, drive = claims_world
    fake.controller_lag, fake.direct = 2, False
    cluster.script("job.sh", SCRIPT)
    first = cluster.sbatch("--array=1-3", "-o", "%A_%a.out", "job.sh")
    drive(lambda: _done(cluster, first, 3))
    states = [("COMPLETED", 0), ("FAILED", 5), ("COMPLETED", 0)]
    assert [r[1:3] for r in _elements(cluster, first)] == states
    asked = sum(call[0] == "tail_run" for call in fake.calls)
    assert asked > 0
    second = cluster.sbatch("--array=1-3", "-o", "%A_%a.out", "job.sh")
    drive(lambda: _done(cluster, second, 3))
    assert [r[1:3] for r in _elements(cluster, second)] == states
    assert sum(call[0] == "tail_run" for call in fake.calls) == asked


def test_claimed_elements_whose_start_and_end_come_at_once_name_their_lanes_node(claims_world):
    """The lanes' logs read only once they ended (SkyPilot's first bursts): each element
    goes from PENDING to its end in one read, and still names the lane that ran it (sacct's
    NodeList, its ref) and its own state."""
    cluster, fake, drive = claims_world
    fake.burst = True
    cluster.script("job.sh", SCRIPT)
    array_id = cluster.sbatch("--array=1-4", "-o", "%A_%a.out", "job.sh")
    drive(lambda: _done(cluster, array_id, 4))
    lanes = _lane_of(cluster, array_id)
    assert set(lanes.values()) <= {1, 2, 3}
    ended = {1: "COMPLETED", 2: "FAILED", 3: "COMPLETED", 4: "COMPLETED"}
    assert _sacct(cluster, array_id, "JobID,State,NodeList") == [
        f"{array_id}_{i}|{state}|fake-node-{lanes[i]}" for i, state in ended.items()
    ]


def test_scancel_of_an_element_no_lane_started_runs_it_nowhere(claims_world, tmp_path):
    """--array=1-4%2 on the 3-lane partition: 2 lanes (the throttle). Element 3 is cancelled
    while 1 and 2 run: the lane that claims it next (the node cannot know) is cut as it
    starts it, before the element does anything; the other lane runs 4. No element runs
    twice, and at most two run at once."""
    cluster, fake, drive = claims_world
    gate = tmp_path / "gate"
    cluster.script(
        "job.sh",
        "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\n"
        f"echo $SKYPILOT_MANAGED_JOB_ID >> {tmp_path}/ran-$SLURM_ARRAY_TASK_ID\n"
        f"case $SLURM_ARRAY_TASK_ID in 1|2) while [ ! -e {gate} ]; do sleep 0.1; done;;\n"
        f"  3) sleep 5; touch {tmp_path}/ended-3;; esac\n",
    )
    array_id = cluster.sbatch("--array=1-4%2", "-o", "%A_%a.out", "job.sh")

    def running():
        rows = {r[0]: r[1] for r in _elements(cluster, array_id)}
        return rows.get(1) == "RUNNING" and rows.get(2) == "RUNNING"

    drive(running)
    assert cluster.run("scancel", f"{array_id}_3").returncode == 0
    drive(lambda: {r[0]: r[1] for r in _elements(cluster, array_id)}[3] == "CANCELLED")
    gate.touch()
    drive(lambda: _done(cluster, array_id, 4))
    states = {r[0]: r[1] for r in _elements(cluster, array_id)}
    assert states == {1: "COMPLETED", 2: "COMPLETED", 3: "CANCELLED", 4: "COMPLETED"}
    assert len(fake.jobs) == 2 and fake.most_at_once <= 2
    for index in (1, 2, 4):
        assert (cluster.cwd / f"{array_id}_{index}.out").read_text() == f"task {index}\n"
        assert len(_ran(tmp_path, index)) == 1
    assert not (cluster.cwd / f"{array_id}_3.out").exists()
    drive(lambda: _final(fake))
    for lane in _ran(tmp_path, 3):  # started by a lane (at most one), it was cut for it
        assert _ran(tmp_path, 3) == [lane]
        assert fake.record(fake.jobs[int(lane)], int(lane))["status"] == "CANCELLED"
    time.sleep(5.5)  # what element 3 would have taken to leave its mark
    assert not (tmp_path / "ended-3").exists()


def test_a_lane_preempted_mid_element_runs_only_that_element_again(claims_world, tmp_path):
    """The lane running element 1 is preempted: element 1 is REQUEUED (its run kept,
    NODE_FAIL) while the other lane runs 2, 3 and 4; once SkyPilot recovers the lane, it runs
    element 1 again (its claim, under the BASE the Slurm clusters share, outlived the
    cluster's home), as restart 1, and no other element twice."""
    cluster, fake, drive = claims_world
    gate = tmp_path / "gate"
    cluster.script(
        "job.sh",
        "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID restarts ${SLURM_RESTART_COUNT:-unset}\n"
        f"echo $SKYPILOT_MANAGED_JOB_ID >> {tmp_path}/ran-$SLURM_ARRAY_TASK_ID\n"
        f'[ "$SLURM_ARRAY_TASK_ID" != 1 ] || while [ ! -e {gate} ]; do sleep 0.1; done\n',
    )
    array_id = cluster.sbatch("--array=1-4%2", "-o", "%A_%a.out", "job.sh")
    drive(lambda: _done_but(cluster, array_id, 1) and (cluster.cwd / f"{array_id}_1.out").exists())
    (lane,) = {_lane_of(cluster, array_id)[1]}
    first = _elements(cluster, array_id)[0][3]
    fake.preempt(lane)
    drive(lambda: _elements(cluster, array_id)[0][1] == "REQUEUED")
    squeue = cluster.run("squeue", "-h", "-j", f"{array_id}_1", "-o", "%t")
    assert squeue.stdout == "RQ\n"
    gate.touch()
    fake.recover(lane, shared=True)
    drive(lambda: _done(cluster, array_id, 4))
    states = {r[0]: (r[1], r[2]) for r in _elements(cluster, array_id)}
    assert states == {i: ("COMPLETED", 0) for i in (1, 2, 3, 4)}
    assert _ran(tmp_path, 1) == [str(lane), str(lane)]
    assert [len(_ran(tmp_path, i)) for i in (2, 3, 4)] == [1, 1, 1]
    assert (cluster.cwd / f"{array_id}_1.out").read_text() == "task 1 restarts 1\n"
    assert _elements(cluster, array_id)[0][3] > first  # StartTime: the rerun's
    fields = ["-n", "-P", "-X", "-j", f"{array_id}_1", "-o", "State"]
    assert cluster.run("sacct", *fields).stdout == "COMPLETED\n"
    assert cluster.run("sacct", "-D", *fields).stdout == "NODE_FAIL\nCOMPLETED\n"
    show = cluster.run("scontrol", "show", "job", f"{array_id}_1").stdout.split()
    assert "Restarts=1" in show
    assert len(fake.jobs) == 2


def test_scontrol_requeue_of_a_claimed_element_runs_it_again(claims_world, tmp_path):
    """scontrol requeue of element 1 while it runs: the lane that runs it is cut at once,
    the element pends again (Restarts 1, its run kept REQUEUED) and runs again in a release
    of its own; the other elements run once, in the other lane."""
    cluster, fake, drive = claims_world
    gate = tmp_path / "gate"
    cluster.script(
        "job.sh",
        "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID restarts ${SLURM_RESTART_COUNT:-unset}\n"
        f"echo $SKYPILOT_MANAGED_JOB_ID >> {tmp_path}/ran-$SLURM_ARRAY_TASK_ID\n"
        f'[ "$SLURM_ARRAY_TASK_ID" != 1 ] || while [ ! -e {gate} ]; do sleep 0.1; done\n',
    )
    array_id = cluster.sbatch("--array=1-3%2", "-o", "%A_%a.out", "job.sh")
    out = cluster.cwd / f"{array_id}_1.out"
    drive(lambda: _elements(cluster, array_id)[0][1] == "RUNNING" and out.exists())
    (lane,) = {_lane_of(cluster, array_id)[1]}
    requeue = cluster.run("scontrol", "requeue", f"{array_id}_1")
    assert (requeue.returncode, requeue.stderr) == (0, "")
    drive(lambda: fake.record(fake.jobs[lane], lane)["status"] == "CANCELLED")
    gate.touch()
    drive(lambda: _done(cluster, array_id, 3))
    states = {r[0]: (r[1], r[2]) for r in _elements(cluster, array_id)}
    assert states == {i: ("COMPLETED", 0) for i in (1, 2, 3)}
    assert len(fake.jobs) == 3  # the release's two lanes, then element 1's own
    assert _ran(tmp_path, 1) == [str(lane), "3"]
    assert [len(_ran(tmp_path, i)) for i in (2, 3)] == [1, 1]
    assert out.read_text() == "task 1 restarts 1\n"
    fields = ["-n", "-P", "-X", "-D", "-j", f"{array_id}_1", "-o", "State"]
    assert cluster.run("sacct", *fields).stdout == "REQUEUED\nCOMPLETED\n"


def _done_but(cluster, array_id, running: int) -> bool:
    """Every element ended but `running`, which runs."""
    rows = {r[0]: r[1] for r in _elements(cluster, array_id)}
    return rows.get(running) == "RUNNING" and all(
        s in ("COMPLETED", "FAILED") for i, s in rows.items() if i != running
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_scancel_of_the_array_at_any_moment_leaves_no_managed_job(claims_world, seed):
    """scancel ARRAY at a random moment (before the launch, while lanes start or run
    elements, one lane still starting): every element ends, and so does every managed job
    SkyPilot has of the array."""
    cluster, fake, drive = claims_world
    fake.delays[3] = 600
    cluster.script("job.sh", "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\nsleep 0.5\n")
    array_id = cluster.sbatch("--array=1-9", "-o", "%A_%a.out", "job.sh")
    moment = time.monotonic() + random.Random(seed).uniform(0, 4)
    drive(lambda: time.monotonic() > moment)
    assert cluster.run("scancel", str(array_id)).returncode == 0
    drive(lambda: _done(cluster, array_id, 9) or _elements(cluster, array_id) == [])
    drive(lambda: _final(fake), timeout=60)
    states = {r[1] for r in _elements(cluster, array_id)}
    assert states <= {"COMPLETED", "CANCELLED"}, (seed, states)
