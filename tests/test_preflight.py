"""What a batch script needs that a cloud node lacks (backends/sky/preflight.py): said by
`slurmsky translate` (stderr, and as comments in the YAML) and `sbatch --test-only` on the sky
backend; a partition's file_mounts, what the script makes itself and the workdir say
nothing; `strict_env` refuses the job and stores nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(__file__).resolve().parent.parent / "bin"
SCRIPT = """#!/bin/bash
#SBATCH -N 2 --gres=gpu:H100:4 -t 4:00:00
source ~/venvs/torch/bin/activate
conda activate myenv
mkdir -p /scratch/$USER/out
cd /scratch/$USER/project  # a comment: /not/a/path
srun python train.py --data=/project/shared/imagenet > /scratch/$USER/out/log 2>/dev/null
cp ${CONDA_SH:-/export/conda.sh} $HOME/project/x
"""
CONFIG = "partitions:\n  gpu:\n    default: true\n    infra: k8s\n    accelerators: [H100]\n"


def run(tmp_path, *argv, config=CONFIG):
    (tmp_path / "c.yaml").write_text(config)
    return subprocess.run(
        [sys.executable, str(BIN / argv[0]), *argv[1:]],
        cwd=tmp_path / "home" / "project",
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path / "home"),
            "USER": "alice",
            "SLURMSKY_HOME": str(tmp_path / "state"),
            "SLURMSKY_CONFIG": str(tmp_path / "c.yaml"),
            "SLURMSKY_BACKEND": "sky",
        },
    )


def setup(tmp_path) -> str:
    work = tmp_path / "home" / "project"
    work.mkdir(parents=True)
    (work / "job.sh").write_text(SCRIPT)
    return str(tmp_path / "home")


def findings(home: str) -> list[str]:
    work = f"{home}/project"
    return [
        f"line 3: {home}/venvs/torch/bin/activate is in your home, which the nodes do not have "
        f"(only the workdir {work} goes up): copy it into the workdir, or map it in "
        f"partitions.gpu.file_mounts: {{{home}/venvs/torch/bin/activate: "
        f"{home}/venvs/torch/bin/activate}}",
        "line 4: conda environment myenv is not made by any setup of the job: give a module's "
        "setup the lines that make it (modules: {conda: {setup: 'conda create -y -n myenv "
        "...'}}) or an image that has it (partitions.gpu.image_id)",
        f"line 6: /scratch/alice/project is not on the nodes (only the workdir {work} goes up): "
        "map it in partitions.gpu.file_mounts: {/scratch/alice/project: <a bucket or a local "
        "folder>} or partitions.gpu.volumes",
        f"line 7: /project/shared/imagenet is not on the nodes (only the workdir {work} goes "
        "up): map it in partitions.gpu.file_mounts: {/project/shared/imagenet: <a bucket or a "
        "local folder>} or partitions.gpu.volumes",
        f"line 8: /export/conda.sh is not on the nodes (only the workdir {work} goes up): map "
        "it in partitions.gpu.file_mounts: {/export/conda.sh: <a bucket or a local folder>} or "
        "partitions.gpu.volumes",
    ]


def test_translate_and_test_only_say_what_the_nodes_lack(tmp_path):
    home = setup(tmp_path)
    said = [f"sbatch: warning: {line}" for line in findings(home)]
    out = run(tmp_path, "slurmsky", "translate", "job.sh")
    assert out.returncode == 0, out.stderr
    assert [x for x in out.stderr.splitlines() if ": warning: line " in x] == said
    assert "".join(f"# {line}\n" for line in findings(home)) in out.stdout
    out = run(tmp_path, "sbatch", "--test-only", "job.sh")
    assert out.returncode == 0, out.stderr
    assert [x for x in out.stderr.splitlines() if ": warning: line " in x] == said


def test_mounts_say_nothing_and_strict_env_refuses(tmp_path):
    home = setup(tmp_path)
    mounts = "    file_mounts: {/scratch/alice/project: s3://b/p, /project/shared: s3://b/s}\n"
    out = run(tmp_path, "slurmsky", "translate", "job.sh", config=CONFIG + mounts)
    lines = [x for x in out.stderr.splitlines() if ": warning: line " in x]
    assert [x.split(": ", 2)[2][:7] for x in lines] == ["line 3:", "line 4:", "line 8:"]
    out = run(tmp_path, "sbatch", "job.sh", config="strict_env: true\n" + CONFIG)
    assert out.returncode == 1
    assert out.stderr == "".join(f"sbatch: error: {line}\n" for line in findings(home)) + (
        "sbatch: error: Batch job submission failed: the script needs what the nodes lack\n"
    )
    listed = run(tmp_path, "sacct", "-a", "-n", "-X", "-o", "jobid")
    assert (listed.returncode, listed.stdout) == (0, "")  # nothing was stored
