"""Heterogeneous jobs on the local backend: the issue's script gives the peer's output (its
stored answer, tests/compat/expected/hetjob-run.txt), each component has its own nodes and
world, `srun --het-group` spans components with one task numbering, ids J and J+1 are taken."""

from __future__ import annotations

from captures import read_expected

from slurmsky.runtime import hostlist

RUN = read_expected("hetjob-run")
# the case's script (tests/compat/cases/14-hetjob.yaml)
HET = """#!/bin/bash
#SBATCH -J het -o het-%j.out
#SBATCH -N1 -n1 -c1
#SBATCH hetjob
#SBATCH -N1 -n2 -c1
echo "size=$SLURM_HET_SIZE id0=$SLURM_JOB_ID_HET_GROUP_0 id1-id0=$((SLURM_JOB_ID_HET_GROUP_1 - SLURM_JOB_ID_HET_GROUP_0))"
srun --het-group=0,1 bash -c 'echo task=$SLURM_PROCID' | sort
srun --het-group=1 bash -c 'echo g1 task=$SLURM_PROCID n=$SLURM_NTASKS' | sort
srun --het-group=2 true; echo rc=$?
srun bash -c 'echo plain task=$SLURM_PROCID n=$SLURM_NTASKS'
env | grep -E '^SLURM_(HET_SIZE|PACK_SIZE|NTASKS|JOB_NUM_NODES|TASKS_PER_NODE|JOB_CPUS_PER_NODE|CPUS_PER_TASK|NPROCS)' | sort
scontrol show hostnames | wc -l
"""


def test_the_issues_script_prints_what_the_peer_prints(cluster):
    cluster.script("het.sh", HET)
    job = cluster.sbatch("het.sh")
    cluster.wait_done(job, timeout=60)
    out = (cluster.cwd / f"het-{job}.out").read_text()
    expected = next(p for p in RUN if p.command.startswith("cat ")).stdout
    assert out == expected.replace("<JOB1>", str(job))
    # component 1 took id J+1: the next job is J+2, as on Slurm
    assert cluster.sbatch("--wrap", "true") == job + 2


def test_each_component_has_its_own_world(cluster):
    cluster.script(
        "world.sh",
        """#!/bin/bash
#SBATCH -N1 -n1
#SBATCH packjob
#SBATCH -N2 -n4 --mem=100
env | grep -E '_(HET|PACK)_GROUP_|^SLURM_JOB_NODELIST=|^SLURM_NNODES=' | sort > world.txt
scontrol show hostnames $SLURM_JOB_NODELIST_HET_GROUP_1 > hosts1.txt
scontrol show hostnames > hosts.txt
srun --het-group=0-1 bash -c 'echo "$SLURM_PROCID $SLURM_NODEID $SLURM_STEP_NUM_TASKS $SLURM_JOB_NODELIST $SLURM_STEP_TASKS_PER_NODE"' | sort -n > tasks.txt
srun --het-group=1 -n1 bash -c 'echo $SLURM_STEP_NUM_TASKS $SLURM_STEP_NODELIST' > one.txt
""",
    )
    cluster.run("sbatch", "-J", "w", "world.sh")  # -J on the command line: both components
    assert cluster.wait_done(1)[0][1] == "COMPLETED"
    world = dict(line.split("=", 1) for line in (cluster.cwd / "world.txt").read_text().split())
    names = (cluster.cwd / "hosts.txt").read_text().split()
    group1 = (cluster.cwd / "hosts1.txt").read_text().split()
    assert len(names) == 1 and len(group1) == 2 and not set(names) & set(group1)
    for kind in ("HET", "PACK"):
        assert {k: v for k, v in world.items() if f"_{kind}_GROUP_" in k} == {
            f"SLURM_JOB_ID_{kind}_GROUP_0": "1",
            f"SLURM_JOB_ID_{kind}_GROUP_1": "2",
            f"SLURM_JOB_NAME_{kind}_GROUP_0": "w",
            f"SLURM_JOB_NAME_{kind}_GROUP_1": "w",
            f"SLURM_JOB_NODELIST_{kind}_GROUP_0": names[0],
            f"SLURM_JOB_NODELIST_{kind}_GROUP_1": world[f"SLURM_JOB_NODELIST_{kind}_GROUP_1"],
            f"SLURM_JOB_NUM_NODES_{kind}_GROUP_0": "1",
            f"SLURM_JOB_NUM_NODES_{kind}_GROUP_1": "2",
            f"SLURM_JOB_CPUS_PER_NODE_{kind}_GROUP_0": "1",
            f"SLURM_JOB_CPUS_PER_NODE_{kind}_GROUP_1": "2(x2)",
            f"SLURM_TASKS_PER_NODE_{kind}_GROUP_0": "1",
            f"SLURM_TASKS_PER_NODE_{kind}_GROUP_1": "2(x2)",
            f"SLURM_NTASKS_{kind}_GROUP_0": "1",
            f"SLURM_NTASKS_{kind}_GROUP_1": "4",
            f"SLURM_NPROCS_{kind}_GROUP_0": "1",
            f"SLURM_NPROCS_{kind}_GROUP_1": "4",
            f"SLURM_JOB_PARTITION_{kind}_GROUP_0": world[f"SLURM_JOB_PARTITION_{kind}_GROUP_0"],
            f"SLURM_JOB_PARTITION_{kind}_GROUP_1": world[f"SLURM_JOB_PARTITION_{kind}_GROUP_0"],
            # a script's --mem reaches later components, never component 0
            f"SLURM_MEM_PER_NODE_{kind}_GROUP_1": "100",
        }
    assert world["SLURM_JOB_NODELIST"] == names[0] and world["SLURM_NNODES"] == "1"
    tasks = (cluster.cwd / "tasks.txt").read_text().splitlines()
    assert [t.split()[:3] for t in tasks] == [
        ["0", "0", "5"],
        ["1", "1", "5"],
        ["2", "1", "5"],
        ["3", "2", "5"],
        ["4", "2", "5"],
    ]
    assert {t.split()[4] for t in tasks} == {"1,2(x2)"}
    # a step over both components sees their union as its allocation
    assert {t.split()[3] for t in tasks} == {hostlist.compress(names + group1)}
    assert (cluster.cwd / "one.txt").read_text() == f"1 {group1[0]}\n"


