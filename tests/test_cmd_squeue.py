"""squeue as a subprocess on hand-made job state, against the real-Slurm captures, byte for byte.

The state is the peer cluster's queue at the moment of each capture (test_formats.World),
the clock is frozen at that moment (SLURMSKY_NOW) and TZ is UTC, as on the peer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from captures import CAPTURES, peer_group, read_capture
from test_formats import NOW, T0, World, check, epoch, world  # noqa: F401 (fixture)

from slurmsky.core import state
from slurmsky.core.states import FINISHED_STATES, STATE_CODES

# The moments the captures were taken, from their TIME columns (jobs started at 02:48:03).
AT = {18: NOW, 19: NOW + 1, 20: NOW + 2, 21: NOW + 3, 22: NOW + 4, 23: NOW + 5, 49: NOW + 31}


def at(seconds: int) -> dict:
    """The environment of a capture taken when the first jobs had run 1:<seconds>."""
    return {"SLURMSKY_NOW": repr(AT[seconds])}


@pytest.fixture
def peer(world):
    world.peer_queue()
    return world


def with_rc(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`cmd; echo "rc=$?"`, as several captures were taken."""
    return subprocess.CompletedProcess(
        result.args, 0, result.stdout + f"rc={result.returncode}\n", result.stderr
    )


@pytest.mark.parametrize(
    "args, capture, when",
    [
        ((), "squeue-default.txt", 18),
        (("-h",), "squeue-noheader-h.txt", 18),
        (("--noheader",), "squeue-noheader-long.txt", 18),
        (("-o", "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"), "squeue-o-classic.txt", 21),
        (("-l",), "squeue-l.txt", 22),
        (("-r",), "squeue-r-array.txt", 21),
        (("--array",), "squeue-array-long.txt", 22),
        (
            ("-O", "JobID,Partition,Name,UserName,State,TimeUsed,NumNodes,ReasonList"),
            "squeue-O-fields.txt",
            49,
        ),
        (("-o", "%i %j %T"), "squeue-o-noalign.txt", 18),
        (("-o", "%10i|%-10i|%.10i|%.3j|%20j"), "squeue-o-right-left.txt", 18),
        (("-O", "JobID,Bogus"), "squeue-o-unknown-field.txt", 18),
        (("-h", "-t", "PD", "-o", "%i %r"), "squeue-o-pending-reason-codes.txt", 18),
        (("-j", "69_4"), "squeue-j-array-pending-task.txt", 19),
        (("-j", "69_2"), "squeue-j-array-task.txt", 19),
        (("-j", "69_[3-5]"), "squeue-j-array-range.txt", 19),
        (("-j", "67"), "squeue-j-running.txt", 19),
        (("-j", "67,68,70"), "squeue-j-multi.txt", 19),
        (("-j", "67,999999"), "squeue-j-mixed-known-unknown.txt", 20),
        (("-j", "999999"), "squeue-j-unknown.txt", 18),
        (("-h", "-j", "999999"), "squeue-j-unknown-h.txt", 18),
        (("-u", "peeruser"), "squeue-u-peeruser.txt", 18),
        (("-u", "nosuchuser"), "squeue-u-unknown-user.txt", 18),
        (("-n", "arr,held"), "squeue-n-name.txt", 23),
        (("-p", "gpu"), "squeue-p-gpu.txt", 22),
        (("-w", "node1"), "squeue-w-node.txt", 49),
        (("-t", "PD,R"), "squeue-t-PD-R.txt", 20),
        (("-t", "pending"), "squeue-t-pending.txt", 18),
        (("-t", "BOGUS"), "squeue-t-bad.txt", 18),
        (("--bogus",), "squeue-bogus-option.txt", 18),
        (("--version",), "squeue-version.txt", 18),
        (("-S", "-i"), "squeue-sort.txt", 49),
        (("-s",), "squeue-steps.txt", 49),
    ],
)
def test_peer_queue_matches_capture(peer, args, capture, when):
    check(peer.run("squeue", *args, env=at(when)), capture)


def test_long_date_line_is_ctime(peer):
    out = peer.run("squeue", "-l", env=at(22)).stdout
    assert out.splitlines()[0] == "Sun Nov 22 02:49:25 2026"


