"""Translation to SkyPilot: layouts, resources, export policy, and SkyPilot's own validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmsky.backends.sky.task import SPEC_EOF, translate
from slurmsky.config import Config
from slurmsky.errors import SlurmError
from slurmsky.parse.request import build_batch_request, parse_command_line
from slurmsky.plan.environment import job_environment
from slurmsky.plan.layout import layout

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "sbatch").glob("*.sh"))
GPU_CFG = Config(
    path="test",
    partitions={
        "gpu": {"infra": "k8s/ctx", "accelerators": ["A100", "H100"]},
        "cpu": {"default": True, "infra": "aws", "use_spot": True},
    },
    modules={"cuda": {"image_id": "docker:nvidia/cuda:12.1"}},
)


def req_of(tmp_path, argv, env=None, script="#!/bin/sh\ntrue\n"):
    (tmp_path / "job.sh").write_text(script)
    return build_batch_request(
        parse_command_line("sbatch", argv + ["job.sh"]), env or {}, str(tmp_path), lambda: b""
    )


@pytest.mark.parametrize(
    "argv,tasks,cpus",
    [
        ([], (1,), (1,)),
        (["-N2", "--ntasks-per-node=2"], (2, 2), (2, 2)),
        (["-n5", "-N2"], (3, 2), (3, 2)),
        (["-n4", "--ntasks-per-node=2"], (2, 2), (2, 2)),
        (["-n2", "-c3"], (2,), (6,)),
        (["-N3", "-c4"], (1, 1, 1), (4, 4, 4)),
        # real Slurm 22.05: --ntasks-per-node is allocated on every node, -n short or not
        (["-N2", "-n3", "--ntasks-per-node=2"], (2, 2), (2, 2)),
        (["-n3", "--ntasks-per-node=2"], (2, 2), (2, 2)),
        (["-N2", "-n3", "--ntasks-per-node=2", "-c2"], (2, 2), (4, 4)),
        (["-N3", "-n4", "--ntasks-per-node=2"], (2, 2, 2), (2, 2, 2)),
        (["-N1-2", "-n3", "--ntasks-per-node=2"], (2, 2), (2, 2)),
    ],
)
def test_block_layout(tmp_path, argv, tasks, cpus):
    lay = layout(req_of(tmp_path, argv), 8)
    assert (lay.tasks_per_node, lay.cpus_per_node) == (tasks, cpus)
    assert (lay.num_tasks, lay.num_cpus) == (sum(tasks), sum(cpus))


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.integers(1, 40),
    ntasks=st.none() | st.integers(1, 90),
    per_node=st.none() | st.integers(1, 5),
    most=st.integers(1, 50),
)
def test_a_layout_past_what_the_configuration_holds_keeps_its_totals(
    tmp_path_factory, nodes, ntasks, per_node, most
):
    """Beyond `most` nodes only the first most+1 nodes' entries are built; they and the
    totals are the full layout's."""
    argv = [f"-N{nodes}"] + ([f"-n{ntasks}"] if ntasks else [])
    argv += [f"--ntasks-per-node={per_node}"] if per_node else []
    req = req_of(tmp_path_factory.mktemp("lay"), argv)
    full, cut = layout(req, 10**6), layout(req, most)
    assert (cut.num_nodes, cut.num_tasks, cut.num_cpus) == (
        full.num_nodes,
        sum(full.tasks_per_node),
        sum(full.cpus_per_node),
    )
    assert cut.tasks_per_node == full.tasks_per_node[: most + 1]
    assert cut.cpus_per_node == full.cpus_per_node[: most + 1]
    assert len(full.tasks_per_node) == full.num_nodes


def test_two_billion_nodes_are_laid_out_at_once(tmp_path):
    lay = layout(req_of(tmp_path, ["-N2147483647", "-c2"]), 4)
    assert (lay.num_nodes, lay.num_tasks, lay.num_cpus) == (2147483647, 2147483647, 4294967294)
    assert lay.cpus_per_node == (2,) * 5


@pytest.mark.parametrize(
    "argv,resources",
    [
        (
            ["-c8", "--mem=32G", "--gres=gpu:A100:1"],
            {"cpus": "8+", "memory": "32+", "accelerators": {"A100": 1}},
        ),
        (["--gpus-per-node=H100:8", "-N2"], {"accelerators": {"H100": 8}}),
        (["--gpus=4", "-N2", "-p", "gpu"], {"accelerators": ["A100:2", "H100:2"]}),
        (["--mem-per-cpu=1500", "-c2"], {"cpus": "2+", "memory": "2.93+"}),
        (["--tmp=100G"], {"cpus": "1+", "disk_size": 100}),
        (
            ["--container-image=nvcr.io/nvidia/pytorch:24.05-py3"],
            {"cpus": "1+", "image_id": "docker:nvcr.io/nvidia/pytorch:24.05-py3"},
        ),
        (["--requeue"], {"cpus": "1+", "job_recovery": {"max_restarts_on_errors": 3}}),
        (["--no-requeue"], {"cpus": "1+", "job_recovery": {"max_restarts_on_errors": 0}}),
    ],
)
def test_resources(tmp_path, argv, resources):
    task = translate(
        req_of(tmp_path, argv + ["-p", "gpu"] if "-p" not in argv else argv), GPU_CFG
    ).task
    got = {k: v for k, v in task["resources"].items() if k != "infra"}
    assert got == resources


def test_default_partition_and_spot(tmp_path):
    task = translate(req_of(tmp_path, []), GPU_CFG).task
    assert task["resources"] == {"infra": "aws", "cpus": "1+", "use_spot": True}
    assert task["num_nodes"] == 1 and task["workdir"] == str(tmp_path)


