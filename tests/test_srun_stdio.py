"""srun's -i/--input and its stdio input variables (Slurm's srun man page, IO Redirection):
a file every task reads, a %t pattern each task's own, a missing file srun's error."""

from __future__ import annotations


def test_input_file_reaches_every_task_and_a_pattern_each_its_own(cluster):
    (cluster.cwd / "in.txt").write_text("a\nb\n")
    (cluster.cwd / "in-0").write_text("zero\n")
    (cluster.cwd / "in-1").write_text("one\n")
    got = cluster.run("srun", "-n2", "-l", "--input=in.txt", "cat")
    assert (sorted(got.stdout.splitlines()), got.stderr, got.returncode) == (
        ["0: a", "0: b", "1: a", "1: b"],
        "",
        0,
    )
    got = cluster.run("srun", "-n2", "-l", "-i", "in-%t", "cat")
    assert (sorted(got.stdout.splitlines()), got.returncode) == (["0: zero", "1: one"], 0)
    # none, all and a task id forward srun's own stdin; none reaches the tasks here
    got = cluster.run("srun", "-i", "none", "cat", input="not read\n")
    assert (got.stdout, got.returncode) == ("", 0)


def test_input_file_missing_is_srun_s_error(cluster):
    got = cluster.run("srun", "-n2", "-i", "nofile", "cat")
    assert (got.returncode, got.stderr.splitlines()[-1]) == (
        1,
        "srun: error: Could not open stdin file: No such file or directory",
    )


def test_stdio_mode_variables_inside_a_job(cluster):
    """SLURM_STDINMODE and SLURM_STDOUTMODE as -i and -o, for the srun inside a job too."""
    (cluster.cwd / "in-0").write_text("zero\n")
    (cluster.cwd / "in-1").write_text("one\n")
    job = cluster.sbatch(
        "-n2",
        "-o",
        "batch.out",
        "--wrap",
        "SLURM_STDINMODE=in-%t SLURM_STDOUTMODE=out-%t srun -n2 cat; echo done",
    )
    cluster.wait_done(job)
    assert (cluster.cwd / "out-0").read_text() == "zero\n"
    assert (cluster.cwd / "out-1").read_text() == "one\n"
    assert (cluster.cwd / "batch.out").read_text() == "done\n"
