"""A sky partition's size (backends/sky/room.py): the SkyPilot nodes its jobs hold at once.

The executor tests drive the real scheduler and SkyExecutor here against the fake SkyPilot
(fake_sky.py, which records the most nodes its jobs held at once), with the real commands
as subprocesses (fake_sky.sky_world).
"""

from __future__ import annotations

import time

import pytest
from fake_sky import sky_world
from test_sky_lanes import SCRIPT, _done, _elements, _ids

from slurmsky.backends.sky import executor, launcher, room
from slurmsky.core.state import JobRecord


def _job(num_nodes: int = 1, ref: dict | None = None) -> JobRecord:
    job = JobRecord.__new__(JobRecord)
    job.__dict__.update(num_nodes=num_nodes, executor_ref=ref)
    return job


def test_the_size_is_the_partitions_else_its_pools_workers_else_eight():
    assert room.size_of({"size": 3, "pool": {"workers": 5}}) == 3
    assert room.size_of({"pool": {"workers": 5}}) == 5
    assert room.size_of({"pool": {}}) == 1
    assert room.size_of({}) == room.DEFAULT_SIZE == 8


def test_a_job_holds_its_nodes_and_a_lane_one_whatever_its_elements():
    jobs = [
        _job(3, {"token": "a"}),
        _job(1, {"token": "l", "lane": 0}),
        _job(1, {"token": "l", "lane": 1}),
        _job(1, {"token": "m", "lane": 0}),
        _job(2, None),  # not handed to SkyPilot: holds nothing
    ]
    assert room.held(jobs) == 5
    assert room.held([]) == 0


def test_lanes_go_out_within_the_free_nodes_the_cap_and_the_elements():
    assert room.lanes_now(free=3, cap=8, out=0, waiting=20) == 3
    assert room.lanes_now(free=8, cap=4, out=1, waiting=20) == 3
    assert room.lanes_now(free=8, cap=8, out=0, waiting=2) == 2
    assert room.lanes_now(free=0, cap=8, out=0, waiting=2) == 0
    assert room.lanes_now(free=-1, cap=8, out=0, waiting=2) == 0
    assert room.in_lanes(False, free=4, waiting=5)
    assert not room.in_lanes(False, free=5, waiting=5)
    assert room.in_lanes(True, free=8, waiting=2)


