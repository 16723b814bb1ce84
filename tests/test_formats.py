"""render/: Slurm's output formats, unit by unit; and `World`, the state builder that the
command tests (test_cmd_*.py) share.

A World is a private SLURMSKY_HOME whose job records are written straight through core.state,
so the commands' output can be compared with the real-Slurm captures without any agent or
job process: `peer_queue()` rebuilds the queue the squeue captures were taken on (jobs
67-79 of the peer cluster, at 02:49:21 UTC), and commands run with SLURMSKY_NOW and TZ=UTC
so their times are the captures' times.
"""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import job_record, job_row
from captures import read_capture
from users import needs_user, other_users_python

from slurmsky.core import state
from slurmsky.render import common, jobview, sacct_format, scontrol_format, squeue_format
from slurmsky.runtime import indexset
from slurmsky.runtime.getopt_long import UsageError, getopt_long

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"


def epoch(text: str) -> float:
    """`2026-11-22T02:48:00` (UTC) -> seconds."""
    return float(calendar.timegm(__import__("time").strptime(text, "%Y-%m-%dT%H:%M:%S")))


T0 = epoch("2026-11-22T02:48:00")  # when the captures' jobs were submitted
NOW = epoch("2026-11-22T02:49:21")  # squeue-default.txt was taken at this moment


# The peer's jobs as the captures show them (World.add's defaults).
PEER_JOB = dict(
    name="job",
    user="root",
    uid=0,
    gid=0,
    account="research",
    partition="debug",
    mem_per_cpu=100,
    submit_dir="<probe-dir>/e",
    workdir="<probe-dir>/e",
    submit_time=T0,
)


def _record_base(array_id: int, output: str) -> dict:
    """An array's pending record as sbatch stores it (its paths the patterns)."""
    return job_row(array_id, array_job_id=array_id, stdout=output, **PEER_JOB)