def test_braces_in_a_format_are_its_own_text(peer):
    """A format's `{` (and `{now}`) is text, as in Slurm's squeue; the listing's SQL takes its
    own time parameters around it (`-o{` failed: Incorrect number of bindings supplied)."""
    out = peer.run("squeue", "-h", "-o", "{now} %t {", "-t", "R")
    assert (set(out.stdout.splitlines()), out.returncode) == ({"{now} R {"}, 0), out.stderr


def test_env_formats(peer):
    check(peer.run("squeue", env={"SQUEUE_FORMAT": "%i %t"}), "squeue-env-SQUEUE_FORMAT.txt")
    check(
        peer.run("squeue", env={"SQUEUE_FORMAT2": "JobID:10,State:10"}),
        "squeue-env-SQUEUE_FORMAT2.txt",
    )
    # -o beats the environment
    out = peer.run("squeue", "-h", "-o", "%i", env={"SQUEUE_FORMAT": "%t"}).stdout
    assert out.splitlines()[0] == "69_[3-7%2]"


def test_unknown_single_id_with_format(peer):
    check(
        with_rc(peer.run("squeue", "-h", "-o", "%T", "-j", "999999")),
        "squeue-j-unknown-single-h-format.txt",
    )
    check(with_rc(peer.run("squeue", "-j", "999998,999999")), "squeue-j-unknown-multi.txt")


def test_array_parent_lists_the_group_and_started_tasks(peer):
    # Slurm prints the two running tasks in its hash order (69_2 first); ours is by index.
    out = peer.run("squeue", "-j", "69", env=at(19))
    cap = read_capture("squeue-j-array-parent.txt")
    assert out.stdout.splitlines()[:2] == cap.stdout.splitlines()[:2]
    assert sorted(out.stdout.splitlines()) == sorted(cap.stdout.splitlines())
    assert out.returncode == 0 and out.stderr == ""


def test_start_view(peer):
    out = peer.run("squeue", "--start", env=at(22))
    cap = read_capture("squeue-start.txt")
    # Jobs whose start is known come first, in start order; the N/A ones are in slurmctld's
    # (qsort) order on Slurm, ours is by id.
    assert out.stdout.splitlines()[:3] == cap.stdout.splitlines()[:3]
    assert sorted(out.stdout.splitlines()) == sorted(cap.stdout.splitlines())


def _column_normalizer(separator: str, columns: dict):
    def normalize(text: str) -> str:
        lines = []
        for line in text.splitlines():
            cells = line.split(separator)
            for index, value in columns.items():
                if index < len(cells):
                    cells[index] = value
            lines.append(separator.join(cells).rstrip())
        return "\n".join(lines)

    return normalize


def test_every_percent_code(peer):
    # Priorities are slurmctld's counter since its start (ours: by submission): that column
    # is normalised. The group of peeruser's jobs (%g; the peer's peeruser, gid 1001) is the
    # name this machine resolves for the gid they are stored with.
    gid, group = peer_group()
    peer.conn.execute("UPDATE jobs SET gid = ? WHERE uid = 1001", (gid,))
    args = (
        "%A|%a|%F|%K|%i|%j|%T|%t|%r|%R|%M|%l|%L|%S|%V|%e|%D|%C|%m|%b|%E|%N|%P|%u|%U|%g|"
        "%q|%Q|%Z|%o|%k"
    )
    out = peer.run("squeue", "-h", "-o", args, env=at(49))
    cap = read_capture("squeue-o-percent-fields.txt")
    rows = [line.split("|") for line in cap.stdout.splitlines()]
    assert sum(r[24] == "1001" and r[25] == "peeruser" for r in rows) == 5  # 69, 68, 78, 79, 77
    expected = "".join(
        "|".join(r[:25] + [group if r[24] == "1001" else r[25]] + r[26:]) + "\n" for r in rows
    )
    norm = _column_normalizer("|", {27: "P"})
    assert norm(out.stdout) == norm(expected)
    assert (out.stderr, out.returncode) == (cap.stderr, cap.exit)


