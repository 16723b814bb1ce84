"""A team's one queue on PostgreSQL: sacctmgr as Slurm 22.05 prints it (the peer's captures),
members' own roles under row-level security, accounts checked as slurmctld checks them, and
two OS users on one machine sharing the queue and the local nodes, each member's agent
running its own jobs. The administrator is the schema's owner (the test's `slurmsky` role,
run as root); the member is the peer's `peeruser`, with this run's packages (PYTHONPATH)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import site
import subprocess
import tempfile
import time

import pgserver
import pytest
from captures import read_capture
from users import cannot_run_as, needs_user, other_users_python

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") and shutil.which("initdb") is None,
    reason="no PostgreSQL server here (apt-get install postgresql-15)",
)

BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")


@pytest.fixture(scope="module")
def server():
    folder = tempfile.mkdtemp(prefix="slurmsky-pg-")
    url = pgserver.start(folder)
    yield url
    pgserver.stop(folder)


@pytest.fixture
def team(cluster, server):
    """The cluster (the administrator's commands) on a database of the module's server,
    named `peer` as the captures' cluster is."""
    cluster.database = cluster.env["SLURMSKY_STATE"] = pgserver.database(server)
    (cluster.home / "slurmsky.yaml").write_text("kill_wait: 1\ncluster_name: peer\n")
    yield cluster
    cluster.teardown()
    cluster.database = None


def ok(out, code=0):
    assert out.returncode == code, (out.stdout, out.stderr)
    return out


def same_as_peer(out, capture: str) -> None:
    cap = read_capture(capture)
    assert (out.stdout, out.stderr, out.returncode) == (cap.stdout, cap.stderr, cap.exit)


def test_sacctmgr_as_slurm_prints_it(team):
    run = team.run
    # the peer's accounts and users, made as slurm-peer-up.sh makes them
    ok(run("sacctmgr", "-i", "add", "account", "research", "Description=peer", "Organization=peer"))
    ok(run("sacctmgr", "-i", "add", "user", "root", "account=root"))
    ok(run("sacctmgr", "-i", "add", "user", "peeruser,root", "DefaultAccount=research",
           "account=research"))  # fmt: skip
    same_as_peer(run("sacctmgr", "show", "assoc", "-P"), "sacctmgr-show-assoc-parsable.txt")
    same_as_peer(run("sacctmgr", "-n", "-P", "show", "assoc"), "sacctmgr-show-assoc-noheader.txt")
    same_as_peer(run("sacctmgr", "show", "account"), "sacctmgr-show-account.txt")
    same_as_peer(run("sacctmgr", "-P", "list", "account"), "sacctmgr-list-account-parsable.txt")
    for capture in (
        "sacctmgr-add-account.txt",
        "sacctmgr-add-account-again.txt",
        "sacctmgr-add-account-plain.txt",
        "sacctmgr-add-user.txt",
        "sacctmgr-add-user-again.txt",
        "sacctmgr-add-user-plain.txt",
        "sacctmgr-add-user-second-account.txt",
        "sacctmgr-add-user-unknown-account.txt",
        "sacctmgr-add-user-no-account.txt",
        "sacctmgr-show-assoc-format.txt",
        "sacctmgr-show-assoc-where.txt",
        "sacctmgr-delete-user.txt",
        "sacctmgr-delete-user-again.txt",
        "sacctmgr-delete-account-with-users.txt",
        "sacctmgr-delete-user-dave.txt",
        "sacctmgr-delete-account.txt",
        "sacctmgr-delete-account-again.txt",
        "sacctmgr-show-bogus.txt",
        "sacctmgr-bad-keyword.txt",
        "sacctmgr-bad-field.txt",
        "sacctmgr-show-account-parsable-ends.txt",
    ):
        argv = read_capture(capture).command.split()
        same_as_peer(run(*argv), capture)
    # the users' listing: Slurm's columns (root is no Administrator here: the schema's owner is)
    assert ok(run("sacctmgr", "show", "user")).stdout == (
        "      User   Def Acct     Admin \n"
        "---------- ---------- --------- \n"
        "  peeruser   research      None \n"
        "      root   research      None \n"
    )


def test_sacctmgr_without_a_teams_state_says_so(cluster):
    out = cluster.run("sacctmgr", "-i", "add", "account", "physics")
    assert (out.returncode, out.stdout, out.stderr) == (
        1,
        "",
        "You are not running a supported accounting_storage plugin\n"
        "Only 'accounting_storage/slurmdbd' is supported.\n",
    )


class Member:
    """`peeruser`'s side: its own HOME, state dir and working dir (its own, 0700), its
    commands connecting as its role, run with this run's packages."""

    def __init__(self, team, name: str = "peeruser"):
        self.entry = pwd.getpwnam(name)
        self.top = tempfile.mkdtemp(prefix="slurmsky-member-")
        os.chown(self.top, self.entry.pw_uid, self.entry.pw_gid)
        os.chmod(self.top, 0o700)
        self.work = os.path.join(self.top, "work")
        config = os.path.join(self.top, "slurmsky.yaml")
        shutil.copy(team.home / "slurmsky.yaml", config)
        for path in (self.work,):
            os.mkdir(path)
        for path in (self.work, config):
            os.chown(path, self.entry.pw_uid, self.entry.pw_gid)
        netloc, _, db = team.database.partition("://")[2].partition("/")
        self.database = f"postgresql://{name}@{netloc.partition('@')[2]}/{db}"
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.top,
            "SLURMSKY_HOME": os.path.join(self.top, "state"),
            "SLURMSKY_CONFIG": config,
            "SLURMSKY_STATE": self.database,
            "PYTHONPATH": site.getsitepackages()[0],
        }
        self.python = other_users_python()

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.python, os.path.join(BIN, command), *args],
            cwd=self.work,
            env=self.env,
            user=self.entry.pw_uid,
            group=self.entry.pw_gid,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self) -> None:
        self.run("slurmsky", "agent", "stop")
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture
def member(team):
    ok(team.run("sacctmgr", "-i", "add", "account", "physics"))
    ok(team.run("sacctmgr", "-i", "add", "user", "peeruser", "account=physics"))
    ok(team.run("sacctmgr", "-i", "add", "user", "root", "account=physics"))
    m = Member(team)
    yield m
    m.stop()


