"""Every job goes to the SkyPilot API server its sbatch named (backends/sky/server.py records
it, the executor sends each job there): switching servers, or one going away, never
strands a job.

The executor tests drive the real scheduler and SkyExecutor here against the fake SkyPilot
(fake_sky.py), whose world has several servers (SkyPilot job ids repeat across them), with
the real sbatch, squeue and scancel as subprocesses.
"""

from __future__ import annotations

import json

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
        assert _stored_server(cluster, second) == {"url": secret_b, "config": None}
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


def test_a_job_for_a_dead_server_pends_naming_it_and_scancel_ends_it_at_once(
    cluster, tmp_path, monkeypatch
):
    with sky_world(cluster, tmp_path, monkeypatch, PARTITION) as world:
        cluster, fake, drive = world
        fake.down.add(B)
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