def test_priorities_order_like_slurmctlds(peer):
    out = peer.run("squeue", "-h", "-o", "%i %Q", env=at(49)).stdout.split("\n")
    prio = {line.split()[0]: int(line.split()[1]) for line in out if line}
    assert prio["70"] == 0  # held
    assert prio["67"] > prio["68"] > prio["69_[3-7%2]"] == prio["69_1"] > prio["72"]


def test_long_format_fields_and_widths(peer):
    more = (
        "JobID:|,JobArrayID:|,Reason:|,Dependency:|,NumCPUs:|,MinMemory:|,tres-per-node:|,"
        "Command:|,STDOUT:|,STDERR:|,Account:|,QOS:|,Priority"
    )
    # The last field, Priority, is 20 wide: the capture shows no padding after it (trailing
    # blanks are stripped on both sides) and priorities differ (see above).
    check(
        peer.run("squeue", "-h", "-O", more, env=at(49)),
        "squeue-O-more.txt",
        normalize=_column_normalizer("|", {12: "P"}),
    )
    widths = (
        "JobID:12,ArrayJobID:8,ArrayTaskID:8,Name:40,StateCompact:4,TimeLimit:14,"
        "TimeLeft:14,StartTime:21,SubmitTime:21,WorkDir:30"
    )
    # The capture's work dir was longer before it was replaced by <probe-dir>: its padding
    # is different, so trailing blanks are stripped on both sides.
    check(
        peer.run("squeue", "-O", widths, env=at(49)),
        "squeue-O-widths.txt",
        normalize=lambda t: "\n".join(line.rstrip() for line in t.splitlines()),
    )
    out = peer.run("squeue", "-h", "-O", "Name:40", env=at(49)).stdout.splitlines()
    assert out[6] == "a-very-long-job-name-for-truncation" + " " * 5


def test_me_and_user_filters(peer):
    me = peer.run("squeue", "--me", env=at(18))
    root_rows = [
        line
        for line in read_capture("squeue-default.txt").stdout.splitlines()
        if " root " in line or "JOBID" in line
    ]
    assert me.stdout.splitlines() == root_rows
    out = peer.run("squeue", "-h", "-u", "0,peeruser", "-o", "%i", env=at(18)).stdout.split()
    assert len(out) == 13
    out = peer.run("squeue", "-h", "-A", "other", "-o", "%i").stdout
    assert out == ""


def test_mutually_exclusive_formats(peer):
    out = peer.run("squeue", "-o", "%i", "-O", "JobID")
    assert out.returncode == 1
    assert out.stderr == "squeue: error: -O (--Format) is incompatible with -o (--format)\n"


def test_json_and_yaml(peer):
    out = peer.run("squeue", "--json", "-j", "67", env=at(49))  # filters are ignored
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert list(doc) == ["meta", "errors", "jobs"]
    assert doc["meta"]["Slurm"] == {
        "version": {"major": 22, "micro": 8, "minor": 5},
        "release": "22.05.8",
    }
    assert doc["meta"]["plugin"]["type"] == "openapi/v0.0.38"
    jobs = {j["job_id"]: j for j in doc["jobs"]}
    assert len(jobs) == 13
    meta = jobs[69]
    assert (
        meta["array_job_id"],
        meta["array_task_id"],
        meta["array_task_string"],
        meta["job_state"],
        meta["state_reason"],
        meta["time_limit"],
    ) == (69, None, "3-7%2", "PENDING", "JobArrayTaskLimit", 2880)
    assert (jobs[78]["array_job_id"], jobs[78]["array_task_id"]) == (69, 1)
    assert jobs[67]["array_job_id"] == 0 and jobs[67]["array_task_id"] is None
    assert jobs[67]["start_time"] == int(T0 + 3) and jobs[67]["nodes"] == "node1"
    assert jobs[67]["end_time"] == int(T0 + 3 + 1800)
    raw = (CAPTURES / "squeue-json.txt").read_text()
    slurm_keys = set(re.findall(r'^  "([a-z_]+)":', raw, re.M))
    assert set(jobs[67]) <= slurm_keys


def test_yaml_document_shape(peer):
    lines = peer.run("squeue", "--yaml").stdout.splitlines()
    cap = (CAPTURES / "squeue-yaml.txt").read_text().splitlines()
    # the capture's first line is its title; then the document starts identically
    assert lines[:13] == cap[1:14]
    assert "- !!map" in lines and "  !!str job_id: !!int 67" in lines


