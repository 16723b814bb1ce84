"""Failover and recovery on the sky backend (issue 35): partitions over several infras and
`sbatch -p a,b` as SkyPilot's `ordered` / `any_of` resources, the partition a job got, and
SkyPilot's recovery of a preempted job in Slurm's words (RQ, Restarts, SLURM_RESTART_COUNT,
--no-requeue, scontrol requeue).

The executor tests drive the real scheduler and SkyExecutor in this process, the real
commands as subprocesses, with SkyPilot's managed jobs played by the fake SkyClient
(fake_sky.py: it reports the infra chosen, RECOVERING and recovery_count).
"""

from __future__ import annotations

import copy
import os
import re
import shutil

import pytest
import sky
from fake_sky import sky_world
from test_sky_units import _request

from slurmsky.backends.sky import infra as usable
from slurmsky.backends.sky.check import INFRA_PATTERN, check
from slurmsky.backends.sky.task import task_notes, translate
from slurmsky.config import dump_yaml, load_config
from slurmsky.errors import SlurmError
from slurmsky.render.common import iso
from slurmsky.runtime.spec import infra_matches, on_node

CONFIG = """\
backend: sky
kill_wait: 1
partitions:
  cloud:
    default: true
    infra: [aws/us-east-1, gcp]
    accelerators: [A100, H100]
    spot_fallback: true
  k8s:
    infra: k8s/lab
  anywhere:
    infra: {aws, gcp}
    accelerators: {L4, T4}
  bad:
    infra: [aws, nowhere]
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "slurmsky.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("SLURMSKY_CONFIG", str(path))
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    return load_config()


def _resources(tmp_path, cfg, *argv: str) -> str:
    task = translate(_request(tmp_path, "#!/bin/bash\ntrue\n", *argv), cfg).task
    sky.Task.from_yaml_config(copy.deepcopy(dict(task, secrets={"S": "x"})))  # SkyPilot's check
    return dump_yaml(task["resources"])


def test_infra_lists_and_spot_fallback_are_ordered_candidates(tmp_path, config):
    assert _resources(tmp_path, config, "--gpus=2", "-c", "4") == (
        "cpus: 4+\n"
        "ordered:\n"
        + "".join(
            f"- infra: {infra}\n  use_spot: {spot}\n  accelerators:\n    {gpu}: 2\n"
            for infra in ("aws/us-east-1", "gcp")
            for spot in ("true", "false")
            for gpu in ("A100", "H100")
        )
    )


def test_sets_are_any_of_and_a_partition_list_is_their_union_in_order(tmp_path, config):
    assert _resources(tmp_path, config, "-p", "anywhere", "--gpus=1") == (
        "any_of:\n"
        "- infra: aws\n  accelerators:\n    L4: 1\n"
        "- infra: aws\n  accelerators:\n    T4: 1\n"
        "- infra: gcp\n  accelerators:\n    L4: 1\n"
        "- infra: gcp\n  accelerators:\n    T4: 1\n"
    )
    assert _resources(tmp_path, config, "-p", "k8s,cloud", "--no-requeue") == (
        "cpus: 1+\n"
        "ordered:\n"
        "- infra: k8s/lab\n"
        "- infra: aws/us-east-1\n  use_spot: true\n"
        "- infra: aws/us-east-1\n  use_spot: false\n"
        "- infra: gcp\n  use_spot: true\n"
        "- infra: gcp\n  use_spot: false\n"
        "job_recovery:\n  max_restarts_on_errors: 0\n"
    )
    spec = translate(_request(tmp_path, "#!/bin/bash\n", "-p", "k8s,cloud"), config).spec
    assert spec["partition"] == "k8s,cloud"
    assert spec["partition_infra"] == [
        ["k8s/lab", "k8s"],
        ["aws/us-east-1", "cloud"],
        ["gcp", "cloud"],
    ]


def test_a_job_over_two_partitions_takes_the_first_ones_files_home(tmp_path, monkeypatch):
    path = tmp_path / "home.yaml"
    path.write_text(
        "backend: sky\npartitions:\n  lab:\n    infra: k8s/lab\n    files_home: false\n"
        "  cloud:\n    infra: aws\n"
    )
    monkeypatch.setenv("SLURMSKY_CONFIG", str(path))
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    plan = translate(_request(tmp_path, "#!/bin/bash\n", "-p", "lab,cloud"), load_config())
    assert plan.spec["files_home"] is None
    notes = task_notes(str(tmp_path), plan.task, plan.spec)
    assert (
        "files home: off (partitions.lab.files_home): the files the job writes stay on its nodes"
        in notes
    )


def test_a_pool_partition_takes_one_infra_and_is_never_listed(tmp_path, monkeypatch):
    path = tmp_path / "pools.yaml"
    path.write_text(
        "backend: sky\npartitions:\n  warm:\n    infra: [aws, gcp]\n    pool: {}\n"
        "  lab:\n    infra: k8s/lab\n  pooled:\n    infra: aws\n    pool: {}\n"
    )
    monkeypatch.setenv("SLURMSKY_CONFIG", str(path))
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    cfg = load_config()
    with pytest.raises(SlurmError) as caught:
        translate(_request(tmp_path, "#!/bin/bash\n", "-p", "warm"), cfg)
    assert caught.value.lines == [
        "partition warm runs on SkyPilot pool slurmsky-warm, whose workers have one infra: "
        "give it one (a string) and no spot_fallback",
        "Batch job submission failed: Requested node configuration is not available",
    ]
    with pytest.raises(SlurmError) as caught:
        translate(_request(tmp_path, "#!/bin/bash\n", "-p", "lab,pooled"), cfg)
    assert caught.value.lines == [
        "partition pooled runs on a SkyPilot pool: it cannot be listed with others",
        "Batch job submission failed: Invalid partition name specified",
    ]


def test_the_infra_pattern_sbatch_checks_is_skypilots():
    """check.INFRA_PATTERN is a copy (sbatch never imports SkyPilot): equal to the installed
    SkyPilot's schema, and refusing what SkyPilot refuses, in its words."""
    from sky.utils import schemas

    pattern = schemas.get_resources_schema()["properties"]["infra"]["pattern"]
    assert pattern == INFRA_PATTERN
    infras = ["AWS", "aws/us-east-1/us-east-1a", "gcp/a/b/c", "*", "*/us-east-1", "*/*/z"]
    infras += ["k8s", "K8S/ctx/with/slashes", "slurm/c/p", "nowhere", "aws/", "", "azure//x"]
    for infra in infras:
        resources = {"ordered": [{"infra": "gcp"}, {"infra": infra}]}
        try:
            sky.Resources.from_yaml_config(copy.deepcopy(resources))
            theirs = None
        except Exception as exc:
            theirs = f"partition p: SkyPilot refuses its resources: {exc}"
        try:
            check(resources, "p")
            ours = None
        except SlurmError as exc:
            ours = exc.lines[0]
        assert ours == theirs, infra


