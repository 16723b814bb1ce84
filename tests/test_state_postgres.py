"""The state on PostgreSQL as a team runs it: `slurmsky db`, the config's `state:`, the
commands' words for a server they cannot reach (Slurm's for a dead controller), and a
server killed and restarted under a running array. Each test here runs its own server
(tests/pgserver.py), killed and restarted at will; the rest of the suite runs on
PostgreSQL when SLURMSKY_TEST_POSTGRES names one (conftest.py)."""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import tempfile
import time

import pgserver
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmsky.core.state.db import SCHEMA_VERSION as NOW

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") and shutil.which("initdb") is None,
    reason="no PostgreSQL server here (apt-get install postgresql-15)",
)


@pytest.fixture
def server():
    folder = tempfile.mkdtemp(prefix="slurmsky-pg-")  # the server's user reaches it
    url = pgserver.start(folder)
    yield folder, url
    pgserver.stop(folder)


@pytest.fixture
def team(cluster, server):
    """The cluster's state on a database of the test's own server."""
    folder, url = server
    cluster.database = cluster.env["SLURMSKY_STATE"] = pgserver.database(url)
    cluster.server = folder
    yield cluster
    cluster.teardown()  # before the server stops
    cluster.database = None


def test_db_init_check_upgrade(team):
    db = team.env["SLURMSKY_STATE"]
    check = team.run("slurmsky", "db", "check")
    assert (check.returncode, check.stdout) == (
        1,
        f"state: {db}: schema version none (this slurmsky's: {NOW}); empty: run `slurmsky db init`\n",
    )
    init = team.run("slurmsky", "db", "init")
    assert (init.returncode, init.stdout) == (
        0,
        f"state: {db}: schema version {NOW} (this slurmsky's: {NOW}); made\n",
    )
    again = team.run("slurmsky", "db", "init")
    assert again.stdout.endswith("; already made\n") and again.returncode == 0
    with team.db() as conn:
        conn.execute("UPDATE meta SET value = 7 WHERE key = 'schema_version'")
    squeue = team.run("squeue")
    assert (squeue.returncode, squeue.stdout) == (1, "")
    assert squeue.stderr == (
        f"squeue: error: slurmsky state {db} has schema version 7, older than this "
        f"slurmsky's {NOW}; run `slurmsky db upgrade` (as its owner)\n"
    )
    check = team.run("slurmsky", "db", "check")
    assert check.returncode == 1 and check.stdout.endswith("older: run `slurmsky db upgrade`\n")
    # schema 8, the first on PostgreSQL, had no index of het_job_id
    with team.db() as conn:
        conn.execute("DROP INDEX jobs_het")
        conn.execute("UPDATE meta SET value = 8 WHERE key = 'schema_version'")
    upgrade = team.run("slurmsky", "db", "upgrade")
    assert (upgrade.returncode, upgrade.stdout) == (
        0,
        f"state: {db}: schema version {NOW} (this slurmsky's: {NOW}); upgraded from version 8\n",
    )
    with team.db() as conn:
        assert conn.execute("SELECT to_regclass('jobs_het')").fetchone()[0] == "jobs_het"
    assert team.run("squeue", "-h").returncode == 0


def test_config_state_line_and_no_password(team):
    """`state:` in the config file is read (SLURMSKY_STATE unset); a URL with a password is
    refused before anything is stored."""
    db = team.env.pop("SLURMSKY_STATE")
    config = team.home / "slurmsky.yaml"
    config.write_text(f"kill_wait: 1\nstate: {db}  # the team's\n")
    job = team.sbatch("--wrap", "true")
    assert job == 1
    with team.db() as conn:
        assert conn.execute("SELECT job_id FROM jobs").fetchall() == [(1,)]
    secret = db.replace("slurmsky@", "slurmsky:hunter2@")
    config.write_text(f"state: {secret}\n")
    out = team.run("sbatch", "--wrap", "true")
    assert out.returncode == 1
    assert out.stderr == (
        f"sbatch: error: {config}: 'state': the state URL holds a password; keep it in "
        "~/.pgpass (or PGPASSFILE, PGSERVICE) instead, as psql reads it\n"
    )


# command -> (its words with the server down, exit code), as Slurm 22.05's with slurmctld
# (sacct: slurmdbd) stopped
DEAD = {
    ("squeue",): (
        "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n",
        1,
    ),
    ("sbatch", "--wrap", "true"): (
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
        "(connect failure)\n",
        1,
    ),
    ("scontrol", "show", "job", "1"): (
        "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n",
        1,
    ),
    ("scancel", "1", "2"): (
        "scancel: error: Kill job error on job id 1: Unable to contact slurm controller "
        "(connect failure)\nscancel: error: Kill job error on job id 2: Unable to contact "
        "slurm controller (connect failure)\n",
        8,
    ),
    ("sinfo",): (
        "slurm_load_partitions: Unable to contact slurm controller (connect failure)\n",
        1,
    ),
    ("sacct",): (
        "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent "
        "connection to host:{host}: Connection refused\nsacct: error: Sending PersistInit msg: "
        "Connection refused\nsacct: error: Problem talking to the database: Connection refused\n",
        1,
    ),
}