# --- other moments of the peer cluster -------------------------------------------------------


def _from_slurm_summary(w: World) -> None:
    """Every job slurmctld held when squeue-states-all.txt was taken, from the JSON summary of
    squeue-json.txt (ids, states, reasons, nodes, limits, times) and the TIME/NODES columns
    of squeue-states-all.txt (run times and node counts)."""
    text = (CAPTURES / "squeue-json.txt").read_text()
    summary = [
        json.loads(line)
        for line in text.splitlines()
        if line.startswith("[") and line.count(",") >= 12
    ]
    table = {}
    for line in read_capture("squeue-states-all.txt").stdout.splitlines()[1:]:
        table[line[:18].strip()] = (line[50:60].strip(), int(line[61:67]))
    arrays: dict = {}
    for (
        job_id,
        array_id,
        task,
        task_string,
        name,
        user,
        st,
        reason,
        part,
        nodes,
        limit,
        start,
        submit,
    ) in summary:
        shown = (
            str(job_id)
            if not array_id
            else (f"{array_id}_[{task_string}]" if task is None else f"{array_id}_{task}")
        )
        elapsed, count = table.get(shown, ("0:00", 1))
        minutes, seconds = elapsed.split(":")
        run = int(minutes) * 60 + int(seconds)
        fields = dict(
            name=name,
            user=user,
            uid=0 if user == "root" else 1001,
            gid=0 if user == "root" else 1001,
            state=st,
            reason=reason,
            partition=part,
            time_limit=limit,
            submit_time=submit,
            num_nodes=count,
            num_cpus=count,
            num_tasks=count,
            tasks_per_node=[1] * count,
            cpus_per_node=[1] * count,
            held="user" if reason == "JobHeldUser" else None,
        )
        if nodes:
            fields.update(nodelist=nodes, start_time=start, batch_host=nodes[:5])
            if st not in ("RUNNING", "PENDING"):
                fields["end_time"] = start + run
        elif st == "PENDING":
            fields.update(begin_time=start or None)
        else:
            fields.update(end_time=start)
        if st == "CANCELLED":
            fields["cancelled_by"] = 0
        if reason == "NonZeroExitCode":
            fields["exit_code"] = 3
        if array_id:
            if task is None:  # the pending meta record 69: its tasks 3-7
                tasks = {3: 80, 4: 81, 5: 82, 6: 83, 7: job_id}
                for index, own in tasks.items():
                    arrays.setdefault(array_id, {})[index] = (own, dict(fields))
                arrays[array_id]["throttle"] = 2
            else:
                arrays.setdefault(array_id, {})[task] = (job_id, fields)
        else:
            w.add(job_id, **fields)
    for array_id, tasks in arrays.items():
        throttle = tasks.pop("throttle", None)
        w.add_array(array_id, tasks, array_throttle=throttle)


def _blocks(lines):
    """(partition, state) of each run of rows: the part of the order that is well defined."""
    runs = []
    for line in lines:
        key = (line[19:28].strip(), line[47:49].strip())
        if not runs or runs[-1] != key:
            runs.append(key)
    return runs


def test_states_all_lists_finished_jobs_for_min_job_age(world):
    _from_slurm_summary(world)
    when = {"SLURMSKY_NOW": repr(NOW + 3)}
    out = world.run("squeue", "--states=all", env=when)
    cap = read_capture("squeue-states-all.txt")
    ours, theirs = out.stdout.splitlines(), cap.stdout.splitlines()
    assert ours[0] == theirs[0]
    # Rows of equal priority (held jobs, tasks of one array) are in slurmctld's qsort order
    # on Slurm: compare the rows as a set and the order of the (partition, state) blocks.
    assert sorted(ours) == sorted(theirs)
    assert _blocks(ours[1:]) == _blocks(theirs[1:])
    check(
        world.run("squeue", "-t", "CD,F,CA", env=when),
        "squeue-t-CD.txt",
        normalize=lambda t: "\n".join(sorted(t.splitlines())),
    )
    # MinJobAge later, the finished ones are gone
    later = {"SLURMSKY_NOW": repr(NOW + 3 + 400)}
    rows = world.run("squeue", "-h", "-t", "all", "-o", "%t", env=later).stdout.split()
    assert set(rows) == {"PD", "R"}