def test_infra_skypilot_refuses_is_refused_at_sbatch_with_its_reason(cluster):
    (cluster.home / "slurmsky.yaml").write_text(CONFIG)
    cluster.script("job.sh", "#!/bin/bash\ntrue\n")
    refusal = "partition bad: SkyPilot refuses its resources: Invalid resources YAML: "
    refusal += f"'nowhere' does not match {INFRA_PATTERN!r}. "
    refusal += "Check problematic field(s): $.ordered[1].infra"
    failed = "Batch job submission failed: Requested node configuration is not available"
    # --test-only says it alone, no estimate line before it; in a list (-p k8s,bad) the
    # partition named is the one whose infra is refused, with the field in its own resources
    for argv in (["-p", "bad"], ["--test-only", "-p", "bad"], ["-p", "k8s,bad"], ["-p", "bad,k8s"]):
        out = cluster.run("sbatch", *argv, "job.sh")
        assert (out.returncode, out.stdout, out.stderr) == (
            1,
            "",
            f"sbatch: error: {refusal}\nsbatch: error: {failed}\n",
        ), argv
    assert cluster.jobs() == []
    out = cluster.run("sbatch", "-p", "cloud,nope", "job.sh")
    assert (out.returncode, out.stderr) == (
        1,
        "sbatch: error: invalid partition specified: nope\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
    )


