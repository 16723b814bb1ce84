"""The sky backend's parts that need no API server: SkyPilot's statuses in Slurm's words,
the run command on a "node" here (runtime + output emitter -> submit-host files), the
translated tasks against SkyPilot's own schema, the SDK calls against SkyPilot's signatures,
and the read side staying free of SkyPilot."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.client import QUEUE_FIELDS
from slurmsky.backends.sky.output import LogReader, sky_run
from slurmsky.backends.sky.task import translate, workdir_lines
from slurmsky.config import Config
from slurmsky.parse.request import build_batch_request, parse_command_line

ROOT = Path(__file__).resolve().parent.parent
sky = pytest.importorskip("sky")


def _request(tmp_path: Path, script: str, *argv: str):
    (tmp_path / "job.sh").write_text(script)
    return build_batch_request(
        parse_command_line("sbatch", [*argv, "job.sh"]),
        {"HOME": "/home/u", "AWS_SECRET_ACCESS_KEY": "x", "KEEP": "1"},
        str(tmp_path),
        lambda: b"",
    )


def _job(
    tmp_path: Path, stdout: str, stderr: str | None = None, job_id: int = 0
) -> SimpleNamespace:
    """What LogReader reads of a JobRecord: its id, its files, and its workdir (files home)."""
    return SimpleNamespace(
        job_id=job_id,
        stdout=str(tmp_path / stdout),
        stderr=str(tmp_path / (stderr or stdout)),
        workdir=str(tmp_path),
    )


def run_on_node(tmp_path: Path, run: str, **env: str) -> subprocess.CompletedProcess:
    """A task's `run` as SkyPilot's bash runs it on one node (rank 0 of 1), in its synced
    workdir (kept from one call to the next), with the runtime where the file mount puts it."""
    workdir, home = tmp_path / "sky_workdir", tmp_path / "nodehome"
    workdir.mkdir(exist_ok=True)  # a cluster's: the same for every job on it
    if not (home / ".slurmsky" / "runtime").exists():
        (home / ".slurmsky" / "runtime").mkdir(parents=True)
        (home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
    base = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "SKYPILOT_NODE_RANK": "0",
        "SKYPILOT_NODE_IPS": "127.0.0.1",
        "SKYPILOT_NUM_NODES": "1",
    }
    return subprocess.run(
        ["bash", "-c", run],
        cwd=workdir,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_skypilot_status_has_a_slurm_state():
    names = {s.value for s in sky.ManagedJobStatus}
    assert names == set(skysync.ACTIVE) | set(skysync.FINAL)
    assert {s.value for s in sky.ManagedJobStatus if s.is_terminal()} == set(skysync.FINAL)


def test_final_results_from_skypilot_and_from_the_runtime():
    pre = {
        "status": "FAILED_PRECHECKS",
        "start_at": None,
        "end_at": 5.0,
        "failure_reason": "\x1b[31m[sky.exceptions.NoCloudAccessError]\x1b[0m Cloud access is "
        "not set up.\n Run: sky check",
    }
    assert skysync.result_of(pre, None) == {
        "state": "FAILED",
        "exit_code": 1,
        "signal": 0,
        "start": None,
        "end": 5.0,
        "reason": "[sky.exceptions.NoCloudAccessError] Cloud access is not set up. Run: sky check",
    }
    failed = {
        "status": "FAILED",
        "start_at": 1.0,
        "end_at": 9.0,
        "failure_reason": "Job exited with exit code 3 (user program failure)",
    }
    assert skysync.result_of(failed, None)["exit_code"] == 3
    assert skysync.result_of(failed, None)["reason"] is None  # Slurm's NonZeroExitCode then
    timeout = {"state": "TIMEOUT", "exit_code": 0, "signal": 15, "start": 1.0, "end": 8.0}
    assert skysync.result_of(failed, timeout) == timeout  # the runtime knows best
    assert (
        skysync.result_of({"status": "CANCELLED", "end_at": 3.0}, timeout)["state"] == "CANCELLED"
    )
    assert (
        skysync.result_of(
            {"status": "FAILED_CONTROLLER", "end_at": 3.0, "failure_reason": "boom"}, None
        )["state"]
        == "NODE_FAIL"
    )


def test_foreign_jobs_get_ids_slurmsky_never_allocates():
    rec = {
        "job_id": 12,
        "job_name": "theirs",
        "user_name": "ann",
        "user_hash": "abcd1234",
        "resources": "2x[CPU:4+]",
        "submitted_at": 100.0,
        "status": "RUNNING",
    }
    row = skysync.foreign_row(rec, own_user_hash="ffff0000")
    assert row["job_id"] == skysync.FOREIGN_BASE + 12 == 1_000_000_012
    assert (row["num_nodes"], row["num_cpus"], row["uid"]) == (2, 8, -1)
    assert row["executor_ref"] == {"sky_job_id": 12, "foreign": True}
    assert skysync.foreign_row(rec, own_user_hash="abcd1234")["uid"] == os.getuid()
    assert (
        skysync.job_view(
            [dict(rec, task_id=1, status="PENDING"), dict(rec, task_id=0, status="SUCCEEDED")]
        )["task_id"]
        == 1
    )


def test_log_markers_rebuild_the_output_files(tmp_path):
    """Markers arrive inside SkyPilot's prefixed, coloured lines, split anywhere; bytes land at
    their offsets; a restart marker starts the files afresh (or after them, in append mode)."""
    import base64

    def line(kind, offset, data):
        return (
            f"\x1b[36m(two, pid=12)\x1b[0m SLURMSKY-IO {kind} {offset} "
            f"{base64.b64encode(data).decode()}\r\n"
        )

    (tmp_path / "out").write_bytes(b"old")
    reader = LogReader(_job(tmp_path, "out", "err"), append=False)
    text = (
        line("s", 0, b"")
        + "other line\n"
        + line("o", 0, b"hello ")
        + line("e", 0, b"oops\n")
        + line("o", 6, b"world\n")
        + line("r", 0, json.dumps({"state": "COMPLETED", "exit_code": 0}).encode())
    )
    for k in range(0, len(text), 7):
        reader.write(text[k : k + 7])
    assert (tmp_path / "out").read_bytes() == b"hello world\n"
    assert (tmp_path / "err").read_bytes() == b"oops\n"
    assert reader.result == {"state": "COMPLETED", "exit_code": 0}
    again = LogReader(_job(tmp_path, "out", "err"), append=True)
    again.write(line("s", 0, b"") + line("o", 0, b"more\n"))
    assert (tmp_path / "out").read_bytes() == b"hello world\nmore\n"
    # a live read broke off; the log is read again from its start: nothing twice
    again.rewind().write(line("s", 0, b"") + line("o", 0, b"more\n") + line("o", 5, b"again\n"))
    assert (tmp_path / "out").read_bytes() == b"hello world\nmore\nagain\n"
    again.rewind().write(line("s", 0, b"") + line("o", 0, b"more\nagain\n") + line("s", 0, b""))
    again.write(line("o", 0, b"requeued\n"))  # a second start: after what the files hold
    assert (tmp_path / "out").read_bytes() == b"hello world\nmore\nagain\nrequeued\n"


def test_run_command_on_a_local_node(tmp_path):
    """The task's run, as SkyPilot's bash would run it on one node: the runtime runs the
    script, the emitter puts its output and RESULT in the log, the reader rebuilds them."""
    req = _request(
        tmp_path,
        "#!/bin/bash\necho out $SLURM_JOB_ID $SLURM_ARRAY_TASK_ID\necho err >&2\nexit 3\n",
        "-e",
        "e-%j.log",
        "--array=4-6",
    )
    spec = translate(req, Config(path="x"), job_id=40).spec
    node = dict(spec, output=".slurmsky/stdout", error=".slurmsky/stderr")
    run = run_on_node(
        tmp_path,
        sky_run(node, workdir=None),
        SKYPILOT_JOB_RANK="1",
        SKYPILOT_TASK_ID="sky-managed-x_job_8-0",
    )
    assert run.returncode == 3, run.stderr
    reader = LogReader(_job(tmp_path, "out-42.txt", "e-42.log"), append=False)
    reader.write(run.stdout)
    assert (tmp_path / "out-42.txt").read_text() == "out 42 5\n"
    assert (tmp_path / "e-42.log").read_text() == "err\n"
    assert (reader.result["state"], reader.result["exit_code"]) == ("FAILED", 3)


def test_steps_in_sacct_are_on_the_nodes_skypilot_named(tmp_path):
    """Inside the job the nodes are their IPs (they must resolve); the RESULT a real run
    leaves names its steps' nodes by rank, so sacct shows them as squeue shows the job's:
    by SkyPilot's node names."""
    req = _request(tmp_path, "#!/bin/bash\nsrun -n1 true\n")
    node = dict(translate(req, Config(path="x"), job_id=9).spec, output=".slurmsky/stdout")
    run = run_on_node(tmp_path, sky_run(node, workdir=None), SKYPILOT_TASK_ID="t-9")
    assert run.returncode == 0, run.stderr
    reader = LogReader(_job(tmp_path, "out-9.txt", "out-9.txt"), append=False)
    reader.write(run.stdout)
    assert [(s["id"], s["nodes"], s.get("ranks")) for s in reader.result["steps"]] == [
        ("batch", "127.0.0.1", None),
        (0, "127.0.0.1", [0]),
    ]
    rec = {"status": "SUCCEEDED", "end_at": 9.0, "node_names": "sky-1234-head"}
    named = skysync.result_of(rec, reader.result)
    assert [s["nodes"] for s in named["steps"]] == ["sky-1234-head"] * 2
    assert skysync.active_fields(rec | {"status": "RUNNING"}, None, 1.0)["batch_host"] == (
        "sky-1234-head"
    )