class World:
    """A state directory, its jobs written directly, and the commands run against it."""

    def __init__(self, tmp: Path, now: float = NOW):
        self.tmp = tmp
        self.home = tmp / "home"
        self.state = tmp / "state"
        self.home.mkdir(exist_ok=True)
        self.now = now
        path = os.pathsep.join(
            [str(BIN), os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]
        )
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLURM", "SBATCH_", "SALLOC_", "SQUEUE_"))
        }
        self.env.update(
            HOME=str(self.home),
            SLURMSKY_HOME=str(self.state),
            TZ="UTC",
            SLURMSKY_NOW=repr(now),
            SLURMSKY_CONFIG=str(self.home / "none.yaml"),
            PATH=path,
        )
        self.conn = state.connect({"SLURMSKY_HOME": str(self.state)})
        # A stand-in agent: a reader on the agent's FIFO, so that commands that wake the
        # agent find one and never start a real one on these hand-made jobs.
        fifo = self.state / "agent.fifo"
        os.mkfifo(fifo)
        self.fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

    def close(self):
        os.close(self.fifo_fd)
        self.conn.close()

    def add(
        self, job_id: int, submission: int | None = None, spec: dict | None = None, **fields
    ) -> None:
        own = dict(PEER_JOB, stdout=f"slurm-{job_id}.out")
        row = job_row(job_id, submission or job_id, **{**own, **fields})
        if row["state"] != "PENDING" and "start_time" not in fields and row.get("nodelist"):
            row["start_time"] = T0 + 3
        if row.get("nodelist") and "batch_host" not in fields:
            row["batch_host"] = row["nodelist"].split("[")[0] + (
                row["nodelist"].split("[")[1].split("-")[0].split(",")[0]
                if "[" in row["nodelist"]
                else ""
            )
        state.add_submission(self.conn, row["submission"], spec or {"script": ""}, None, [row])

    def add_array(self, array_id: int, tasks: dict, output: str = "slurm-%j.out", **fields) -> None:
        """tasks: index -> (job id, extra fields); one submission, ids as slurmctld gives.
        The largest set of never-started elements that wait alike is the array's pending
        record, which holds the array's id (an element given that id takes a fresh one)
        and the output pattern."""
        rows = []
        for index, (job_id, extra) in tasks.items():
            row = dict(
                _record_base(array_id, output),
                job_id=job_id,
                array_task_id=index,
                stdout=f"slurm-{job_id}.out",
            )
            row.update(fields)
            row.update(extra)
            if row.get("nodelist"):
                row.setdefault("start_time", T0 + 3)
                row.setdefault("batch_host", row["nodelist"])
            rows.append(row)
        # as slurmctld: the never-started elements that wait alike are one pending record
        groups: dict = {}
        for row in rows:
            if (
                row["state"] in ("PENDING", "CANCELLED")
                and not row.get("start_time")
                and not row.get("restarts")
            ):
                key = (row["state"], row.get("held"), row["name"], row["partition"])
                groups.setdefault(key, []).append(row)
        if groups:
            members = max(groups.values(), key=len)
            head = dict(members[0], job_id=array_id, stdout=output, array_task_id=None)
            head["array_pending"] = indexset.compress(sorted(r["array_task_id"] for r in members))
            rows = [r for r in rows if r not in members]
            fresh = 10**6 + array_id  # past every id the tests give
            for row in rows:
                if row["job_id"] == array_id:
                    row["job_id"] = fresh
            rows.append(head)
        keys = {k for row in rows for k in row}
        rows = [{k: row.get(k) for k in sorted(keys)} for row in rows]
        array = {
            "job_id": array_id,
            "ranges": indexset.compress(sorted(tasks)),
            "count": len(tasks),
            "throttle": fields.get("array_throttle"),
        }
        spec = {"script": "", "output": output, "job_name": fields.get("name", "job")}
        state.add_submission(self.conn, array_id, dict(spec, array=array), None, rows)

    def run(
        self,
        command: str,
        *args: str,
        env: dict | None = None,
        input: str | None = None,
        user: int | None = None,
    ) -> subprocess.CompletedProcess:
        kw = {}
        python = sys.executable
        if user is not None:
            kw.update(user=user, group=user)
            python = other_users_python()
        return subprocess.run(
            [python, str(BIN / command), *args],
            cwd=self.tmp,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            input=input,
            timeout=60,
            **kw,
        )

    def peer_queue(self) -> None:
        """The queue of squeue-default.txt: jobs 67-79 of the peer cluster."""
        run = dict(state="RUNNING")
        peer = dict(user="peeruser", uid=1001, gid=1001)
        self.add(
            67, name="a-very-long-job-name-for-truncation", time_limit=30, nodelist="node1", **run
        )
        self.add(
            68,
            name="two-node",
            time_limit=60,
            nodelist="node[1-2]",
            num_nodes=2,
            num_cpus=2,
            num_tasks=2,
            tasks_per_node=[1, 1],
            cpus_per_node=[1, 1],
            batch_host="node1",
            **run,
            **peer,
        )
        self.add_array(
            69,
            {
                1: (78, dict(state="RUNNING", nodelist="node1", reason="None")),
                2: (79, dict(state="RUNNING", nodelist="node1", reason="None")),
                3: (80, {}),
                4: (81, {}),
                5: (82, {}),
                6: (83, {}),
                7: (69, {}),
            },
            name="arr",
            time_limit=2880,
            array_throttle=2,
            reason="JobArrayTaskLimit",
            **peer,
        )
        self.add(70, name="held", held="user", reason="JobHeldUser")
        self.add(
            71,
            name="gpu-job",
            partition="gpu",
            time_limit=10,
            nodelist="node3",
            gres="gpu:2",
            **run,
        )
        self.add(
            72,
            name="whole-cluster",
            reason="Resources",
            num_nodes=4,
            num_cpus=4,
            num_tasks=4,
            tasks_per_node=[1] * 4,
            cpus_per_node=[1] * 4,
            begin_time=epoch("2027-11-22T02:48:30"),
        )
        self.add(
            73, name="after-whole", time_limit=525600, nodelist="node2", start_time=T0 + 30, **run
        )
        self.add(
            74,
            name="dep-wait",
            reason="Dependency",
            dependency="afterok:67(unfulfilled)",
            dependency_spec="afterok:67",
        )
        self.add(
            75,
            name="too-big",
            reason="PartitionNodeLimit",
            num_nodes=5,
            num_cpus=5,
            num_tasks=5,
            tasks_per_node=[1] * 5,
            cpus_per_node=[1] * 5,
        )
        self.add(76, name="later", reason="BeginTime", begin_time=epoch("2026-11-22T03:48:00"))
        self.add(
            77,
            name="user-pend",
            partition="gpu",
            time_limit=525600,
            nodelist="node4",
            gres="gpu:2",
            start_time=T0 + 30,
            **run,
            **peer,
        )