def test_test_only_and_translate_show_the_candidates_and_the_recovery_policy(cluster):
    (cluster.home / "slurmsky.yaml").write_text(CONFIG)
    cluster.script("job.sh", "#!/bin/bash\ntrue\n")
    out = cluster.run("sbatch", "--test-only", "-p", "k8s,cloud", "--requeue", "job.sh")
    assert out.returncode == 0, out.stderr
    assert "# tries first: infra k8s/lab (partition k8s), then 4 more in order\n" in out.stderr
    assert "# recovery: SkyPilot recovers the job on new nodes when preempted, and " in out.stderr
    out = cluster.run("slurmsky", "translate", "job.sh", "-p", "cloud", "--no-requeue")
    assert out.returncode == 0, out.stderr
    assert (
        "recovery: none (--no-requeue): a preempted job ends NODE_FAIL, SkyPilot's "
        "max_restarts_on_errors is 0\n"
    ) in out.stderr
    assert "tries first: infra aws/us-east-1 (partition cloud), then 3 more in order\n" in (
        out.stderr
    )


@pytest.mark.parametrize(
    "infra, where, matches",
    [
        ("aws", ("AWS", "us-east-1", "us-east-1a"), True),
        ("aws/us-east-1", ("AWS", "us-east-1", None), True),
        ("aws/us-west-2", ("AWS", "us-east-1", None), False),
        ("gcp", ("AWS", "us-east-1", None), False),
        ("k8s/lab/ctx", ("Kubernetes", "lab/ctx", None), True),
        ("kubernetes", ("Kubernetes", "other", None), True),
        ("slurm/c1/gpu", ("Slurm", "c1", "gpu"), True),
        ("slurm/c1/gpu", ("Slurm", "c1", "cpu"), False),
        ("*/us-east-1", ("GCP", "us-east-1", None), True),
        (None, ("GCP", "us-central1", None), True),
    ],
)
def test_the_infra_a_job_got_names_its_partition(infra, where, matches):
    assert infra_matches(infra, *where) is matches


def test_the_node_runtime_names_the_partition_and_counts_its_runs(tmp_path):
    pairs = [["k8s/lab", "lab"], ["aws", "cloud"], ["gcp", "cloud"]]
    environ = {"SKYPILOT_CLUSTER_INFO": '{"cloud": "GCP", "region": "us-central1"}'}
    run_dir = tmp_path / "rundir"  # not made yet: node 0 makes it to count its runs
    job = {"partition": "lab,cloud", "partition_infra": pairs, "restart_count": 2}
    seen = [on_node(dict(job, count_runs=True), environ, str(run_dir), 0) for _ in range(2)]
    assert [(s["partition"], s["restart_count"]) for s in seen] == [("cloud", 2), ("cloud", 3)]
    assert (run_dir / "runs").read_text() == "2\n"
    other = on_node(dict(job, restart_count=0, count_runs=True), {}, str(run_dir), 1)
    # no cluster info: the first; not node 0: no count
    assert (other["partition"], other["restart_count"]) == ("lab", 0)


def test_on_slurm_infra_the_run_count_outlives_the_cluster_home(tmp_path):
    """SkyPilot's Slurm infra: $HOME is BASE/.sky_clusters/<cluster>, deleted with the
    allocation a preemption ends; the count is kept in the shared BASE, old counts pruned."""
    home = tmp_path / "base" / ".sky_clusters" / "job-4-ab12"
    run_dir = home / ".slurmsky" / "jobs" / "sky-managed-x_job_4-0-4"
    environ = {"HOME": str(home) + "/"}
    kept = tmp_path / "base" / ".slurmsky" / "runs"
    kept.mkdir(parents=True)
    (kept / "stale").write_text("3\n")
    os.utime(kept / "stale", (1, 1))
    counts = []
    for _ in range(3):
        run_dir.mkdir(parents=True)
        job = {"partition": "onprem", "restart_count": 0, "count_runs": True}
        counts.append(on_node(job, environ, str(run_dir), 0)["restart_count"])
        shutil.rmtree(home)  # SkyPilot's cleanup of the allocation
    assert counts == [0, 1, 2]
    assert sorted(p.name for p in kept.iterdir()) == [".slurmsky+jobs+sky-managed-x_job_4-0-4"]
    assert (kept / ".slurmsky+jobs+sky-managed-x_job_4-0-4").read_text() == "3\n"


def test_a_job_that_does_not_count_its_runs_leaves_its_run_dir_alone(tmp_path):
    """The local backend's spec (no count_runs): restart_count is the spec's, nothing is
    written, and a run dir not made yet stays unmade (the runtime makes it later)."""
    run_dir = tmp_path / "rundir"
    spec = on_node({"partition": "p", "restart_count": 1}, {}, str(run_dir), 0)
    assert spec["restart_count"] == 1
    assert not run_dir.exists()


