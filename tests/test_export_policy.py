"""The export policy of the sky backend: real-world secret shapes never ship, ordinary
variables all ship, a named variable always ships, and what stayed home is said once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIN
from hypothesis import given, settings
from hypothesis import strategies as st
from test_security import SKY, _request, launched_task

from slurmsky.plan import environment
from slurmsky.plan.environment import withheld

# Shapes of real credentials (the values are made up, the formats are the services' own).
# Every name issue 22 found shipped is here.
SECRETS = {
    "DATABASE_URL": "postgres://app:s3cr3tPw@db.internal:5432/prod",
    "MONGODB_URI": "mongodb+srv://admin:hunter2@cluster0.ab1cd.mongodb.net/test",
    "REDIS_URL": "redis://:p4ssw0rd@redis.example.com:6379/0",
    "MYSQL_PWD": "correcthorse",
    "NETRC": "machine api.example.com login me password hunter2",
    "GITHUB_PAT": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "TOKEN": "abc",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "SECRET": "x",
    "SECRET_KEY_BASE": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "SENTRY_DSN": "https://4f2a8c9e1b3d4e5f@o123456.ingest.sentry.io/7654321",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/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",
    "BW_SESSION": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5",
    "OP_SESSION_my": "nU8sbQwXkHyP1TRfLgL9yKjC0vW2mZ4aE6dS3fG7hJ5",
    "DOCKER_AUTH_CONFIG": '{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}',
    "SSL_KEY_PASSPHRASE": "open sesame",
    "PIP_INDEX_URL": "https://__token__:pypi-AgEIcHlwaS5vcmcCJGE0@pypi.example.com/simple",
    "HTTPS_PROXY": "http://alice:Secr3t@proxy.corp:3128",
    "http_proxy": "http://bob:pw@10.0.0.1:8080",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "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",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/keys/sa.json",
    "AZURE_CLIENT_SECRET": "Qx8Q~a1-IaBTHGqx49DXhBvYlTrH~K0wYE40pUr",
    "GITHUB_TOKEN": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "GITLAB_TOKEN": "glpat-xxXXxxXXxxXXxxXXxxXX",
    "HF_TOKEN": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "HUGGING_FACE_HUB_TOKEN": "hf_ZyXwVuTsRqPoNmLkJiHgFeDcBa98765432",
    "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "ANTHROPIC_API_KEY": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "STRIPE_API_KEY": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "SLACK_BOT_TOKEN": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "NPM_TOKEN": "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "DB_PASSWORD": "tr0ub4dor&3",
    "PGPASSWORD": "postgres",
    "SMTP_PASS": "mailpass",
    "DJANGO_SECRET_KEY": "django-insecure-9#x!k2@v&q8z$w3e(r5t)y7u",
    "COOKIE_SECRET": "keyboard cat",
    "SESSION_SECRET": "s3ss10n",
    "KUBECONFIG": "/home/me/.kube/config",
    "VAULT_TOKEN": "hvs.CAESIJlWh3mNf8Q2pK",
    "SSH_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "TLS_KEY": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "GPG_PASSPHRASE": "long phrase",
    "DOCKER_PASSWORD": "dckr_pat_abcdefghijklmnop",
    "REGISTRY_AUTH": "dXNlcjpwYXNzd29yZA==",
    "MY_APP_CREDENTIALS": '{"user": "u", "pass": "p"}',
    "ConnectionStrings__Default": "Server=db;Database=app;User Id=sa;Password=Pa55w0rd;",
    "GIT_ASKPASS_TOKEN": "abcd",
    "githubToken": "gho_16C7e42F292c6912E7710c838347Ae178B4a",
}
# Secrets only the value tells: under names that say nothing.
SECRET_VALUES = [
    SECRETS[k]
    for k in (
        "DATABASE_URL",
        "MONGODB_URI",
        "REDIS_URL",
        "NETRC",
        "GITHUB_PAT",
        "JWT",
        "SECRET_KEY_BASE",
        "SENTRY_DSN",
        "SLACK_WEBHOOK_URL",
        "BW_SESSION",
        "OP_SESSION_my",
        "PIP_INDEX_URL",
        "HTTPS_PROXY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_CLIENT_SECRET",
        "GITHUB_TOKEN",
        "HF_TOKEN",
        "WANDB_API_KEY",
        "OPENAI_API_KEY",
        "STRIPE_API_KEY",
        "SLACK_BOT_TOKEN",
        "NPM_TOKEN",
        "SSH_PRIVATE_KEY",
        "TLS_KEY",
        "ConnectionStrings__Default",
    )
]
ORDINARY = {
    "DATA_DIR": "/mnt/datasets/imagenet-1k/train",
    "OUTPUT_DIR": "/scratch/alice/runs/2024-05-01/resnet50",
    "CHECKPOINT": "/scratch/alice/ckpt/llama-7b-step-012000.pt",
    "CONFIG_FILE": "configs/experiment/ablation_no_dropout_v3.yaml",
    "LEARNING_RATE": "3e-4",
    "LR": "0.001",
    "BATCH_SIZE": "256",
    "EPOCHS": "90",
    "SEED": "42",
    "WARMUP_STEPS": "2000",
    "WEIGHT_DECAY": "0.05",
    "RUN_NAME": "resnet50_imagenet_lr0.1_bs256_seed42",
    "EXPERIMENT": "ablation-no-dropout-v3",
    "MODEL_NAME": "meta-llama/Llama-2-7b-chat-hf",
    "CONDA_DEFAULT_ENV": "torch",
    "CONDA_PREFIX": "/opt/conda/envs/torch",
    "CONDA_EXE": "/opt/conda/bin/conda",
    "CONDA_PYTHON_EXE": "/opt/conda/bin/python",
    "CONDA_SHLVL": "1",
    "CONDA_PROMPT_MODIFIER": "(torch) ",
    "VIRTUAL_ENV": "/home/alice/.venvs/ml-py311",
    "LANG": "en_US.UTF-8",
    "LC_ALL": "C.UTF-8",
    "LANGUAGE": "en_US:en",
    "TZ": "Europe/Paris",
    "CUDA_VISIBLE_DEVICES": "0,1,2,3",
    "CUDA_HOME": "/usr/local/cuda-12.1",
    "CUDA_VERSION": "12.1.105",
    "CUDA_LAUNCH_BLOCKING": "1",
    "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    "OMP_NUM_THREADS": "8",
    "OMP_PROC_BIND": "close",
    "MKL_NUM_THREADS": "8",
    "NCCL_DEBUG": "INFO",
    "NCCL_SOCKET_IFNAME": "eth0",
    "NCCL_IB_DISABLE": "1",
    "HF_HOME": "/scratch/alice/.cache/huggingface",
    "HF_DATASETS_CACHE": "/scratch/alice/.cache/huggingface/datasets",
    "HF_ENDPOINT": "https://huggingface.co",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TORCH_HOME": "/scratch/alice/.cache/torch",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True,max_split_size_mb:512",
    "TORCH_DISTRIBUTED_DEBUG": "DETAIL",
    "WANDB_PROJECT": "llm-finetune",
    "WANDB_ENTITY": "alice-lab",
    "WANDB_MODE": "offline",
    "WANDB_NAME": "llama7b-sft-2024-05-01",
    "WANDB_DIR": "/scratch/alice/wandb",
    "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
    "PIP_EXTRA_INDEX_URL": "https://download.pytorch.org/whl/cu121",
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "0",
    "HYDRA_FULL_ERROR": "1",
    "JAVA_HOME": "/usr/lib/jvm/java-17-openjdk-amd64",
    "EDITOR": "vim",
    "PAGER": "less",
    "MASTER_PORT": "29500",
    "GIT_BRANCH": "feature/improve-data-loader-2024",
    "NVIDIA_REQUIRE_CUDA": "cuda>=12.1 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470",
    "MANPATH": "/usr/share/man:/usr/local/share/man",
    "LESSOPEN": "| /usr/bin/lesspipe %s",
    "DATASET": "HuggingFaceFW/fineweb-edu-score-2",
    "NUM_WORKERS": "16",
    "MAX_SEQ_LEN": "4096",
}


def test_the_corpora_are_big_enough():
    assert len(SECRETS) >= 40 and len(SECRET_VALUES) >= 20 and len(ORDINARY) >= 50


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_secret_stays_home(name):
    assert withheld(name, SECRETS[name]) == "secret"


@pytest.mark.parametrize("value", SECRET_VALUES)
def test_a_secret_value_stays_home_whatever_its_name(value):
    assert withheld("SETTING", value) == "secret"


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_every_ordinary_variable_ships(name):
    assert withheld(name, ORDINARY[name]) is None


# Where things are (issue 36): paths, bundles and directories, some under a credential prefix.
LOCATIONS = {
    "AWS_CA_BUNDLE": "/etc/pki/tls/certs/corp-ca.pem",
    "AWS_CONFIG_FILE": "/home/alice/.aws/config",
    "AZURE_CONFIG_DIR": "/home/alice/.azure",
    "GOOGLE_CLOUD_SDK_ROOT": "/opt/google-cloud-sdk",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
    "CURL_CA_BUNDLE": "/etc/ssl/cert.pem",
    "SSL_CERT_FILE": "/etc/ssl/cert.pem",
    "SSL_CERT_DIR": "/etc/ssl/certs",
    "NODE_EXTRA_CA_CERTS": "/usr/local/share/ca-certificates/corp.crt",
    "CUDA_PATH": "/usr/local/cuda",
    "CUDNN_PATH": "/usr/lib/x86_64-linux-gnu",
    "LIBRARY_PATH": "/usr/local/cuda/lib64/stubs",
    "PKG_CONFIG_PATH": "/usr/lib/pkgconfig",
    "TRITON_CACHE_DIR": "/scratch/alice/.triton",
    "PIP_CACHE_DIR": "/scratch/alice/.cache/pip",
    "HF_HUB_CACHE": "/scratch/alice/.cache/huggingface/hub",
    "JUPYTER_PATH": "/opt/jupyter",
    "CARGO_HOME": "/home/alice/.cargo",
    "CUDA_MODULE_LOADING": "LAZY",
    "NVIDIA_VISIBLE_DEVICES": "all",
}
# Paths that still say credential: the name holds one of SECRET_PARTS.
CREDENTIAL_PATHS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/home/alice/.aws/credentials",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/alice/keys/sa.json",
    "VAULT_SECRET_FILE": "/run/vault/secret",
}


@pytest.mark.parametrize("name", sorted(LOCATIONS))
def test_a_location_ships_even_under_a_credential_prefix(name):
    assert withheld(name, LOCATIONS[name]) is None


@pytest.mark.parametrize("name", sorted(CREDENTIAL_PATHS))
def test_a_path_named_as_a_credential_stays_home(name):
    assert withheld(name, CREDENTIAL_PATHS[name]) == "secret"


PREFIX = st.sampled_from(["", "AWS_", "AZURE_", "GOOGLE_", "GCLOUD_", "VAULT_", "CUDA_", "MY_"])
STEM = st.from_regex(r"[A-Z]{1,8}(_[A-Z]{1,8}){0,2}", fullmatch=True)
LOCATION = st.sampled_from(["BUNDLE", "PATH", "FILE", "DIR", "HOME", "ROOT", "CACHE"])


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIX, stem=STEM, where=LOCATION, path=st.sampled_from(sorted(LOCATIONS.values())))
def test_a_location_name_with_a_path_ships_unless_it_says_credential(prefix, stem, where, path):
    """Any PREFIX_STEM_LOCATION=/a/path ships, unless a word of its stem is a credential's
    (KEY, TOKEN, SECRET...): the location word lifts the prefix rule only."""
    name = f"{prefix}{stem}_{where}"
    expected = None if not environment._secret_name(stem) else "secret"
    assert withheld(name, path) == expected


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIX, stem=STEM, where=LOCATION, value=st.sampled_from(SECRET_VALUES))
def test_a_location_name_never_ships_a_credential_value(prefix, stem, where, value):
    assert withheld(f"{prefix}{stem}_{where}", value) == "secret"


def test_a_sky_task_ships_all_that_passes_and_what_is_named(tmp_path):
    """The task the sky executor launches: 0 of the secrets, all of the ordinary variables
    with their values; a secret named in --export ships; nothing of a secret's value leaks
    anywhere in the task."""
    env = {**SECRETS, **ORDINARY, "PATH": "/usr/bin", "SLURM_JOB_ID": "3"}
    task = launched_task(_request(tmp_path, [], env), SKY)
    assert {k: v for k, v in task["envs"].items() if k in env} == ORDINARY
    text = json.dumps(task)
    assert [k for k, v in SECRETS.items() if json.dumps(v)[1:-1] in text and len(v) > 5] == []
    named = launched_task(_request(tmp_path, ["--export=ALL,MYSQL_PWD,JWT"], env), SKY)
    assert (named["envs"]["MYSQL_PWD"], named["envs"]["JWT"]) == (
        SECRETS["MYSQL_PWD"],
        SECRETS["JWT"],
    )
    assert set(named["envs"]) & set(SECRETS) == {"MYSQL_PWD", "JWT"}


def test_config_allow_and_deny(tmp_path):
    from slurmsky.config import Config

    cfg = Config(path="x", backend="sky", export={"allow": ["WANDB_*"], "deny": ["EXPERIMENT"]})
    env = {"WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567", "EXPERIMENT": "x", "A": "1"}
    task = launched_task(_request(tmp_path, [], env), cfg)
    assert {k: task["envs"].get(k) for k in env} == {
        "WANDB_API_KEY": env["WANDB_API_KEY"],
        "EXPERIMENT": None,
        "A": "1",
    }


NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(name=NAME, value=st.sampled_from(SECRET_VALUES), junk=st.text(max_size=10))
def test_a_secret_value_inside_other_text_stays_home(name, value, junk):
    assert withheld(name, f"{junk} {value} {junk}") in ("secret", "host")


def _translate(tmp: Path, *argv: str, env: dict) -> subprocess.CompletedProcess:
    (tmp / "job.sh").write_text("#!/bin/bash\ntrue\n")
    config = tmp / "c.yaml"
    config.write_text("backend: sky\n")
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, str(BIN / "slurmsky"), "translate", "--format", "json", *argv],
        cwd=tmp,
        env={**base, "SLURMSKY_CONFIG": str(config), "SLURMSKY_HOME": str(tmp / "s"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_translate_says_once_what_stayed_home(tmp_path):
    """`slurmsky translate`: the task carries no secret; stderr names each withheld
    credential once (names only, no value), and not the host-only variables."""
    out = _translate(tmp_path, "job.sh", env={**SECRETS, "WANDB_PROJECT": "p"})
    assert out.returncode == 0, out.stderr
    envs = json.loads(out.stdout)["envs"]
    assert envs["WANDB_PROJECT"] == "p" and not set(envs) & set(SECRETS)
    lines = [line for line in out.stderr.splitlines() if "stayed home" in line]
    assert len(lines) == 1
    assert lines[0].startswith("sbatch: warning: environment variables that look like ")
    assert lines[0].endswith(": " + ",".join(sorted(SECRETS)))
    assert "PATH" not in lines[0].split(": ")[-1].split(",")
    assert not any(v in out.stderr for v in SECRETS.values() if len(v) > 3)
    quiet = _translate(tmp_path, "--export=ALL,MYSQL_PWD", "job.sh", env={"MYSQL_PWD": "pw"})
    assert quiet.returncode == 0 and "stayed home" not in quiet.stderr
    assert json.loads(quiet.stdout)["envs"]["MYSQL_PWD"] == "pw"


def test_sbatch_on_sky_keeps_secrets_home_and_out_of_the_state(tmp_path):
    """sbatch on the sky backend: the warning once on stderr before the id; neither the
    stored task nor anything else in the state directory holds a secret's value (the submit
    environment is not stored: the task carries what ships)."""
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "LANG")},
        **SECRETS,
        **ORDINARY,
        "HOME": str(tmp_path),
        "SLURMSKY_HOME": str(tmp_path / "state"),
        "SLURMSKY_BACKEND": "sky",
        "SKYPILOT_API_SERVER_LOCAL_PORT": "9",
        "SLURMSKY_CONFIG": str(tmp_path / "none.yaml"),
    }
    try:
        out = subprocess.run(
            [sys.executable, str(BIN / "sbatch"), "job.sh"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and out.stdout == "Submitted batch job 1\n", out
        assert out.stderr.count("stayed home") == 1 and out.stderr.endswith(
            ": " + ",".join(sorted(SECRETS)) + "\n"
        )
        from slurmsky.core.state import get_spec  # the spec as stored (schema 4: in blobs)

        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            spec, task = get_spec(db, 1)
        assert spec.get("environment") is None
        assert {k: v for k, v in task["envs"].items() if k in env} == ORDINARY
        stored = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
        leaked = [k for k, v in SECRETS.items() if len(v) > 5 and v.encode() in stored]
        assert leaked == []
    finally:
        subprocess.run(
            [sys.executable, str(BIN / "slurmsky"), "agent", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
        )