def test_finished_job_needs_states_all_and_is_purged_after_min_job_age(world):
    world.add(
        64, name="done-ok", state="COMPLETED", nodelist="node1", start_time=T0, end_time=T0 + 1
    )
    within = {"SLURMSKY_NOW": repr(T0 + 60)}
    check(world.run("squeue", "-j", "64", env=within), "squeue-j-completed-within-minjobage.txt")
    out = world.run("squeue", "-h", "-j", "64", "-t", "all", "-o", "%i %T", env=within)
    assert out.stdout == "64 COMPLETED\n"
    purged = {"SLURMSKY_NOW": repr(T0 + 1 + 301)}
    world.add(87, name="t", state="TIMEOUT", nodelist="node1", start_time=T0, end_time=T0 + 1)
    check(with_rc(world.run("squeue", "-j", "64", env=purged)), "squeue-j-purged-single.txt")
    check(with_rc(world.run("squeue", "-j", "64,87", env=purged)), "squeue-j-purged-multi.txt")
    first = world.run(
        "squeue",
        "-j",
        "64,87",
        "-t",
        "all",
        "-o",
        "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R",
        env=purged,
    )
    second = world.run("squeue", "-h", "-j", "64", "-t", "all", "-o", "%T %r", env=purged)
    both = subprocess.CompletedProcess(
        [], second.returncode, first.stdout + second.stdout, first.stderr + second.stderr
    )
    check(both, "timeout-squeue-state.txt")


def test_array_elements_started_in_one_second_list_by_index(world, monkeypatch, capsys):
    """Slurm keeps times in whole seconds: elements that started in the same second (each a
    little later than the one before, here as on the peer's 169_0 ... 169_3) tie on start
    time and come in slurmctld's list order, by index, in squeue's SQL listing and its Job
    path alike, and in sacct's; `squeue -j ARRAY` in slurm_load_job's order."""
    from slurmsky.commands import squeue
    from slurmsky.render import squeue_format

    run = dict(state="RUNNING", nodelist="node1", batch_host="node1", reason="None")
    world.add_array(
        169,
        {i: (169 if i == 3 else 170 + i, dict(run, start_time=NOW - 2 + i / 10)) for i in range(4)},
        name="arr",
    )
    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    expected = "169_0\n169_1\n169_2\n169_3\n"
    assert squeue.body(["-h", "-o", "%i"]) == 0 and squeue.body(["-h"]) == 0
    fast = capsys.readouterr().out
    with monkeypatch.context() as m:
        m.setattr(squeue_format.Listing, "fits", staticmethod(lambda items, sort: False))
        assert squeue.body(["-h", "-o", "%i"]) == 0 and squeue.body(["-h"]) == 0
    assert capsys.readouterr().out == fast and fast.startswith(expected)
    assert [line.split()[0] for line in fast.splitlines()[4:]] == expected.split()
    sacct = world.run("sacct", "-X", "-n", "-o", "JobID", "-a")
    assert sacct.stdout.split() == expected.split(), sacct.stderr
    # the array's id alone is loaded by id (the peer's `squeue -j 25`: 25_4 25_3 25_2 25_1):
    # its record first, then the elements the last split off first
    alone = world.run("squeue", "-h", "-j", "169", "-o", "%i")
    assert alone.stdout.split() == ["169_3", "169_2", "169_1", "169_0"], alone.stderr


def test_pending_arrays_collapse(world):
    run = dict(state="RUNNING")
    world.add(
        138,
        name="blocker",
        nodelist="node[1-4]",
        num_nodes=4,
        num_cpus=4,
        start_time=NOW - 3,
        batch_host="node1",
        **run,
    )
    world.add_array(
        139,
        {i: (139 if i == 7 else 142 + i, {}) for i in range(1, 8)},
        name="arr-plain",
        reason="Resources",
    )
    world.add_array(
        140,
        {i: (140 if i == 7 else 150 + i, {}) for i in (1, 3, 5, 7)},
        name="arr-step",
        reason="Resources",
    )
    world.add_array(
        141,
        {i: (141 if i == 12 else 160 + i, {}) for i in (1, 3, 10, 11, 12)},
        name="arr-list",
        reason="Resources",
    )
    world.add_array(
        142,
        {i: (142 if i == 3 else 180 + i, {}) for i in range(4)},
        name="arr-held",
        held="user",
        reason="JobHeldUser",
    )
    check(world.run("squeue"), "squeue-pending-arrays.txt")
    check(world.run("squeue", "-r"), "squeue-pending-arrays-r.txt")