# --- the executor, with SkyPilot's managed jobs run here -------------------------------------


@pytest.fixture
def world(cluster, tmp_path, monkeypatch):
    """A sky-backend cluster with CONFIG's partitions, minutes of 0.1 s (fake_sky.sky_world)."""
    monkeypatch.setenv("SLURMSKY_SECONDS_PER_MINUTE", "0.1")
    cluster.env["SLURMSKY_SECONDS_PER_MINUTE"] = "0.1"
    with sky_world(cluster, tmp_path, monkeypatch, CONFIG.split("partitions:\n", 1)[1]) as w:
        cluster, fake, drive = w
        # bounded, and long enough for a loaded machine: each run starts bash and the runtime
        yield cluster, fake, lambda until, timeout=WAIT: drive(until, timeout)


WAIT = 180  # seconds one drive waits at most


SCRIPT = (
    "#!/bin/bash\n"
    "echo partition $SLURM_JOB_PARTITION restarts ${{SLURM_RESTART_COUNT:-unset}}\n"
    "while [ ! -e {go} ]; do sleep 0.1; done\n"
)


def _row(cluster, job_id: int) -> tuple:
    with cluster.db() as conn:
        return conn.execute(
            "SELECT state, reason, partition, restarts FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()


def _start(cluster, job_id: int) -> float:
    with cluster.db() as conn:
        return conn.execute("SELECT start_time FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]


def _output(cluster) -> str | None:
    path = cluster.cwd / "out.txt"
    return path.read_text() if path.exists() else None


def _squeue(cluster, job_id: int) -> str:
    return cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%P %t %r").stdout


def _scontrol(cluster, job_id: int, *keys: str) -> list[str]:
    out = cluster.run("scontrol", "show", "job", str(job_id)).stdout.split()
    return [word for word in out if word.split("=")[0] in keys]


def test_a_job_over_two_partitions_runs_in_the_one_whose_infra_it_got(world, tmp_path):
    cluster, fake, drive = world
    fake.cluster_info = {"cloud": "GCP", "region": "us-central1", "zone": "us-central1-a"}
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    job_id = cluster.sbatch("-p", "k8s,cloud", "-o", "out.txt", "job.sh")
    assert _squeue(cluster, job_id) == "k8s,cloud PD None\n"
    drive(lambda: _row(cluster, job_id)[0] == "RUNNING")
    assert _squeue(cluster, job_id) == "cloud R None\n"
    (tmp_path / "go").touch()
    drive(lambda: _row(cluster, job_id)[0] == "COMPLETED")
    assert (cluster.cwd / "out.txt").read_text() == "partition cloud restarts unset\n"
    out = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "Partition,State")
    assert out.stdout == "cloud|COMPLETED\n"


@pytest.mark.parametrize("counted", [True, False], ids=["skypilot-counts", "seen-here"])
def test_a_preempted_job_is_requeued_and_runs_again_with_its_restart_count(
    world, tmp_path, counted
):
    """Restarts=1 whether SkyPilot's queue counts the recovery or only shows RECOVERING."""
    cluster, fake, drive = world
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    job_id = cluster.sbatch("-p", "k8s", "-o", "out.txt", "job.sh")
    drive(lambda: _output(cluster) == "partition k8s restarts unset\n")  # the first run's
    first_start = _start(cluster, job_id)
    fake.preempt(1, counted=counted)
    drive(lambda: _row(cluster, job_id)[0] == "REQUEUED")
    assert _row(cluster, job_id) == ("REQUEUED", "None", "k8s", 1)
    assert _squeue(cluster, job_id) == "k8s RQ None\n"
    assert _scontrol(cluster, job_id, "JobState", "Requeue", "Restarts") == [
        "JobState=REQUEUED",
        "Requeue=1",
        "Restarts=1",
    ]
    (tmp_path / "go").touch()
    fake.recover(1)
    drive(lambda: _row(cluster, job_id)[0] == "COMPLETED")
    assert (cluster.cwd / "out.txt").read_text() == "partition k8s restarts 1\n"
    assert _scontrol(cluster, job_id, "Restarts") == ["Restarts=1"]
    assert _start(cluster, job_id) > first_start  # StartTime: the run after the recovery
    assert len(fake.jobs) == 1  # SkyPilot's own recovery: the same managed job
    # accounting keeps both runs, as Slurm's of a job requeued when its node failed: sacct
    # shows the last, sacct -D the first too (NODE_FAIL, from its start to the recovery)
    fields = ["-P", "-n", "-j", str(job_id), "-o", "JobID,State,ExitCode,Start,End"]
    last = cluster.run("sacct", *fields).stdout
    runs = cluster.run("sacct", "-D", *fields).stdout
    j, started = job_id, iso(first_start)
    assert [line.split("|")[:3] for line in last.splitlines()] == [
        [f"{j}", "COMPLETED", "0:0"],
        [f"{j}.batch", "COMPLETED", "0:0"],
    ]
    assert runs.endswith(last)
    first = runs[: -len(last)].splitlines()
    assert [line.split("|")[:4] for line in first] == [
        [f"{j}", "NODE_FAIL", "0:0", started],
        [f"{j}.batch", "CANCELLED", "", started],
    ]
    assert first[0].split("|")[4] <= last.split("|")[3]  # it ended before the rerun began


@pytest.mark.parametrize("shared", [False, True], ids=["cloud", "slurm-infra"])
def test_a_lost_nodes_sigterm_leaves_no_cancelled_line_in_the_output(world, tmp_path, shared):
    """On Slurm infra a lost node's SIGTERM reaches the runtime as scancel's would, and it
    writes Slurm's CANCELLED line: the agent, which knows no one cancelled the job, takes
    the line out (Slurm prints none for a lost node); what the run wrote stays (append),
    once: on Slurm infra the rerun's node (a shared home) still has the lost run's files,
    which it does not send home again (the sky-e2e stack's preempt.out had them twice)."""
    cluster, fake, drive = world
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    job_id = cluster.sbatch("-p", "k8s", "-o", "out.txt", "--open-mode=append", "job.sh")
    drive(lambda: _output(cluster) == "partition k8s restarts unset\n")
    fake.preempt(1, term=True)
    drive(lambda: _row(cluster, job_id)[0] == "REQUEUED")
    fake.recover(1, shared)
    both = "partition k8s restarts unset\npartition k8s restarts 1\n"
    drive(lambda: "restarts 1" in (_output(cluster) or ""))  # the rerun runs: gone already
    assert _output(cluster) == both
    (tmp_path / "go").touch()
    drive(lambda: _row(cluster, job_id)[0] == "COMPLETED")
    assert _output(cluster) == both


def test_an_appending_jobs_output_is_not_doubled_by_a_new_agent(world, tmp_path):
    """An agent that dies while a --open-mode=append job runs: the next one reads the job's
    log from its start again, and goes on after what the files hold (the runs whose output
    came home are not written again), through a recovery too."""
    cluster, fake, drive = world
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    (cluster.cwd / "out.txt").write_text("kept\n")
    job_id = cluster.sbatch("-p", "k8s", "-o", "out.txt", "--open-mode=append", "job.sh")
    first = "kept\npartition k8s restarts unset\n"
    drive(lambda: _output(cluster) == first)
    fake.restart_agent()
    drive(lambda: _row(cluster, job_id)[0] == "RUNNING")
    fake.preempt(1, term=True)
    drive(lambda: _row(cluster, job_id)[0] == "REQUEUED")
    fake.recover(1)
    both = first + "partition k8s restarts 1\n"
    drive(lambda: "restarts 1" in (_output(cluster) or ""))
    fake.restart_agent()
    (tmp_path / "go").touch()
    drive(lambda: _row(cluster, job_id)[0] == "COMPLETED")
    assert _output(cluster) == both


def test_a_job_skypilot_recovers_no_more_ends_failed_with_its_reason(world, tmp_path):
    cluster, fake, drive = world
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    job_id = cluster.sbatch("-p", "k8s", "--requeue", "job.sh")
    drive(lambda: _row(cluster, job_id)[0] == "RUNNING")
    fake.preempt(1)
    drive(lambda: _row(cluster, job_id)[0] == "REQUEUED")
    fake.give_up(1, "FAILED_NO_RESOURCE", "Failed to recover: no resources in k8s/lab")
    drive(lambda: _row(cluster, job_id)[0] == "FAILED")
    reason = "Failed to recover: no resources in k8s/lab"
    assert _row(cluster, job_id) == ("FAILED", reason, "k8s", 1)
    out = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "State,ExitCode")
    assert out.stdout == "FAILED|1:0\n"


