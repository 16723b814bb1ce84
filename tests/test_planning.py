"""A submission's plan is built once (core.planning): the backend's task is made from the
plan's partition, layout and spec, and sbatch stores exactly that spec and task; --test-only
prints that plan. Before, the backend laid the request out again for its task, with
MAX_NODES for the backend's max_nodes, without --exclusive's whole nodes, the spread of
tasks over nodes or DefMemPerCPU: the stored spec and the task disagreed."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmsky import backends
from slurmsky.backends import Backend
from slurmsky.backends.sky.task import translate
from slurmsky.config import Config
from slurmsky.core import planning, state, submit
from slurmsky.parse.request import build_batch_request, parse_command_line


class PlannedBackend(Backend):
    """Fixed nodes of 4 CPUs and 4000 MB, 2 of them; its task is the layout it is handed."""

    name = "planned"
    unsupported: dict = {}

    def __init__(self):
        self.plans: list[planning.Plan] = []

    def node_cpus(self, part=None):
        return 4

    def node_mem(self, part=None):
        return 4000

    def max_nodes(self, part=None):
        return 2

    def submit_reason(self, lay, part=None):
        return "PartitionNodeLimit" if lay.num_nodes > 2 else None

    def task(self, plan, cfg):
        self.plans.append(plan)
        lay = plan.layout
        task = {
            "num_nodes": lay.num_nodes,
            "tasks_per_node": list(lay.tasks_per_node),
            "cpus_per_node": list(lay.cpus_per_node),
            "job_id": plan.spec["job_id"],
        }
        return task, [f"{plan.request.command}: warning: planned on {plan.partition}"]

    def describe(self, plan):
        return f"described {plan.task}\n"


BACKEND = PlannedBackend()


@pytest.fixture
def planned(tmp_path, monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, "planned", __name__)
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("slurmsky.core.daemon.wake", lambda: False)
    BACKEND.plans.clear()
    return Config(path="x", backend="planned")


def _req(tmp: Path, *argv: str, command: str = "sbatch"):
    (tmp / "job.sh").write_text("#!/bin/sh\ntrue\n")
    return build_batch_request(
        parse_command_line(command, [*argv, "job.sh"]), {}, str(tmp), lambda: b""
    )


def _stored(job_id: int) -> tuple[dict, dict | None]:
    return state.get_spec(state.connect(), job_id)


@pytest.mark.parametrize(
    "argv,nodes,tasks,cpus",
    [
        # --exclusive: the nodes' every CPU, a task per CPU (was (1,), (1,) in the task)
        (["--exclusive"], 1, [4], [4]),
        # 6 tasks spread over the 4-CPU nodes they need (was one node of 6 in the task)
        (["-n6"], 2, [3, 3], [3, 3]),
        # beyond the 2 nodes: accepted, pending; per-node entries for max_nodes + 1 nodes
        # only (the task had 65537 laid out: MAX_NODES for the backend's max_nodes)
        (["-N", "70000"], 70000, [1, 1, 1], [1, 1, 1]),
    ],
)
def test_the_task_is_made_from_the_stored_plan(planned, tmp_path, capsys, argv, nodes, tasks, cpus):
    job_id = submit.store(_req(tmp_path, *argv), planned, batch=True)
    spec, task = _stored(job_id)
    assert len(BACKEND.plans) == 1  # planned once
    assert task == {
        "num_nodes": nodes,
        "tasks_per_node": tasks,
        "cpus_per_node": cpus,
        "job_id": job_id,
    }
    assert (spec["num_nodes"], spec["tasks_per_node"], spec["cpus_per_node"]) == (
        nodes,
        tasks,
        cpus,
    )
    plan = BACKEND.plans[0]
    assert plan.spec["job_id"] == job_id and plan.partition == spec["partition"] == "local"
    assert capsys.readouterr().err == "sbatch: warning: planned on local\n"


def test_the_stored_spec_adds_the_submissions_own_facts(planned, tmp_path, monkeypatch):
    """umask, what was requested, the time limit in seconds: in the stored spec, after the
    task was made (its `run` shows the spec as translate always has)."""
    monkeypatch.setenv("SLURMSKY_SECONDS_PER_MINUTE", "2")
    job_id = submit.store(_req(tmp_path, "-t", "3", "--mem=100"), planned, batch=True)
    spec, _ = _stored(job_id)
    assert spec["time_limit"] == 6 and spec["umask"] and spec["requested"]["mem"] == 100
    handed = BACKEND.plans[0].spec
    assert handed["time_limit"] == 180 and "umask" not in handed and "requested" not in handed
    assert {k: v for k, v in spec.items() if k not in ("umask", "requested", "time_limit")} == {
        k: v for k, v in handed.items() if k != "time_limit"
    }


def test_test_only_prints_the_plan_and_stores_nothing(planned, tmp_path, capsys):
    req = _req(tmp_path, "--test-only", "--exclusive")
    job_id = submit.store(req, planned, batch=True)
    err = capsys.readouterr().err
    estimate, warning, described = err.splitlines()  # the task's warnings, as at submission
    assert warning == "sbatch: warning: planned on local"
    assert estimate.startswith(f"sbatch: Job {job_id} to start at ")
    assert estimate.endswith(" using 4 processors on nodes 127.0.0.1 in partition local")
    task = {"num_nodes": 1, "tasks_per_node": [4], "cpus_per_node": [4], "job_id": job_id}
    assert described == f"described {task}"
    assert state.find_jobs(state.connect(), ids=[job_id]) == []


def test_a_refused_job_makes_no_plan(planned, tmp_path):
    with pytest.raises(Exception, match="Requested node configuration"):
        submit.store(_req(tmp_path, "-N2", "-n5", "--ntasks-per-node=2"), planned, batch=True)
    assert BACKEND.plans == []


def test_the_sky_task_asks_the_memory_def_mem_per_cpu_gives(tmp_path):
    """DefMemPerCPU reached the stored spec (SLURM_MEM_PER_CPU) but not the SkyPilot task,
    which asked no memory: the task was laid out again without it."""
    cfg = Config(path="x", backend="sky", def_mem_per_cpu=1536)
    tr = translate(_req(tmp_path, "-c", "2"), cfg, job_id=3)
    assert tr.spec["mem_per_cpu"] == 1536
    assert tr.task["resources"]["memory"] == "3+"  # 2 CPUs of 1536 MB
    asked = translate(_req(tmp_path, "-c", "2", "--mem=1G"), cfg, job_id=3)
    assert asked.task["resources"]["memory"] == "1+" and asked.spec["mem_per_cpu"] is None


def test_translate_is_the_plan_of_the_sky_backend(tmp_path):
    """`slurmsky translate` (task.translate) builds through core.planning, ids None."""
    req = _req(tmp_path, "-N2", "-a", "1-3")
    plan = planning.build(req, Config(path="x"), backends.get("sky"))
    tr = translate(req, Config(path="x"))
    assert plan.task == tr.task and plan.warnings == tr.warnings
    assert plan.spec["job_id"] is None and tr.task["_metadata"]["slurmsky"]["job_id"] is None
    assert plan.layout.num_nodes == tr.task["num_nodes"] == 2