def test_a_plain_srun_runs_in_component_0_and_a_bad_group_is_refused(cluster):
    cluster.script(
        "g.sh",
        "#!/bin/bash\n#SBATCH -n2\n#SBATCH hetjob\n#SBATCH -n1\n"
        "srun bash -c 'echo $SLURM_PROCID/$SLURM_NTASKS' | sort\n"
        "srun --het-group=3 true; echo rc=$?\n",
    )
    job = cluster.sbatch("g.sh")
    cluster.wait_done(job)
    assert (cluster.cwd / f"slurm-{job}.out").read_text() == (
        "0/2\n1/2\n"
        "srun: error: Requested het-group offset exceeds highest hetjob index (3 > 1)\nrc=1\n"
    )


def test_at_home_each_component_is_a_job_of_its_own(cluster):
    """squeue, sacct and scontrol show J+0 and J+1 (the peer's stored answers, but for the
    partition's name); `scancel J+1` is refused with Slurm's error, `scancel J` ends both."""
    cluster.script("het.sh", HET)
    job = cluster.sbatch("het.sh")
    cluster.wait_done(job, timeout=60)
    sacct = cluster.run(
        "sacct", "-j", str(job), "-o", "JobID,JobName,Partition,AllocCPUS,State,ExitCode"
    )
    expected = next(p for p in RUN if p.command.startswith("sacct ")).stdout
    part = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%P").stdout.split()[0]

    def cells(text):  # the ids' widths differ from the stored answer's <JOB1>
        return [line.split() for line in text.splitlines()]

    assert cells(sacct.stdout) == cells(
        expected.replace("<JOB1>", str(job)).replace(" debug ", f" {part} ")
    )
    raw = cluster.run("sacct", "-n", "-P", "-j", str(job), "-o", "JobID,JobIDRaw")
    assert raw.stdout.split() == [
        f"{job}+0|{job}",
        f"{job}+0.batch|{job}.batch",
        f"{job}+0.0|{job}.0",
        f"{job}+0.2|{job}.2",
        f"{job}+1|{job + 1}",
        f"{job}+1.0|{job + 1}.0",
        f"{job}+1.1|{job + 1}.1",
    ]
    # `-j J+1`'s own id names that component alone
    one = cluster.run("sacct", "-n", "-X", "-P", "-j", str(job + 1), "-o", "JobID")
    assert one.stdout == f"{job}+1\n"
    shown = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%i %F %D %C %t")
    assert sorted(shown.stdout.splitlines()) == [
        f"{job}+0 {job} 1 1 CD",
        f"{job}+1 {job + 1} 1 2 CD",
    ]
    sets = cluster.run("squeue", "-h", "-t", "all", "-O", "JobID:6,HetJobIDSet:8,HetJobOffset")
    assert sorted(sets.stdout.splitlines()) == [
        f"{job:<6}{job}-{job + 1}".ljust(14) + "0".ljust(20),
        f"{job + 1:<6}{job}-{job + 1}".ljust(14) + "1".ljust(20),
    ], sets.stdout
    both = cluster.run("scontrol", "show", "job", str(job)).stdout
    assert [line.split()[:3] for line in both.splitlines() if line.startswith("JobId=")] == [
        [f"JobId={job}", f"HetJobId={job}", "HetJobOffset=0"],
        [f"JobId={job + 1}", f"HetJobId={job}", "HetJobOffset=1"],
    ]
    assert both.count(f"   HetJobIdSet={job}-{job + 1}\n") == 2
    alone = cluster.run("scontrol", "show", "job", str(job + 1)).stdout
    assert alone.startswith(f"JobId={job + 1} HetJobId={job} HetJobOffset=1 JobName=het\n")
    assert f"   StdOut={cluster.cwd}/het-{job + 1}.out\n" in alone
    # J+1 names that component as its own id does; a component it does not have is not found
    assert cluster.run("scontrol", "show", "job", f"{job}+1").stdout == alone
    missing = cluster.run("scontrol", "show", "job", f"{job}+5")
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        1,
        "",
        f"Job {job}+5 not found\n",
    )


