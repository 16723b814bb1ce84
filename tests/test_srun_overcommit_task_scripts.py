"""srun/sbatch -O (--overcommit) and srun's --task-prolog/--task-epilog on the local backend
(Slurm 22.05: slurmctld's min_cpus with overcommit, slurmstepd's task scripts)."""

from __future__ import annotations

import os
import time
from pathlib import Path

TWO_CPUS = (
    "kill_wait: 1\npartitions:\n  debug: {default: true, nodes: 2, cpus_per_node: 2, "
    "mem_per_node: 1000}\n"
)


def configure(cluster) -> None:
    Path(cluster.env["SLURMSKY_CONFIG"]).write_text(TWO_CPUS)


def test_overcommit_runs_more_tasks_than_the_node_has_cpus(cluster):
    configure(cluster)
    got = cluster.run("srun", "-N1", "-n5", "-O", "-l", "printenv", "SLURMD_NODENAME")
    assert (sorted(got.stdout.splitlines()), got.stderr, got.returncode) == (
        [f"{i}: 127.0.0.1" for i in range(5)],
        "",
        0,
    )
    # the input variable too
    got = cluster.run("srun", "-n3", "true", env={"SLURM_OVERCOMMIT": "1", "SLURM_NNODES": "1"})
    assert (got.stderr, got.returncode) == ("", 0)


def test_sbatch_overcommit_takes_one_node_and_a_tasks_cpus(cluster):
    """As the peer's `sbatch -O -n30`: one node, one CPU (SLURM_JOB_CPUS_PER_NODE 1)."""
    configure(cluster)
    job = cluster.sbatch(
        "-O", "-n30", "-o", "out", "--wrap", "srun -O true; echo $SLURM_JOB_CPUS_PER_NODE"
    )
    assert cluster.wait_done(job)[0][1] == "COMPLETED"
    assert (cluster.cwd / "out").read_text() == "1\n"
    shown = cluster.run("scontrol", "show", "job", str(job)).stdout
    assert "NumNodes=1 NumCPUs=1 NumTasks=30 " in shown
    job = cluster.sbatch("-O", "-n1", "-o", "one", "--wrap", "echo $SLURM_JOB_CPUS_PER_NODE")
    cluster.wait_done(job)
    assert (cluster.cwd / "one").read_text() == "1\n"


def test_task_prolog_sets_the_task_env_and_prints_epilog_runs_after_each_task(cluster):
    configure(cluster)
    out = cluster.cwd
    (out / "prolog").write_text(
        "#!/bin/bash\nid -u >> pre\necho print HEADER\necho export TEST=prolog_qa\n"
        "echo unset DISPLAY\necho 'not a directive'\n"
    )
    (out / "epilog").write_text(
        "#!/bin/bash\necho $SLURM_PROCID $SLURM_SCRIPT_CONTEXT $TEST >> post\n"
        "sleep 300.25 &\nsleep 300.25\n"
    )
    for name in ("prolog", "epilog"):
        os.chmod(out / name, 0o755)
    started = time.monotonic()
    got = cluster.run(
        "srun",
        "-n3",
        "-l",
        f"--task-prolog={out / 'prolog'}",
        "--task-epilog",
        str(out / "epilog"),
        "bash",
        "-c",
        'echo "TEST=$TEST DISPLAY=${DISPLAY-unset} $SLURM_SCRIPT_CONTEXT"',
        env={"DISPLAY": ":0"},
    )
    took = time.monotonic() - started
    assert sorted(got.stdout.splitlines()) == sorted(
        [f"{i}: HEADER" for i in range(3)]
        + [f"{i}: TEST=prolog_qa DISPLAY=unset prolog_task" for i in range(3)]
    )
    assert (got.stderr, got.returncode) == ("", 0)
    assert (out / "pre").read_text() == f"{os.getuid()}\n" * 3
    # the epilog sees the task's environment as launched (not the prolog's), and is killed
    # with what it started after 5 s
    assert sorted((out / "post").read_text().splitlines()) == [f"{i} epilog_task" for i in range(3)]
    assert 5 <= took < 20
    leftover = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p) == "sleep 300.25"]
    assert leftover == []


def test_a_failing_task_prolog_fails_the_task_with_slurmstepd_s_error(cluster):
    configure(cluster)
    (cluster.cwd / "prolog").write_text("#!/bin/bash\nexit 3\n")
    os.chmod(cluster.cwd / "prolog", 0o755)
    job = cluster.sbatch("-o", "out", "--wrap", "srun --task-prolog=$PWD/prolog echo ran")
    cluster.wait_done(job)
    assert (cluster.cwd / "out").read_text() == (
        "slurmstepd-127.0.0.1: error: --task-prolog failed status=3\n"
        "srun: error: 127.0.0.1: task 0: Exited with exit code 3\n"
    )


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_debugger_test_prints_the_proctable_and_holds_the_tasks_until_the_time_limit(cluster):
    configure(cluster)
    (cluster.cwd / "mp.conf").write_text("1-2 hostname\n0,3 date\n")
    got = cluster.run(
        "srun",
        "-n4",
        "-O",
        "-t1",
        "--debugger-test",
        "--multi-prog",
        "mp.conf",
        env={"SLURMSKY_SECONDS_PER_MINUTE": "3"},
    )
    lines = got.stderr.splitlines()
    table = [line.rsplit(", pid:", 1) for line in lines[:4]]
    assert [(head, tail.split(", ")[1]) for head, tail in table] == [
        ("srun: task:0, host:127.0.0.1", "executable:date"),
        ("srun: task:1, host:127.0.0.1", "executable:hostname"),
        ("srun: task:2, host:127.0.0.1", "executable:hostname"),
        ("srun: task:3, host:127.0.0.1", "executable:date"),
    ]
    assert all(tail.split(", ")[0].isdigit() for _, tail in table)
    # held (stopped) until the time limit ends them: nothing ran
    assert got.stdout == ""
    assert any("DUE TO TIME LIMIT" in line for line in lines[4:])
    assert got.returncode != 0


def test_overcommit_memory_per_cpu_counts_the_cpus_taken(cluster):
    configure(cluster)
    """(30 CPUs' worth would be more memory than the node has)"""
    got = cluster.run("srun", "-n30", "-O", "--mem-per-cpu=400", "-l", "true")
    assert (got.stdout, got.stderr, got.returncode) == ("", "", 0)


def test_srun_reads_its_task_and_node_counts_from_the_environment(cluster):
    """SLURM_NPROCS, SLURM_NTASKS (later wins) and SLURM_JOB_NUM_NODES are -n and -N for
    srun alone."""
    configure(cluster)
    got = cluster.run("srun", "-l", "printenv", "SLURM_NTASKS", env={"SLURM_NPROCS": "3"})
    assert sorted(got.stdout.splitlines()) == ["0: 3", "1: 3", "2: 3"]
    both = {"SLURM_NPROCS": "3", "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "2"}
    got = cluster.run("srun", "-l", "printenv", "SLURM_NNODES", "SLURM_NTASKS", env=both)
    assert sorted(got.stdout.splitlines()) == ["0: 2", "0: 2", "1: 2", "1: 2"]
