"""Tests of the differential harness itself: the corpus is well formed and covers the README
matrix, a difference of one byte is always reported, normalisation only rewrites what it
documents, and the ratchet only goes up.

The full suite is not run here (it takes minutes): `python tests/compat/run.py`, as .ci/run does.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import harness
import pytest
from harness import Case, SideResult, Step, StepResult, render

README = harness.REPO / "README.md"


# ------------------------------------------------------------------------------ the corpus


def test_corpus_loads_with_unique_ids_and_at_least_150_cases():
    cases = harness.load_cases()
    assert len(cases) >= 150
    assert len({c.id for c in cases}) == len(cases)
    for c in cases:
        assert c.steps, c.id
        assert any(s.run for s in c.steps), c.id


def matrix_cells() -> set[str]:
    """'<command> <--long-option>' for every matrix cell marked supported or mapped."""
    cells = set()
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| option | sbatch |"))
    for line in lines[start + 2 :]:
        if not line.startswith("| `"):
            break
        cols = [c.strip() for c in line.strip("|").split("|")]
        longs = re.findall(r"`(--[\w-]+)`", cols[0])
        assert longs, line
        for command, cell in zip(("sbatch", "srun", "salloc"), cols[1:4]):
            if cell in ("supported", "mapped"):
                cells.add(f"{command} {longs[-1]}")
    return cells


def test_every_supported_or_mapped_matrix_cell_has_a_case():
    cells = matrix_cells()
    assert len(cells) > 100
    covered = {c for case in harness.load_cases() for c in case.covers}
    assert sorted(cells - covered) == []


def test_covers_name_real_matrix_rows_or_commands():
    cells = matrix_cells()
    commands = {"sbatch", "srun", "salloc", "squeue", "scancel", "sacct", "scontrol", "sinfo"}
    for case in harness.load_cases():
        for c in case.covers:
            assert (
                c in cells
                or c in commands
                or c.split()[0] in commands
                and (c.split()[1].startswith("--"))
            ), (case.id, c)


def test_every_case_has_a_stored_answer():
    missing = [c.id for c in harness.load_cases() if harness.read_expected(c) is None]
    assert missing == [], "run tests/compat/regenerate.py with the peer up"


def test_stored_answers_belong_to_cases():
    ids = {c.id for c in harness.load_cases()}
    stale = [p.stem for p in harness.EXPECTED_DIR.glob("*.txt") if p.stem not in ids]
    assert stale == []


def test_case_rules_say_why():
    for case in harness.load_cases():
        for rule in case.rules:
            assert rule.why.strip(), case.id


# ------------------------------------------------------- a one-byte difference is reported

CASE = Case(id="sample", covers=(), steps=(Step(run="x"),))
CWD = "/tmp/sscompat-abcdefgh/p/sample"
SAMPLE_STDOUT = (
    "Submitted batch job 1234\n"
    "SLURM_JOB_ID=1234\nSLURM_JOB_NODELIST=node[1-2]\nSLURM_NTASKS=4\n"
    "SLURM_SUBMIT_DIR=" + CWD + "\n"
    "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n"
    "              1234     debug    env-a     root  R       0:00      2 node[1-2]\n"
    "exit code 3:0 at 12:30, 100%\n"
)
TOKENS = ["1234", "node[1-2]", CWD]  # what normalisation rewrites in SAMPLE_STDOUT


def side(stdout: str, stderr: str = "err line\n", code: int | str = 0, cwd: str = CWD):
    return SideResult("peer", [StepResult("cmd", harness.COMPARE_ALL, stdout, stderr, code)], cwd)


def token_positions(text: str) -> set[int]:
    covered = set()
    for tok in TOKENS:
        for m in re.finditer(re.escape(tok), text):
            covered.update(range(m.start(), m.end()))
    return covered


def mutations(text: str):
    """Every one-byte change outside the tokens normalisation rewrites: replace, delete, insert."""
    skip = token_positions(text)
    for i, ch in enumerate(text):
        if i in skip:
            continue
        other = "x" if ch != "x" else "y"
        yield f"replace {i}", text[:i] + other + text[i + 1 :]
        yield f"delete {i}", text[:i] + text[i + 1 :]
        if ch in " \n":
            yield f"insert {i}", text[:i] + ch + text[i:]


def test_identical_outputs_are_identical():
    a = render(CASE, side(SAMPLE_STDOUT))
    b = render(CASE, side(SAMPLE_STDOUT))
    assert harness.compare(CASE, a, b) == (True, "")


def test_every_one_byte_change_of_stdout_is_reported():
    reference = render(CASE, side(SAMPLE_STDOUT))
    count = 0
    for what, mutated in mutations(SAMPLE_STDOUT):
        # a deleted or replaced byte inside a token's neighbourhood may create a new token;
        # everything else must show
        same, diff = harness.compare(CASE, reference, render(CASE, side(mutated)))
        assert not same, f"{what}: {mutated!r}"
        assert diff.startswith("--- sample (real Slurm)"), what
        count += 1
    assert count > 300


def test_one_byte_changes_of_stderr_and_exit_are_reported():
    reference = render(CASE, side(SAMPLE_STDOUT, "sbatch: error: x\n", 1))
    for stderr, code in [
        ("sbatch: error: y\n", 1),
        ("sbatch: error: x", 1),
        ("sbatch: error: x\n", 255),
        ("sbatch: error: x\n", "timed out after 30s"),
        ("sbatch: error: x \n", 1),
        ("", 1),
    ]:
        same, _ = harness.compare(CASE, reference, render(CASE, side(SAMPLE_STDOUT, stderr, code)))
        assert not same, (stderr, code)


def test_missing_trailing_newline_is_visible():
    a = render(CASE, side("ok\n"))
    b = render(CASE, side("ok"))
    same, diff = harness.compare(CASE, a, b)
    assert not same and "no newline at end" in diff


def test_trailing_whitespace_difference_is_shown_visibly():
    same, diff = harness.compare(CASE, render(CASE, side("a b\n")), render(CASE, side("a b \n")))
    assert not same and "+a b·" in diff


class FakeSlurm(harness.Side):
    """A stand-in 'implementation' in a few lines of bash: sbatch runs the script at once."""

    def __init__(self, root: Path, short: str, broken: str = ""):
        super().__init__(root)
        self.short = short
        self.name = short
        self.bin = root / f"bin-{short}"
        self.bin.mkdir()
        sbatch = self.bin / "sbatch"
        sbatch.write_text(
            "#!/bin/bash\n"
            "id=4242\n"
            'bash "$1" > slurm-$id.out 2>&1\n'
            f'echo "Submitted batch job $id{broken}"\n'
        )
        sbatch.chmod(0o755)

    def path(self):
        return f"{self.bin}:{harness.BASE_PATH}"

    def wait_done(self, case, workdir, ids, ctx, timeout):
        return ""


def run_fakes(tmp_path: Path, broken: str):
    root = tmp_path / "run"
    root.mkdir()
    case = Case(
        id="fake-sbatch",
        covers=(),
        steps=(Step(run="sbatch job.sh"), Step(wait="done"), Step(run="cat slurm-$JOB1.out")),
        files={"job.sh": '#!/bin/bash\necho "job $SLURM_JOB_ID says hi"\n'},
    )
    reference = FakeSlurm(root, "p")
    candidate = FakeSlurm(root, "s", broken)
    return harness.run_one(case, reference, candidate)


def test_a_fake_slurmsky_differing_by_one_byte_is_caught(tmp_path):
    outcome = run_fakes(tmp_path, broken=".")
    assert not outcome.identical
    assert "-Submitted batch job <JOB1>\n+Submitted batch job <JOB1>.\n" in outcome.diff


def test_the_same_fake_on_both_sides_is_identical(tmp_path):
    outcome = run_fakes(tmp_path, broken="")
    assert outcome.identical, outcome.diff


# ------------------------------------------------------------------------- normalisation


def norm(text: str, cwd: str = CWD, rules=(), side_name="peer", command="cmd") -> str:
    case = Case(id="n", covers=(), steps=(), rules=tuple(rules))
    return harness.Normaliser(case, SideResult(side_name, [], cwd)).text(text, command)


def test_job_ids_are_numbered_by_first_appearance_on_each_side():
    assert norm("Submitted batch job 5001\nSLURM_JOB_ID=5001 x5001 5001_3 5001.batch\n") == (
        "Submitted batch job <JOB1>\nSLURM_JOB_ID=<JOB1> x<JOB1> <JOB1>_3 <JOB1>.batch\n"
    )
    assert norm("Submitted batch job 77\nSubmitted batch job 5001\n") == (
        "Submitted batch job <JOB1>\nSubmitted batch job <JOB2>\n"
    )


def test_zero_padded_job_ids_keep_their_padding():
    assert norm("Submitted batch job 2133\npad-02133.out\n") == (
        "Submitted batch job <JOB1>\npad-0<JOB1>.out\n"
    )


def test_bare_numbers_are_job_ids_only_after_parsable():
    assert norm("1234\n", command="squeue -h -o %i") == "1234\n"
    assert norm("1234\n", command="sbatch --parsable x") == "<JOB1>\n"


def test_numbers_that_are_not_job_ids_are_kept():
    out = norm("Submitted batch job 1234\nSLURM_NNODES=2 SLURM_MEM_PER_NODE=12345 port 51234\n")
    assert out == "Submitted batch job <JOB1>\nSLURM_NNODES=2 SLURM_MEM_PER_NODE=12345 port 51234\n"


def test_nodes_of_both_sides_map_to_the_same_names():
    peer = norm("SLURM_JOB_NODELIST=node[3-4]\nSLURMD_NODENAME=node3\nnode4\n")
    sky = norm(
        "SLURM_JOB_NODELIST=127.0.0.[1-2]\nSLURMD_NODENAME=127.0.0.1\n127.0.0.2\n",
        side_name="slurmsky",
    )
    assert peer == sky == "SLURM_JOB_NODELIST=node[1-2]\nSLURMD_NODENAME=node1\nnode2\n"


def test_node_names_keep_fixed_width_columns_aligned():
    # sacct: right-aligned NodeList; squeue -O: left-aligned; squeue default: last column
    assert norm("   x       node1 \n") == norm("   x   127.0.0.1 \n")
    assert norm("R   node1               next\n") == norm("R   127.0.0.1           next\n")
    assert norm("      1 node[1-2]\n") == "      1 node[1-2]\n"
    assert norm("      1 127.0.0.[1-2]\n") == "      1 node[1-2]\n"


def test_site_lines_are_dropped_and_others_kept():
    text = (
        "SLURM_CONF=/etc/slurm/slurm.conf\nSLURM_JOB_ACCOUNT=research\n"
        "SLURM_JOB_ACCOUNT=other\nSLURM_MEM_PER_CPU=100\nSLURM_MEM_PER_CPU=200\n"
        "1: SLURM_TOPOLOGY_ADDR=node1\nSLURMSKY_HOME=/x\nSLURM_TASK_PID=4242\n"
    )
    assert norm(text) == ("SLURM_JOB_ACCOUNT=other\nSLURM_MEM_PER_CPU=200\nSLURM_TASK_PID=<pid>\n")


def test_paths_and_times_are_normalised():
    assert norm(f"{CWD}/slurm-1.out at 2026-11-22T02:48:03\n") == ("<cwd>/slurm-1.out at <time>\n")


def test_case_rules_apply_to_their_side_only():
    rule = harness.Rule(r"vm", "<host>", "why", side="peer")
    assert norm("on vm\n", rules=[rule]) == "on <host>\n"
    assert norm("on vm\n", rules=[rule], side_name="slurmsky") == "on vm\n"


def test_normalisation_is_idempotent_on_a_stored_answer():
    case = harness.load_cases()[0]
    stored = harness.read_expected(case)
    if stored is None:
        pytest.skip("no stored answers yet")
    assert norm(stored[0], cwd="/nonexistent") == stored[0]


# -------------------------------------------------------------------------------- ratchet


def test_ratchet_is_a_count_not_above_the_corpus():
    value = int(harness.RATCHET_FILE.read_text().split()[0])
    assert 0 <= value <= len(harness.load_cases())


def test_ratchet_only_goes_up():
    try:
        committed = subprocess.run(
            ["git", "show", "HEAD:tests/compat/RATCHET"],
            cwd=harness.REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("no git")
    if committed.returncode != 0:
        pytest.skip("no committed ratchet yet")
    assert int(harness.RATCHET_FILE.read_text().split()[0]) >= int(committed.stdout.split()[0])


# ----------------------------------------------------------------------- live, with the peer


@pytest.fixture(scope="module")
def peer():
    """Real Slurm: used when up; as root with SLURMSKY_COMPAT_START_PEER=1 it is started with
    shared/tools/slurm-peer-up.sh and stopped again with slurm-peer-down.sh afterwards (only a
    peer this session started is stopped). Otherwise the live tests are skipped.

    (A fixture here, not in a conftest.py: tests/conftest.py is imported as `conftest` by
    other test modules, and a second conftest.py here would shadow it.)
    """
    if harness.PeerSide.is_up():
        yield "up"
        return
    up = harness.PEER_TOOLS / "slurm-peer-up.sh"
    if os.environ.get("SLURMSKY_COMPAT_START_PEER") != "1" or os.geteuid() != 0 or not up.exists():
        pytest.skip("the Slurm peer is not up (SLURMSKY_COMPAT_START_PEER=1 starts it, as root)")
    subprocess.run(
        ["bash", str(up)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        timeout=900,
    )
    try:
        yield "started"
    finally:
        subprocess.run(
            ["bash", str(harness.PEER_TOOLS / "slurm-peer-down.sh")],
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )


@pytest.mark.peer
def test_live_cases_against_the_peer(peer, tmp_path):
    """A few cheap cases through the live path: both sides really run and are compared."""
    ids = {"sbatch-version", "scontrol-hostlist", "sbatch-missing-file"}
    cases = [c for c in harness.load_cases() if c.id in ids]
    root = harness.new_root()
    try:
        p = harness.PeerSide(root)
        s = harness.SkySide(root)
        for case in cases:
            outcome = harness.run_one(case, p, s)
            assert outcome.reference == "live"
            assert outcome.peer_text.startswith("$ "), outcome.diff
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)
