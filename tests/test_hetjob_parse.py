"""Heterogeneous jobs as sbatch 22.05 reads them: `:` between command-line components,
`#SBATCH hetjob`/`packjob` lines between the script's, and what each component takes.
The expected values are the Slurm peer's (tests/compat/cases/14-hetjob.yaml holds its bytes)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slurmsky.errors import SlurmError
from slurmsky.parse.argv import OptionParser, het_components
from slurmsky.parse.request import build_batch_request, parse_command_line

SCRIPT = "#!/bin/sh\ntrue\n"
SHAPE = ("nodes", "ntasks", "cpus_per_task", "mem", "partition", "job_name", "time", "output")


def request(tmp_path, argv, script=SCRIPT, env=None):
    (tmp_path / "job.sh").write_text(script)
    cli = parse_command_line("sbatch", argv)
    return build_batch_request(cli, env or {}, str(tmp_path), lambda: b"")


def shape(req):
    return [tuple(getattr(c, k) for k in SHAPE) for c in req.components or (req,)]


def refusal(tmp_path, argv, script=SCRIPT):
    try:
        request(tmp_path, argv, script)
    except SlurmError as exc:
        return exc.render("sbatch"), exc.exit_code
    raise AssertionError("accepted")


# --- one component's options: words whose values never hold ":" or "hetjob" ----------------

_count = st.integers(1, 9).map(str)
_option = st.one_of(
    st.tuples(st.sampled_from(["-N", "-n", "-t"]), _count).map(list),
    _count.map(lambda c: [f"-c{c}"]),
    _count.map(lambda c: [f"--mem={c}00"]),
    st.sampled_from(["debug", "gpu"]).map(lambda p: ["-p", p]),
    st.sampled_from(["a", "b", "x y"]).map(lambda n: ["-J", n]),
    st.sampled_from(["o-%j.out", "out"]).map(lambda o: [f"--output={o}"]),
)
component = st.lists(_option, max_size=4).map(lambda groups: [w for g in groups for w in g])
components = st.lists(component, min_size=1, max_size=4)


def _joined(groups: list[list[str]]) -> list[str]:
    words: list[str] = []
    for i, group in enumerate(groups):
        words += ([":"] if i else []) + group
    return words


@settings(max_examples=150, deadline=None)
@given(components, st.lists(st.sampled_from(["job.sh", "arg", ":"]), max_size=3))
def test_colon_splits_the_command_line_into_its_components(groups, rest):
    """Each component parses as it would alone; the last keeps the script and its args."""
    parser = OptionParser("sbatch")
    words = _joined(groups) + (["job.sh", *rest] if rest else [])
    parts = het_components(parser, parser.parse(words))
    assert len(parts) == len(groups)
    for part, group in zip(parts, groups, strict=True):
        assert part.values == parser.parse(group).values
    assert [p.rest for p in parts] == [[]] * (len(groups) - 1) + [["job.sh", *rest] if rest else []]


def test_a_colon_that_is_an_option_argument_separates_nothing():
    parser = OptionParser("sbatch")
    parts = het_components(parser, parser.parse(["-J", ":", "-n2", "job.sh"]))
    assert [(p.values, p.rest) for p in parts] == [({"job_name": ":", "ntasks": 2}, ["job.sh"])]


PER = ("nodes", "ntasks", "cpus_per_task", "partition")  # in PER_COMPONENT
CARRIED = ("mem", "job_name", "time", "output")  # not


def _last_given(groups, key):
    """What parsing these groups in order leaves in `key` (None: never given)."""
    parser, value = OptionParser("sbatch"), None
    for group in groups:
        value = parser.parse(group).values.get(key, value)
    return value


@settings(max_examples=100, deadline=None)
@given(components.filter(lambda gs: len(gs) > 1), st.sampled_from(["hetjob", "packjob"]))
def test_directive_components_and_command_line_components(tmp_path_factory, groups, word):
    """`sbatch A : B job.sh` and a script whose #SBATCH lines are A, hetjob, B give each
    component the same options of its own; what a component leaves unset it takes from
    the one before, and component 0 from the whole command line (sbatch's first pass),
    never from the script's later lines."""
    tmp_path = tmp_path_factory.mktemp("het")
    lines = []
    for i, group in enumerate(groups):
        if i:
            lines.append(f"#SBATCH {word}")
        lines.extend(f"#SBATCH '{w}'" for w in group)  # one word a line, quoted
    script = "#!/bin/sh\n" + "".join(f"{line}\n" for line in lines) + "true\n"
    by_lines = request(tmp_path, ["job.sh"], script).components
    by_argv = request(tmp_path, [*_joined(groups), "job.sh"]).components
    assert len(by_lines) == len(by_argv) == len(groups)
    for key in PER:
        assert [getattr(c, key) for c in by_lines] == [getattr(c, key) for c in by_argv]
    for key in CARRIED:
        default = "job.sh" if key == "job_name" else None
        for i, (line_req, argv_req) in enumerate(zip(by_lines, by_argv, strict=True)):
            assert getattr(line_req, key) == (_last_given(groups[: i + 1], key) or default)
            own = _last_given(groups[:1], key) or _last_given(groups, key)
            expected = _last_given(groups[1 : i + 1], key) or own
            assert getattr(argv_req, key) == (expected or default)


def test_per_component_options_are_rows_of_the_table():
    from slurmsky.parse.options import OPTIONS, PER_COMPONENT

    assert PER_COMPONENT <= {o.long for o in OPTIONS}
    assert not {"job-name", "mem", "time", "output", "dependency"} & PER_COMPONENT


def test_the_issues_script(tmp_path):
    script = (
        "#!/bin/bash\n#SBATCH -J het -o het-%j.out\n#SBATCH -N1 -n1 -c1\n"
        "#SBATCH hetjob\n#SBATCH -N1 -n2 -c1\necho\n"
    )
    req = request(tmp_path, ["job.sh"], script)
    # the peer: 7+0 and 7+1 both named het, both writing het-%j.out (het-7.out, het-8.out)
    assert shape(req) == [
        ((1, 1), 1, 1, None, None, "het", None, "het-%j.out"),
        ((1, 1), 2, 1, None, None, "het", None, "het-%j.out"),
    ]
    assert req.ntasks == 1 and req.components[0] == req.replace(components=())


def test_what_a_component_takes_from_another(tmp_path):
    def names(*argv):
        return [c.job_name for c in request(tmp_path, [*argv, "--wrap", "true"]).components]

    # the peer's squeue -o '%i %j' of each
    assert names("-n1", ":", "-J", "other") == ["other", "other"]
    assert names("-J", "a", "-n1", ":", "-J", "b") == ["a", "b"]
    assert names("-n1", ":", "-J", "b", ":", "-J", "c") == ["c", "b", "c"]
    assert names("-n1", ":", "-J", "b", ":", "-n1") == ["b", "b", "b"]
    assert names("-J", "a", "-n1", ":", "-J", "b", ":", "-n1") == ["a", "b", "b"]
    assert names("-n1", ":", "-n2") == ["wrap", "wrap"]
    # memory too (%m: 300M 200M 300M 300M); CPUs and partition do not carry
    req = request(
        tmp_path, ["-n1", ":", "--mem=200", ":", "-n1", "--mem=300", ":", "-n1", "--wrap", "x"]
    )
    assert [c.mem for c in req.components] == [300, 200, 300, 300]
    req = request(tmp_path, ["-n1", ":", "-p", "gpu", "-n2", "-c2", "-t", "10", "--wrap", "x"])
    assert [(c.partition, c.cpus_per_task, c.time) for c in req.components] == [
        (None, None, 10),
        ("gpu", 2, 10),
    ]
    # scontrol show job of `-n1 : -e e-%j.err -o o-%j.out -i /dev/zero --comment=c -t 3
    # --dependency=afterany:1`: both components have them all
    req = request(
        tmp_path,
        ["-n1", ":", "-e", "e", "-o", "o", "-i", "/dev/zero", "--comment=c", "-t", "3"]
        + ["--dependency=afterany:1", "--wrap", "x"],
    )
    for c in req.components:
        assert (c.error, c.output, c.input, c.comment, c.time) == ("e", "o", "/dev/zero", "c", 3)
        assert c.dependency == req.components[1].dependency is not None
    # a script's later components give component 0 nothing (squeue -o '%i %j %l %m')
    script = (
        "#!/bin/bash\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -J b -t 4 --mem=200\n"
        "#SBATCH hetjob\n#SBATCH -n1\ntrue\n"
    )
    req = request(tmp_path, ["job.sh"], script)
    assert [(c.job_name, c.time, c.mem) for c in req.components] == [
        ("job.sh", None, None),
        ("b", 4, 200),
        ("b", 4, 200),
    ]
    req = request(tmp_path, ["-t", "9", ":", "-n1", ":", "-J", "z", "job.sh"], script)
    assert [(c.job_name, c.time, c.mem) for c in req.components] == [
        ("z", 9, None),
        ("b", 4, 200),
        ("z", 4, 200),
    ]


def test_command_line_components_meet_the_scripts(tmp_path):
    two = "#!/bin/sh\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -n2\ntrue\n"
    # the peer: `sbatch -n3 two.sh` gives 3 CPUs to both (the last command-line group
    # applies again to each further component); `-n3 : -n1 : -n1 two.sh` three components
    assert [c.ntasks for c in request(tmp_path, ["-n3", "job.sh"], two).components] == [3, 3]
    req = request(tmp_path, ["-n3", ":", "-n1", ":", "-n1", "job.sh"], two)
    assert [c.ntasks for c in req.components] == [3, 1, 1]
    # a leading ":" makes an empty component 0 (the peer: 13+0 and 13+1)
    assert request(tmp_path, [":", "-n1", "--wrap", "true"]).het_size == 2
    # SBATCH_* variables reach every component
    req = request(tmp_path, ["-n1", ":", "-n2", "job.sh"], env={"SBATCH_TIMELIMIT": "7"})
    assert [c.time for c in req.components] == [7, 7]


def test_a_hetjob_array_is_refused_as_slurm_refuses_it(tmp_path):
    message = ("sbatch: error: Batch job submission failed: Invalid job array specification\n", 1)
    two = "#!/bin/sh\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -n2\ntrue\n"
    assert refusal(tmp_path, ["--array=1-2", "job.sh"], two) == message
    assert refusal(tmp_path, ["job.sh"], two.replace("-n2", "-n2 --array=1-2")) == message
    assert refusal(tmp_path, ["-n1", ":", "-a", "1-2", "job.sh"]) == message


def test_heterogeneous_steps_and_allocations_are_refused(tmp_path):
    from slurmsky.parse.request import build_step_request

    for command in ("srun", "salloc"):
        cli = parse_command_line(command, ["-n1", ":", "-n1", "true"])
        try:
            build_step_request(command, cli, {}, str(tmp_path))
        except SlurmError as exc:
            kind = "allocations" if command == "salloc" else "job steps"
            assert exc.render(command) == (
                f"{command}: error: Heterogeneous {kind} are not supported by slurmsky\n"
            )
        else:
            raise AssertionError(command)


def test_the_sky_backend_stores_a_hetjob_as_one_job_group(cluster):
    """Both backends take a hetjob: on the sky backend its stored task is one SkyPilot job
    group, a task per component (tests/test_sky_hetjob.py runs it)."""
    import json

    cluster.script("two.sh", "#!/bin/sh\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -n2\ntrue\n")
    out = cluster.run("sbatch", "--hold", "two.sh", env={"SLURMSKY_BACKEND": "sky"})
    assert (out.returncode, out.stdout) == (0, "Submitted batch job 1\n"), out.stderr
    assert [r[:2] for r in cluster.jobs()] == [(1, "PENDING"), (2, "PENDING")]
    with cluster.db() as conn:
        (task,) = conn.execute("SELECT task FROM submissions").fetchone()
    group = json.loads(task)
    assert (group["execution"], [t["name"] for t in group["job_group"]]) == (
        "parallel",
        ["two-sh-0", "two-sh-1"],
    )
