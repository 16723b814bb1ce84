"""What a sky job costs (issue 53): SkyPilot's pick and price for each candidate before it
runs (sbatch --test-only, slurmsky translate) from a catalog the tests ship in SkyPilot's own
format and place (fixtures/sky-home/.sky/catalogs/v8/aws/vms.csv: a catalog with no
.meta md5 is the user's own, which SkyPilot never refreshes; the others are missing, and
never fetched)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

SKY_HOME = Path(__file__).resolve().parent / "fixtures" / "sky-home"
CATALOGS = SKY_HOME / ".sky" / "catalogs" / "v8"
CONFIG = """\
backend: sky
kill_wait: 1
partitions:
  spot:
    default: true
    infra: aws/us-east-1
    use_spot: true
  ondemand:
    infra: aws
  anywhere:
    infra: {aws/us-east-1, aws/us-west-2}
    use_spot: true
  lab:
    infra: k8s/lab
  g:
    infra: gcp
"""
GPU_JOB = "#!/bin/bash\n#SBATCH -N 2 --gres=gpu:A10G:1 -t 2:00:00\nsrun nvidia-smi\n"


@pytest.fixture
def priced(cluster):
    """A sky cluster whose HOME holds the shipped catalog."""
    shutil.copytree(SKY_HOME / ".sky", cluster.home / ".sky")
    cluster.env.pop("SKY_RUNTIME_DIR", None)  # SkyPilot's catalogs are under HOME
    (cluster.home / "slurmsky.yaml").write_text(CONFIG)
    cluster.script("job.sh", GPU_JOB)
    return cluster


def _price_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "price: " in line]


def test_test_only_prices_each_candidate_and_the_most_in_the_time_limit(priced):
    out = priced.run("sbatch", "--test-only", "-p", "spot,ondemand,lab,g", "job.sh")
    assert out.returncode == 0, out.stderr
    gcp = priced.home / ".sky/catalogs/v8/gcp/vms.csv"
    assert _price_lines(out.stderr) == [
        "# price: infra aws/us-east-1 (partition spot): g5.xlarge spot in us-east-1, "
        "$0.9058/h for 2 nodes ($0.4529/h a node)",
        "# price: infra aws (partition ondemand): g5.xlarge on-demand in us-east-1, "
        "$2.0120/h for 2 nodes ($1.0060/h a node)",
        "# price: infra k8s/lab (partition lab): no price: on-prem/kubernetes",
        f"# price: infra gcp (partition g): no catalog for GCP offline ({gcp})",
        "# price: SkyPilot's pick (the first it tries): infra aws/us-east-1 (partition spot), "
        "$0.9058/h; at most $4.02 in its time limit 02:00:00 (on the dearest candidate)",
    ]
    assert not gcp.exists()  # never fetched


def test_translate_says_the_optimizers_pick_of_any_of(priced):
    """Two candidates SkyPilot's optimizer chooses between: the cheaper region's spot price."""
    out = priced.run("slurmsky", "translate", "job.sh", "-p", "anywhere", "-t", "30")
    assert out.returncode == 0, out.stderr
    assert _price_lines(out.stderr) == [
        "price: infra aws/us-east-1 (partition anywhere): g5.xlarge spot in us-east-1, "
        "$0.9058/h for 2 nodes ($0.4529/h a node)",
        "price: infra aws/us-west-2 (partition anywhere): g5.xlarge spot in us-west-2, "
        "$0.7974/h for 2 nodes ($0.3987/h a node)",
        "price: SkyPilot's pick (the cheapest): infra aws/us-west-2 (partition anywhere), "
        "$0.7974/h; at most $0.45 in its time limit 00:30:00 (on the dearest candidate)",
    ]


def test_a_cpu_job_without_a_time_limit_has_no_most(priced):
    out = priced.run("slurmsky", "translate", "--wrap", "true", "-p", "ondemand", "-c", "8")
    assert out.returncode == 0, out.stderr
    assert _price_lines(out.stderr) == [
        "price: infra aws (partition ondemand): m6i.2xlarge on-demand in us-east-1, $0.3840/h",
        "price: SkyPilot's pick (its one): infra aws (partition ondemand), $0.3840/h",
    ]


# --- what it cost: the agent's mirror of SkyPilot's queue, the fake SkyPilot (fake_sky.py) --


@pytest.fixture
def catalog(monkeypatch):
    """This process's SkyPilot reads the shipped catalog (it found its catalog directory
    once, at import, and keeps each catalog it loaded)."""
    from sky.catalog import aws_catalog, common

    monkeypatch.setattr(common, "_ABSOLUTE_VERSIONED_CATALOG_DIR", str(CATALOGS))
    monkeypatch.setattr(aws_catalog, "_default_df", common.read_catalog("aws/vms.csv"))
    monkeypatch.setattr(aws_catalog, "_user_df", None)


def test_an_ended_job_keeps_its_cost_shown_where_slurm_users_look(
    cluster, tmp_path, monkeypatch, catalog
):
    from fake_sky import sky_world

    partitions = "  spot:\n    default: true\n    infra: aws/us-west-2\n    use_spot: true\n"
    with sky_world(cluster, tmp_path, monkeypatch, partitions) as (cluster, fake, drive):
        fake.cluster_info = {"cloud": "AWS", "region": "us-west-2", "zone": "us-west-2a"}
        fake.launched = "-"  # not launched yet: no instance in the queue
        go = tmp_path / "go"
        cluster.script("job.sh", f"#!/bin/bash\nwhile [ ! -e {go} ]; do sleep 0.1; done\n")
        job_id = cluster.sbatch("--gres=gpu:A10G:1", "-t", "60", "job.sh")

        def comment():
            out = cluster.run("scontrol", "show", "job", str(job_id)).stdout
            return next((w for w in out.split() if w.startswith("AdminComment=")), None)

        # the estimate the agent kept at its launch, then the instance's price
        assert drive(comment) == (
            "AdminComment=estimate=$0.3987/h,most=$0.40,1xg5.xlarge[spot],aws/us-west-2"
        )
        fake.jobs[1]["launched"] = "1x[spot](gpus=A10G:1, cpus=4, mem=16, g5.xlarge, disk=256)"
        drive(lambda: "rate=" in comment())
        assert comment() == "AdminComment=rate=$0.3987/h,1xg5.xlarge[spot],aws/us-west-2/us-west-2a"
        end = time.time()
        fake.jobs[1]["ran"] = (end - 1800, end)  # SkyPilot's start_at and end_at: 30 minutes
        go.touch()
        drive(lambda: cluster.jobs(f"job_id = {job_id} AND state = 'COMPLETED'"))
    said = "cost=$0.20,$0.3987/h,1xg5.xlarge[spot],aws/us-west-2/us-west-2a"
    out = cluster.run("scontrol", "show", "job", str(job_id))
    assert f"\n   AdminComment={said} \n" in out.stdout
    out = cluster.run("sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "JobID,AdminComment")
    assert out.stdout == f"{job_id}|{said}\n"
    out = cluster.run("seff", str(job_id))
    assert "\nCost: $0.20 (1x g5.xlarge spot on aws/us-west-2/us-west-2a at $0.3987/h)\n" in (
        out.stdout
    )