def one_node(team, member, extra: str = "") -> None:
    """Both members' configs: one local node of one CPU (after `extra`)."""
    for config in (team.home / "slurmsky.yaml", member.env["SLURMSKY_CONFIG"]):
        with open(config, "a") as fh:
            fh.write(extra + "partitions:\n  local:\n    nodes: 1\n    cpus_per_node: 1\n")


def wait_state(team, job_id: int, states: tuple[str, ...], timeout: float = 60) -> tuple:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = team.job(job_id)
        if found and found[1] in states:
            return found
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}: {team.job(job_id)}, not {states}")


@needs_user("peeruser")
def test_two_members_share_one_queue_and_control_only_their_own(team, member):
    theirs = int(
        ok(member.run("sbatch", "--parsable", "-J", "theirs", "--wrap", "sleep 300")).stdout
    )
    mine = team.sbatch("-J", "mine", "--wrap", "sleep 300")
    assert mine == theirs + 1  # one sequence of ids
    wait_state(team, theirs, ("RUNNING",))
    wait_state(team, mine, ("RUNNING",))
    # (by id: two running jobs sort by the priority each had when it started, which fair
    # share makes depend on which of them started first)
    listing = ok(member.run("squeue", "-h", "-S", "i", "-o", "%i %j %u %a %P %T")).stdout
    assert listing == f"{theirs} theirs peeruser physics local RUNNING\n" + (
        f"{mine} mine root physics local RUNNING\n"
    )
    assert ok(member.run("squeue", "-h", "--me", "-o", "%i")).stdout == f"{theirs}\n"
    # another's job: the peer's words and exit codes (PrivateData none)
    out = member.run("scancel", str(mine))
    assert (out.returncode, out.stderr) == (
        210,
        f"scancel: error: Kill job error on job id {mine}: Access/permission denied\n",
    )
    out = member.run("scontrol", "hold", str(mine))
    assert (out.returncode, out.stderr) == (
        1,
        f"Invalid user id for job {mine}\nslurm_suspend error: Invalid user id\n",
    )
    out = member.run("scontrol", "requeue", str(mine))
    assert (out.returncode, out.stderr) == (1, f"Access/permission denied for job {mine}\n")
    # and with the commands bypassed: the member's own role, its own SQL
    sql = (
        "import sys, psycopg2; c = psycopg2.connect(sys.argv[1]); c.autocommit = True; k = c.cursor()\n"
        f"k.execute(\"UPDATE jobs SET state = 'CANCELLED' WHERE job_id = {mine}\"); print(k.rowcount)\n"
        f"k.execute('DELETE FROM jobs WHERE job_id = {mine}'); print(k.rowcount)\n"
        f"k.execute('SELECT count(*) FROM jobs'); print(k.fetchone()[0])\n"
        "try:\n"
        f'    k.execute("UPDATE jobs SET \\"user\\" = \'root\' WHERE job_id = {theirs}")\n'
        "except psycopg2.Error as e: print(e.pgcode)\n"
    )
    raw = subprocess.run(
        [member.python, "-c", sql, member.database],
        env=member.env,
        user=member.entry.pw_uid,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert raw.stdout == "0\n0\n2\n42501\n", raw.stderr  # reads all, changes none of root's
    assert team.job(mine)[1] == "RUNNING"
    # sacct: the caller's jobs unless -a
    assert ok(member.run("sacct", "-n", "-X", "-o", "jobid")).stdout.split() == [str(theirs)]
    assert ok(member.run("sacct", "-a", "-n", "-X", "-o", "jobid")).stdout.split() == [
        str(theirs), str(mine)
    ]  # fmt: skip
    # its own job: cancelled by its own agent, which ran it as peeruser
    ok(member.run("scancel", str(theirs)))
    wait_state(team, theirs, ("CANCELLED",))
    out = os.path.join(member.work, f"slurm-{theirs}.out")
    assert os.stat(out).st_uid == member.entry.pw_uid
    # a removed member submits no more; its jobs were its own to the end
    ok(team.run("sacctmgr", "-i", "delete", "user", "peeruser"))
    out = member.run("sbatch", "--wrap", "true")
    assert (out.returncode, out.stderr) == (
        1,
        "sbatch: error: Batch job submission failed: Invalid account or account/partition "
        "combination specified\n",
    )
    ok(team.run("scancel", str(mine)))
    wait_state(team, mine, ("CANCELLED",))


@needs_user("peeruser")
def test_accounts_are_checked_as_slurmctld_checks_them(team, member):
    for prog, capture in (
        ("sbatch", "sbatch-account-not-associated.txt"),
        ("srun", "srun-account-not-associated.txt"),
        ("salloc", "salloc-account-not-associated.txt"),
    ):
        out = (
            member.run(prog, "-A", "research", "true")
            if prog != "sbatch"
            else (member.run("sbatch", "-A", "research", "--wrap", "true"))
        )
        assert (out.returncode, out.stderr) == (1, read_capture(capture).stderr)
    job = int(ok(member.run("sbatch", "--parsable", "-H", "--wrap", "true")).stdout)
    assert (
        ok(team.run("squeue", "-h", "-j", str(job), "-o", "%a %u")).stdout == "physics peeruser\n"
    )
    ok(member.run("scancel", str(job)))


@needs_user("peeruser")
def test_the_room_is_the_teams(team, member):
    """One node of one CPU, shared: the member's job waits `Resources` while root's holds
    it, and starts when it ends (its own agent starts it)."""
    one_node(team, member)
    gate = team.cwd / "gate"
    mine = team.sbatch("--wrap", f"while [ ! -e {gate} ]; do sleep 0.2; done")
    wait_state(team, mine, ("RUNNING",))
    theirs = int(ok(member.run("sbatch", "--parsable", "--wrap", "true")).stdout)
    deadline = time.monotonic() + 30
    while team.job(theirs)[4] != "Resources" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert team.job(theirs)[1:] == ("PENDING", None, None, "Resources")
    gate.write_text("")
    wait_state(team, mine, ("COMPLETED",))
    # root's agent ended it; the member's, woken by nothing, looks again while its job waits
    # for room (scheduler.TEAM_RECHECK: 1 s; it used to wait for its next pass, ~60 s)
    assert wait_state(team, theirs, ("COMPLETED",), timeout=30)[1] == "COMPLETED"


def test_sshare_and_sprio_as_the_peer_prints_them(team):
    """The peer's associations (root in root; peeruser and root in research) and its usage
    (root's 767 CPU-seconds in research, undecayed here): sshare byte for byte as the peer
    printed it with priority/multifactor, for root and for peeruser; sprio with no pending
    job prints its header."""
    with open(team.home / "slurmsky.yaml", "a") as fh:
        fh.write('priority_decay_half_life: "0"\n')
    ok(team.run("sacctmgr", "-i", "add", "account", "research"))
    ok(team.run("sacctmgr", "-i", "add", "user", "root", "account=root"))
    ok(team.run("sacctmgr", "-i", "add", "user", "peeruser,root", "DefaultAccount=research",
                "account=research"))  # fmt: skip
    job = team.sbatch("-A", "research", "--wrap", "true")
    wait_state(team, job, ("COMPLETED",))
    end = time.time() - 700  # before the current PriorityCalcPeriod (5 minutes) began
    conn = team.db()
    conn.execute(
        "UPDATE jobs SET start_time = ?, end_time = ?, num_cpus = 1 WHERE job_id = ?",
        (end - 767, end, job),
    )
    conn.close()
    for args, capture in (
        (["-a"], "sshare-all.txt"),
        (["-a", "-l"], "sshare-long.txt"),
        (["-a", "-P"], "sshare-parsable.txt"),
        (["-a", "-p"], "sshare-parsable2.txt"),
        (["-a", "-n"], "sshare-noheader.txt"),
        (["-A", "research"], "sshare-account.txt"),
        (["-u", "peeruser"], "sshare-user.txt"),
        (["-u", "nosuch"], "sshare-unknown-user.txt"),
        ([], "sshare-plain.txt"),
        (["-U", "--format", "Account%256", "--noheader"], "tool-snakemake-sshare.txt"),
        (["--bogus"], "sshare-badopt.txt"),
    ):
        same_as_peer(team.run("sshare", *args), capture)
    same_as_peer(team.run("sprio"), "sprio-empty.txt")
    same_as_peer(team.run("sprio", "--bogus"), "sprio-badopt.txt")
    same_as_peer(team.run("sprio", "-j", "999999"), "sprio-badjob.txt")
    if cannot_run_as("peeruser"):
        return
    member = Member(team)
    try:
        same_as_peer(member.run("sshare"), "sshare-peeruser.txt")
        same_as_peer(member.run("sshare", "-a"), "sshare-peeruser-all.txt")
    finally:
        member.stop()


def test_sprio_on_ones_own_state_says_what_priority_basic_says(cluster):
    same_as_peer(cluster.run("sprio"), "sprio-basic.txt")


@needs_user("peeruser")
def test_fair_share_starts_the_member_who_used_less_first(team, member):
    """Issue 49 item 6: with the one node busy with root's job, root queues four jobs and
    then the member one; root has used more, so the member's job starts first (its agent
    starts it: root's keeps the room for it), and root's follow in their order."""
    one_node(team, member, 'priority_calc_period: "0:1"\n')
    gate = team.cwd / "gate"
    busy = team.sbatch("--wrap", f"while [ ! -e {gate} ]; do sleep 0.2; done")
    wait_state(team, busy, ("RUNNING",))
    queued = [team.sbatch("--wrap", "true") for _ in range(4)]
    theirs = int(ok(member.run("sbatch", "--parsable", "--wrap", "true")).stdout)
    team.wait_for(lambda: team.job(theirs)[4] != "None", what="the member's agent's first look")
    time.sleep(1.5)  # a PriorityCalcPeriod with root's usage
    listing = ok(member.run("sprio", "-h", "-o", "%i %u %F")).stdout.split("\n")
    assert listing[:-1] == [f"{j} root 5000" for j in queued] + [f"{theirs} peeruser 10000"]
    assert ok(team.run("squeue", "-h", "-t", "PD", "-o", "%i")).stdout.split() == [
        str(theirs), *map(str, queued)
    ]  # fmt: skip
    gate.write_text("")
    team.wait_done(busy, theirs, *queued, timeout=60)
    conn = team.db()
    starts = dict(conn.execute("SELECT job_id, start_time FROM jobs").fetchall())
    conn.close()
    order = sorted([theirs, *queued], key=lambda j: starts[j])
    assert order == [theirs, *queued], starts


@needs_user("peeruser")
def test_a_member_without_an_agent_holds_nothing_back(team, member):
    """The member's job would go first (root has used more), but its agent is stopped: it
    shows FrontEndDown and root's job starts; its agent, back, starts it."""
    one_node(team, member, 'priority_calc_period: "0:1"\n')
    gate = team.cwd / "gate"
    busy = team.sbatch("--wrap", f"while [ ! -e {gate} ]; do sleep 0.2; done")
    wait_state(team, busy, ("RUNNING",))
    theirs = int(ok(member.run("sbatch", "--parsable", "--wrap", "true")).stdout)
    team.wait_for(lambda: team.job(theirs)[4] != "None", what="the member's agent's first look")
    ok(member.run("slurmsky", "agent", "stop"))
    mine = team.sbatch("--wrap", "true")
    gate.write_text("")
    assert wait_state(team, mine, ("COMPLETED",), timeout=30)[1] == "COMPLETED"
    assert team.job(theirs)[1:] == ("PENDING", None, None, "FrontEndDown")
    line = ok(team.run("squeue", "-h", "-j", str(theirs), "-o", "%T %r")).stdout
    assert line == "PENDING FrontEndDown\n"
    ok(member.run("squeue"))  # the member's command starts its agent again
    assert wait_state(team, theirs, ("COMPLETED",), timeout=30)[1] == "COMPLETED"
