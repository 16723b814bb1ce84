"""Security: what reaches a cloud task (export policy), the step channel's secret, file modes,
and other users' jobs."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from conftest import BIN, _session
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_fixtures.cluster import local_job  # noqa: F401
from users import needs_user, other_users_python

from slurmsky.backends.sky.launcher import launch_task
from slurmsky.backends.sky.task import translate
from slurmsky.config import Config
from slurmsky.parse.request import build_batch_request, parse_command_line
from slurmsky.plan.environment import job_environment
from slurmsky.runtime import channel
from slurmsky.runtime.spec import SECRET_VAR

SKY = Config(path="x", backend="sky")
# Credentials by convention: every one of these forms is kept home unless named.
SECRET_FORMS = (
    "{}_KEY",
    "{}_KEY_ID",
    "{}_TOKEN",
    "{}_SECRET",
    "{}_SECRET_{}",
    "{}PASSWORD{}",
    "{}PASSWD{}",
    "{}_PASS",
    "{}CREDENTIAL{}",
    "AWS_{}",
    "GOOGLE_{}",
    "GCLOUD_{}",
    "AZURE_{}",
    "SSH_{}",
    "GPG_{}",
    "KRB5{}",
)
STEM = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}", fullmatch=True)
SECRET_NAMES = st.builds(
    lambda form, stem, upper: form.format(stem, stem) if upper else form.format(stem, stem).lower(),
    st.sampled_from(SECRET_FORMS),
    STEM,
    st.booleans(),
)
# Names no deny pattern can match: none of KEY, TOKEN, SECRET, PASS, CRED, AUTH, no denied
# prefix (the alphabet after the first letter has no A, C, E, I, K, O, P, S, T, U, W, X, Y).
PLAIN_NAMES = st.from_regex(r"[B-J][BDFGHJLMNQRVZ0-9_]{0,10}", fullmatch=True)


def _request(tmp: Path, argv: list[str], env: dict):
    (tmp / "job.sh").write_text("#!/bin/bash\ntrue\n")
    return build_batch_request(
        parse_command_line("sbatch", [*argv, "job.sh"]), env, str(tmp), lambda: b""
    )


def launched_task(req, cfg: Config) -> dict:
    """The task the sky executor hands to sky.jobs.launch for this request: the stored task
    and spec (with the full submit environment, as sbatch stores it) through launch_task."""
    tr = translate(req, cfg, job_id=5)
    spec = dict(tr.spec, environment=job_environment(req, cfg, for_cloud=False))
    job = SimpleNamespace(submission=5, job_id=5, array_task_id=None, restarts=0)
    return launch_task(tr.task, spec, job, {"instance": "i", "token": "token"}, whole=False)


@settings(max_examples=150, deadline=None)
@given(secret=SECRET_NAMES, plain=PLAIN_NAMES)
def test_secrets_reach_a_sky_task_only_when_named(secret, plain):
    tmp = Path(tempfile.mkdtemp())
    try:
        env = {secret: "value-of-the-secret", plain: "plain value"}
        task = launched_task(_request(tmp, [], env), SKY)
        assert task["envs"][plain] == "plain value"
        assert secret not in task["envs"]
        assert "value-of-the-secret" not in json.dumps(task)
        named = launched_task(_request(tmp, [f"--export=ALL,{secret}"], env), SKY)
        assert (named["envs"][secret], named["envs"][plain]) == (
            "value-of-the-secret",
            "plain value",
        )
        only = launched_task(_request(tmp, [f"--export={secret}"], env), SKY)
        assert only["envs"][secret] == "value-of-the-secret" and plain not in only["envs"]
    finally:
        shutil.rmtree(tmp)


def test_the_step_secret_travels_as_a_sky_secret(tmp_path):
    env = {
        "AWS_SECRET_ACCESS_KEY": "aws",
        "GITHUB_TOKEN": "gh",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "DB_PASSWORD": "pw",
        "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
        "AZURE_X": "az",
        "KEEP": "1",
    }
    task = launched_task(_request(tmp_path, [], env), SKY)
    assert task["envs"] == {"KEEP": "1"}
    assert list(task["secrets"]) == [SECRET_VAR] and len(task["secrets"][SECRET_VAR]) == 64
    assert task["secrets"][SECRET_VAR] not in json.dumps(
        {k: v for k, v in task.items() if k != "secrets"}
    )
    assert all(value not in json.dumps(task) for key, value in env.items() if key != "KEEP")


def test_the_local_backend_exports_everything_as_slurm_does(cluster):
    env = {
        "AWS_SECRET_ACCESS_KEY": "aws",
        "GITHUB_TOKEN": "gh",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "DB_PASSWORD": "pw",
        "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
    }
    job = cluster.sbatch("--wrap", "env > env.txt", env=env)
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    seen = dict(
        line.split("=", 1)
        for line in (cluster.cwd / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert {k: seen.get(k) for k in env} == env


def test_port_squatting_cannot_stop_a_job(cluster):
    """Another local user listening on every port of the old formula for the next ids (and
    the ports around them, on every address) stops no job: node 0 binds a port the OS
    chooses and publishes it in the job's private rundir; a 1-node and a 2-node job with
    steps on both nodes run to COMPLETED."""
    held = []
    try:
        squatted = range(channel.PORT_BASE, channel.PORT_BASE + 100)
        assert all(set(channel.ports(job_id)) <= set(squatted) for job_id in (1, 2))
        for port in squatted:
            sock = socket.socket()
            try:
                sock.bind(("0.0.0.0", port))
                sock.listen(8)
                held.append(sock)
            except OSError:  # already taken by someone else: held all the same
                sock.close()
        assert len(held) > 90
        one = cluster.sbatch("-o", "one.out", "--wrap", "srun hostname")
        two = cluster.sbatch("-N2", "-o", "two.out", "--wrap", "srun -N2 -n2 -l echo hi | sort")
        assert (one, two) == (1, 2)
        assert [r[1] for r in cluster.wait_done(one, two, timeout=120)] == ["COMPLETED"] * 2
        assert (cluster.cwd / "one.out").read_text() == socket.gethostname() + "\n"
        assert (cluster.cwd / "two.out").read_text() == "0: hi\n1: hi\n"
    finally:
        for sock in held:
            sock.close()


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def test_the_step_secret_stays_in_the_node_runtimes(cluster):
    """A two-node job with a step running: the secret (in the node runtimes' environment
    only) is in no job process's argv or environment, no file of the job or the state dir,
    and not in what scontrol/squeue/sacct show."""
    step = "touch ready-$SLURM_PROCID; while [ ! -e stop ]; do sleep 0.1; done"
    job = cluster.sbatch("-N2", "--wrap", f"srun -N2 -n2 bash -c '{step}'; env > batch.env")
    cluster.wait_for(
        lambda: all((cluster.cwd / f"ready-{r}").exists() for r in (0, 1)), 60, "both tasks"
    )
    leaders = cluster.job_pids()
    secrets = {psutil.Process(pid).environ()[SECRET_VAR] for pid in leaders}
    assert len(leaders) == 2 and len(secrets) == 1
    secret = secrets.pop()
    seen = 0
    for pid in [pid for leader in leaders for pid in _session(leader)]:
        try:  # the tasks' `sleep 0.1` come and go
            p = psutil.Process(pid)
            argv, environ = p.cmdline(), p.environ()
        except psutil.NoSuchProcess:
            continue
        seen += 1
        assert secret not in " ".join(argv)
        if pid not in leaders:
            assert secret not in json.dumps(environ)
    assert seen >= 6  # 2 runtimes, the batch shell, srun, 2 tasks at least

    def nowhere():
        shown = "".join(
            cluster.run(*argv).stdout
            for argv in (
                ("scontrol", "show", "job", "-d", str(job)),
                ("squeue", "-o", "%all"),
                ("sacct", "-o", "ALL"),
            )
        )
        assert str(job) in shown and secret not in shown
        for path in _files(cluster.state, cluster.cwd):
            assert secret.encode() not in path.read_bytes(), path

    nowhere()
    (cluster.cwd / "stop").touch()
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    nowhere()


def test_nothing_runs_without_the_secret(local_job):  # noqa: F811
    """A multi-node job whose runtimes got no secret fails before starting anything."""
    job = local_job(2, script="#!/bin/bash\ntouch ran\n").start(secrets=["", ""])
    result = job.wait(30)
    assert (result["state"], result["reason"]) == (
        "FAILED",
        f"cannot run the job: {SECRET_VAR} is not set",
    )
    assert [p.returncode for p in job.procs] == [1, 1]
    assert not (job.workdir / "ran").exists()
    assert f"{SECRET_VAR} is not set" in job.log(1)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_files_follow_the_umask_and_state_is_private(cluster, umask):
    """Output files get the user's umask (as Slurm creates them); the state dir is 0700, the
    state database 0600 whatever the umask, and nothing in it is more open than the umask
    allows, nor world-writable."""
    old = os.umask(umask)
    try:
        job = cluster.sbatch("-o", "out-%j.txt", "--wrap", "echo hi")
        default = cluster.sbatch("--wrap", "echo hi")
        cluster.wait_done(job, default)
    finally:
        os.umask(old)
    file_mode = 0o666 & ~umask

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(cluster.cwd / f"out-{job}.txt") == file_mode
    assert mode(cluster.cwd / f"slurm-{default}.out") == file_mode
    assert mode(cluster.state) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(cluster.state / name) == 0o600
    assert mode(cluster.state / "agent.log") == 0o600
    assert mode(cluster.state / "jobs" / str(job)) == 0o700
    assert mode(cluster.state / "jobs" / str(job) / "result.json") == 0o600
    for path in [cluster.state, *cluster.state.rglob("*")]:
        allowed = 0o777 & ~umask if path.is_dir() else file_mode
        assert mode(path) & ~allowed == 0 and not mode(path) & stat.S_IWOTH, path


def test_a_state_dir_made_open_is_made_private_again(cluster):
    """SLURMSKY_HOME made 0755 beforehand, and a state of an earlier slurmsky with state.db
    0644 (as the umask made it): the next command (any: squeue reads only) makes the
    directory 0700 and the database files 0600 before it opens them."""
    cluster.state.mkdir(mode=0o755)
    cluster.state.chmod(0o755)
    assert cluster.run("squeue").returncode == 0
    assert stat.S_IMODE(cluster.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((cluster.state / "state.db").stat().st_mode) == 0o600
    job = cluster.sbatch("--wrap", "true")
    cluster.wait_done(job)
    cluster.state.chmod(0o755)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (cluster.state / name).chmod(0o644)
    assert cluster.run("squeue").returncode == 0
    assert stat.S_IMODE(cluster.state.stat().st_mode) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert stat.S_IMODE((cluster.state / name).stat().st_mode) == 0o600, name


@needs_user("peeruser")
def test_another_users_job_is_refused_and_root_may_act(cluster):
    """A state dir root shares with peeruser: peeruser's scancel/scontrol on root's job are
    refused with Slurm's messages and exit codes and change nothing; root may act on
    peeruser's job (stored as peeruser's: sbatch needs libraries peeruser's python lacks)."""
    peer = pwd.getpwnam("peeruser").pw_uid
    shared = Path(tempfile.mkdtemp(prefix="slurmsky-shared-"))
    try:
        shared.chmod(0o777)
        cluster.state = shared / "state"  # teardown stops this dir's agent
        cluster.env["SLURMSKY_HOME"] = str(cluster.state)
        old = os.umask(0)  # every file of the state dir open to peeruser
        try:
            mine = cluster.sbatch("--hold", "--wrap", "true", cwd=shared)
            theirs = cluster.sbatch("--hold", "--wrap", "true", cwd=shared)
        finally:
            os.umask(old)
        # shared on purpose: peeruser's commands cannot make it private again (not theirs)
        for path in (cluster.state, *cluster.state.glob("state.db*")):
            path.chmod(0o777 if path.is_dir() else 0o666)
        with cluster.db() as conn:
            conn.execute(
                "UPDATE jobs SET user = 'peeruser', uid = ?, gid = ? WHERE job_id = ?",
                (peer, peer, theirs),
            )

        def as_peer(*argv: str) -> tuple[int, str, str]:
            out = subprocess.run(
                [other_users_python(), str(BIN / argv[0]), *argv[1:]],
                cwd=shared,
                env=cluster.env,
                user=peer,
                group=peer,
                capture_output=True,
                text=True,
                timeout=60,
            )
            return out.returncode, out.stdout, out.stderr

        denied = "Access/permission denied"
        assert as_peer("scancel", str(mine)) == (
            210,
            "",
            f"scancel: error: Kill job error on job id {mine}: {denied}\n",
        )
        # as the real Slurm peer answers peeruser about root's job
        not_owner = "Invalid user id"
        for op in ("hold", "uhold", "release"):
            assert as_peer("scontrol", op, str(mine)) == (
                1,
                "",
                f"{not_owner} for job {mine}\nslurm_suspend error: {not_owner}\n",
            )
        assert as_peer("scontrol", "requeue", str(mine)) == (1, "", f"{denied} for job {mine}\n")
        assert as_peer("scontrol", "update", f"JobId={mine}", "TimeLimit=5") == (
            1,
            "",
            f"{not_owner} for job {mine}\n",
        )
        row = "SELECT user, state, reason, held, time_limit, comment FROM jobs WHERE job_id = ?"
        with cluster.db() as conn:
            assert conn.execute(row, (mine,)).fetchone() == (
                "root",
                "PENDING",
                "JobHeldUser",
                "user",
                None,
                None,
            )
        for argv in (
            ("scontrol", "update", f"JobId={theirs}", "TimeLimit=5"),
            ("scancel", str(theirs)),
            ("scancel", str(mine)),
        ):
            out = cluster.run(*argv)
            assert (out.returncode, out.stderr) == (0, "")
        with cluster.db() as conn:
            assert conn.execute(
                "SELECT user, state, cancelled_by, time_limit FROM jobs WHERE job_id = ?", (theirs,)
            ).fetchone() == ("peeruser", "CANCELLED", 0, 5)
    finally:
        cluster.teardown()
        shutil.rmtree(shared)