def shared_world() -> "World":
    """A World other users can reach: under /tmp, world-writable, to run commands as
    `nobody` (uid 65534) against it."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="slurmsky-shared-"))
    os.chmod(base, 0o777)
    return World(base)


def share(w: "World") -> None:
    """Let every user open the world's state (after its jobs are written)."""
    for path in (w.home, w.state):
        os.chmod(path, 0o777)
    for name in os.listdir(w.state):
        os.chmod(w.state / name, 0o666)


NOBODY = 65534
needs_another_user = needs_user(NOBODY)  # skips, saying why, where nobody cannot run bin/


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def check(result: subprocess.CompletedProcess, capture_name: str, *, normalize=None) -> None:
    """The command's stdout, stderr and exit status are the capture's, byte for byte
    (after `normalize`, applied to both sides, when given)."""
    cap = read_capture(capture_name)
    norm = normalize or (lambda text: text)
    assert norm(result.stdout) == norm(cap.stdout)
    assert norm(result.stderr) == norm(cap.stderr)
    assert result.returncode == cap.exit


# --- getopt_long ------------------------------------------------------------------------------

LONG = {
    "format": ("o", 1),
    "Format": ("O", 1),
    "noheader": ("h", 0),
    "jobs": ("j", 2),
    "states": ("t", 1),
    "steps": ("s", 2),
    "start": ("start", 0),
    "sort": ("S", 1),
}


def test_getopt_clusters_attached_values_and_permutation():
    opts, rest = getopt_long("squeue", ["-ho%i", "x", "--format=%j", "-t", "PD"], "ho:t:j::", LONG)
    assert opts == [("h", None), ("o", "%i"), ("o", "%j"), ("t", "PD")]
    assert rest == ["x"]


def test_getopt_optional_arguments_only_attached():
    opts, rest = getopt_long("squeue", ["-j", "12", "--jobs=7", "-j3"], "j::", LONG)
    assert opts == [("j", None), ("j", "7"), ("j", "3")]
    assert rest == ["12"]


def test_getopt_prefixes_and_glibc_errors():
    assert getopt_long("squeue", ["--no"], "", LONG)[0] == [("h", None)]
    with pytest.raises(UsageError) as err:
        getopt_long("squeue", ["--st"], "", LONG)
    assert err.value.lines[0] == (
        "squeue: option '--st' is ambiguous; possibilities: '--states' '--steps' '--start'"
    )
    with pytest.raises(UsageError) as err:
        getopt_long("squeue", ["--bogus"], "", LONG)
    assert err.value.lines == (
        "squeue: unrecognized option '--bogus'",
        'Try "squeue --help" for more information',
    )
    with pytest.raises(UsageError) as err:
        getopt_long("squeue", ["-x"], "h", LONG)
    assert err.value.lines[0] == "squeue: invalid option -- 'x'"
    with pytest.raises(UsageError) as err:
        getopt_long("squeue", ["-o"], "o:", LONG)
    assert err.value.lines[0] == "squeue: option requires an argument -- 'o'"
    with pytest.raises(UsageError) as err:
        getopt_long("squeue", ["--noheader=1"], "", LONG)
    assert err.value.lines[0] == "squeue: option '--noheader' doesn't allow an argument"
    with pytest.raises(UsageError) as err:
        getopt_long("squeue", ["--format"], "", LONG)
    assert err.value.lines[0] == "squeue: option '--format' requires an argument"
    # several names of one option are not ambiguous
    longs = {"cluster": ("M", 1), "clusters": ("M", 1)}
    assert getopt_long("squeue", ["--clu=a"], "", longs)[0] == [("M", "a")]


