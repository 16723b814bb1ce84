"""#PBS and #BSUB lines, read as Slurm 22.05's sbatch reads them (src/sbatch/xlate.c).

Every expectation below was observed on the peer (slurm-wlm 22.05.8): scontrol show job
of a held submission, or sbatch's stderr and exit code.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmsky.errors import SlurmError
from slurmsky.parse.gres import Gres
from slurmsky.parse.request import build_batch_request, parse_command_line
from slurmsky.parse.script import parse_script


def request(tmp_path, body, argv=(), env=None):
    (tmp_path / "job.sh").write_text("#!/bin/bash\n" + body + "echo hi\n")
    return build_batch_request(
        parse_command_line("sbatch", [*argv, "job.sh"]), env or {}, str(tmp_path), lambda: b""
    )


def failure(tmp_path, body, argv=(), env=None):
    with pytest.raises(SlurmError) as info:
        request(tmp_path, body, argv, env)
    return info.value.render("sbatch"), info.value.exit_code


# --- which lines are read ---------------------------------------------------------


def test_pbs_lines_are_read_in_the_header_and_the_body():
    script = parse_script(
        "#!/bin/sh\n#PBS -N a\n#SBATCH -J b\necho\n#PBS -l walltime=5\n"
        '#PBS-N "x y" # note\n  #PBS -N indented\n#pbs -N lower\n'
    )
    assert [d.words for d in script.directives] == [("-J", "b")]
    assert [(d.lineno, d.words) for d in script.pbs] == [
        (2, ("-N", "a")),
        (5, ("-l", "walltime=5")),
        (6, ("-N", "x y")),
    ]
    assert script.bsub == ()


def test_only_the_first_100_lines_not_starting_with_hash_are_scanned(tmp_path):
    # 100 command lines before it: read; 101: not (the peer, both ways)
    assert request(tmp_path, "true\n" * 100 + "#PBS -N at\n").job_name == "at"
    assert request(tmp_path, "true\n" * 101 + "#PBS -N at\n").job_name == "job.sh"
    assert request(tmp_path, "\n# c\n" * 100 + "#PBS -N at\n").job_name == "at"


def test_pbs_beats_sbatch_whichever_comes_first(tmp_path):
    assert request(tmp_path, "#SBATCH -J sb\n#PBS -N pbsname\n").job_name == "pbsname"
    assert request(tmp_path, "#PBS -N pbsname\n#SBATCH -J sb\n").job_name == "pbsname"
    req = request(tmp_path, "#SBATCH -t 5\n#PBS -l walltime=01:00:00\n")
    assert req.time == 60


def test_environment_and_command_line_beat_pbs(tmp_path):
    body = "#PBS -N pbsname\n#PBS -l walltime=1:00:00\n"
    assert request(tmp_path, body, env={"SBATCH_JOB_NAME": "envname"}).job_name == "envname"
    assert request(tmp_path, body, env={"SBATCH_TIMELIMIT": "3"}).time == 3
    req = request(tmp_path, body, argv=["-J", "cli", "-t", "7"])
    assert (req.job_name, req.time) == ("cli", 7)


@pytest.mark.parametrize(
    "argv,env,body",
    [
        (["--ignore-pbs"], {}, ""),
        ([], {"SBATCH_IGNORE_PBS": ""}, ""),  # set to anything, even empty
        ([], {}, "#SBATCH --ignore-pbs\n"),
    ],
)
def test_ignore_pbs(tmp_path, argv, env, body):
    req = request(tmp_path, body + "#PBS -N pbsname\n#PBS -x\n", argv, env)
    assert req.job_name == "job.sh"


def test_bsub_lines_are_read_instead_of_pbs_lines(tmp_path):
    req = request(tmp_path, "#BSUB -J bsubname\n#PBS -N pbsname\n#PBS -l walltime=5:00\n")
    assert (req.job_name, req.time) == ("bsubname", None)
    req = request(
        tmp_path,
        "#BSUB -n 3\n#BSUB -W 15\n#BSUB -q gpu\n#BSUB -o bo.txt\n#BSUB -e be.txt\n#BSUB -M 3000\n",
    )
    assert (req.ntasks, req.time, req.partition, req.output, req.error, req.mem_per_cpu) == (
        3,
        15,
        "gpu",
        "bo.txt",
        "be.txt",
        3,
    )  # -M is in KB: 3000K rounds up to 3M


# --- what each option sets (the peer's scontrol show job) ---------------------------


@pytest.mark.parametrize(
    "body,expected",
    [
        ("#PBS -l nodes=2:ppn=3\n", {"nodes": (2, 2), "ntasks": 6}),
        ("#PBS -l ncpus=4\n", {"mincpus": 4}),
        ("#PBS -l mem=2gb\n", {"mem": 2048}),
        ("#PBS -l mem=200mb,walltime=10:00\n", {"mem": 200, "time": 10}),
        ("#PBS -l pmem=100mb\n", {"mem": None, "mem_per_cpu": None}),
        ("#PBS -l cput=10\n", {"time": 10}),
        ("#PBS -l file=10mb\n", {"tmp": 10}),
        (
            "#PBS -l select=2:ncpus=4:mpiprocs=2\n",
            {"nodes": (2, 2), "mincpus": 4, "ntasks_per_node": 2, "cpus_per_task": 2},
        ),
        ("#PBS -l mpiprocs=3\n", {"ntasks_per_node": 3}),
        (
            "#PBS -l nodes=1:ppn=2:gpus=1\n",
            {"nodes": (1, 1), "ntasks": 2, "gres": (Gres("gpu", None, 1),)},
        ),
        ("#PBS -l naccelerators=1\n", {"gres": (Gres("gpu", None, 1),)}),
        ("#PBS -q gpu\n", {"partition": "gpu"}),
        (
            "#PBS -o out.txt\n#PBS -e err.txt\n#PBS -j oe\n",
            {"output": "out.txt", "error": "err.txt"},
        ),
        ("#PBS -o none\n#PBS -e NONE\n", {"output": "/dev/null", "error": "/dev/null"}),
        ("#PBS -h\n", {"hold": True}),
        ("#PBS -J 1-3\n", {"array": "1-3"}),
        ("#PBS -t 1-3%2\n", {"array": "1-3%2"}),
        (
            "#PBS -W depend=afterok:1\n#PBS -W umask=077\n#PBS -W group_list=x\n",
            {"dependency": "afterok:1"},
        ),
        ("#PBS -V\n#PBS -r y\n#PBS -k oe\n#PBS -S /bin/sh\n", {}),
    ],
)
def test_pbs_options_set_their_sbatch_options(tmp_path, body, expected):
    req = request(tmp_path, body)
    for key, value in expected.items():
        if key in ("array", "dependency"):  # parsed values: compare with #SBATCH's
            value = getattr(request(tmp_path, f"#SBATCH --{key}={value}\n"), key)
        assert getattr(req, key) == value, key


def test_ignored_options_are_kept_and_warned(tmp_path):
    req = request(tmp_path, "#PBS -A acct\n#PBS -m abe\n#PBS -M me@example.com\n#PBS -p 10\n")
    assert req.ignored == {"mail_type": "BEGIN,END,FAIL", "mail_user": "me@example.com"}
    assert req.account == "acct"  # -A: sbatch's --account (checked on a team's state)
    assert req.nice == 10  # -p: sbatch's --nice, which acts
    assert req.warnings[0] == (
        "sbatch: warning: --mail-type=BEGIN,END,FAIL (#PBS) ignored by slurmsky: no mail"
    )
    assert request(tmp_path, "#PBS -m n\n").ignored == {"mail_type": "NONE"}


def test_pbs_v_adds_up_to_one_export(tmp_path):
    req = request(tmp_path, "#PBS -v FOO=1,BAR\n#PBS -v BAZ=2\n")
    assert req.export == request(tmp_path, "#SBATCH --export=FOO=1,BAR,BAZ=2\n").export


# --- bad input: Slurm's words and exit codes, nothing submitted ----------------------


@pytest.mark.parametrize(
    "body,message,code",
    [
        (
            "#PBS -l ncpus=4,mem=2gb\n",
            'sbatch: error: Invalid numeric value "4,mem=2gb" for --mincpus.\n',
            1,
        ),
        ("#PBS -l mem=abc\n", "sbatch: error: Invalid --mem specification\n", 255),
        ("#PBS -l walltime=abc\n", "sbatch: error: Invalid --time specification\n", 255),
        ("#PBS -m z\n", "sbatch: error: Invalid --mail-type specification\n", 255),
        (
            "#PBS -x\n",
            "sbatch: invalid option -- 'x'\nsbatch: error: Unrecognized command line parameter ?\n",
            1,
        ),
        (
            "#PBS -N\n",
            "sbatch: option requires an argument -- 'N'\n"
            "sbatch: error: Unrecognized command line parameter ?\n",
            1,
        ),
        (
            "#PBS --job_name=l --bogus\n",
            "sbatch: unrecognized option '--bogus'\n"
            "sbatch: error: Unrecognized command line parameter ?\n",
            1,
        ),
        ("#PBS -N a b\n", "sbatch: error: Invalid argument: b\n", 1),
        ("#BSUB -n 2,\n", "sbatch: error: #BSUB -n format not correct given: '2,'\n", 1),
        ("#BSUB -x\n#BSUB -cwd /tmp\n", "sbatch: error: Invalid argument: /tmp\n", 1),
        (
            "#SBATCH --mem-per-cpu=300\n#PBS -l mem=200\n",
            "sbatch: fatal: --mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.\n",
            1,
        ),
    ],
)
def test_bad_pbs_lines(tmp_path, body, message, code):
    assert failure(tmp_path, body) == (message, code)


def test_bad_begin_has_parse_times_line_first(tmp_path):
    assert failure(tmp_path, "#PBS -a garbage\n") == (
        "Invalid time specification (pos=0): garbage\n"
        "sbatch: error: Invalid --begin specification\n",
        255,
    )


def test_memory_from_pbs_and_the_environment(tmp_path):
    # SBATCH_MEM_PER_CPU is dropped by a #PBS mem; SBATCH_MEM_PER_NODE beats it
    req = request(tmp_path, "#PBS -l mem=300\n", env={"SBATCH_MEM_PER_CPU": "200"})
    assert (req.mem, req.mem_per_cpu) == (300, None)
    req = request(tmp_path, "#PBS -l mem=300\n", env={"SBATCH_MEM_PER_NODE": "200"})
    assert req.mem == 200
    assert request(tmp_path, "#SBATCH --mem=500\n#PBS -l mem=300\n").mem == 300
    assert request(tmp_path, "#PBS -l mem=300\n", argv=["--mem=400"]).mem == 400


# --- a #PBS directive and its #SBATCH equivalent ask for the same thing -------------

_SAFE = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=12)
_PATH = _SAFE.filter(lambda v: v != "none")  # `#PBS -o none` is /dev/null (cases above)
_EQUIVALENTS = st.one_of(
    _SAFE.map(lambda v: (f"-N {v}", f"--job-name={v}")),
    _PATH.map(lambda v: (f"-o {v}", f"--output={v}")),
    _PATH.map(lambda v: (f"-e {v}", f"--error={v}")),
    st.sampled_from(["debug", "gpu"]).map(lambda v: (f"-q {v}", f"--partition={v}")),
    st.integers(1, 10_000).map(lambda m: (f"-l walltime={m}", f"--time={m}")),
    st.tuples(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59)).map(
        lambda t: ("-l walltime=%d:%02d:%02d" % t, "--time=%d:%02d:%02d" % t)
    ),
    st.integers(1, 64).map(lambda n: (f"-l ncpus={n}", f"--mincpus={n}")),
    st.tuples(st.integers(1, 4096), st.sampled_from(["", "k", "m", "g", "kb", "mb", "gb"])).map(
        lambda t: (f"-l mem={t[0]}{t[1]}", f"--mem={t[0]}{t[1][:1]}")
    ),
    st.integers(1, 8).map(lambda n: (f"-l nodes={n}", f"--nodes={n}")),
    st.tuples(st.integers(1, 8), st.integers(1, 8)).map(
        lambda t: (f"-l nodes={t[0]}:ppn={t[1]}", f"--nodes={t[0]} --ntasks={t[0] * t[1]}")
    ),
    st.just(("-h", "--hold")),
    st.integers(1, 99).map(lambda n: (f"-t 1-{n}", f"--array=1-{n}")),
    st.integers(1, 99).map(lambda n: (f"-W depend=afterok:{n}", f"--dependency=afterok:{n}")),
)


def _comparable(req):
    fields = dict(vars(req))
    for key in ("script", "warnings", "submit_env"):
        fields.pop(key)
    return fields


@settings(max_examples=150, deadline=None)
@given(pairs=st.lists(_EQUIVALENTS, min_size=1, max_size=4))
def test_a_pbs_directive_asks_what_its_sbatch_equivalent_asks(tmp_path_factory, pairs):
    tmp = tmp_path_factory.mktemp("pbs")
    pbs = request(tmp, "".join(f"#PBS {p}\n" for p, _ in pairs))
    sbatch = request(tmp, "".join(f"#SBATCH {s}\n" for _, s in pairs))
    assert _comparable(pbs) == _comparable(sbatch)


# --- what the job sees ---------------------------------------------------------------


def test_the_job_runs_with_what_its_pbs_lines_ask(cluster):
    cluster.script(
        "pbs.sh",
        "#!/bin/bash\n#PBS -N pbsname\n#PBS -o pbs.out\n"
        "#PBS -v FOO=1\n#PBS -l walltime=5,nodes=1:ppn=2\n"
        'echo "name=$SLURM_JOB_NAME foo=$FOO bar=$BAR tasks=$SLURM_NTASKS"\n',
    )
    job = cluster.sbatch("pbs.sh", env={"BAR": "2"})
    assert cluster.wait_done(job)[0][1:3] == ("COMPLETED", 0)
    # -v FOO=1 exports FOO only, as on the peer (BAR from the login environment is not seen)
    assert (cluster.cwd / "pbs.out").read_text() == "name=pbsname foo=1 bar= tasks=2\n"


def test_ignore_pbs_runs_the_script_as_written(cluster):
    cluster.script("pbs.sh", '#!/bin/bash\n#PBS -N pbsname\necho "name=$SLURM_JOB_NAME"\n')
    job = cluster.sbatch("--ignore-pbs", "pbs.sh")
    cluster.wait_done(job)
    assert (cluster.cwd / f"slurm-{job}.out").read_text() == "name=pbs.sh\n"