def test_a_no_requeue_job_that_is_preempted_ends_node_fail(world, tmp_path):
    cluster, fake, drive = world
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    job_id = cluster.sbatch("-p", "k8s", "--no-requeue", "job.sh")
    drive(lambda: _row(cluster, job_id)[0] == "RUNNING")
    assert fake.jobs[1]["task"]["resources"]["job_recovery"] == {"max_restarts_on_errors": 0}
    fake.preempt(1)
    drive(lambda: _row(cluster, job_id)[0] == "NODE_FAIL")
    assert _row(cluster, job_id) == ("NODE_FAIL", "NodeDown", "k8s", 0)
    drive(lambda: fake.jobs[1]["cancelled"])  # SkyPilot's recovery is called off
    out = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "State,ExitCode")
    assert out.stdout == "NODE_FAIL|0:0\n"


def test_scontrol_requeue_of_a_sky_job_relaunches_it_with_restarts(world, tmp_path):
    cluster, fake, drive = world
    cluster.script("job.sh", SCRIPT.format(go=tmp_path / "go"))
    job_id = cluster.sbatch("-p", "k8s", "-o", "out.txt", "job.sh")
    drive(lambda: _output(cluster) == "partition k8s restarts unset\n")  # the first run's
    out = cluster.run("scontrol", "requeue", str(job_id))
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    drive(lambda: _row(cluster, job_id)[3] == 1)
    drive(lambda: fake.jobs[1]["cancelled"])  # the cancel is SkyPilot's call, in the background
    (tmp_path / "go").touch()
    drive(lambda: _row(cluster, job_id)[0] == "COMPLETED")
    assert len(fake.jobs) == 2
    assert (cluster.cwd / "out.txt").read_text() == "partition k8s restarts 1\n"
    assert _scontrol(cluster, job_id, "Restarts") == ["Restarts=1"]
    # both runs' records, as on Slurm (and on the local backend): the first REQUEUED
    out = cluster.run("sacct", "-D", "-n", "-P", "-j", str(job_id), "-o", "JobID,State,ExitCode")
    assert out.stdout == (
        f"{job_id}|REQUEUED|0:0\n{job_id}.batch|CANCELLED|0:15\n"
        f"{job_id}|COMPLETED|0:0\n{job_id}.batch|COMPLETED|0:0\n"
    )