@pytest.mark.parametrize(
    "argv,cpus",
    [([], "4+"), (["-c2"], "2+"), (["--gres=gpu:A100:1"], "4+"), (["-p", "gpu", "-G1"], None)],
)
def test_a_job_asking_no_cpus_gets_the_partitions_else_none_with_gpus(tmp_path, argv, cpus):
    """Slurm's one CPU per task is the default; a partition's `cpus` replaces it, and a GPU
    job asking none is sized by its GPUs (SkyPilot's node for them)."""
    cfg = Config(
        path="test",
        partitions={
            "cpu": {"default": True, "infra": "aws", "cpus": "4+", "accelerators": ["A100"]},
            "gpu": {"infra": "k8s/ctx", "accelerators": ["A100"]},
        },
    )
    assert translate(req_of(tmp_path, argv), cfg).task["resources"].get("cpus") == cpus


def test_unknown_partition_is_slurms_error(tmp_path):
    with pytest.raises(SlurmError) as exc:
        translate(req_of(tmp_path, ["-p", "nosuch"]), GPU_CFG)
    assert exc.value.render("sbatch") == (
        "sbatch: error: invalid partition specified: nosuch\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )


def test_untyped_gpus_need_candidates(tmp_path):
    with pytest.raises(SlurmError, match="lists no candidate accelerators"):
        translate(req_of(tmp_path, ["--gres=gpu:2"]), Config(path="x"))


def test_export_policy_keeps_secrets_home(tmp_path):
    env = {
        "AWS_SECRET_ACCESS_KEY": "s",
        "HF_TOKEN": "t",
        "PATH": "/usr/bin",
        "MY_SETTING": "1",
        "WANDB_API_KEY": "w",
    }
    req = req_of(tmp_path, [], env=env)
    assert job_environment(req, Config(path="x"), for_cloud=True) == {"MY_SETTING": "1"}
    assert job_environment(req, Config(path="x"), for_cloud=False) == env
    named = req_of(tmp_path, ["--export=ALL,WANDB_API_KEY,EXTRA=x y"], env=env)
    assert job_environment(named, Config(path="x"), for_cloud=True) == {
        "MY_SETTING": "1",
        "WANDB_API_KEY": "w",
        "EXTRA": "x y",
    }
    assert (
        job_environment(
            req_of(tmp_path, ["--export=NONE"], env=env), Config(path="x"), for_cloud=False
        )
        == {}
    )


def test_spec_travels_in_a_quoted_heredoc(tmp_path):
    script = "#!/bin/bash\n#SBATCH -t 90\necho \"$(whoami)\" '`id`' $HOME\n"
    tr = translate(req_of(tmp_path, ["-J", "x'; rm -rf /"], script=script), Config(path="x"))
    run = tr.task["run"]
    body = run.split(f"<<'{SPEC_EOF}'\n", 1)[1].split(f"\n{SPEC_EOF}\n", 1)[0]
    spec = json.loads(body)
    assert spec["script"] == script and spec["time_limit"] == 5400
    assert spec["job_name"] == "x'; rm -rf /" and tr.task["name"] == "x-rm-rf"
    assert "rm -rf" not in run.replace(body, "")


def test_module_lines(tmp_path):
    script = "#!/bin/bash\nmodule load cuda/12.1 nosuch/1\necho\n"
    tr = translate(req_of(tmp_path, [], script=script), GPU_CFG)
    assert tr.task["resources"]["image_id"] == "docker:nvidia/cuda:12.1"
    assert tr.warnings == (
        "sbatch: warning: module nosuch/1 is not in the slurmsky config; "
        "`module load` will do nothing in the job",
    )


def test_examples_pass_skypilots_validation(tmp_path):
    """Every example translates, and sky.Task.from_yaml_config accepts it (one sky import)."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("partitions:\n  gpu:\n    infra: k8s\n    accelerators: [A100]\n")
    tasks = []
    for ex in EXAMPLES:
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bin" / "slurmsky"),
                "translate",
                "--format",
                "json",
                str(ex),
            ],
            cwd=tmp_path,
            capture_output=True,
            env=dict(os.environ, SLURMSKY_CONFIG=str(cfg)),
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()
        tasks.append(json.loads(out.stdout))
    check = (
        "import json, sys, sky\n"
        "for t in json.load(sys.stdin):\n"
        "    sky.Task.from_yaml_config(t)\n"
        "print('ok', len(json.load(open(sys.argv[1]))))\n"
    )
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    res = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path / "tasks.json")],
        input=json.dumps(tasks).encode(),
        capture_output=True,
        timeout=120,
        env=dict(os.environ, HOME=str(tmp_path), SKYPILOT_DISABLE_USAGE_COLLECTION="1"),
    )
    assert res.stdout.decode().strip() == f"ok {len(EXAMPLES)}", res.stderr.decode()[-2000:]


def test_translate_yaml_is_readable(tmp_path):
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH -N 2\n#SBATCH -A acct\nsrun hostname\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "slurmsky"), "translate", "job.sh", "-t", "5"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        # no credential in the environment: none is said to stay home
        env={"PATH": os.environ["PATH"], "SLURMSKY_CONFIG": str(tmp_path / "none.yaml")},
    )
    assert out.returncode == 0
    assert out.stderr.decode() == (
        f"uploads {tmp_path}: 1 files, 0.0 MB (SkyPilot's rules)\n"
        "files home: none with `sky jobs launch` of this task (the files the job writes stay "
        f"on its nodes); with sbatch they come back to {tmp_path}\n"
        "price: infra any (partition local): no price: any cloud (SkyPilot's optimizer chooses "
        "among those `sky check` enabled)\n"
    )
    text = out.stdout.decode()
    assert text.startswith("name: job.sh\nworkdir: ") and "num_nodes: 2\n" in text
    assert "run: |\n" in text and '"time_limit": 300' in text
