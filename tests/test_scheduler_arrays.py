"""Job arrays: element ids, per-element environment and output, the %p throttle."""

from __future__ import annotations

import time


def test_elements_have_their_own_ids_and_files(cluster):
    job = cluster.sbatch(
        "--array=1-7:2%2", "--wrap", "echo $SLURM_JOB_ID $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID"
    )
    rows = cluster.wait_done(job)
    assert [r[1] for r in rows] == ["COMPLETED"] * 4
    with cluster.db() as conn:
        elements = conn.execute(
            "SELECT array_task_id, job_id FROM jobs WHERE array_job_id = ? ORDER BY array_task_id",
            (job,),
        ).fetchall()
    # as on Slurm: new ids for the first elements, the array's own id for the last one
    assert elements == [(1, job + 1), (3, job + 2), (5, job + 3), (7, job)]
    for index, own_id in elements:
        text = (cluster.cwd / f"slurm-{job}_{index}.out").read_text()
        assert text == f"{own_id} {job} {index}\n"


def test_throttled_elements_start_in_index_order(cluster):
    """Real Slurm 22.05: `--array=1-4%1` runs 1, 2, 3, 4, the last (holding the array's own
    id) last, so `squeue -t all` (latest start first) lists 4, 3, 2, 1."""
    job = cluster.sbatch("--array=1-4%1", "--wrap", 'echo "$SLURM_ARRAY_TASK_ID" >> order.txt')
    cluster.wait_done(job)
    assert (cluster.cwd / "order.txt").read_text() == "1\n2\n3\n4\n"
    out = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%i %T")
    assert out.stdout == "".join(f"{job}_{k} COMPLETED\n" for k in (4, 3, 2, 1))


def test_thousand_elements_throttled_to_four(cluster):
    started = time.monotonic()
    job = cluster.sbatch("--array=0-999%4", "-o", "/dev/null", "--wrap", "true")
    assert time.monotonic() - started < 5  # measured ~0.25 s: every element stored at once
    rows = cluster.wait_done(job, timeout=600)
    assert len(rows) == 1000 and {r[1] for r in rows} == {"COMPLETED"}
    with cluster.db() as conn:
        spans = conn.execute(
            "SELECT start_time, end_time FROM jobs WHERE array_job_id = ?", (job,)
        ).fetchall()
    events = sorted(
        [(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1])
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert 2 <= peak <= 4


def test_throttled_elements_wait_with_their_reason(cluster):
    job = cluster.sbatch("--array=1-5%1", "--wrap", "sleep 30")
    cluster.wait_for(lambda: cluster.jobs("array_job_id = ? AND state = 'RUNNING'", job), 30)
    time.sleep(0.5)
    pending = cluster.run("squeue", "-h", "-t", "PD", "-j", str(job), "-o", "%i %r").stdout
    assert pending == f"{job}_[2-5%1] JobArrayTaskLimit\n"


def test_max_array_size_comes_from_the_config(cluster):
    """Slurm's MaxArraySize (1001 unless slurm.conf says otherwise) bounds --array indices;
    `max_array_size` in the config raises it, and `scontrol show config` shows it."""
    refused = cluster.run("sbatch", "--hold", "--array=0-1001", "--wrap", "true")
    assert (refused.returncode, refused.stderr) == (
        1,
        "sbatch: error: Batch job submission failed: Invalid job array specification\n",
    )
    (cluster.home / "slurmsky.yaml").write_text("kill_wait: 1\nmax_array_size: 2000\n")
    job = cluster.sbatch("--hold", "--array=0-1001", "--wrap", "true")
    assert len(cluster.run("squeue", "-h", "-r", "-j", str(job)).stdout.splitlines()) == 1002
    config = cluster.run("scontrol", "show", "config").stdout
    assert "\nMaxArraySize            = 2000\n" in config
    cluster.run("scancel", str(job))


def test_pending_elements_wait_alike_but_for_their_own_reasons(cluster):
    """The array's pending record waits as one job: on one node, for Resources while element
    0 runs; a held element is split off it and shows its hold (scontrol hold:
    JobHeldAdmin); released, it waits behind the record (Priority) as a job of its own, and
    the elements still run in index order."""
    import os

    env = {"SLURMSKY_LOCAL_NODES": "1"}  # one node with this machine's CPUs
    job = cluster.sbatch(
        "--array=0-5",
        "-c",
        str(os.cpu_count()),
        "--wrap",
        "echo $SLURM_ARRAY_TASK_ID >> order.txt; "
        "if [ $SLURM_ARRAY_TASK_ID = 0 ]; then sleep 60; fi",
        env=env,
    )

    def reasons():
        out = cluster.run("squeue", "-h", "-t", "PD", "-j", str(job), "-o", "%i %r", env=env)
        return sorted(out.stdout.splitlines())

    cluster.wait_for(
        lambda: cluster.jobs("array_job_id = ? AND array_task_id = 0 AND state = 'RUNNING'", job),
        30,
        "element 0 to run",
    )
    assert cluster.run("scontrol", "hold", f"{job}_3", env=env).returncode == 0
    cluster.wait_for(
        lambda: reasons() == [f"{job}_3 JobHeldAdmin", f"{job}_[1-2,4-5] Resources"],
        30,
        "the reasons",
    )
    assert cluster.run("scontrol", "release", f"{job}_3", env=env).returncode == 0
    cluster.wait_for(
        lambda: reasons() == [f"{job}_3 Priority", f"{job}_[1-2,4-5] Resources"],
        30,
        "the release",
    )
    assert cluster.run("scancel", f"{job}_0", env=env).returncode == 0
    rows = cluster.wait_done(job, timeout=120)
    assert sorted(r[1] for r in rows) == ["CANCELLED"] + ["COMPLETED"] * 5
    assert (cluster.cwd / "order.txt").read_text() == "0\n1\n2\n3\n4\n5\n"