# --- printing primitives -------------------------------------------------------------------


def test_pad_is_squeues_print_str():
    assert common.pad("12345", 3, True) == "123"  # right-justified and cut
    assert common.pad("12345", 3, True, cut=False) == "12345"  # node lists and times
    assert common.pad("ab", 4, True) == "  ab"
    assert common.pad("12345", 3, False) == "123"  # %.3s
    assert common.pad("ab", 4, False) == "ab  "
    assert common.pad(None, 0, False) == "(null)"  # printf("%s", NULL)
    assert common.pad("x", 0, True) == "x"


def test_percent_format_prefix_suffix_and_invalid():
    errors = []
    items = common.parse_percent_format(
        "id:%.5i|%-3j%%!", squeue_format.SQUEUE_FIELDS, squeue_format.PERCENT_CODES, errors
    )
    assert errors == ["-", "!"]
    assert [(i.key, i.width, i.right, i.suffix) for i in items] == [
        (None, 0, False, "id:"),
        ("jobarrayid", 5, True, "|"),
        (None, 0, False, "%-3j"),
        (None, 0, False, "%!"),
    ]
    assert common.render(items, None) == "id:JOBID|%-3j%!"


def test_long_format_tokens():
    errors = []
    items = common.parse_long_format(
        "JobID,name:.12,State:|,reason:5x,Nope", squeue_format.SQUEUE_FIELDS, errors
    )
    assert errors == ["Nope"]
    assert [(i.width, i.right, i.suffix) for i in items] == [
        (20, False, ""),
        (12, True, ""),
        (0, False, "|"),
        (5, False, "x"),
        (20, False, ""),
    ]
    assert common.render(items, None) == "JOBID" + " " * 15 + "        NAMESTATE|REASOx"


def _rec(job_id, **fields):
    mine = dict(partition="p", submit_dir="/w", workdir="/w", submit_time=T0)
    return job_record(job_id, **{**mine, **fields})


def test_collapse_shows_the_pending_record_as_one_job_or_its_elements():
    arr = dict(array_job_id=7, array_throttle=2)
    recs = [
        _rec(7, array_pending="1,4,6-9", stdout="o-%A_%a-%j", **arr),
        _rec(9, array_task_id=2, state="RUNNING", start_time=T0, nodelist="n1", **arr),
        _rec(10, array_task_id=3, restarts=1, **arr),
        _rec(11, array_task_id=5, held="user", **arr),
        _rec(12),
    ]
    shown = [j.id_text for j in jobview.collapse(recs, now=NOW)]
    assert shown == ["7_[1,4,6-9%2]", "7_2", "7_3", "7_5", "12"]
    group = jobview.collapse(recs, now=NOW)[0]
    assert (group.job_id, group.task_text) == (7, "1,4,6-9%2")
    assert group.std_path("out") == "/w/o-7_4294967294-7"
    expanded = jobview.collapse(recs, expand=True, now=NOW)
    assert [j.id_text for j in expanded][:7] == ["7_1", "7_4", "7_6", "7_7", "7_8", "7_9", "7_2"]
    # an element inside the record: the array's id, its own index and paths
    assert (expanded[1].job_id, expanded[1].std_path("out")) == (7, "/w/o-7_4-7")


