"""scontrol as a subprocess on hand-made job state, against the real-Slurm captures."""

from __future__ import annotations

import re
import subprocess

import pytest
from captures import peer_group, read_capture
from test_formats import NOW, T0, check, epoch, world  # noqa: F401 (fixture)


def with_rc(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(
        result.args, 0, result.stdout + f"rc={result.returncode}\n", result.stderr
    )


def joined(*results: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Several commands run one after the other, as one capture."""
    return subprocess.CompletedProcess(
        [],
        results[-1].returncode,
        "".join(r.stdout for r in results),
        "".join(r.stderr for r in results),
    )


def job_text(text: str) -> str:
    """Priorities (slurmctld's counter) and the allocating session id are the peer's own."""
    text = re.sub(r"Priority=[1-9]\d*", "Priority=P", text)
    return re.sub(r"AllocNode:Sid=([^:\s]+):\d+", r"AllocNode:Sid=\1:SID", text)


SUBMIT = epoch("2026-11-22T03:02:57")
# The peer's peeruser: the captures show its jobs as `GroupId=peeruser(1001)`.
PEER_GROUP_SHOWN = "GroupId=peeruser(1001)"


def with_peer_group(text: str, gid: int, name: str) -> str:
    """A capture's text as this machine shows peeruser's jobs: their group by name and gid."""
    return text.replace(PEER_GROUP_SHOWN, f"GroupId={name}({gid})")


@pytest.fixture
def shown(world):
    """The jobs of the scontrol-show-job-* captures."""
    w = world
    w.peer_gid, w.peer_group = peer_group()
    peer = dict(user="peeruser", uid=1001, gid=w.peer_gid)
    w.add(
        135,
        name="show-held",
        held="user",
        reason="JobHeldUser",
        submit_time=SUBMIT,
        dependency="afterok:133(unfulfilled)",
        dependency_spec="afterok:133",
        workdir="<probe-dir>/d",
        stdout=None,
    )
    start = epoch("2026-11-22T03:03:06")
    w.add(
        137,
        name="show-running",
        partition="gpu",
        state="RUNNING",
        nodelist="node[3-4]",
        batch_host="node3",
        num_nodes=2,
        num_cpus=2,
        num_tasks=2,
        tasks_per_node=[1, 1],
        cpus_per_node=[1, 1],
        time_limit=10,
        submit_time=start - 1,
        eligible_time=start - 1,
        start_time=start,
        gres="gpu:1",
        comment="hello",
        stdout="out-137.log",
        stderr="err-137.log",
        **peer,
    )
    w.add(
        30,
        name="env-b",
        state="COMPLETED",
        nodelist="node[1-2]",
        batch_host="node1",
        num_nodes=2,
        num_cpus=4,
        num_tasks=4,
        tasks_per_node=[2, 2],
        cpus_per_node=[2, 2],
        submit_time=epoch("2026-11-22T02:45:42"),
        eligible_time=epoch("2026-11-22T02:45:42"),
        start_time=epoch("2026-11-22T02:45:43"),
        end_time=epoch("2026-11-22T02:45:43"),
        exit_code=0,
        exit_signal=0,
        command="<probe-dir>/c/envdump.sh",
        workdir="<probe-dir>/c",
        stdout=None,
        spec={"ntasks_per_node": 2},
        **peer,
    )
    tasks = {
        0: (
            136,
            dict(
                state="RUNNING",
                nodelist="node3",
                batch_host="node3",
                start_time=SUBMIT,
                eligible_time=SUBMIT,
                reason="None",
            ),
        )
    }
    tasks.update({i: (137 + i, {}) for i in range(1, 9)})
    tasks[9] = (134, {})
    w.add_array(
        134,
        tasks,
        name="show-array",
        submit_time=SUBMIT,
        array_throttle=1,
        reason="JobArrayTaskLimit",
        workdir="<probe-dir>/d",
        stdout=None,
        output="slurm-%A_%a.out",
    )
    return w


AT_RUNNING = {"SLURMSKY_NOW": repr(epoch("2026-11-22T03:03:08"))}
AT_ARRAY = {"SLURMSKY_NOW": repr(SUBMIT + 3)}


@pytest.mark.parametrize(
    "args, capture, env",
    [
        (("show", "job", "137"), "scontrol-show-job-running.txt", AT_RUNNING),
        (("show", "job", "-d", "137"), "scontrol-show-job-details.txt", AT_RUNNING),
        (("show", "job", "135"), "scontrol-show-job-pending-held.txt", AT_RUNNING),
        (("show", "job", "-o", "135"), "scontrol-show-job-oneliner.txt", AT_RUNNING),
        (
            ("show", "job", "30"),
            "scontrol-show-job-completed.txt",
            {"SLURMSKY_NOW": repr(epoch("2026-11-22T02:46:00"))},
        ),
        (("show", "job", "134"), "scontrol-show-job-array.txt", AT_ARRAY),
    ],
)
def test_show_job_matches_capture(shown, args, capture, env):
    """Byte for byte, but for the group of peeruser's jobs: the name this machine resolves
    for the gid they were stored with (the peer's 1001 is another group, or none, elsewhere)."""
    out = shown.run("scontrol", *args, env=env)
    cap = read_capture(capture)
    peer_jobs = cap.stdout.count("UserId=peeruser(1001)")
    assert cap.stdout.count(PEER_GROUP_SHOWN) == peer_jobs  # every one replaced below
    expected = with_peer_group(cap.stdout, shown.peer_gid, shown.peer_group)
    assert job_text(out.stdout) == job_text(expected)
    assert (out.stderr, out.returncode) == (cap.stderr, cap.exit)


def test_show_job_errors(shown):
    check(shown.run("scontrol", "show", "job", "999999"), "scontrol-show-job-unknown.txt")
    check(shown.run("scontrol", "show", "job", "abc"), "scontrol-show-job-garbage.txt")
    # a job purged after MinJobAge is unknown too (timeout-scontrol.txt; exit 1 per its note)
    later = {"SLURMSKY_NOW": repr(epoch("2026-11-22T02:45:43") + 301)}
    out = shown.run("scontrol", "show", "job", "30", env=later)
    assert (out.stdout, out.stderr, out.returncode) == (
        "",
        read_capture("timeout-scontrol.txt").stderr,
        1,
    )


def test_show_all_jobs_one_per_line(shown):
    lines = shown.run("scontrol", "-o", "show", "job", env=AT_RUNNING).stdout.splitlines()
    # job 30 ended more than MinJobAge ago: purged
    assert [line.split()[0] for line in lines] == [
        "JobId=134",
        "JobId=136",
        "JobId=135",
        "JobId=137",
    ]
    assert all(line.endswith((" Power= ", " TresPerNode=gres:gpu:1 ")) for line in lines)


def test_hostlists(world):
    check(world.run("scontrol", "show", "hostnames", "node[1-3,5]"), "scontrol-show-hostnames.txt")
    check(
        world.run("scontrol", "show", "hostnames", "node[01-03],gpu[1-2],login"),
        "scontrol-show-hostnames-multi.txt",
    )
    check(world.run("scontrol", "show", "hostnames"), "scontrol-show-hostnames-noarg-noenv.txt")
    check(
        joined(
            with_rc(
                world.run("scontrol", "show", "hostnames", env={"SLURM_JOB_NODELIST": "node[1-2]"})
            ),
            with_rc(
                world.run("scontrol", "show", "hostnames", env={"SLURM_NODELIST": "node[3-4]"})
            ),
        ),
        "scontrol-show-hostnames-env.txt",
    )
    empty = world.run("scontrol", "show", "hostnames", env={"SLURM_NODELIST": ""})
    assert (empty.stdout, empty.stderr, empty.returncode) == ("", "", 0)
    check(
        world.run("scontrol", "show", "hostlist", "node1,node2,node3"), "scontrol-show-hostlist.txt"
    )
    check(
        world.run("scontrol", "show", "hostlist", "node3,node1,node2,node10,gpu1,node02"),
        "scontrol-show-hostlist-mixed.txt",
    )
    check(
        world.run("scontrol", "show", "hostlistsorted", "node3,node1,node2,node10,gpu1"),
        "scontrol-show-hostlistsorted.txt",
    )


def test_hold_release(shown):
    def state():
        return shown.run("squeue", "-h", "-j", "135", "-o", "%i %T %r")

    check(
        joined(
            shown.run("scontrol", "release", "135"),
            state(),
            shown.run("scontrol", "hold", "135"),
            state(),
            shown.run("scontrol", "uhold", "135"),
            state(),
        ),
        "scontrol-hold-release.txt",
    )


def test_requeue(shown):
    check(with_rc(shown.run("scontrol", "requeue", "135")), "scontrol-requeue-pending.txt")
    out = shown.run("scontrol", "requeue", "137")
    assert (out.returncode, out.stderr) == (0, "")
    # the agent ends it and queues it again; here, do what it does
    row = shown.conn.execute("SELECT state, kill_action FROM jobs WHERE job_id = 137").fetchone()
    assert row == ("COMPLETING", "requeue")
    from slurmsky.core import state
    from slurmsky.core.transitions import requeued_fields

    rec = state.get_job(shown.conn, 137)
    requeued_at = epoch("2026-11-22T03:03:09")
    state.update_job(shown.conn, 137, **requeued_fields(rec, requeued_at))
    state.update_job(shown.conn, 137, submit_time=epoch("2026-11-22T03:03:08"))
    show = shown.run(
        "scontrol", "show", "job", "137", env={"SLURMSKY_NOW": repr(requeued_at + 1)}
    ).stdout.splitlines()
    lines = [line for line in show if re.search("Restarts|JobState|EligibleTime", line)]
    cap = read_capture("scontrol-requeue.txt").stdout.splitlines()
    assert shown.run("squeue", "-h", "-j", "137", "-o", "%i %T %r").stdout == cap[1] + "\n"
    assert lines[:2] == cap[2:4]
    assert lines[2] == "   SubmitTime=2026-11-22T03:03:08 EligibleTime=2026-11-22T03:05:09"
    assert cap[4] == lines[2]


def test_update(shown):
    check(
        joined(
            shown.run("scontrol", "update", "jobid=135", "JobName=renamed", "TimeLimit=5"),
            shown.run("squeue", "-h", "-j", "135", "-o", "%i %j %l"),
        ),
        "scontrol-update-job.txt",
    )
    check(
        with_rc(shown.run("scontrol", "update", "jobid=999999", "TimeLimit=5")),
        "scontrol-update-unknown.txt",
    )
    out = shown.run("scontrol", "update", "jobid=135", "Bogus=1")
    assert out.returncode == 1 and "not supported: Bogus=1" in out.stderr
    out = shown.run("scontrol", "update", "jobid=30", "Comment=x")
    assert (out.returncode, out.stderr) == (
        1,
        "Job has already finished for job 30\n",  # the peer's, for a COMPLETED job
    )
    out = shown.run("scontrol", "update", "JobId=137", "comment=later")
    assert out.returncode == 0
    assert "   Comment=later \n" in shown.run("scontrol", "show", "job", "137").stdout


def test_config(world):
    (world.home / "peer.yaml").write_text("cluster_name: peer\nkill_wait: 2\n")
    out = world.run(
        "scontrol", "show", "config", env={"SLURMSKY_CONFIG": str(world.home / "peer.yaml")}
    )
    grep = re.compile(r"^(MinJobAge|ClusterName|SLURM_VERSION|SelectType |OverTimeLimit|KillWait)")
    picked = "".join(line + "\n" for line in out.stdout.splitlines() if grep.match(line))
    check(
        subprocess.CompletedProcess([], 0, picked, out.stderr),
        "tool-snakemake-scontrol-config-minjobage.txt",
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Configuration data as of 2026-11-22T02:49:21")
    assert lines[-2:] == ["", f"Slurmctld(primary) at {lines[-1].split()[2]} is UP"]
    cap = read_capture("scontrol-show-config.txt").stdout.splitlines()
    ours = {line.split(" = ")[0].rstrip() for line in lines[1:-2]}
    theirs = {line.split(" = ")[0].rstrip() for line in cap[1:-2]}
    assert ours - theirs == {"SlurmskyBackend"}  # every other key is one of Slurm's
    assert "MaxTasksPerNode         = 512" in lines  # Slurm's default: atf's test_--threads


def test_ping_and_version(world):
    host = re.compile(r"at \S+ is")
    check(
        world.run("scontrol", "ping"),
        "scontrol-ping.txt",
        normalize=lambda t: host.sub("at HOST is", t),
    )
    check(world.run("scontrol", "--version"), "scontrol-version.txt")
    assert world.run("scontrol", "version").stdout == "slurm-wlm 22.05.8\n"


def _keys(text: str) -> list[list[str]]:
    return [re.findall(r"([A-Za-z/:\[\]0-9_]+)=", line) for line in text.splitlines()]


def test_partition_and_node_records_have_slurms_keys(world):
    part = world.run("scontrol", "show", "partition")
    cap = read_capture("scontrol-show-partition.txt").stdout
    # the peer's partitions also have gres/gpu in their TRES
    theirs = _keys(cap.split("\n\n")[0])
    theirs[11].remove("gres/gpu")
    assert _keys(part.stdout.rstrip("\n")) == theirs
    assert part.stdout.startswith("PartitionName=local\n   AllowGroups=ALL")
    node = world.run("scontrol", "show", "node", "127.0.0.1")
    assert _keys(node.stdout)[0][0] == "NodeName"
    theirs = _keys(read_capture("scontrol-show-node.txt").stdout)
    theirs[5].remove("Port")  # slurmd's port: slurmsky's nodes run no slurmd
    theirs[12].remove("gres/gpu")  # node3 of the peer has GPUs
    assert _keys(node.stdout) == theirs
    missing = world.run("scontrol", "show", "node", "nosuch")
    # printf in scontrol_print_node: stdout
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        1,
        "Node nosuch not found\n",
        "",
    )


def test_keywords(world):
    out = world.run("scontrol", "bogus")
    assert (out.returncode, out.stderr) == (1, "invalid keyword: bogus\n")
    out = world.run("scontrol", "show", "bogus")
    assert (out.returncode, out.stderr) == (1, "invalid entity:bogus for keyword:show\n")
    out = world.run("scontrol", input="show hostnames a[1-2]\nquit\n")
    assert out.stdout == "a1\na2\n"
    assert world.run("scontrol", "sho", "hostl", "a1,a2").stdout == "a[1-2]\n"


def test_show_step(shown):
    out = shown.run("scontrol", "show", "step", "137.0")
    assert out.stdout == read_capture("scontrol-show-step.txt").stdout


def test_sky_job_id_is_shown(world):
    world.add(5, state="RUNNING", nodelist="node1", executor="sky", executor_ref={"sky_job_id": 42})
    assert "   SkyPilotJobId=42\n" in world.run("scontrol", "show", "job", "5").stdout
    world.add(6, state="RUNNING", nodelist="node1", start_time=T0)
    assert "SkyPilot" not in world.run("scontrol", "show", "job", "6").stdout
    assert NOW > T0


def test_end_to_end_show_job(cluster):
    import socket

    job = cluster.sbatch("-J", "shown", "-t", "5", "--wrap", "sleep 60")
    cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", 60, "the job to start")
    text = cluster.run("scontrol", "show", "job", str(job)).stdout
    assert text.startswith(f"JobId={job} JobName=shown\n   UserId=")
    assert "   JobState=RUNNING Reason=None Dependency=(null)\n" in text
    assert " TimeLimit=00:05:00 " in text
    assert f"AllocNode:Sid={socket.gethostname().split('.')[0]}:" in text
    assert f"   StdOut={cluster.cwd}/slurm-{job}.out\n" in text
    assert "   NodeList=127.0.0.1\n   BatchHost=127.0.0.1\n" in text
    assert text.endswith("   Power=\n   \n\n")
    held = cluster.sbatch("--hold", "--array=1-3", "--wrap", "true")
    meta = cluster.run("scontrol", "show", "job", str(held)).stdout
    assert f"   StdOut={cluster.cwd}/slurm-{held}_4294967294.out\n" in meta
    assert f"   StdOut={cluster.cwd}/slurm-{held}_1.out\n" not in meta
    cluster.run("scancel", str(held))
    busy = cluster.run("sinfo", "-h", "-o", "%t %N").stdout.splitlines()
    assert busy[0] in ("mix 127.0.0.1", "alloc 127.0.0.1")
    assert cluster.run("scancel", str(job)).returncode == 0
    cluster.wait_done(job)
