"""Heterogeneous jobs on the sky backend: one SkyPilot job group per hetjob (a task per
component, its own resources), as `slurmsky translate` prints it and SkyPilot's own loader
reads it; refusals of what a job group cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurmsky.backends.sky.group import group_documents, group_tasks
from slurmsky.backends.sky.task import translate
from slurmsky.config import Config
from slurmsky.errors import SlurmError
from slurmsky.parse.request import build_batch_request, parse_command_line

ROOT = Path(__file__).resolve().parent.parent
# the script, its components in two partitions (component 1 with a GPU)
HET = """#!/bin/bash
#SBATCH -J het -o het-%j.out
#SBATCH -N1 -n1 -c1 -p cpu
#SBATCH hetjob
#SBATCH -N2 -n4 -c1 -p gpu --gres=gpu:1 --mem=2G
echo "size=$SLURM_HET_SIZE ids=$SLURM_JOB_ID_HET_GROUP_0,$SLURM_JOB_ID_HET_GROUP_1"
srun --het-group=0,1 bash -c 'echo task=$SLURM_PROCID' | sort
"""
CONFIG = "partitions:\n  cpu:\n    infra: k8s\n  gpu:\n    infra: k8s\n    accelerators: [A100]\n"
HEADER = "name: het\nexecution: parallel\nprimary_tasks:\n- het-0\n"


def _translate(tmp_path, fmt="yaml"):
    (tmp_path / "het.sh").write_text(HET)
    (tmp_path / "config.yaml").write_text(CONFIG)
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / "slurmsky"), "translate", "--format", fmt, "het.sh"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "SLURMSKY_CONFIG": str(tmp_path / "config.yaml")},
    )


def test_translate_prints_a_job_group_that_skypilots_loader_reads(tmp_path):
    out = _translate(tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    note = "# a heterogeneous job of 2 components: one SkyPilot job group (sky jobs launch THIS_FILE)\n"
    assert text.startswith(note + HEADER + "---\nname: het-0\n")
    docs = text[len(note) :].split("---\n")
    assert len(docs) == 3 and docs[0] == HEADER
    assert docs[1].startswith(f"name: het-0\nworkdir: {tmp_path}\nnum_nodes: 1\nresources:\n")
    assert "resources:\n  infra: k8s\n  cpus: 1+\nfile_mounts:" in docs[1]
    assert docs[2].startswith(f"name: het-1\nworkdir: {tmp_path}\nnum_nodes: 2\nresources:\n")
    assert (
        "resources:\n  infra: k8s\n  cpus: 2+\n  memory: 2+\n  accelerators:\n    A100: 1\nfile_mounts:"
        in docs[2]
    )
    for n, doc in enumerate(docs[1:]):  # each runs the node runtime as its component
        assert f'"$SLURMSKY_RUNDIR/spec-{n}.json"' in doc and f'"het_component": {n}' in doc
    secrets = {
        line for doc in docs[1:] for line in doc.splitlines() if "SLURMSKY_STEP_SECRET: " in line
    }
    assert len(secrets) == 1  # one step channel: every component has the job's secret
    # SkyPilot's own loader of a job group (sky/utils/dag_utils.py), no cloud
    check = (
        "import sys\n"
        "from sky.utils import dag_utils\n"
        "text = open(sys.argv[1]).read()\n"
        "assert dag_utils.is_job_group_yaml_str(text)\n"
        "dag = dag_utils.load_job_group_from_yaml_str(text)\n"
        "print(dag.name, dag.is_job_group(), dag.execution.value, dag.primary_tasks)\n"
        "for t in dag.tasks:\n"
        "    (r,) = t.resources\n"
        "    print(t.name, t.num_nodes, r.cpus, r.memory, r.accelerators, r.infra.to_str())\n"
    )
    (tmp_path / "group.yaml").write_text(text)
    res = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path / "group.yaml")],
        capture_output=True,
        timeout=120,
        env=dict(os.environ, HOME=str(tmp_path), SKYPILOT_DISABLE_USAGE_COLLECTION="1"),
    )
    assert res.stdout.decode().splitlines(keepends=True)[-3:] == [
        "het True parallel ['het-0']\n",
        "het-0 1 1+ None None kubernetes\n",
        "het-1 2 2+ 2+ {'A100': 1} kubernetes\n",
    ], res.stderr.decode()[-2000:]


def test_translate_json_is_the_documents_in_a_list(tmp_path):
    out = _translate(tmp_path, "json")
    assert out.returncode == 0, out.stderr.decode()
    header, *tasks = json.loads(out.stdout)
    assert header == {"name": "het", "execution": "parallel", "primary_tasks": ["het-0"]}
    assert [t["name"] for t in tasks] == ["het-0", "het-1"]
    assert [t["_metadata"]["slurmsky"]["het_offset"] for t in tasks] == [0, 1]


def _req(tmp_path, script):
    (tmp_path / "job.sh").write_text(script)
    return build_batch_request(
        parse_command_line("sbatch", ["job.sh"]), {}, str(tmp_path), lambda: b""
    )


def test_the_job_group_stored_holds_each_components_spec(tmp_path):
    cfg = Config(
        path="x",
        partitions={
            "cpu": {"infra": "k8s", "default": True},
            "gpu": {"infra": "k8s", "accelerators": ["A100"]},
        },
    )
    tr = translate(_req(tmp_path, HET), cfg, job_id=7)
    tasks = group_tasks(tr.task)
    assert tasks is not None and [t["num_nodes"] for t in tasks] == [1, 2]
    assert group_documents(tr.task)[0] == {
        "name": "het",
        "execution": "parallel",
        "primary_tasks": ["het-0"],
    }
    assert tr.task["_metadata"]["slurmsky"]["het_size"] == 2
    assert [c["job_id"] for c in tr.spec["het"]] == [7, 8]
    assert [c["nodes"] for c in tr.spec["het"]] == [[0, 1], [1, 2]]


def test_a_component_on_a_pool_is_refused(tmp_path):
    cfg = Config(
        path="x",
        partitions={
            "cpu": {"infra": "k8s", "default": True},
            "gpu": {"infra": "k8s", "pool": {"name": "p", "workers": 1}},
        },
    )
    with pytest.raises(SlurmError) as err:
        translate(_req(tmp_path, HET.replace(" --gres=gpu:1", "")), cfg)
    assert err.value.lines[-1] == (
        "Batch job submission failed: Requested node configuration is not available"
    )
    assert "runs no job group" in err.value.lines[0]


# the script, every component in the one partition of the fake's world
SCRIPT = HET.replace(" -p cpu", "").replace(" -p gpu --gres=gpu:1 --mem=2G", "")


def _rows(cluster, job: int) -> list[tuple]:
    with cluster.db() as conn:
        rows = conn.execute(
            "SELECT job_id, het_job_offset, state, nodelist FROM jobs WHERE het_job_id = ? "
            "ORDER BY job_id",
            (job,),
        )
        return [tuple(r) for r in rows]


def test_a_hetjob_runs_as_one_job_group_whose_components_are_one_job(
    cluster, tmp_path, monkeypatch
):
    """The issue's script on the fake SkyPilot: one managed job (a job group, its second
    task component 1 on a node of its own), SLURM_HET_SIZE and the components' ids inside,
    `srun --het-group=0,1` numbering the tasks of both; J+0 and J+1 at home."""
    from fake_sky import sky_world

    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    default: true\n") as world:
        cluster, fake, drive = world
        cluster.script("het.sh", SCRIPT.replace("-N2 -n4", "-N1 -n2"))
        job = cluster.sbatch("het.sh")
        drive(lambda: [r[2] for r in _rows(cluster, job)] == ["COMPLETED"] * 2, timeout=90)
        assert (cluster.cwd / f"het-{job}.out").read_text() == (
            f"size=2 ids={job},{job + 1}\ntask=0\ntask=1\ntask=2\n"
        )
        (group,) = fake.jobs.values()  # one managed job: the group's task 0, and task 1
        assert [m["task"]["name"] for m in [group, *group["members"]]] == ["het-0", "het-1"]
        assert group["members"][0]["env"]["SKYPILOT_JOBGROUP_NAME"] == "het"
        assert {t[1:3] for t in fake.tailed} <= {(1, True), (1, False)}
        squeue = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%i %t")
        assert sorted(squeue.stdout.splitlines()) == [f"{job}+0 CD", f"{job}+1 CD"]
        sacct = cluster.run("sacct", "-n", "-X", "-j", str(job), "-o", "JobID%12,State")
        assert sacct.stdout.split() == [f"{job}+0", "COMPLETED", f"{job}+1", "COMPLETED"]
        # each component on its group task's nodes, and its share of the steps
        assert [r[3] for r in _rows(cluster, job)] == ["fake-node-1", "fake-node-1-1"]
        steps = cluster.run("sacct", "-n", "-P", "-j", str(job), "-o", "JobID,NodeList")
        assert steps.stdout.splitlines() == [
            f"{job}+0|fake-node-1",
            f"{job}+0.batch|fake-node-1",
            f"{job}+0.0|fake-node-1",
            f"{job}+1|fake-node-1-1",
            f"{job}+1.0|fake-node-1-1",
        ]


def test_scancel_of_a_running_hetjob_cancels_its_whole_group(cluster, tmp_path, monkeypatch):
    """`scancel J+1` is refused with Slurm's error while it runs; `scancel J` cancels the
    one SkyPilot job group, every task of it, and both rows end CANCELLED."""
    from fake_sky import sky_world

    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    default: true\n") as world:
        cluster, fake, drive = world
        cluster.script(
            "long.sh", "#!/bin/bash\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -n1\nsleep 600\n"
        )
        job = cluster.sbatch("long.sh")
        drive(lambda: [r[2] for r in _rows(cluster, job)] == ["RUNNING"] * 2)
        refused = cluster.run("scancel", f"{job}+1")
        assert (refused.returncode, refused.stderr) == (
            60,
            f"scancel: error: Kill job error on job id {job}+1: Operation not permitted on "
            "individual component of heterogeneous job\n",
        )
        assert cluster.run("scancel", str(job)).returncode == 0
        drive(lambda: [r[2] for r in _rows(cluster, job)] == ["CANCELLED"] * 2)
        (group,) = fake.jobs.values()
        drive(lambda: all(t["proc"].poll() is not None for t in [group, *group["members"]]))
        assert [bool(t["cancelled"]) for t in [group, *group["members"]]] == [True, True]


def _spec(*counts: int) -> dict:
    first, comps = 0, []
    for count in counts:
        comps.append({"nodes": [first, count]})
        first += count
    return {"het": comps}


def test_each_components_nodes_join_the_whole_job_through_the_group_rundir(tmp_path):
    """runtime/het.join_group: every node of each component (SkyPilot's own rank and IPs
    for its task) becomes the job's node of rank first + its own, the job's IPs every
    component's in order, found in the group's rundir as each node publishes its own."""
    import threading

    from slurmsky.runtime import het

    spec = _spec(1, 2)
    nodes = [(0, 0, "10.0.0.1"), (1, 0, "10.0.1.1\n10.0.1.2"), (1, 1, "10.0.1.1\n10.0.1.2")]
    joined: dict = {}

    def join(comp: int, rank: int, ips: str) -> None:
        env = {"SKYPILOT_NODE_RANK": str(rank), "SKYPILOT_NODE_IPS": ips, "KEEP": "1"}
        joined[comp, rank] = het.join_group(dict(spec, het_component=comp), env, str(tmp_path), 10)

    threads = [threading.Thread(target=join, args=node) for node in reversed(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    whole = "10.0.0.1\n10.0.1.1\n10.0.1.2"
    assert {
        k: (v["SKYPILOT_NODE_RANK"], v["SKYPILOT_NODE_IPS"], v["KEEP"]) for k, v in joined.items()
    } == {
        (0, 0): ("0", whole, "1"),
        (1, 0): ("1", whole, "1"),
        (1, 1): ("2", whole, "1"),
    }
    assert sorted(os.listdir(tmp_path / "group")) == ["0-0", "1-0", "1-1"]
    env = {"SKYPILOT_NODE_RANK": "0"}
    assert het.join_group({"het": spec["het"]}, env, str(tmp_path), 1) is env  # not a group's


def test_a_component_whose_nodes_never_come_fails_the_node_naming_them(tmp_path):
    from slurmsky.runtime import het

    env = {"SKYPILOT_NODE_RANK": "0", "SKYPILOT_JOBGROUP_NAME": "g"}
    with pytest.raises(OSError) as err:
        het.join_group(dict(_spec(1, 1), het_component=0), env, str(tmp_path), 0.2)
    assert str(err.value) == "node 0 of component 1 did not come (g-1-0.g)"


def test_a_hetjob_holds_every_components_nodes_of_the_partitions_size(
    cluster, tmp_path, monkeypatch
):
    """A partition of size 2 running a 1+1-node hetjob has no room: a job pends
    (Resources) until the hetjob ends, then runs."""
    from fake_sky import sky_world

    gate = tmp_path / "gate"
    with sky_world(cluster, tmp_path, monkeypatch, "  sky:\n    size: 2\n") as world:
        cluster, fake, drive = world
        cluster.script(
            "gated.sh",
            f"#!/bin/bash\n#SBATCH -N1\n#SBATCH hetjob\n#SBATCH -N1\n"
            f"while [ ! -e {gate} ]; do sleep 0.1; done\n",
        )
        job = cluster.sbatch("gated.sh")
        drive(lambda: [r[2] for r in _rows(cluster, job)] == ["RUNNING"] * 2)
        other = cluster.sbatch("--wrap", "true")
        for _ in range(5):  # passes that could have placed it
            drive(lambda: True)
        with cluster.db() as conn:
            sql = "SELECT state, reason, executor_ref FROM jobs WHERE job_id = ?"
            row = conn.execute(sql, (other,))
            assert tuple(row.fetchone()) == ("PENDING", "Resources", None)  # not handed on
        gate.touch()
        drive(lambda: cluster.job(other)[1] == "COMPLETED")
        assert len(fake.jobs) == 2  # the group, then the other job
