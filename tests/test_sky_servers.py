"""Every job goes to the SkyPilot API server its sbatch named (backends/sky/server.py records
it, the executor sends each job there): switching servers, or one going away, never
strands a job.

The executor tests drive the real scheduler and SkyExecutor here against the fake SkyPilot
(fake_sky.py), whose world has several servers (SkyPilot job ids repeat across them), with
the real sbatch, squeue and scancel as subprocesses.
"""

from __future__ import annotations

import json

import pytest
from fake_sky import sky_world

from slurmsky.backends.sky import server

A = "http://127.0.0.1:47101"
B = "http://127.0.0.1:47102"
PARTITION = "  sky:\n    size: 4\n"


def _row(cluster, job_id: int) -> tuple:
    with cluster.db() as conn:
        return conn.execute(
            "SELECT state, reason, executor_ref FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()


def _stored_server(cluster, job_id: int) -> dict:
    with cluster.db() as conn:
        task = conn.execute("SELECT task FROM submissions WHERE id = ?", (job_id,)).fetchone()[0]
    return json.loads(task)["_metadata"]["slurmsky"]["server"]


def _gated(cluster, tmp_path) -> str:
    gate = tmp_path / "gate"
    cluster.script(
        "gated.sh", f"#!/bin/bash\nwhile [ ! -e {gate} ]; do sleep 0.1; done\necho done\n"
    )
    return str(gate)


def test_the_server_is_found_as_skypilot_finds_it_without_importing_it(tmp_path, monkeypatch):
    for var in ("SKYPILOT_API_SERVER_ENDPOINT", "SKYPILOT_API_SERVER_LOCAL_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SKYPILOT_GLOBAL_CONFIG", raising=False)
    assert server.current() == server.Server("http://127.0.0.1:46580", None)
    monkeypatch.setenv("SKYPILOT_API_SERVER_LOCAL_PORT", "47123")
    assert server.current() == server.Server("http://127.0.0.1:47123", None)
    config = tmp_path / ".sky" / "config.yaml"
    config.parent.mkdir()
    config.write_text("api_server:\n  endpoint: https://u:pw@team.example:8443/\n")
    assert server.current() == server.Server("https://u:pw@team.example:8443", str(config))
    assert server.current().name == "https://team.example:8443"  # reasons and refs name it
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", "http://10.0.0.5:46580")
    assert server.current() == server.Server("http://10.0.0.5:46580", str(config))


# SkyPilot's own answer, in a fresh process per case: the endpoint its client resolves
# and the config files it loads (each case: cwd, environment, JSON on the last line).
SKYPILOT_SAYS = """
import json
from sky import skypilot_config
from sky.server import common
skypilot_config.reload_config()
print(json.dumps([common.get_server_url(), skypilot_config.loaded_config_path()]))
"""


def test_the_project_config_is_found_as_skypilot_finds_it(tmp_path, monkeypatch):
    """SkyPilot 0.14.1 overlays the project's .sky.yaml (in the command's directory, or
    $SKYPILOT_PROJECT_CONFIG) on the user's config, and $SKYPILOT_CONFIG alone replaces
    both; server.current() names the endpoint and files SkyPilot's own client does, each
    case checked against it, without importing SkyPilot."""
    import os
    import subprocess
    import sys

    pytest.importorskip("sky")
    for var in ("SKYPILOT_API_SERVER_ENDPOINT", "SKYPILOT_API_SERVER_LOCAL_PORT"):
        monkeypatch.delenv(var, raising=False)
    for var in ("SKYPILOT_GLOBAL_CONFIG", "SKYPILOT_PROJECT_CONFIG", "SKYPILOT_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    user = tmp_path / ".sky" / "config.yaml"
    user.parent.mkdir()
    user.write_text("api_server:\n  endpoint: http://user.example:1/\n")
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".sky.yaml").write_text("api_server:\n  endpoint: http://u:pw@project.example:2\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".sky.yaml").write_text("jobs:\n  bucket: s3://b\n")  # no endpoint of its own
    other = tmp_path / "other.yaml"
    other.write_text("api_server:\n  endpoint: http://other.example:3\n")
    cases = [  # (cwd, environment, the Server slurmsky records)
        (tmp_path, {}, server.Server("http://user.example:1", str(user))),
        (
            project,
            {},
            server.Server("http://u:pw@project.example:2", str(user), str(project / ".sky.yaml")),
        ),
        (plain, {}, server.Server("http://user.example:1", str(user), str(plain / ".sky.yaml"))),
        (
            tmp_path,
            {"SKYPILOT_PROJECT_CONFIG": str(other)},
            server.Server("http://other.example:3", str(user), str(other)),
        ),
        (
            project,
            {"SKYPILOT_CONFIG": str(other)},
            server.Server("http://other.example:3", str(other)),
        ),
        (
            project,
            {"SKYPILOT_API_SERVER_ENDPOINT": "http://env.example:4"},
            server.Server("http://env.example:4", str(user), str(project / ".sky.yaml")),
        ),
    ]
    for cwd, env, expected in cases:
        monkeypatch.chdir(cwd)
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            assert server.current() == expected, (cwd, env)
            out = subprocess.run(
                [sys.executable, "-c", SKYPILOT_SAYS],
                capture_output=True,
                text=True,
                timeout=120,
                env=dict(os.environ, SKYPILOT_DISABLE_USAGE_COLLECTION="1"),
            )
        said_url, said_files = json.loads(out.stdout.splitlines()[-1])
        assert said_url == expected.url, (cwd, env, out.stderr[-2000:])
        files = [f for f in (expected.config, expected.project) if f]
        # SkyPilot names one file, or '<merged (a, b)>' (the project's relative to here)
        said = said_files.strip("<>").removeprefix("merged (").rstrip(")").split(", ")
        assert sorted(map(os.path.abspath, said)) == sorted(files), (cwd, env, said_files)


def test_a_job_goes_to_the_server_its_sbatch_named_and_no_other_queue_ends_it(
    cluster, tmp_path, monkeypatch
):
    with sky_world(cluster, tmp_path, monkeypatch, PARTITION) as world:
        cluster, fake, drive = world
        gate = _gated(cluster, tmp_path)
        first = cluster.sbatch("gated.sh", env={"SKYPILOT_API_SERVER_ENDPOINT": A})
        drive(lambda: _row(cluster, first)[0] == "RUNNING")
        # the user points SkyPilot at another server (with credentials in its URL)
        secret_b = B.replace("//", "//user:s3cret@")
        second = cluster.sbatch("gated.sh", env={"SKYPILOT_API_SERVER_ENDPOINT": secret_b})
        assert _stored_server(cluster, second) == {"url": secret_b, "config": None, "project": None}
        drive(lambda: _row(cluster, second)[0] == "RUNNING")
        assert sorted(fake.worlds) == [A, B]
        assert list(fake.worlds[A]) == [1] and list(fake.worlds[B]) == [1]  # ids repeat
        assert json.loads(_row(cluster, first)[2])["server"] == A
        assert json.loads(_row(cluster, second)[2])["server"] == B  # no credentials
        assert "s3cret" not in json.dumps(fake.worlds[B][1]["task"])  # nor sent to SkyPilot

        # several answers of each queue later, both still run: A's never ends B's job 1
        asked = len(fake.queried)
        drive(lambda: fake.queried[asked:].count(A) >= 3 and fake.queried[asked:].count(B) >= 3)
        assert [_row(cluster, j)[:2] for j in (first, second)] == [("RUNNING", "None")] * 2

        open(gate, "w").close()
        drive(lambda: all(_row(cluster, j)[0] == "COMPLETED" for j in (first, second)))
        for job_id in (first, second):
            assert (cluster.cwd / f"slurm-{job_id}.out").read_text() == "done\n"
        assert {t[:2] for t in fake.tailed} == {(A, 1), (B, 1)}  # each log where its job ran


def test_a_job_goes_to_the_server_of_the_project_config_of_its_sbatchs_directory(
    cluster, tmp_path, monkeypatch
):
    """The user's config names B; sbatch run in a directory whose .sky.yaml names A sends
    the job to A and records both files (the agent, elsewhere, launches under them)."""
    with sky_world(cluster, tmp_path, monkeypatch, PARTITION) as world:
        cluster, fake, drive = world
        user = cluster.home / ".sky" / "config.yaml"
        user.parent.mkdir(exist_ok=True)
        user.write_text(f"api_server:\n  endpoint: {B}\n")
        (cluster.cwd / ".sky.yaml").write_text(f"api_server:\n  endpoint: {A}\n")
        cluster.script("quick.sh", "#!/bin/bash\necho quick\n")
        for var in [v for v in cluster.env if v.startswith("SKYPILOT_")]:  # the host's
            del cluster.env[var]
        job = cluster.sbatch("quick.sh")
        assert _stored_server(cluster, job) == {
            "url": A,
            "config": str(user),
            "project": str(cluster.cwd / ".sky.yaml"),
        }
        drive(lambda: _row(cluster, job)[0] == "COMPLETED")
        assert list(fake.worlds) == [A]


def test_a_job_for_a_dead_server_pends_naming_it_and_scancel_ends_it_at_once(
    cluster, tmp_path, monkeypatch
):
    with sky_world(cluster, tmp_path, monkeypatch, PARTITION) as world:
        cluster, fake, drive = world
        fake.dead.add(B)
        cluster.script("quick.sh", "#!/bin/bash\necho quick\n")
        stranded = cluster.sbatch("quick.sh", env={"SKYPILOT_API_SERVER_ENDPOINT": B})
        reason = f"SkyPilotApiServerUnreachable:{B}"
        drive(lambda: _row(cluster, stranded)[:2] == ("PENDING", reason))
        out = cluster.run("squeue", "-h", "-o", "%i %t %R")
        assert out.stdout == f"{stranded} PD ({reason})\n", out.stderr

        # a job for a server that answers runs meanwhile
        fine = cluster.sbatch("quick.sh", env={"SKYPILOT_API_SERVER_ENDPOINT": A})
        drive(lambda: _row(cluster, fine)[0] == "COMPLETED")
        assert _row(cluster, stranded)[:2] == ("PENDING", reason)

        cancel = cluster.run("scancel", str(stranded), timeout=10)
        assert (cancel.returncode, cancel.stdout, cancel.stderr) == (0, "", "")
        assert _row(cluster, stranded)[0] == "CANCELLED"  # at once: no pass of the agent
        passes = iter(range(5))
        drive(lambda: next(passes, None) is None)  # a few passes of the agent after it
        assert _row(cluster, stranded)[0] == "CANCELLED"
        assert B not in fake.worlds  # nothing ever reached it


def test_sbatch_warns_of_the_server_it_names_not_the_one_the_agent_heard_last(
    tmp_path, monkeypatch
):
    """sbatch skips its health check when the agent's query of *that* server answered
    moments ago: a switch to a dead server is still said."""
    import time

    from slurmsky.backends.sky import BACKEND
    from slurmsky.backends.sky import sync as skysync

    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path))
    monkeypatch.delenv("SKYPILOT_GLOBAL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    skysync.record_sync(time.time(), None, A)  # A's queue answered just now (A never listens)
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", A)
    assert BACKEND.unreachable() is None
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", B)
    assert BACKEND.unreachable() == server.unreachable_message(B)


def test_an_allocation_its_cluster_and_its_steps_go_to_the_server_its_salloc_named(
    cluster, tmp_path, monkeypatch, capfd
):
    """salloc named B; srun in it names A (its own environment changed meanwhile): the
    cluster's launch, each step's exec and log and the cluster's down all go to B."""
    import threading

    from slurmsky.backends.sky import SkyBackend, client, steps
    from slurmsky.config import load_config
    from slurmsky.core import state, submit
    from slurmsky.core.allocation import Allocation
    from slurmsky.parse.request import build_step_request, parse_command_line

    monkeypatch.setattr(SkyBackend, "unreachable", lambda self: None)  # B never listens
    with sky_world(cluster, tmp_path, monkeypatch, PARTITION) as world:
        cluster, fake, drive = world
        monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", B)
        req = build_step_request(
            "salloc", parse_command_line("salloc", ["bash"]), dict(cluster.env), str(cluster.cwd)
        )
        job_id = submit.store(req, load_config(), batch=False)
        drive(lambda: _row(cluster, job_id)[0] == "RUNNING")
        assert json.loads(_row(cluster, job_id)[2])["server"] == B
        assert list(fake.clusters) == [B]

        monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", A)  # srun's own names A
        monkeypatch.setattr(client, "CLIENT", fake)
        capfd.readouterr()
        with state.connect() as conn:
            job = state.get_job(conn, job_id)
            step = ["bash", "-c", "echo on-$SLURM_STEP_ID; exit 4"]
            code = steps.run_step(conn, job, [], step, lambda *a: threading.Event())
        assert (code, capfd.readouterr().out) == (4, "on-0\n")

        with Allocation("salloc") as alloc:
            alloc.job_id = job_id
            alloc.relinquish(0, wait=0)
        drive(lambda: _row(cluster, job_id)[0] == "COMPLETED")
        assert fake.calls == [
            ("launch_cluster", B),
            ("exec", B),
            ("tail_cluster", B),
            ("down", B),
        ]
        assert A not in fake.worlds and A not in fake.clusters and fake.clusters[B] == {}


def test_a_pool_is_made_on_the_commands_server_and_its_jobs_and_commands_go_there(
    cluster, tmp_path, monkeypatch
):
    """`slurmsky pool up` under A records A with the pool: a job for the pool submitted under
    B runs on A, `pool status` and `pool down` under B act on A, the agent asks A for the
    pool's workers; once down, the pool's server is forgotten."""
    from click.testing import CliRunner

    from slurmsky.backends.sky import client, pools
    from slurmsky.backends.sky.cli import pool

    monkeypatch.setattr(server, "health", lambda where, timeout=5.0: {"status": "healthy"})
    with sky_world(cluster, tmp_path, monkeypatch, "  warm:\n    pool:\n      workers: 1\n") as w:
        cluster, fake, drive = w
        monkeypatch.setattr(client, "CLIENT", fake)
        runner = CliRunner()

        def tool(verb: str, where: str):
            out = runner.invoke(pool, [verb, "warm"], env={"SKYPILOT_API_SERVER_ENDPOINT": where})
            assert out.exit_code == 0, out.output
            return out.output

        assert tool("up", A) == "pool slurmsky-warm of partition warm: 1 worker(s) applied\n"
        assert pools.server_of("slurmsky-warm") == server.Server(A)
        cluster.script("quick.sh", "#!/bin/bash\necho pooled\n")
        job = cluster.sbatch("quick.sh", "-p", "warm", env={"SKYPILOT_API_SERVER_ENDPOINT": B})
        assert _stored_server(cluster, job)["url"] == A
        drive(lambda: _row(cluster, job)[0] == "COMPLETED")
        assert list(fake.worlds) == [A] and fake.worlds[A][1]["task"]["_metadata"]["slurmsky"][
            "pool"
        ] == ("slurmsky-warm")
        assert (cluster.cwd / f"slurm-{job}.out").read_text() == "pooled\n"
        drive(lambda: (A, ["slurmsky-warm"]) in fake.pools_asked)  # the agent's sinfo query

        assert tool("status", B) == "pool slurmsky-warm of partition warm: READY\n"
        assert tool("down", B) == "pool slurmsky-warm of partition warm: down\n"
        assert fake.calls == [("pool_apply", A), ("pool_down", A)]
        assert {where for where, _ in fake.pools_asked} == {A}
        assert pools.server_of("slurmsky-warm") is None
