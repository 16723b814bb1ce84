"""Partitions backed by SkyPilot pools, without a server: what a pool job's task holds, the
node runtime it carries (unpacked and run for real, as a worker would), what is refused at
submission, and the pool task SkyPilot's own schema accepts. On a real pool: test_sky_e2e."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_formats import T0, world  # noqa: F401 (fixture)

from slurmsky.backends.sky import pools
from slurmsky.backends.sky.pools import pool_task

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """backend: sky
partitions:
  warm:
    default: true
    infra: slurm/peer/debug
    cpus: '1'
    pool:
      workers: 2
      setup: echo ready
  fresh:
    infra: slurm/peer/debug
"""
SCRIPT = """#!/bin/bash
#SBATCH -J poolhello -o out-%j.txt
echo "job=$SLURM_JOB_ID task=${SLURM_ARRAY_TASK_ID:-none} nodes=$SLURM_JOB_NUM_NODES"
"""


def _tool(tmp_path, *args, env=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / args[0]), *args[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(
            {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")},
            SLURMSKY_CONFIG=str(tmp_path / "config.yaml"),
            SLURMSKY_HOME=str(tmp_path / "state"),
            **(env or {}),
        ),
    )


def _translate(tmp_path, *argv):
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "job.sh").write_text(SCRIPT)
    return _tool(tmp_path, "slurmsky", "translate", "--format", "json", "job.sh", *argv)


def test_a_pool_job_uploads_nothing_and_says_where_it_runs(tmp_path):
    out = _translate(tmp_path)
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout)
    assert "workdir" not in task and "file_mounts" not in task and "setup" not in task
    assert task["_metadata"]["slurmsky"]["pool"] == "slurmsky-warm"
    assert task["run"].startswith('if [ ! -e "$HOME/.slurmsky/runtime"/.version-')
    assert out.stderr.splitlines() == [
        f"workdir {tmp_path}: not uploaded to pool slurmsky-warm's workers; the job starts in "
        "SkyPilot's run directory on its worker",
        "files home: none with `sky jobs launch` of this task (the files the job writes stay "
        f"on its nodes); with sbatch they come back to {tmp_path}",
        "price: none per job: it runs on pool slurmsky-warm's workers, which cost as the pool",
        "slurmsky translate: runs on a pool: sky jobs launch --pool slurmsky-warm THIS_FILE",
    ]
    fresh = json.loads(_translate(tmp_path, "-p", "fresh").stdout)
    assert fresh["workdir"] == str(tmp_path) and "pool" not in fresh["_metadata"]["slurmsky"]


def test_the_run_unpacks_the_runtime_once_and_runs_the_job(tmp_path):
    """The pool job's `run`, in bash on a 'worker' whose home has no runtime: it unpacks this
    checkout's runtime (byte for byte), runs the job, and a second run unpacks nothing."""
    task = json.loads(_translate(tmp_path).stdout)
    worker = tmp_path / "worker"
    (worker / "run").mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(worker)}

    script = tmp_path / "run.sh"  # SkyPilot runs `run` from a script (one over ~120 KB: uploaded)
    script.write_text(task["run"])

    def run():
        return subprocess.run(
            ["bash", str(script)],
            cwd=worker / "run",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run()
    assert first.returncode == 0, first.stderr
    shipped = worker / ".slurmsky" / "runtime" / "slurmsky"
    for name in ("__init__.py", "runtime/spec.py", "runtime/batch.py"):
        assert (shipped / name).read_bytes() == (ROOT / "slurmsky" / name).read_bytes()
    (marker,) = (worker / ".slurmsky" / "runtime").glob(".version-*")
    # SkyPilot's id stands in where a translated task has no Slurm id; none here: 0
    assert (worker / "run" / "out-0.txt").read_text() == "job=0 task=none nodes=1\n"
    before = shipped.stat().st_mtime_ns, marker.stat().st_mtime_ns
    assert run().returncode == 0
    assert (shipped.stat().st_mtime_ns, marker.stat().st_mtime_ns) == before


def test_multi_node_jobs_are_refused_at_submission(cluster):
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(CONFIG)
    out = cluster.run("sbatch", "-N", "2", cluster.script("job.sh", SCRIPT))
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (
        "sbatch: error: Batch job submission failed: Requested node configuration is not "
        "available (partition warm runs on SkyPilot pool workers of one node each; -N 2 needs "
        "a partition without a pool)\n"
    )
    assert cluster.jobs("1 = 1") == []


def test_module_setup_is_said_to_be_left_out(tmp_path):
    (tmp_path / "config.yaml").write_text(
        CONFIG + "modules:\n  tool:\n    setup: pip install tool\n"
    )
    (tmp_path / "job.sh").write_text("#!/bin/bash\nmodule load tool\ntool\n")
    out = _tool(tmp_path, "slurmsky", "translate", "--format", "json", "job.sh")
    assert out.returncode == 0 and "setup" not in json.loads(out.stdout)
    assert out.stderr.splitlines()[0] == (
        "sbatch: warning: partition warm runs on pool slurmsky-warm, whose jobs run no setup: "
        "`module load` setup goes in partitions.warm.pool.setup"
    )


def test_pool_task_passes_skypilots_validation(tmp_path):
    part = {"infra": "k8s", "cpus": "2+", "accelerators": ["A100"], "pool": {"workers": 3}}
    task = pool_task("gpu", part)
    assert task == {
        "name": "slurmsky-gpu",
        "pool": {"workers": 3},
        "resources": {"infra": "k8s", "cpus": "2+", "accelerators": "A100"},
    }
    check = "import json, sys, sky\nt = sky.Task.from_yaml_config(json.load(sys.stdin))\nprint(t.name)\n"
    res = subprocess.run(
        [sys.executable, "-c", check],
        input=json.dumps(task),
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, HOME=str(tmp_path), SKYPILOT_DISABLE_USAGE_COLLECTION="1"),
    )
    assert res.stdout == "slurmsky-gpu\n", res.stderr[-2000:]