def _squeue(cluster, *args: str) -> str:
    out = cluster.run("squeue", "-h", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _gated(cluster, tmp_path) -> str:
    """A script that runs until the gate file exists; the gate's path."""
    gate = tmp_path / "gate"
    cluster.script(
        "gated.sh", f"#!/bin/bash\nwhile [ ! -e {gate} ]; do sleep 0.1; done\necho done\n"
    )
    return str(gate)


def _states(cluster, *ids: int) -> list[tuple]:
    with cluster.db() as conn:
        rows = conn.execute(
            f"SELECT job_id, state, nodelist FROM jobs WHERE job_id IN ({','.join('?' * len(ids))}) "
            "ORDER BY job_id",
            ids,
        )
        return [tuple(r) for r in rows]


def test_an_array_with_more_elements_than_free_nodes_runs_in_lanes_by_default(
    cluster, tmp_path, monkeypatch
):
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        cluster.script("job.sh", SCRIPT + "sleep 0.3\n")
        array_id = cluster.sbatch("--array=1-5", "-o", "%A_%a.out", "job.sh")
        drive(lambda: _done(cluster, array_id, 5))
        rows = _elements(cluster, array_id)
        assert [(r[0], r[1], r[2]) for r in rows] == [
            (1, "COMPLETED", 0),
            (2, "FAILED", 5),
            (3, "COMPLETED", 0),
            (4, "COMPLETED", 0),
            (5, "COMPLETED", 0),
        ]
        assert len(fake.jobs) == 2  # two lanes: the size
        assert fake.most_nodes_at_once == 2
        ids = dict(zip([r[0] for r in rows], _ids(cluster, array_id), strict=True))
        lanes = [fake.jobs[i]["task"]["_metadata"]["slurmsky"]["lane"] for i in (1, 2)]
        assert lanes == [[ids[1], ids[3], ids[5]], [ids[2], ids[4]]]
        for index, job_id in ids.items():
            out = (cluster.cwd / f"{array_id}_{index}.out").read_text()
            assert out == f"task {index} job {job_id} of {array_id}\n"


def test_lanes_false_runs_one_managed_job_per_element_within_the_size(
    cluster, tmp_path, monkeypatch
):
    partition = "  sky:\n    size: 2\n    lanes: false\n"
    with sky_world(cluster, tmp_path, monkeypatch, partition) as world:
        cluster, fake, drive = world
        gate = _gated(cluster, tmp_path)
        array_id = cluster.sbatch("--array=1-4", "-o", "%A_%a.out", "gated.sh")

        def two_run():
            running = [r for r in _elements(cluster, array_id) if r[1] == "RUNNING"]
            return len(running) == 2 and all(r[3] for r in running)

        drive(two_run)
        assert _squeue(cluster, "-t", "PD", "-o", "%i %t %r") == (
            f"{array_id}_[3-4] PD Resources\n"
        )
        listed = _squeue(cluster, "-o", "%i %t").splitlines()
        assert listed[0] == f"{array_id}_[3-4] PD"
        # the running ones latest start first (squeue's default sort): 1 and 2 may have
        # started in different seconds
        assert sorted(listed[1:]) == [f"{array_id}_1 R", f"{array_id}_2 R"]
        sinfo = cluster.run("sinfo", "-h", "-o", "%P %F %t")
        assert sinfo.stdout == "sky* 2/0/0/2 alloc\n"
        open(gate, "w").close()
        drive(lambda: _done(cluster, array_id, 4))
        assert [r[1] for r in _elements(cluster, array_id)] == ["COMPLETED"] * 4
        assert len(fake.jobs) == 4  # one managed job per element
        assert fake.most_nodes_at_once == 2


def test_jobs_beyond_the_size_pend_with_resources_and_start_as_room_frees(
    cluster, tmp_path, monkeypatch
):
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        gate = _gated(cluster, tmp_path)
        ids = [cluster.sbatch("-o", f"{k}.out", "gated.sh") for k in range(3)]
        drive(lambda: [s[1] for s in _states(cluster, *ids)] == ["RUNNING", "RUNNING", "PENDING"])
        drive(lambda: all(s[2] for s in _states(cluster, *ids[:2])))
        assert _squeue(cluster, "-j", str(ids[2]), "-o", "%i %t %r") == f"{ids[2]} PD Resources\n"
        assert len(fake.jobs) == 2
        sinfo = cluster.run("sinfo", "-h", "-o", "%P %F %D %t %N")
        assert sinfo.stdout == "sky* 2/0/0/2 2 alloc fake-node-[1-2]\n"
        open(gate, "w").close()
        drive(lambda: [s[1] for s in _states(cluster, *ids)] == ["COMPLETED"] * 3)
        assert len(fake.jobs) == 3
        assert fake.most_nodes_at_once == 2
        assert (cluster.cwd / "2.out").read_text() == "done\n"


def test_a_launch_stuck_on_its_way_is_abandoned_and_its_job_goes_out_again(
    cluster, tmp_path, monkeypatch
):
    """A launch the server does not have REACH s after it began is abandoned: its job pends
    SkyPilotLaunching (never Resources: the partition has room) and goes out again on fresh
    threads (four stuck launches held every slot); the stuck launches, once they return, are
    orphans SkyPilot is told to cancel, and the job runs once."""
    monkeypatch.setattr(launcher, "REACH", 1.0)
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        fake.stuck = launcher.THREADS
        gate = _gated(cluster, tmp_path)
        job = cluster.sbatch("-o", "job.out", "gated.sh")
        seen = set()

        def running() -> bool:
            if not fake.worlds:  # no launch has reached the server (the state moves in drive)
                seen.add(_squeue(cluster, "-j", str(job), "-o", "%t %r"))
            return _states(cluster, job)[0][1] == "RUNNING"

        drive(running, 90)
        assert seen == {"PD SkyPilotLaunching\n"}, seen
        assert fake.stuck == 0 and list(fake.jobs) == [1]  # the fifth launch got there
        fake.unstuck.set()  # the abandoned four reach the server now
        drive(lambda: len(fake.jobs) == 5 and all(fake.jobs[i]["cancelled"] for i in range(2, 6)))
        open(gate, "w").close()
        drive(lambda: _states(cluster, job)[0][1] == "COMPLETED")
        assert not fake.jobs[1]["cancelled"]
        assert (cluster.cwd / "job.out").read_text() == "done\n"


def test_a_stuck_cancel_is_given_up_and_sent_again(cluster, tmp_path, monkeypatch):
    """scancel's cancel that SkyPilot never answers is given up after executor.BOUND s (its
    thread's slot renewed: the other calls go on) and sent again after KILL_AGAIN s; the
    job then ends CANCELLED."""
    monkeypatch.setattr(executor, "BOUND", 1.0)
    monkeypatch.setattr(executor, "KILL_AGAIN", 2.0)
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        _gated(cluster, tmp_path)
        job = cluster.sbatch("-o", "job.out", "gated.sh")
        drive(lambda: _states(cluster, job)[0][1] == "RUNNING")
        fake.stuck_cancels = 2
        assert cluster.run("scancel", str(job)).returncode == 0
        started = time.monotonic()
        drive(lambda: _states(cluster, job)[0][1] == "CANCELLED", 60)
        assert time.monotonic() - started >= 4.0  # two cancels never came back; the third did
        assert fake.stuck_cancels == 0
        assert fake.jobs[1]["cancelled"]
        fake.unstuck.set()


def test_an_array_takes_the_room_left_and_new_lanes_start_as_it_frees(
    cluster, tmp_path, monkeypatch
):
    """A job holds one of two nodes: the array goes out as one lane (its share, elements 1
    and 3), its other elements wait (Resources) and go out as room frees; never more than
    two nodes at once."""
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        gate = _gated(cluster, tmp_path)
        holder = cluster.sbatch("-o", "holder.out", "gated.sh")
        drive(lambda: _states(cluster, holder)[0][1] == "RUNNING")
        cluster.script("job.sh", SCRIPT)
        array_id = cluster.sbatch("--array=1-4", "-o", "%A_%a.out", "job.sh")
        drive(lambda: _done(cluster, array_id, 4))
        ids = _ids(cluster, array_id)
        assert fake.jobs[2]["task"]["_metadata"]["slurmsky"]["lane"] == [ids[0], ids[2]]
        assert _squeue(cluster, "-o", "%i %t") == f"{holder} R\n"
        rows = _elements(cluster, array_id)
        assert [(r[0], r[1], r[2]) for r in rows] == [
            (1, "COMPLETED", 0),
            (2, "FAILED", 5),
            (3, "COMPLETED", 0),
            (4, "COMPLETED", 0),
        ]
        assert fake.most_nodes_at_once == 2
        open(gate, "w").close()
        drive(lambda: _states(cluster, holder)[0][1] == "COMPLETED")


def test_a_job_asking_more_nodes_than_the_size_is_refused(cluster):
    (cluster.home / "slurmsky.yaml").write_text("backend: sky\npartitions:\n  sky:\n    size: 2\n")
    cluster.script("job.sh", "#!/bin/bash\necho hi\n")
    out = cluster.run("sbatch", "-N", "3", "job.sh")
    assert (out.returncode, out.stdout, out.stderr) == (
        1,
        "",
        "sbatch: error: Batch job submission failed: Node count specification invalid\n",
    )


def test_sinfo_and_scontrol_show_the_size_as_powered_down_nodes(cluster):
    (cluster.home / "slurmsky.yaml").write_text(
        "backend: sky\npartitions:\n  sky:\n    size: 3\n    cpus: '4+'\n    memory: '16+'\n"
        "  big: {}\n"
    )
    out = cluster.run("sinfo")
    assert out.stdout == (
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "sky*         up   infinite      3  idle~ sky-[1-3]\n"
        "big          up   infinite      8  idle~ big-[1-8]\n"
    ), out.stderr
    out = cluster.run("sinfo", "-s")
    assert out.stdout == (
        "PARTITION AVAIL  TIMELIMIT   NODES(A/I/O/T) NODELIST\n"
        "sky*         up   infinite          0/3/0/3 sky-[1-3]\n"
        "big          up   infinite          0/8/0/8 big-[1-8]\n"
    ), out.stderr
    out = cluster.run("scontrol", "show", "partition", "sky")
    assert out.stdout == (
        "PartitionName=sky\n"
        "   AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL\n"
        "   AllocNodes=ALL Default=YES QoS=N/A\n"
        "   DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO\n"
        "   MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED\n"
        "   Nodes=sky-[1-3]\n"
        "   PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO\n"
        "   OverTimeLimit=NONE PreemptMode=OFF\n"
        "   State=UP TotalCPUs=12 TotalNodes=3 SelectTypeParameters=NONE\n"
        "   JobDefaults=(null)\n"
        "   DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED\n"
        "   TRES=cpu=12,mem=49152M,node=3,billing=12\n"
        "\n"
    ), out.stdout


@pytest.mark.parametrize(
    "value,shown",
    [("0", "0"), ("-2", "-2"), ("two", "'two'"), ("true", "True"), ("1.5", "1.5")],
)
def test_a_size_not_a_positive_int_names_the_file_and_the_key(cluster, value, shown):
    path = cluster.home / "slurmsky.yaml"
    path.write_text(f"backend: sky\npartitions:\n  sky:\n    size: {value}\n")
    out = cluster.run("sinfo")
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"sinfo: error: {path}: 'partitions.sky.size' must be a positive int "
    )
    assert out.stderr.endswith(f", got {shown}\n"), out.stderr