def test_scancel_takes_the_whole_job_only(cluster):
    job = cluster.sbatch("--hold", "-J", "part", "-n1", ":", "-n1", "--wrap", "true")
    refused = cluster.run("scancel", f"{job}+1")
    assert (refused.returncode, refused.stderr) == (
        60,
        f"scancel: error: Kill job error on job id {job}+1: Operation not permitted on "
        "individual component of heterogeneous job\n",
    )
    assert cluster.run("scancel", str(job + 1)).returncode == 60  # its own id: the same
    listing = cluster.run("squeue", "-h", "-j", str(job), "-o", "%i %t")
    assert listing.stdout == f"{job}+1 PD\n{job}+0 PD\n"  # held: the peer's order
    assert cluster.run("scancel", str(job)).returncode == 0
    assert [r[:2] for r in cluster.jobs()] == [(job, "CANCELLED"), (job + 1, "CANCELLED")]


def test_components_in_two_partitions_each_get_their_own(cluster):
    """`-n1 : -p gpu --gpus=1 -n2` (the peer's hetjob-colon-held): component 1 on a node
    of its partition with its GPU, component 0 on one of the default partition with none."""
    (cluster.home / "slurmsky.yaml").write_text(
        "kill_wait: 1\npartitions:\n  debug: {default: true, nodes: 2}\n"
        "  gpu: {gpus: 2, nodes: 2}\n"
    )
    script = (
        'echo "$SLURM_JOB_PARTITION_HET_GROUP_0 $SLURM_JOB_PARTITION_HET_GROUP_1 '
        '$SLURM_GPUS_HET_GROUP_1 [$CUDA_VISIBLE_DEVICES]"; '
        "srun --het-group=1 bash -c 'echo $SLURM_PROCID [$CUDA_VISIBLE_DEVICES]' | sort"
    )
    job = cluster.sbatch("-n1", ":", "-p", "gpu", "--gpus=1", "-n2", "--wrap", script)
    cluster.wait_done(job)
    assert (cluster.cwd / f"slurm-{job}.out").read_text() == ("debug gpu 1 []\n0 [0]\n1 [0]\n")
    shown = cluster.run("squeue", "-h", "-t", "all", "-j", str(job), "-o", "%i %P %C %t")
    assert sorted(shown.stdout.splitlines()) == [f"{job}+0 debug 1 CD", f"{job}+1 gpu 2 CD"]