def test_pool_commands_need_a_pool(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG)
    for args, err in (
        (("up", "fresh"), "partition fresh has no pool (set partitions.fresh.pool in"),
        (("status", "nosuch"), "invalid partition specified: nosuch"),
    ):
        out = _tool(tmp_path, "slurmsky", "pool", *args)
        assert (out.returncode, out.stdout) == (1, ""), out.stderr
        assert out.stderr.startswith("slurmsky pool: error: " + err), out.stderr


def test_pool_commands_say_when_the_api_server_is_unreachable(tmp_path):
    """As sbatch and srun say it (once seen on a busy e2e stack: `unexpected RuntimeError:
    No SkyPilot API server endpoint is configured, ...`), before any SkyPilot call."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        where = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for verb in ("up", "down", "status"):
        out = _tool(
            tmp_path, "slurmsky", "pool", verb, "warm", env={"SKYPILOT_API_SERVER_ENDPOINT": where}
        )
        assert (out.returncode, out.stdout) == (1, ""), out.stderr
        assert out.stderr == (
            f"slurmsky pool: error: SkyPilot API server {where} is unreachable: start one with "
            "`slurmsky sky-server start` (or set SKYPILOT_API_SERVER_ENDPOINT to yours); "
            "`slurmsky doctor` checks the setup\n"
        )


def test_jobs_after_jobs_on_one_worker_send_back_only_their_own_output(tmp_path):
    """A pool worker runs job after job with the same SKYPILOT_TASK_ID: each job's emitter
    reads its own run directory, never the spec and output of the job before it."""
    from test_sky_units import _job, _request, run_on_node

    from slurmsky.backends.sky.output import NODE_OUT, LogReader, sky_run
    from slurmsky.backends.sky.task import translate
    from slurmsky.config import Config

    for sky_id, word in ((101, "first"), (102, "second")):
        req = _request(tmp_path, f"#!/bin/bash\necho {word}\n", "-o", f"{word}.txt")
        node = dict(translate(req, Config(path="x"), job_id=sky_id).spec, output=NODE_OUT)
        run = run_on_node(
            tmp_path,
            sky_run(node, workdir=None),
            SKYPILOT_TASK_ID="sky-pool-worker-1",
            SKYPILOT_MANAGED_JOB_ID=str(sky_id),
        )
        assert run.returncode == 0, run.stderr
        reader = LogReader(_job(tmp_path, f"got-{word}.txt"), append=False)
        reader.write(run.stdout)
        assert (tmp_path / f"got-{word}.txt").read_text() == f"{word}\n"
        assert reader.result["state"] == "COMPLETED"


# --- sinfo and scontrol show node: the pool's workers as the partition's nodes ----------------

POOL = "slurmsky-warm"


def _worker_info(replica_id, status, *, resources=None, used_by=(), launched_at=None):
    """One worker as SkyPilot's API server describes it (ReplicaInfo.to_info_dict, with the
    handle of its cluster once launched), with the status and `used_by` its pool view adds."""
    import sky
    from sky.backends import CloudVmRayResourceHandle
    from sky.serve.replica_managers import ReplicaInfo

    name = f"{POOL}-{replica_id}"  # serve_utils.generate_replica_cluster_name
    cluster = None
    if resources is not None:
        handle = CloudVmRayResourceHandle(
            cluster_name=name,
            cluster_name_on_cloud=f"{name}-2ea4",
            cluster_yaml=None,
            launched_nodes=1,
            launched_resources=resources,
        )
        cluster = {"launched_at": launched_at, "handle": handle}
    info = ReplicaInfo(replica_id, name, "-", False, None, 1, None).to_info_dict(
        with_handle=True, with_url=False, cluster_record=cluster
    )
    info.update(status=sky.serve.ReplicaStatus[status], used_by=list(used_by))
    return info


def _pool_answer(workers):
    """`sky.get(sky.jobs.pool_status(...))` as the SDK returns it: the server's record
    through SkyPilot's own encoder, JSON and decoder."""
    from sky.serve import serve_state
    from sky.server.requests.serializers import decoders, encoders

    record = {"name": POOL, "status": serve_state.ServiceStatus.READY, "replica_info": workers}
    wire = json.loads(json.dumps(encoders.encode_jobs_pool_status([record])))
    return decoders.decode_jobs_pool_status(wire)