def test_times_of_a_job():
    running = jobview.Job(
        _rec(1, state="RUNNING", start_time=NOW - 90, time_limit=2, nodelist="n1"), now=NOW
    )
    assert (running.used(), running.time_left(), running.end_shown()) == (
        90,
        "0:30",
        common.iso(NOW - 90 + 120),
    )
    over = jobview.Job(_rec(1, state="RUNNING", start_time=NOW - 200, time_limit=2), now=NOW)
    assert over.time_left() == "INVALID"
    pending = jobview.Job(_rec(2, begin_time=NOW + 60), now=NOW)
    assert (pending.used(), pending.end_shown(), pending.time_left()) == (0, "NONE", "UNLIMITED")
    assert jobview.Job(_rec(3), now=NOW).end_shown() == "N/A"


def test_sacct_cells():
    job = jobview.Job(_rec(5, state="CANCELLED", cancelled_by=1001, end_time=NOW), now=NOW)
    fields = sacct_format.parse_sacct_fields("jobid,state,NodeList%-14,reason%3")
    lines = sacct_format.sacct_lines([sacct_format.Row(job)], fields, header=True, parsable=0)
    assert lines == [
        "JobID             State NodeList       Rea ",
        "------------ ---------- -------------- --- ",
        "5            CANCELLED+ None assigned  No+ ",
    ]
    assert sacct_format.sacct_lines([sacct_format.Row(job)], fields, header=False, parsable=1) == [
        "5|CANCELLED by 1001|None assigned|None|"
    ]
    assert sacct_format.sacct_lines(
        [sacct_format.Row(job)], fields, header=False, parsable=2, delimiter=","
    ) == ["5,CANCELLED by 1001,None assigned,None"]
    with pytest.raises(UsageError):
        sacct_format.parse_sacct_fields("JobID,nope")


def test_cpu_times():
    assert sacct_format.cpu_time_text(0) == "00:00:00"
    assert sacct_format.cpu_time_text(0.002) == "00:00.002"
    assert sacct_format.cpu_time_text(61.5) == "01:01.500"
    assert sacct_format.cpu_time_text(3723) == "01:02:03"
    assert sacct_format.cpu_time_text(90000) == "1-01:00:00"


def test_helpformat_is_slurms():
    assert sacct_format.sacct_helpformat() == read_capture("sacct-helpformat.txt").stdout


def test_yaml_scalars():
    text = squeue_format.to_yaml({"a": "", "b": [], "c": [{"d": 1}], "e": True, "f": "x: y"})
    assert text == (
        "%YAML 1.1\n--- !!map\n!!str a: !!null null\n!!str b: !!seq []\n"
        "!!str c: !!seq\n- !!map\n  !!str d: !!int 1\n!!str e: !!bool true\n"
        "!!str f: !!str 'x: y'\n"
    )


def test_show_job_num_nodes_asked_while_pending():
    """Real Slurm 22.05: `-N 1-2` pending shows NumNodes=1-2, `-N2` 2-2, no -N 1; once
    started, ended or cancelled while pending, the one count."""

    def num_nodes(**fields):
        text = scontrol_format.show_job(jobview.Job(_rec(9, **fields), now=NOW))
        return [w for w in text.split() if w.startswith("NumNodes=")]

    assert num_nodes(max_nodes=2) == ["NumNodes=1-2"]
    assert num_nodes(num_nodes=2, max_nodes=2) == ["NumNodes=2-2"]
    assert num_nodes() == ["NumNodes=1"]
    assert num_nodes(num_nodes=2, max_nodes=2, state="CANCELLED", end_time=T0 + 1) == ["NumNodes=2"]
    assert num_nodes(
        num_nodes=2, max_nodes=2, state="RUNNING", start_time=T0 + 1, nodelist="n[1-2]"
    ) == ["NumNodes=2"]


def test_show_job_one_line_and_block_agree():
    job = jobview.Job(_rec(9, comment="c"), now=NOW)
    block = scontrol_format.show_job(job)
    line = scontrol_format.show_job(job, oneliner=True)
    assert block.endswith("\n   Power=\n   \n\n") and line.endswith(" Power= \n")
    assert line.split() == block.split()
