"""The configuration file: defaults without a file, errors that name the file and the key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurmsky.config import MODULE_SCHEMA, PARTITION_SCHEMA, SCHEMA, load_config
from slurmsky.errors import SlurmError

ROOT = Path(__file__).resolve().parent.parent


def cfg(tmp_path, text, **env):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config({"SLURMSKY_CONFIG": str(path), **env})


def test_no_file_means_local_defaults(tmp_path):
    c = load_config({"HOME": str(tmp_path)})
    assert (c.backend, c.cluster_name, c.partitions, c.kill_wait) == ("local", "slurmsky", {}, 30)
    assert c.path == str(tmp_path / ".config/slurmsky/config.yaml")


def test_partitions_and_default(tmp_path):
    c = cfg(tmp_path, "partitions:\n  a: {infra: aws}\n  b: {default: true, use_spot: true}\n")
    assert c.default_partition() == "b"
    assert cfg(tmp_path, "partitions:\n  a: {infra: aws}\n").default_partition() == "a"


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "bogus: 1\n",
            "unknown key 'bogus' (expected one of: backend, cluster_name, state, partitions, "
            "modules, export, requeue, kill_wait, max_array_size, def_mem_per_cpu, "
            "constrain_devices, purge_run_dirs_after, purge_job_after, agent_log_max_mb, "
            "acct_gather_frequency, strict_env, priority_type, priority_weight_age, priority_weight_fairshare, "
            "priority_max_age, priority_decay_half_life, priority_calc_period, upload_max_mb)",
        ),
        (
            "partitions:\n  gpu:\n    use_spot: maybe\n",
            "'partitions.gpu.use_spot' must be bool (run on spot instances (SkyPilot recovers preempted "
            "jobs)), got 'maybe'",
        ),
        ("kill_wait: true\n", "'kill_wait' must be int"),
        ("partitions:\n  gpu:\n    size: 0\n", "'partitions.gpu.size' must be a positive int (sky"),
        (
            "partitions:\n  gpu:\n    files_home: {interval: 0}\n",
            "'partitions.gpu.files_home.interval' must be a positive int (seconds",
        ),
        (
            "partitions:\n  gpu:\n    lanes: true\n",
            "'partitions.gpu.lanes' must be a positive int or false",
        ),
        ("partitions: [a, b]\n", "partitions must be a mapping, got list"),
        ("backend: slurm\n", "'backend' must be one of local, sky, got 'slurm'"),
        ("a: [\n", "cannot read the configuration"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, message):
    with pytest.raises(SlurmError) as exc:
        cfg(tmp_path, text)
    assert str(exc.value).startswith(str(tmp_path / "config.yaml") + ": ")
    assert message in str(exc.value)


def test_environment_selects_the_backend(tmp_path):
    assert cfg(tmp_path, "backend: local\n", SLURMSKY_BACKEND="sky").backend == "sky"


def test_every_key_is_documented():
    doc = (ROOT / "docs/configuration.md").read_text()
    for key in SCHEMA:
        assert f"`{key}" in doc
    for key in PARTITION_SCHEMA:
        assert f"`partitions.<name>.{key}`" in doc
    for sub in ("pool", "files_home"):
        for key in PARTITION_SCHEMA[sub][0]:
            assert f"`partitions.<name>.{sub}.{key}`" in doc
    for key in MODULE_SCHEMA:
        assert f"`modules.<name>.{key}`" in doc


def test_slurmsky_config_prints_the_effective_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cluster_name: lab\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bin/slurmsky"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, SLURMSKY_CONFIG=str(path)),
    )
    assert out.returncode == 0
    assert out.stdout.splitlines()[:3] == [f"# {path}", "backend: local", "cluster_name: lab"]
    path.write_text("nope: 1\n")
    bad = subprocess.run(
        [sys.executable, str(ROOT / "bin/slurmsky"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, SLURMSKY_CONFIG=str(path)),
    )
    assert bad.returncode == 1 and bad.stderr.startswith(
        f"slurmsky: error: {path}: unknown key 'nope'"
    )