def test_every_worker_status_has_a_node_state():
    sky = pytest.importorskip("sky")
    statuses = {s.value for s in sky.serve.ReplicaStatus}
    down = statuses - set(pools.WORKER_STATES)
    assert set(pools.WORKER_STATES) <= statuses
    assert down == {
        "FAILED",
        "FAILED_INITIAL_DELAY",
        "FAILED_PROBING",
        "FAILED_PROVISION",
        "FAILED_CLEANUP",
        "PREEMPTED",
        "UNKNOWN",
    }
    inspect.signature(sky.jobs.pool_status).bind(["p"])


def test_a_workers_resources_are_skypilots_account_of_it(tmp_path, monkeypatch):
    """CPUs, memory and GPUs from the API server's resources_str_full (a Kubernetes worker
    with GPUs here), its cluster's name as the node's."""
    sky = pytest.importorskip("sky")
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    gpu = sky.Resources(cloud=sky.Kubernetes(), instance_type="8CPU--32GB--H100:2")
    answer = _pool_answer([_worker_info(3, "READY", resources=gpu, launched_at=1.0)])
    pools.record(answer, [POOL], 5.0)
    assert pools.recorded() == {
        POOL: {
            "status": "READY",
            "at": 5.0,
            "workers": [
                {
                    "id": 3,
                    "name": f"{POOL}-3",
                    "status": "READY",
                    "used_by": [],
                    "launched_at": 1.0,
                    "cpus": 8.0,
                    "mem_gb": 32.0,
                    "gpus": "H100:2",
                }
            ],
        }
    }
    (node,) = pools.worker_nodes(POOL, {}, [])
    assert (node.name, node.cpus, node.alloc_cpus, node.mem, node.gres, node.state) == (
        f"{POOL}-3",
        8,
        0,
        32768,
        "gpu:H100:2",
        None,  # idle, mix or alloc by the CPUs in use (none: idle)
    )
    pools.record([], [POOL], 7.0)  # the pool is gone: no record, no nodes of its own
    assert pools.recorded() == {} and pools.worker_nodes(POOL, {}, []) is None
    pools.record(answer, [POOL], 6.0)  # an answer to a query asked before: too old
    assert pools.recorded() == {}


