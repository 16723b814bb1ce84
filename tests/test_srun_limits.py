"""Resource limits set in the batch script reach the tasks of its srun steps, as Slurm's
PropagateResourceLimits=ALL (the default) carries srun's soft limits to its tasks."""

from __future__ import annotations


def test_limits_set_in_the_batch_script_reach_srun_tasks(cluster):
    job = cluster.sbatch(
        "-o",
        "out",
        "--wrap",
        "ulimit -S -c 0; ulimit -S -n 100; ulimit -S -s 4096; "
        "srun sh -c 'ulimit -c; ulimit -n; ulimit -s; env | grep -c RLIMIT'",
    )
    cluster.wait_done(job)
    # the limits, and no variable that carried them
    assert (cluster.cwd / "out").read_text().split()[:4] == ["0", "100", "4096", "0"]
