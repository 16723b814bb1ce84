"""Partitions backed by SkyPilot pools, without a server: what a pool job's task holds, the
node runtime it carries (unpacked and run for real, as a worker would), what is refused at
submission, and the pool task SkyPilot's own schema accepts. On a real pool: test_sky_e2e."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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

    def run():
        return subprocess.run(
            ["bash", "-c", task["run"]],
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


def test_jobs_after_jobs_on_one_worker_send_back_only_their_own_output(tmp_path):
    """A pool worker runs job after job with the same SKYPILOT_TASK_ID: each job's emitter
    reads its own run directory, never the spec and output of the job before it."""
    from test_sky_units import _job, _request, run_on_node

    from slurmsky.backends.sky.executor import NODE_OUT, LogReader, sky_run
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