def test_sinfo_and_scontrol_show_the_pools_workers(world, monkeypatch):
    """The agent's record of a pool's workers (in use by a slurmsky job, by a job slurmsky
    does not run, free, coming up, not responding, failed, going away) as sinfo and
    scontrol show them: Slurm's words for each state, SkyPilot's account of each worker's
    resources (the partition's for a worker not launched yet)."""
    sky = pytest.importorskip("sky")
    (world.home / "none.yaml").write_text(CONFIG)
    monkeypatch.setenv("SLURMSKY_HOME", str(world.state))
    up = T0 - 600  # when the READY workers' clusters were launched
    slurm = sky.Resources(cloud=sky.Slurm(), instance_type="4CPU--16GB")
    workers = [
        _worker_info(1, "READY", resources=slurm, used_by=[7], launched_at=up),
        _worker_info(2, "READY", resources=slurm, used_by=[9], launched_at=up),
        _worker_info(3, "READY", resources=slurm, launched_at=up),
        _worker_info(4, "PROVISIONING"),
        _worker_info(5, "NOT_READY", resources=slurm, used_by=[7], launched_at=up),
        _worker_info(6, "FAILED_PROVISION"),
        _worker_info(7, "SHUTTING_DOWN", resources=slurm, launched_at=up),
    ]
    pools.record(_pool_answer(workers), [POOL], T0)
    world.add(
        3, partition="warm", state="RUNNING", executor="sky", executor_ref={"sky_job_id": 7}
    )  # one of worker 1's four CPUs; SkyPilot job 9 is not slurmsky's (or not yet running)
    sinfo = world.run("sinfo")
    assert (sinfo.returncode, sinfo.stderr) == (0, "")
    assert sinfo.stdout == (
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "warm*        up   infinite      1    mix slurmsky-warm-1\n"
        "warm*        up   infinite      1  alloc slurmsky-warm-2\n"
        "warm*        up   infinite      1   idle slurmsky-warm-3\n"
        "warm*        up   infinite      1  idle# slurmsky-warm-4\n"
        "warm*        up   infinite      1   mix* slurmsky-warm-5\n"
        "warm*        up   infinite      1   down slurmsky-warm-6\n"
        "warm*        up   infinite      1  idle% slurmsky-warm-7\n"
        "fresh        up   infinite      8  idle~ fresh-[1-8]\n"
    )
    assert world.run("sinfo", "-s", "-p", "warm").stdout == (
        "PARTITION AVAIL  TIMELIMIT   NODES(A/I/O/T) NODELIST\n"
        "warm*        up   infinite          3/3/1/7 slurmsky-warm-[1-7]\n"
    )
    # node names as long as they are (Slurm's `%#N`), not cut at 10
    row = "slurmsky-warm-{}      1     warm* {:>11} {:<4} {:>8} {:>6}        0      1   (null) none{}\n"
    assert world.run("sinfo", "-N", "-l", "-p", "warm").stdout == (
        "Sun Nov 22 02:49:21 2026\n"
        "NODELIST         NODES PARTITION       STATE CPUS    S:C:T MEMORY TMP_DISK WEIGHT "
        "AVAIL_FE REASON              \n"
        + "".join(
            row.format(n, st, cpus, f"1:{cpus}:1", mem, " " * 16)
            for n, (st, cpus, mem) in enumerate(
                (
                    ("mixed", 4, 16384),
                    ("allocated", 4, 16384),
                    ("idle", 4, 16384),
                    ("idle#", 1, 0),
                    ("mixed*", 4, 16384),
                    ("down", 1, 0),
                    ("idle%", 4, 16384),
                ),
                start=1,
            )
        )
    )
    assert world.run("sinfo", "-N", "-p", "warm", "-o", "%N %t %c %m %G %C").stdout == (
        "NODELIST STATE CPUS MEMORY GRES CPUS(A/I/O/T)\n"
        "slurmsky-warm-1 mix 4 16384 (null) 1/3/0/4\n"
        "slurmsky-warm-2 alloc 4 16384 (null) 4/0/0/4\n"
        "slurmsky-warm-3 idle 4 16384 (null) 0/4/0/4\n"
        "slurmsky-warm-4 idle# 1 0 (null) 0/1/0/1\n"
        "slurmsky-warm-5 mix* 4 16384 (null) 1/3/0/4\n"
        "slurmsky-warm-6 down 1 0 (null) 0/0/1/1\n"
        "slurmsky-warm-7 idle% 4 16384 (null) 0/4/0/4\n"
    )
    node = world.run("scontrol", "show", "node", "slurmsky-warm-1")
    assert (node.returncode, node.stderr) == (0, "")
    assert node.stdout == (
        "NodeName=slurmsky-warm-1 CoresPerSocket=4 \n"
        "   CPUAlloc=1 CPUEfctv=4 CPUTot=4 CPULoad=N/A\n"
        "   AvailableFeatures=(null)\n"
        "   ActiveFeatures=(null)\n"
        "   Gres=(null)\n"
        "   NodeAddr=slurmsky-warm-1 NodeHostName=slurmsky-warm-1 Version=22.05.8\n"
        "   RealMemory=16384 AllocMem=0 FreeMem=N/A Sockets=1 Boards=1\n"
        "   State=MIXED ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A\n"
        "   Partitions=warm \n"
        "   BootTime=2026-11-22T02:38:00 SlurmdStartTime=2026-11-22T02:38:00\n"
        "   LastBusyTime=2026-11-22T02:38:00\n"
        "   CfgTRES=cpu=4,mem=16384M,billing=4\n"
        "   AllocTRES=\n"
        "   CapWatts=n/a\n"
        "   CurrentWatts=0 AveWatts=0\n"
        "   ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s\n"
        "\n"
    )
    coming = world.run("scontrol", "-o", "show", "node", "slurmsky-warm-4")
    assert coming.stdout == (
        "NodeName=slurmsky-warm-4 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=1 CPUTot=1 "
        "CPULoad=N/A AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) "
        "NodeAddr=slurmsky-warm-4 NodeHostName=slurmsky-warm-4 Version=22.05.8 "
        "RealMemory=0 AllocMem=0 FreeMem=N/A Sockets=1 Boards=1 State=IDLE# ThreadsPerCore=1 "
        "TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=warm  BootTime=None "
        "SlurmdStartTime=None LastBusyTime=Unknown CfgTRES=cpu=1,mem=0M,billing=1 AllocTRES= "
        "CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 "
        "ExtSensorsTemp=n/s\n"
    )
    pools.record([], [POOL], T0 + 60)  # `slurmsky pool down warm`, or the agent saw it gone
    assert world.run("sinfo", "-p", "warm").stdout == (  # its size (workers), powered down
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "warm*        up   infinite      2  idle~ warm-[1-2]\n"
    )


