"""Dependencies, holds and begin times, with Slurm's states, reasons and %E texts."""

from __future__ import annotations

import time

from test_local_backend_jobs import use_state

from slurmsky.core import jobcontrol as control


def dependency(cluster, job_id: int) -> str | None:
    with cluster.db() as conn:
        return conn.execute("SELECT dependency FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]


def test_dependency_matrix(cluster, monkeypatch):
    """The cases of dependency-matrix.txt: what runs, what never can, and what %E says."""
    conn = use_state(cluster, monkeypatch)
    ok = cluster.sbatch("-J", "parent-ok", "--hold", "--wrap", "true")
    fail = cluster.sbatch("-J", "parent-fail", "--hold", "--wrap", "exit 1")
    kids = {
        "afterok-ok": ([f"--dependency=afterok:{ok}"], "COMPLETED", None),
        "afterok-fail": ([f"--dependency=afterok:{fail}"], "PENDING", f"afterok:{fail}(failed)"),
        "afterany-fail": ([f"--dependency=afterany:{fail}"], "COMPLETED", None),
        "afternotok": ([f"--dependency=afternotok:{fail}"], "COMPLETED", None),
        "afternotok-ok": ([f"--dependency=afternotok:{ok}"], "PENDING", f"afternotok:{ok}(failed)"),
        "after": ([f"--dependency=after:{ok}"], "COMPLETED", None),
        "kill-invalid": (
            [f"--dependency=afterok:{fail}", "--kill-on-invalid-dep=yes"],
            "CANCELLED",
            f"afterok:{fail}(failed)",
        ),
        "multi": (
            [f"--dependency=afterok:{ok},afterok:{fail}"],
            "PENDING",
            f"afterok:{fail}(failed)",
        ),
        "either": ([f"--dependency=afterok:{ok}?afterok:{fail}"], "COMPLETED", None),
        "unknown": (["--dependency=afterok:999999"], "COMPLETED", None),
    }
    ids = {
        name: cluster.sbatch("-J", name, *args, "--wrap", "true")
        for name, (args, _, _) in kids.items()
    }
    assert dependency(cluster, ids["multi"]) == (
        f"afterok:{ok}(unfulfilled),afterok:{fail}(unfulfilled)"
    )
    assert cluster.job(ids["multi"])[4] == "Dependency"
    for parent in (ok, fail):
        assert control.release(conn, control.select(conn, parent, None)[0]) is None
    settled = [ids[n] for n, (_, st, _) in kids.items() if st != "PENDING"]
    cluster.wait_done(ok, fail, *settled, timeout=60)
    cluster.wait_for(
        lambda: all(
            cluster.job(ids[n])[4] == "DependencyNeverSatisfied"
            for n, (_, st, _) in kids.items()
            if st == "PENDING"
        ),
        30,
    )
    for name, (_, end_state, shown) in kids.items():
        row = cluster.job(ids[name])
        assert (name, row[1], dependency(cluster, ids[name])) == (name, end_state, shown)
        if end_state != "COMPLETED":
            assert row[4] == "DependencyNeverSatisfied", name


def test_chain_runs_in_order(cluster):
    stamp = cluster.cwd / "order.txt"
    first = cluster.sbatch("--wrap", f"sleep 1; echo a >> {stamp}")
    second = cluster.sbatch(f"--dependency=afterok:{first}", "--wrap", f"echo b >> {stamp}")
    third = cluster.sbatch(f"--dependency=afterany:{second}", "--wrap", f"echo c >> {stamp}")
    assert [r[1] for r in cluster.wait_done(first, second, third)] == ["COMPLETED"] * 3
    assert stamp.read_text() == "a\nb\nc\n"


def test_dependency_on_an_array_waits_for_every_element(cluster):
    array = cluster.sbatch("--array=1-2", "--wrap", "sleep 1")
    child = cluster.sbatch(f"--dependency=afterok:{array}", "--wrap", "true")
    cluster.wait_for(lambda: dependency(cluster, child) == f"afterok:{array}_*(unfulfilled)", 30)
    cluster.wait_done(child)
    with cluster.db() as conn:
        (child_start,) = conn.execute(
            "SELECT start_time FROM jobs WHERE job_id = ?", (child,)
        ).fetchone()
        (array_end,) = conn.execute(
            "SELECT max(end_time) FROM jobs WHERE array_job_id = ?", (array,)
        ).fetchone()
    assert child_start >= array_end


def test_singleton_waits_for_the_running_namesake(cluster):
    gate = "while [ ! -e go ]; do sleep 0.1; done"  # runs until the test says (no race)
    first = cluster.sbatch("-J", "single", "--dependency=singleton", "--wrap", gate)
    second = cluster.sbatch("-J", "single", "--dependency=singleton", "--wrap", "true")
    cluster.wait_for(lambda: cluster.job(first)[1] == "RUNNING", 30)
    time.sleep(0.3)
    assert cluster.job(second)[1:] == ("PENDING", None, None, "Dependency")
    assert dependency(cluster, second) == "singleton(unfulfilled)"
    (cluster.cwd / "go").touch()
    cluster.wait_done(first, second)
    with cluster.db() as conn:
        starts = dict(conn.execute("SELECT job_id, start_time FROM jobs"))
        ends = dict(conn.execute("SELECT job_id, end_time FROM jobs"))
    assert starts[second] >= ends[first]


def test_hold_release_and_begin(cluster, monkeypatch):
    conn = use_state(cluster, monkeypatch)
    held = cluster.sbatch("--hold", "--wrap", "true")
    assert cluster.job(held)[1:] == ("PENDING", None, None, "JobHeldUser")
    [record] = control.select(conn, held, None)
    assert control.hold(conn, record, admin=True) is None
    assert cluster.job(held)[4] == "JobHeldAdmin"
    assert control.release(conn, record) is None
    assert cluster.wait_done(held)[0][1] == "COMPLETED"
    [record] = control.select(conn, held, None)
    assert control.release(conn, record) == control.NOT_PENDING

    later = cluster.sbatch("--begin=now+3", "--wrap", "true")
    cluster.wait_for(lambda: cluster.job(later)[4] == "BeginTime", 10)
    submitted = time.time()
    assert cluster.wait_done(later)[0][1] == "COMPLETED"
    with conn:
        (start,) = conn.execute("SELECT start_time FROM jobs WHERE job_id = ?", (later,)).fetchone()
    assert start >= submitted - 1


def test_cancel_pending_and_array_elements(cluster, monkeypatch):
    conn = use_state(cluster, monkeypatch)
    array = cluster.sbatch("--hold", "--array=1-5", "--wrap", "true")
    job_id, indices = control.parse_job_id(f"{array}_[2-3,5]")
    assert control.cancel(conn, control.select(conn, job_id, indices)) == {}
    # named one by one (not as scancel's indices), they are split off and cancelled
    states = {r[0]: r[1] for r in cluster.jobs("array_job_id = ?", array)}
    assert sorted(states.values()) == ["CANCELLED"] * 3 + ["PENDING"]
    assert cluster.run("squeue", "-h", "-j", str(array), "-o", "%i").stdout == f"{array}_[1,4]\n"
    [done] = control.select(conn, array, [2])
    assert control.cancel(conn, [done]) == {done.job_id: control.ALREADY_DONE}
    for bad in ("abc", "12_", "0", "3_[4-2]"):
        try:
            control.parse_job_id(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_requeue_running_job(cluster, monkeypatch):
    conn = use_state(cluster, monkeypatch)
    job = cluster.sbatch("--wrap", "sleep 30")
    cluster.wait_for(lambda: cluster.job(job)[1] == "RUNNING", 30)
    [record] = control.select(conn, job, None)
    assert control.requeue(conn, record) is None
    cluster.wait_for(lambda: cluster.job(job)[1] == "PENDING", 30)
    assert cluster.job(job)[4] == "BeginTime"
    [record] = control.select(conn, job, None)
    assert record.restarts == 1 and record.begin_time > time.time() + 60
    assert control.requeue(conn, record) == control.PENDING_ERR


def test_aftercorr_pairs_array_elements(cluster):
    first = cluster.sbatch("--array=1-2", "--wrap", "sleep 1; exit $((SLURM_ARRAY_TASK_ID - 1))")
    second = cluster.sbatch(f"--dependency=aftercorr:{first}", "--array=1-2", "--wrap", "true")
    cluster.wait_done(first)
    cluster.wait_for(
        lambda: (
            {r[1] for r in cluster.jobs("array_job_id = ? AND array_task_id = 1", second)}
            == {"COMPLETED"}
        ),
        30,
    )
    cluster.wait_for(
        lambda: (
            cluster.jobs("array_job_id = ? AND array_task_id = 2", second)[0][4]
            == "DependencyNeverSatisfied"
        ),
        30,
    )