def test_partly_started_array(world):
    tasks = {
        i: (156 + i, dict(state="RUNNING", reason="None", nodelist=f"node{i}", start_time=NOW - 2))
        for i in range(1, 5)
    }
    tasks.update({5: (161, {}), 6: (162, {}), 7: (156, {})})
    world.add_array(156, tasks, name="arr-part", reason="Resources")
    first = world.run("squeue")
    second = world.run(
        "squeue", "-h", "-O", "JobID:8,JobArrayID:12,ArrayJobID:8,ArrayTaskID:10,State:10,Reason:12"
    )
    both = subprocess.CompletedProcess(
        [], 0, first.stdout + "\n" + second.stdout, first.stderr + second.stderr
    )
    check(both, "squeue-array-partially-pending.txt")


def test_snakemake_status_query(world):
    uuid = "4f1c2d3e-aaaa-bbbb-cccc-0123456789ab"
    world.add(
        7, name=uuid, state="COMPLETED", nodelist="node1", start_time=NOW - 60, end_time=NOW - 58
    )
    world.add(
        8,
        name=uuid,
        state="FAILED",
        nodelist="node1",
        start_time=NOW - 60,
        end_time=NOW - 58,
        exit_code=1,
        reason="NonZeroExitCode",
    )
    world.add(
        9, name="other", state="COMPLETED", nodelist="node1", start_time=NOW - 60, end_time=NOW - 58
    )
    check(
        world.run("squeue", "--format=%i|%T", "--states=all", "--noheader", "--name", uuid),
        "tool-snakemake-squeue.txt",
    )


def test_sort_keys_and_bad_sort(peer):
    out = peer.run("squeue", "-h", "-S", "j", "-o", "%j").stdout.split()
    assert out == sorted(out)
    bad = peer.run("squeue", "-S", "%")
    assert bad.returncode == 1 and "Invalid sort specification: %" in bad.stderr


def test_reads_fast_with_many_jobs(world):
    """Not a timing test: squeue reads 1000 jobs in one query and prints them all."""
    from test_listing_cache import _row

    rows = [
        _row(1000 + i, submission=1000 + i, name=f"j{i}", partition="debug") for i in range(1000)
    ]
    from slurmsky.core import state

    for row in rows:
        state.add_submission(world.conn, row["submission"], {}, None, [row])
    out = world.run("squeue", "-h", "-o", "%i|%T")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0] == "1000|PENDING" and len(out.stdout.splitlines()) == 1000