def test_chdir_to_a_cluster_path_runs_there_and_a_local_one_is_uploaded(tmp_path):
    """-D naming a local directory stays SkyPilot's workdir (an upload); a path that exists
    only on the cluster is no upload: the node runtime changes to it, the emitter reads the
    output there, and translate says which."""
    local = tmp_path / "here"
    local.mkdir()
    script = "#!/bin/bash\npwd\necho err >&2\n"
    up = translate(_request(tmp_path, script, "-D", str(local)), Config(path="x"))
    assert up.task["workdir"] == str(local)
    assert workdir_lines(str(local)) == [f"uploads {local}: 0 files, 0.0 MB (SkyPilot's rules)"]
    scratch = tmp_path / "scratch" / "run"  # not here at translation: "on the cluster"
    req = _request(tmp_path, script, "-D", str(scratch))
    far = translate(req, Config(path="x"), job_id=7)
    assert "workdir" not in far.task
    assert workdir_lines(str(scratch)) == [
        f"workdir {scratch}: not a local directory; the job changes to it on the node"
    ]
    node = dict(far.spec, output=".slurmsky/stdout", error=".slurmsky/stderr")
    home, sky_home = tmp_path / "nodehome", tmp_path / "skyhome"
    (home / ".slurmsky" / "runtime").mkdir(parents=True)
    (home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
    scratch.mkdir(parents=True)
    sky_home.mkdir()
    run = subprocess.run(
        ["bash", "-c", sky_run(node, workdir=str(scratch))],
        cwd=sky_home,  # where SkyPilot runs `run` without a workdir
        env={"HOME": str(home), "PATH": os.environ["PATH"], "SKYPILOT_TASK_ID": "t-0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    reader = LogReader(_job(tmp_path, "out-7.txt", "err-7.txt"), append=False)
    reader.write(run.stdout)
    assert (tmp_path / "out-7.txt").read_text() == f"{scratch}\n"
    assert (tmp_path / "err-7.txt").read_text() == "err\n"
    test_only = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bin" / "sbatch"),
            "--test-only",
            "-D",
            "/no/such/scratch",
            "job.sh",
        ],
        cwd=tmp_path,
        env=dict(
            os.environ,
            SLURMSKY_BACKEND="sky",
            SLURMSKY_HOME=str(tmp_path / "st"),
            HOME=str(tmp_path),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert test_only.returncode == 0, test_only.stderr
    lines = test_only.stderr.splitlines()  # Slurm's line, the task's warnings, then the task
    note = "# workdir /no/such/scratch: not a local directory; the job changes to it on the node"
    assert note in lines and all(x.startswith("sbatch: ") for x in lines[: lines.index(note)])


def test_translate_output_runs_as_a_num_jobs_batch(tmp_path):
    """`slurmsky translate` of an array, launched with `sky jobs launch --num-jobs 3` as its
    first lines say: each managed job (SKYPILOT_MANAGED_JOB_ID, SKYPILOT_JOB_RANK) runs its
    own element, with SkyPilot's ids standing in for the Slurm ids it never got."""
    import yaml

    (tmp_path / "arr.sh").write_text(
        "#!/bin/bash\n#SBATCH --array=1-9:4\n"
        "echo $SLURM_JOB_ID $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT\n"
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "slurmsky"), "translate", "arr.sh"],
        cwd=tmp_path,
        env=dict(os.environ, SLURMSKY_CONFIG=str(tmp_path / "none.yaml")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "# an array of 3: sky jobs launch --num-jobs 3 THIS_FILE"
    task = yaml.safe_load(out.stdout)
    assert len(task["secrets"]["SLURMSKY_STEP_SECRET"]) == 64
    home = tmp_path / "nodehome"
    (home / ".slurmsky" / "runtime").mkdir(parents=True)
    (home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
    for rank, sky_id in enumerate((20, 21, 22)):
        run = subprocess.run(
            ["bash", "-c", task["run"]],
            cwd=tmp_path,
            env={
                "HOME": str(home),
                "PATH": os.environ["PATH"],
                "SKYPILOT_MANAGED_JOB_ID": str(sky_id),
                "SKYPILOT_JOB_RANK": str(rank),
                "SKYPILOT_TASK_ID": f"t-{sky_id}",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
    for rank, index in enumerate((1, 5, 9)):
        assert (tmp_path / f"slurm-20_{index}.out").read_text() == f"{20 + rank} 20 {index} 3\n"


def test_translated_tasks_pass_skypilots_validation(tmp_path):
    """The stored task and what the executor launches (with its secret and metadata)."""
    from slurmsky.runtime.spec import SECRET_VAR

    cfg = Config(
        path="x",
        backend="sky",
        partitions={
            "gpu": {
                "default": True,
                "infra": "slurm/peer/gpu",
                "accelerators": ["A100", "H100"],
                "use_spot": False,
                "image_id": "docker:ubuntu:22.04",
            }
        },
    )
    for argv in ([], ["-N", "2", "--gres=gpu:2", "--mem=8G", "-c", "4"], ["--array=0-9%2"]):
        req = _request(tmp_path, "#!/bin/bash\nsrun hostname\n", *argv)
        task = translate(req, cfg, job_id=5).task
        assert "AWS_SECRET_ACCESS_KEY" not in task.get("envs", {})
        spec = translate(req, cfg, job_id=5).spec
        task.update(
            run=sky_run(spec, workdir=None),
            secrets={SECRET_VAR: "s3cret"},
            _metadata={"slurmsky": {"instance": "i", "token": "t", "job_id": 5}},
        )
        parsed = sky.Task.from_yaml_config(json.loads(json.dumps(task)))
        assert parsed.metadata["slurmsky"]["token"] == "t"
        assert SECRET_VAR not in parsed.envs
        assert parsed.secrets[SECRET_VAR].get_secret_value() == "s3cret"


def test_sdk_calls_match_skypilots_signatures():
    """Every SkyPilot call the executor makes, with the arguments it passes."""
    calls = [
        (sky.jobs.launch, ("task",), {"name": "n", "num_jobs": 4}),
        (
            sky.jobs.queue_v2,
            (),
            {
                "refresh": False,
                "all_users": True,
                "fields": ["job_id"],
                "skip_finished": True,
                "job_ids": [1],
            },
        ),
        (sky.jobs.cancel, (), {"job_ids": [1]}),
        (sky.jobs.tail_logs, (), {"job_id": 1, "follow": False, "output_stream": None}),
        (sky.stream_and_get, ("rid",), {"output_stream": None}),
        (sky.get, ("rid",), {}),
    ]
    for fn, args, kwargs in calls:
        inspect.signature(fn).bind(*args, **kwargs)
    from sky.schemas.api.responses import ManagedJobRecord
    from sky.server import common

    inspect.signature(common.get_server_url).bind()
    assert set(QUEUE_FIELDS) <= set(ManagedJobRecord.model_fields)


def test_sbatch_and_squeue_on_the_sky_backend_never_import_skypilot(tmp_path):
    """sbatch stores and returns (the agent it wakes does the SkyPilot part), over one infra,
    several (a list, -p a,b) or one SkyPilot's schema refuses; squeue reads."""
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    (tmp_path / "slurmsky.yaml").write_text(
        "partitions:\n  plain:\n    default: true\n"
        "  cloud:\n    infra: [aws/us-east-1, gcp]\n    spot_fallback: true\n"
        "  lab:\n    infra: {k8s/lab, k8s/other}\n  bad:\n    infra: [aws, nowhere]\n"
    )
    probe = (
        "import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
        "'SKY-IMPORTED\\n' if 'sky' in sys.modules else 'SKY-FREE\\n')); "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    env = dict(
        os.environ,
        HOME=str(tmp_path),
        SLURMSKY_HOME=str(tmp_path / "state"),
        SLURMSKY_BACKEND="sky",
        SKYPILOT_API_SERVER_LOCAL_PORT="9",
        SLURMSKY_CONFIG=str(tmp_path / "slurmsky.yaml"),
    )
    runs = (
        (["sbatch", "job.sh"], 0),
        (["sbatch", "-p", "cloud", "job.sh"], 0),
        (["sbatch", "-p", "lab,cloud", "job.sh"], 0),
        (["sbatch", "-p", "lab,bad", "job.sh"], 1),
        (["squeue"], 0),
        (["sacct"], 0),
        (["scontrol", "show", "job"], 0),
    )
    try:
        for argv, rc in runs:
            out = subprocess.run(
                [sys.executable, "-c", probe, str(ROOT / "bin" / argv[0]), *argv[1:]],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert (out.returncode, "SKY-FREE" in out.stderr) == (rc, True), (argv, out.stderr)
        # squeue never waits for the agent; it finds no API server and the job waits, saying so
        deadline = time.monotonic() + 60
        while "(SkyPilotApiServerUnreachable:http://127.0.0.1:9)" not in out.stdout:
            assert time.monotonic() < deadline, out
            time.sleep(0.5)
            out = subprocess.run(
                [sys.executable, str(ROOT / "bin" / "squeue")],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
    finally:
        subprocess.run(
            [sys.executable, str(ROOT / "bin" / "slurmsky"), "agent", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
        )


def test_first_use_without_an_api_server_says_what_to_do(cluster):
    """No server answers: doctor names the endpoint and the remedy (exit 1), srun refuses in
    one line (exit 1), sbatch queues the job and warns once; the local backend's doctor is
    clean."""
    clean = cluster.run("slurmsky", "doctor")
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.splitlines()[0] == "backend:     local"
    assert clean.stdout.splitlines()[-1] == "doctor: no problems"
    cluster.env.update(SLURMSKY_BACKEND="sky", SKYPILOT_API_SERVER_LOCAL_PORT="9")
    cluster.env.pop("SKYPILOT_API_SERVER_ENDPOINT", None)
    remedy = (
        "start one with `slurmsky sky-server start` (or set SKYPILOT_API_SERVER_ENDPOINT to yours)"
    )
    out = cluster.run("slurmsky", "doctor")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    at = lines.index("api server:  http://127.0.0.1:9: unreachable")
    assert lines[at + 1] == f"             remedy: {remedy}"
    assert lines[-1] == "doctor: 1 problem"
    problem = (
        f"SkyPilot API server http://127.0.0.1:9 is unreachable: {remedy}; "
        "`slurmsky doctor` checks the setup"
    )
    srun = cluster.run("srun", "hostname")
    assert (srun.returncode, srun.stdout) == (1, "")
    assert srun.stderr == f"srun: error: Unable to allocate resources: {problem}\n"
    assert not cluster.jobs()  # nothing half-done
    cluster.script("job.sh", "#!/bin/bash\necho hi\n")
    sbatch = cluster.run("sbatch", "job.sh")
    assert (sbatch.returncode, sbatch.stdout) == (0, "Submitted batch job 1\n")
    # (after the export policy's own warning, if the environment holds credentials)
    last = sbatch.stderr.splitlines()[-1]
    assert last == f"sbatch: warning: {problem}; job 1 waits until it answers"