def test_test_only_says_an_array_may_run_in_lanes_unless_lanes_is_false(cluster):
    (cluster.home / "slurmsky.yaml").write_text(
        "backend: sky\npartitions:\n  sky:\n    default: true\n  each:\n    lanes: false\n"
    )
    cluster.script("job.sh", "#!/bin/bash\necho hi\n")
    said = (
        "# array: slurmsky runs it as up to 5 lanes (partitions.sky.size) when it has more "
        "elements than free nodes: managed jobs that each run their share of elements one "
        "after another\n"
    )
    out = cluster.run("sbatch", "--test-only", "--array=1-20%5", "job.sh")
    assert out.returncode == 0 and said in out.stderr, out.stderr
    out = cluster.run("sbatch", "--test-only", "-p", "each", "--array=1-20", "job.sh")
    assert out.returncode == 0 and "# array: slurmsky runs it" not in out.stderr, out.stderr


def test_elements_in_default_lanes_keep_scancel_and_dependencies(cluster, tmp_path, monkeypatch):
    """Lanes [1,3] and [2,4] by default (size 2): element 3, waiting behind 1, is cancelled
    (CANCELLED, never run; its lane cut once 1 ends); the others complete with their files,
    and afterany on the array starts once every element has ended."""
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        gate = tmp_path / "gate"
        cluster.script(
            "job.sh",
            "#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\n"
            f"[ $SLURM_ARRAY_TASK_ID != 1 ] || while [ ! -e {gate} ]; do sleep 0.1; done\n",
        )
        array_id = cluster.sbatch("--array=1-4", "-o", "%A_%a.out", "job.sh")
        after = cluster.sbatch(
            "-d", f"afterany:{array_id}", "-o", "after.out", "--wrap", "echo after"
        )
        drive(lambda: {r[0]: r[1] for r in _elements(cluster, array_id)}.get(1) == "RUNNING")
        assert cluster.run("scancel", f"{array_id}_3").returncode == 0
        assert _squeue(cluster, "-j", str(after), "-o", "%i %t %r") == f"{after} PD Dependency\n"
        gate.touch()
        drive(lambda: _states(cluster, after)[0][1] == "COMPLETED")
        states = {r[0]: r[1] for r in _elements(cluster, array_id)}
        assert states == {1: "COMPLETED", 2: "COMPLETED", 3: "CANCELLED", 4: "COMPLETED"}
        for index in (1, 2, 4):
            assert (cluster.cwd / f"{array_id}_{index}.out").read_text() == f"task {index}\n"
        assert not (cluster.cwd / f"{array_id}_3.out").exists()
        assert (cluster.cwd / "after.out").read_text() == "after\n"
        assert fake.most_nodes_at_once <= 2