def test_import_stays_light(peer):
    """A real listing, with a config file present, loads nothing heavy."""
    (peer.home / "cfg.yaml").write_text("cluster_name: c\n")
    code = (
        "import io, sys, contextlib\n"
        "from slurmsky.commands import squeue\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    squeue.body(['-l'])\n"
        "print(sorted(m for m in ('click', 'lark', 'psutil', 'yaml', 'sky', 'rich', "
        "'subprocess', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=str(__import__("test_formats").ROOT),
        env={**peer.env, "SLURMSKY_CONFIG": str(peer.home / "cfg.yaml")},
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_epoch_helper_is_utc():
    assert time.strftime("%H:%M", time.gmtime(epoch("2026-11-22T02:48:00"))) == "02:48"


# --- end to end: sbatch, the agent and the local executor -----------------------------------


def test_end_to_end_hold_release_run(cluster):
    job = cluster.sbatch("--hold", "-J", "e2e", "--wrap", "true")
    out = cluster.run("squeue", "-h", "-o", "%i %j %T %r")
    assert (out.stdout, out.stderr, out.returncode) == (f"{job} e2e PENDING JobHeldUser\n", "", 0)
    assert cluster.run("scontrol", "release", str(job)).returncode == 0
    cluster.wait_done(job)
    assert cluster.run("squeue", "-h").stdout == ""
    done = cluster.run("squeue", "-h", "-t", "all", "-o", "%i %j %T %r %N")
    assert done.stdout == f"{job} e2e COMPLETED None 127.0.0.1\n"


def test_end_to_end_array_collapses_while_pending(cluster):
    job = cluster.sbatch("--array=1-3%1", "--hold", "-J", "arr", "--wrap", "true")
    out = cluster.run("squeue", "-h", "-o", "%i %K %T %r")
    assert out.stdout == f"{job}_[1-3%1] 1-3%1 PENDING JobHeldUser\n"
    expanded = cluster.run("squeue", "-h", "-r", "-o", "%i").stdout.split()
    assert expanded == [f"{job}_{i}" for i in (1, 2, 3)]
    assert cluster.run("scontrol", "release", str(job)).returncode == 0
    cluster.wait_done(job)
    rows = cluster.run("squeue", "-h", "-t", "all", "-o", "%i %T").stdout.splitlines()
    assert sorted(rows) == [f"{job}_{i} COMPLETED" for i in (1, 2, 3)]


def test_iterate_repeats_the_listing(peer):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(__import__("test_formats").BIN / "squeue"),
            "-h",
            "-i",
            "1",
            "-j",
            "67",
            "-o",
            "%i %T",
        ],
        env=peer.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.kill()
        proc.wait()
    assert first == ["67 RUNNING\n", "\n", "67 RUNNING\n"]
    bad = peer.run("squeue", "-i", "0")
    assert (bad.returncode, bad.stderr) == (1, "squeue: error: --iterate=0\n\n")


def test_percent_all(peer):
    out = peer.run("squeue", "-o", "%all", env=at(18))
    header = out.stdout.splitlines()[0].split("|")
    assert header[:4] == ["ACCOUNT", "TRES_PER_NODE", "MIN_CPUS", "MIN_TMP_DISK"]
    assert out.stderr == "" and len(out.stdout.splitlines()) == 14


@pytest.mark.sqlite_only  # SQLite's trace of the statements
@pytest.mark.parametrize(
    "command, args",
    [
        ("squeue", []),
        ("squeue", ["-l"]),
        ("squeue", ["-t", "all", "-r"]),
        ("squeue", ["--start"]),
        ("sacct", []),
        ("sacct", ["-X", "-P"]),
        ("sacct", ["-o", "JobID,State,ExitCode,NodeList"]),
    ],
)
def test_listings_read_each_job_once(world, monkeypatch, capsys, command, args):
    """squeue's and sacct's usual listings read state.LIST_COLUMNS of every job in their one
    query (or, for their usual formats, the lines SQLite computes: state.list_rows for
    squeue's, state.query_jobs for sacct's), never a job's whole row: what keeps `squeue` on
    10 000 jobs cheap."""
    import importlib

    world.add(1, state="RUNNING", nodelist="node1", start_time=T0 + 3)
    world.add(2, state="COMPLETED", nodelist="node1", end_time=T0 + 9, exit_code=0, exit_signal=0)
    world.add(3, held="user", reason="JobHeldUser")
    world.add_array(
        4,
        {
            1: (4, {"state": "RUNNING", "nodelist": "node2"}),
            2: (5, {"reason": "JobArrayTaskLimit"}),
        },
        array_throttle=1,
    )
    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    statements = []
    connect = state.connect

    def traced(*a, **kw):
        conn = connect(*a, **kw)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(state, "connect", traced)
    rows = []
    for name in ("list_rows", "query_jobs"):
        listed = getattr(state, name)
        monkeypatch.setattr(
            state, name, lambda *a, listed=listed, **kw: rows.append(a) or listed(*a, **kw)
        )
    module = importlib.import_module(f"slurmsky.commands.{command}")
    assert module.body(args) in (0, None)
    assert capsys.readouterr().out.count("\n") >= 2  # a header and jobs
    columns = ", ".join('"user"' if c == "user" else c for c in state.LIST_COLUMNS)
    listing = f"SELECT {columns} FROM jobs"
    assert rows or [s for s in statements if s.startswith(listing)]
    assert not [s for s in statements if "WHERE job_id = ?" in s]