# --- candidates SkyPilot cannot use (issue 50) -------------------------------------------------

SPLIT = """\
  cloud:
    infra: k8s
  onprem:
    default: true
    infra: slurm/peer
  both:
    infra: [k8s, slurm/peer]
"""


@pytest.mark.parametrize(
    "infra_, why",
    [
        (None, None),
        ("*", None),
        ("slurm", None),
        ("slurm/peer/debug", None),
        ("SLURM/peer", None),
        ("slurm/gone", "no cluster gone in SkyPilot"),
        ("k8s", "not enabled in SkyPilot"),
        ("kubernetes/lab", "not enabled in SkyPilot"),
        ("aws/us-east-1", None),
        ("gcp", "not enabled in SkyPilot"),
    ],
)
def test_which_infra_skypilot_can_use_follows_its_expanded_answer(infra_, why):
    assert usable.why_not(infra_, ["AWS", "Slurm/peer"]) == why
    assert usable.why_not(infra_ or "k8s", []) == "nothing enabled in SkyPilot"


def test_kubernetes_contexts_are_named_whole():
    enabled = ["Kubernetes/gke_p/us/c", "Slurm/peer"]
    assert usable.why_not("k8s/gke_p/us/c", enabled) is None
    assert usable.why_not("k8s/gke_p", enabled) == "no context gke_p in SkyPilot"