def test_unreachable_server_is_a_dead_controller(team):
    """With the server down each command says Slurm's words, exits as Slurm does and stores
    nothing (sbatch's job is not there when the server is back); no traceback."""
    assert team.sbatch("--hold", "--wrap", "true") == 1
    pgserver.kill(team.server)
    host = team.env["SLURMSKY_STATE"].split("@")[1].split("/")[0]
    for argv, (stderr, code) in DEAD.items():
        out = team.run(*argv, env={"SLURMSKY_CONNECT_TIMEOUT": "5"})
        expected = (code, "", stderr.replace("{host}", host))
        assert (out.returncode, out.stdout, out.stderr) == expected, argv
    pgserver.restart(team.server)
    assert [r[0] for r in team.jobs()] == [1]
    assert team.sbatch("--wrap", "true") == 2  # the id after the last one stored


def test_server_restart_under_an_array(team):
    """The server killed (as a crash) and restarted while a 200-element array runs: every
    element runs once, and all end COMPLETED."""
    runs = team.cwd / "runs"
    runs.mkdir()
    array = team.sbatch(
        "--array=0-199%8", "-o", "/dev/null", "--wrap", f"touch {runs}/$SLURM_ARRAY_TASK_ID.$$"
    )
    team.wait_for(lambda: len(os.listdir(runs)) >= 40, 120, "40 elements to run")
    pgserver.kill(team.server)
    time.sleep(3)  # the agent meets the dead server; the running elements end meanwhile
    pgserver.restart(team.server)
    rows = team.wait_done(array, timeout=240)
    assert len(rows) == 200 and {r[1] for r in rows} == {"COMPLETED"}
    ran = sorted(int(name.split(".")[0]) for name in os.listdir(runs))
    assert ran == list(range(200))
    log = (team.state / "agent.log").read_text()
    assert "state unreachable" in log and "state reachable again" in log


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.integers(0, 12), st.integers(1, 4)), min_size=1, max_size=6
    ),
    st.one_of(st.none(), st.integers(0, 9)),
)
def test_array_functions_agree_with_indexset(team_db, pieces, throttle):
    """PostgreSQL's array_tasks and array_count (squeue's listing) are indexset's display and
    count, on any pending record's text."""
    from slurmsky.runtime import indexset

    text = ",".join(
        str(lo) if span == 0 else f"{lo}-{lo + span}" + (f":{step}" if step > 1 else "")
        for lo, span, step in pieces
    )
    found = team_db.execute("SELECT array_tasks(?, ?), array_count(?)", (text, throttle, text))
    items = indexset.parse(text)
    assert found.fetchone() == (indexset.display(text, throttle), indexset.count(items))


@pytest.fixture(scope="module")
def team_db():
    """A connection to a state made on a server of the module's own."""
    from slurmsky.core import state

    folder = tempfile.mkdtemp(prefix="slurmsky-pg-")
    url = pgserver.start(folder)
    try:
        conn = state.connect({"SLURMSKY_STATE": pgserver.database(url), "HOME": folder})
        yield conn
        conn.close()
    finally:
        pgserver.stop(folder)


def test_an_agent_whose_state_moved_starts_over(team):
    """The config's state: changed while the agent runs: the next job, stored in the new
    state, runs (the agent starts over on it), and `squeue` there lists it."""
    db = team.env.pop("SLURMSKY_STATE")
    first = team.sbatch("--wrap", "sleep 0.5")  # SQLite: the agent starts on it
    ran = team.cwd / "slurm-1.out"
    team.wait_for(ran.exists, 30, "the first job to run (the agent at work on SQLite)")

    def first_ended() -> bool:  # its run directory is the next job 1's (none may be active)
        with sqlite3.connect(team.state / "state.db") as conn:
            return conn.execute("SELECT end_time FROM jobs").fetchone()[0] is not None

    team.wait_for(first_ended, 30, "the first job to end")
    (team.home / "slurmsky.yaml").write_text(f"kill_wait: 1\nstate: {db}\n")
    second = team.sbatch("--wrap", "true")
    assert (first, second) == (1, 1)  # two queues, each its own ids
    team.wait_done(second)
    assert team.jobs() == [(1, "COMPLETED", 0, 0, "None")]
    log = (team.state / "agent.log").read_text()
    assert f"the state is now {db} (was sqlite): starting over" in log