@pytest.mark.parametrize("seed", range(20))
def test_listing_from_rows_equals_job_path(world, monkeypatch, capsys, seed):
    """The listings SQLite computes (squeue_format.Listing: squeue's usual formats, default sort)
    print exactly what the Job path prints, over random queues: every state, held jobs,
    arrays in pieces, begin times, running times from seconds to over a year."""
    import random

    from slurmsky.commands import squeue
    from slurmsky.render import squeue_format

    rng = random.Random(seed)
    now = world.now
    states = list(STATE_CODES)

    def fields():
        st = rng.choice(states + ["PENDING"] * 4 + ["RUNNING"] * 2)
        f = dict(
            state=st,
            name=rng.choice(["job", "a-very-long-name", "x", "nom-é"]),
            partition=rng.choice(["debug", "gpu", "a-long-partition"]),
            user=rng.choice(["root", "someone-long"]),
            time_limit=rng.choice([None, 1, 59, 60, 1440, 525600, 10**6]),
            num_nodes=rng.choice([1, 2, 12]),
            num_cpus=rng.choice([1, 4, 128]),
            reason=rng.choice(["None", "Resources", "Dependency", "JobHeldUser"]),
            restarts=rng.choice([0, 0, 0, 1]),
            submit_time=T0 - rng.randrange(10**5),
        )
        if rng.random() < 0.3:
            f["held"] = rng.choice(["user", "admin"])
        if rng.random() < 0.3:
            f["begin_time"] = now + rng.choice([-100, -1, 0, 1, 3600, 10**6])
        if st != "PENDING" or rng.random() < 0.1:
            f["start_time"] = (
                now - rng.choice([0, 1, 59, 3600, 86399, 86400 * 3, 86400 * 400, -5]) - rng.random()
            )
            f["nodelist"] = rng.choice([None, "", "node1", "node[1-2]", "a-very-long-list[1-9]"])
        if st in FINISHED_STATES:
            f["end_time"] = now - rng.choice([0, 10, 200, 1000]) + rng.random()
        return f

    next_id = 1
    for _ in range(rng.randrange(20, 60)):
        if rng.random() < 0.3:  # an array, some of its elements started
            size = rng.randrange(1, 12)
            ids = list(range(next_id + 1, next_id + size)) + [next_id]
            common = dict(array_throttle=rng.choice([None, 2]))
            tasks = {}
            for index, job_id in enumerate(ids):
                extra = fields()
                if rng.random() < 0.6:
                    extra.update(
                        state="PENDING",
                        reason="JobArrayTaskLimit",
                        restarts=0,
                        start_time=None,
                        nodelist=None,
                        end_time=None,
                    )
                if rng.random() < 0.2:
                    extra["name"] = "renamed"
                tasks[index * rng.choice([1, 1, 3])] = (job_id, extra)
            world.add_array(next_id, tasks, **common)
            next_id += size
        else:
            world.add(next_id, **fields())
            next_id += 1
    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    cases = [
        [],
        ["-l"],
        ["-t", "all"],
        ["-r"],
        ["-t", "all", "-r"],
        ["-h"],
        ["-o", "%i|%A|%F|%K|%T|%t|%M|%l|%D|%C|%P|%j|%u|%U|%N|%r|%a|%R"],
        ["-o", "%5i %-7j %.3P %10R %.3t %.1M %l%% ok"],
        ["-t", "PD,R", "-p", "gpu"],
        ["-j", "1,2,3,4,5,6,7,8,9,10"],
        ["-u", "root"],
        ["-o", "%.5j|%-5j|%6j|%.4j"],  # widths count characters: 'nom-é' is 6 bytes
        ["-o", "%i %%" * 130],
    ]  # SQLite takes 127 arguments to printf at most
    for args in cases:
        assert squeue.body(list(args)) == 0
        fast = capsys.readouterr().out
        with monkeypatch.context() as m:
            m.setattr(squeue_format.Listing, "fits", staticmethod(lambda items, sort: False))
            assert squeue.body(list(args)) == 0
        slow = capsys.readouterr().out
        assert fast == slow, args