def test_prune_keeps_the_usable_candidates_in_order_and_one_left_stands_alone():
    task = {
        "resources": {
            "cpus": "1+",
            "ordered": [
                {"infra": "k8s", "use_spot": True},
                {"infra": "slurm/peer"},
                {"infra": "aws", "use_spot": False},
            ],
        }
    }
    assert usable.prune(task, None) is task
    assert usable.prune(task, ["AWS", "Kubernetes/x", "Slurm/peer"]) is task
    assert usable.prune(task, ["AWS", "Slurm/peer"])["resources"] == {
        "cpus": "1+",
        "ordered": [{"infra": "slurm/peer"}, {"infra": "aws", "use_spot": False}],
    }
    assert usable.prune(task, ["Slurm/peer"])["resources"] == {"cpus": "1+", "infra": "slurm/peer"}
    assert task["resources"]["ordered"][0] == {"infra": "k8s", "use_spot": True}  # untouched
    assert usable.prune(task, ["GCP"]) is None
    assert usable.reason(task, ["GCP"]) == (
        "InfraUnusable:k8s(not_enabled_in_SkyPilot),slurm/peer(not_enabled_in_SkyPilot),"
        "aws(not_enabled_in_SkyPilot)"
    )
    group = {"job_group": [{"resources": {"infra": "slurm/peer"}}, {"resources": {"infra": "k8s"}}]}
    assert usable.prune(group, ["Slurm/peer"]) is None
    assert usable.reason(group, ["Slurm/peer"]) == "InfraUnusable:k8s(not_enabled_in_SkyPilot)"


@pytest.fixture
def split(cluster, tmp_path, monkeypatch):
    """CONFIG-like partitions over Kubernetes and Slurm where SkyPilot has only Slurm enabled
    (the sky-e2e stack without skypilot[kubernetes]), asked again every 0.2 s."""
    monkeypatch.setattr(usable, "EVERY", 0.2)
    with sky_world(cluster, tmp_path, monkeypatch, SPLIT) as (cluster, fake, drive):
        fake.enabled = ["Slurm/peer"]
        fake.cluster_info = {"cloud": "Slurm", "region": "peer", "zone": "debug"}
        yield cluster, fake, lambda until, timeout=WAIT: drive(until, timeout)


def test_unusable_candidates_are_passed_over_and_a_job_with_none_pends_until_one_is(
    split, tmp_path
):
    """`-p cloud,onprem` and `infra: [k8s, slurm/peer]` run on Slurm (the fake, as SkyPilot,
    fails any launch naming Kubernetes); a job for Kubernetes alone is warned of at sbatch,
    pends naming it and why, and runs once SkyPilot enables it."""
    cluster, fake, drive = split
    cluster.script("job.sh", "#!/bin/bash\necho partition $SLURM_JOB_PARTITION\n")
    first = cluster.sbatch("-p", "cloud,onprem", "-o", "first.txt", "job.sh")
    second = cluster.sbatch("-p", "both", "-o", "second.txt", "job.sh")
    drive(lambda: {_row(cluster, first)[0], _row(cluster, second)[0]} == {"COMPLETED"})
    (launched,) = fake.worlds.values()  # the one server's managed jobs
    assert [j["task"]["resources"].get("infra") for j in launched.values()] == [
        "slurm/peer",
        "slurm/peer",
    ]
    assert (cluster.cwd / "first.txt").read_text() == "partition onprem\n"
    assert (cluster.cwd / "second.txt").read_text() == "partition both\n"

    out = cluster.run("sbatch", "-p", "cloud", "-o", "third.txt", "job.sh")
    assert out.returncode == 0, out.stderr
    said = re.fullmatch(  # its last line (a credential-like name of xdist's may come first)
        r"sbatch: warning: SkyPilot cannot use k8s \(not enabled in SkyPilot\), as its server "
        r"said \d+ s ago: the job pends until one can",
        out.stderr.splitlines()[-1],
    )
    assert said, out.stderr
    third = int(out.stdout.split()[-1])
    drive(lambda: _row(cluster, third)[1].startswith("InfraUnusable"))
    assert _squeue(cluster, third) == "cloud PD InfraUnusable:k8s(not_enabled_in_SkyPilot)\n"
    assert _scontrol(cluster, third, "JobState", "Reason") == [
        "JobState=PENDING",
        "Reason=InfraUnusable:k8s(not_enabled_in_SkyPilot)",
    ]
    assert len(launched) == 2  # nothing launched for it
    fake.enabled.append("Kubernetes/lab")
    drive(lambda: _row(cluster, third)[0] == "COMPLETED")
    assert (cluster.cwd / "third.txt").read_text() == "partition cloud\n"