def test_the_agent_records_the_configured_pools(tmp_path, monkeypatch):
    """The executor asks SkyPilot for the configured partitions' pools (in the background,
    every POOL_EVERY queue intervals: each question costs the server a Python process) and
    records the answer; SkyPilot is the shared fake."""
    sky = pytest.importorskip("sky")
    from fake_sky import FakeSkyClient

    from slurmsky.backends.sky import sync as skysync
    from slurmsky.backends.sky.executor import SkyExecutor
    from slurmsky.backends.sky.watcher import POOL_EVERY

    (tmp_path / "config.yaml").write_text(CONFIG)
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("SLURMSKY_CONFIG", str(tmp_path / "config.yaml"))
    fake = FakeSkyClient(tmp_path)
    slurm = sky.Resources(cloud=sky.Slurm(), instance_type="4CPU--16GB")
    fake.pool_answer = _pool_answer([_worker_info(1, "READY", resources=slurm, launched_at=1.0)])
    ex = SkyExecutor(fake)
    try:
        wake: list[float] = []
        ex.pools.sync(100.0, wake, keep_fresh=True)
        assert ex.pools.query is not None
        ex.pools.query.result(timeout=60)
        due = 100.0 + skysync.SYNC_INTERVAL * POOL_EVERY
        ex.pools.sync(101.0, wake, keep_fresh=True)  # recorded; the next query is due then
        assert fake.pools_asked == [(ex.home.name, ["slurmsky-warm"])] and wake == [due]
        rec = pools.recorded()[POOL]
        assert (rec["at"], [w["name"] for w in rec["workers"]]) == (100.0, [f"{POOL}-1"])
        ex.pools.sync(due - 0.1, wake, keep_fresh=True)
        assert ex.pools.query is None and len(fake.pools_asked) == 1
        ex.pools.sync(due, wake, keep_fresh=True)
        ex.pools.query.result(timeout=60)
        assert len(fake.pools_asked) == 2
    finally:
        ex.shutdown()
        ex.db.close()


def test_sinfo_on_a_pool_partition_never_imports_skypilot(world, monkeypatch):
    (world.home / "none.yaml").write_text(CONFIG)
    monkeypatch.setenv("SLURMSKY_HOME", str(world.state))
    worker = {"replica_id": 1, "name": f"{POOL}-1", "status": "READY", "used_by": []}
    pools.record([{"name": POOL, "status": "READY", "replica_info": [worker]}], [POOL], T0)
    probe = (
        "import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
        "'SKY-IMPORTED\\n' if 'sky' in sys.modules else 'SKY-FREE\\n')); "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    for argv in (["sinfo"], ["scontrol", "show", "node"]):
        out = subprocess.run(
            [sys.executable, "-c", probe, str(ROOT / "bin" / argv[0]), *argv[1:]],
            cwd=world.tmp,
            env=world.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stderr == "SKY-FREE\n", (argv, out.stderr)
        assert f"{POOL}-1" in out.stdout, out.stdout
