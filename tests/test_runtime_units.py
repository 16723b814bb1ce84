"""The node runtime's pieces on their own: step layout, srun's option rules and output, task
exit reporting, scontrol's keywords, the channel handshake, spec identity, the trampoline."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from runtime_fixtures.cluster import ROOT, capture

from slurmsky.runtime import channel, env, layout, procs, scontrol, spec, srun

NAMES = ["127.0.0.1", "127.0.0.2"]
ENV_B = {"SLURM_NTASKS": "4", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "2"}


# -- step layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (dict(ntasks=4, nnodes=2), ([0, 1], [[0, 1], [2, 3]])),  # env-e
        (dict(ntasks=1, nnodes=1), ([0], [[0]])),  # srun -n1
        (dict(ntasks=3, nnodes=2), ([0, 1], [[0, 1], [2]])),  # block: fill node 0
        (dict(ntasks=1, nnodes=1, nodelist=["127.0.0.2"]), ([1], [[0]])),
        (dict(ntasks=2, nnodes=2, ntasks_per_node=1), ([0, 1], [[0], [1]])),
        (dict(ntasks=2, nnodes=2, cpus_per_task=2), ([0, 1], [[0], [1]])),
        (dict(ntasks=5, nnodes=2, overcommit=True), ([0, 1], [[0, 1, 2], [3, 4]])),
        (dict(ntasks=1, nnodes=1, exclude=["127.0.0.1"]), ([1], [[0]])),
    ],
)
def test_block_layout(args, expected):
    assert layout.plan(NAMES, [2, 2], **args) == expected


def test_layout_on_uneven_nodes():
    """srun-mixed-exit: -n3 over 1 + 2 CPUs puts task 0 on node1 and tasks 1-2 on node2."""
    assert layout.plan(NAMES, [1, 2], 3, 2) == ([0, 1], [[0], [1, 2]])


@pytest.mark.parametrize(
    "busy, ntasks, expected",
    [
        ([2, 0], 1, ([1], [[0]])),  # an --exact step goes where no other holds the CPUs
        ([1, 0], 1, ([0], [[0]])),  # (a node with a CPU left is room)
        ([2, 1], 1, ([1], [[0]])),
        ([2, 2], 1, ([0], [[0]])),  # no room left: it shares them
        ([1, 1], 2, ([0, 1], [[0], [1]])),
        ([1, 1], 3, ([0, 1], [[0, 1], [2]])),  # not enough room: laid out as without
    ],
)
def test_an_exact_step_takes_the_cpus_others_do_not_hold(busy, ntasks, expected):
    assert layout.plan(NAMES, [2, 2], ntasks, None, busy=busy) == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(ntasks=5, nnodes=2), "More processors requested than permitted"),
        (dict(ntasks=3, nnodes=1), "More processors requested than permitted"),
        (
            dict(ntasks=1, nnodes=1, nodelist=["node9"]),
            "Requested node configuration is not available",
        ),
        (dict(ntasks=3, nnodes=3), "Requested node configuration is not available"),
    ],
)
def test_layout_refusals(args, message):
    with pytest.raises(layout.LayoutError, match=message):
        layout.plan(NAMES, [2, 2], **args)


# -- srun's options ----------------------------------------------------------------------


def test_srun_takes_counts_from_the_allocation():
    request, output, warnings = srun.parse(["hostname"], ENV_B)
    assert (request["ntasks"], request["nnodes"], request["ntasks_per_node"]) == (4, 2, 2)
    assert warnings == [] and request["argv"] == ["hostname"]
    assert not output["label"] and request["cpus_per_task"] == 1


def test_srun_fewer_tasks_than_nodes_warns_as_slurm():
    request, _, warnings = srun.parse(["-n1", "bash", "-c", "echo x"], ENV_B)
    real = capture("env-e-srun-in-batch-output.txt").splitlines()
    assert warnings == [next(line for line in real if line.startswith("srun: Warning"))]
    assert (request["ntasks"], request["nnodes"], request["ntasks_per_node"]) == (1, 1, None)
    assert request["argv"] == ["bash", "-c", "echo x"]


def test_srun_ignores_ntasks_per_node_that_does_not_fit():
    request, _, warnings = srun.parse(["-n3", "true"], ENV_B)
    assert warnings == [
        "srun: Warning: can't honor --ntasks-per-node set to 2 which doesn't "
        "match the requested tasks 3 with the number of requested nodes 2. "
        "Ignoring --ntasks-per-node."
    ]
    assert request["ntasks_per_node"] is None


def test_srun_nodelist_and_options_end_at_the_command():
    request, output, _ = srun.parse(
        ["-w", "127.0.0.[1-2]", "-l", "-u", "--ntasks=2", "cmd", "-n", "9", "--label"], {}
    )
    assert (request["ntasks"], request["nnodes"], request["nodelist"]) == (2, 2, NAMES)
    assert request["argv"] == ["cmd", "-n", "9", "--label"]
    assert output["label"] and output["unbuffered"]
    request, _, _ = srun.parse(["--exclusive=user", "--cpu-bind=cores", "-c", "2", "x"], {})
    assert request["cpus_per_task"] == 2 and request["cpus_per_task_set"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--bogus", "x"],
            "srun: unrecognized option '--bogus'\nTry \"srun --help\" for more information",
        ),
        (["-n1"], "srun: fatal: No command given to execute."),
        (["-n", "x", "true"], "srun: error: Invalid number of tasks: x"),
        (
            ["--gres-flags=allow-task-sharing", "x"],
            "srun: error: Invalid --gres-flags specification",
        ),
    ],
)
def test_srun_usage_errors(argv, message):
    with pytest.raises(srun.UsageError) as e:
        srun.parse(argv, {})
    assert str(e.value) == message


def test_srun_export():
    environ = {"SLURM_JOB_ID": "1", "FOO": "f", "BAR": "b"}
    assert srun._export("ALL", environ) == environ
    assert srun._export("NONE", environ) == {"SLURM_JOB_ID": "1"}
    assert srun._export("FOO,BAZ=z", environ) == {"SLURM_JOB_ID": "1", "FOO": "f", "BAZ": "z"}
    assert srun._export("ALL,FOO=x", environ) == dict(environ, FOO="x")


# -- srun's output and exit reports ------------------------------------------------------


def _output(tmp_path, **settings):
    step = {"id": 0, "tasks": [list(range(6)), list(range(6, 12))], "names": NAMES}
    base = {
        "label": False,
        "unbuffered": False,
        "stdout": str(tmp_path / "out"),
        "stderr": None,
        "append": False,
    }
    base.update(settings)
    return srun.Output(base, step, {"SLURM_JOB_ID": "5"})


def test_labelled_lines_are_whole_and_padded(tmp_path):
    """Labels are right-aligned to the widest task id (%*d: ); a line split across chunks is
    printed once complete; a last line without newline gets one when labelled."""
    out = _output(tmp_path, label=True)
    out.write(3, 1, b"par")
    out.write(11, 2, b"x\n")
    out.write(3, 1, b"tial\nsecond\nno newline")
    out.flush([3])
    out.close()
    assert (tmp_path / "out").read_text() == ("11: x\n 3: partial\n 3: second\n 3: no newline\n")


def test_unbuffered_output_is_passed_as_it_comes(tmp_path):
    out = _output(tmp_path, unbuffered=True)
    out.write(0, 1, b"a")
    out.write(1, 1, b"b\n")
    out.write(0, 2, b"c")
    out.close()
    assert (tmp_path / "out").read_text() == "ab\nc"


def test_task_list_text():
    assert srun._tasks_text([1]) == "task 1"
    assert srun._tasks_text([3, 0, 1]) == "tasks 0-1,3"


def test_task_exit_lines_and_exit_code(capfd):
    """launch.c _task_finish: exit codes keep the largest, but a task ended by a signal decides
    srun's exit whatever came before or after it (real Slurm 22.05: exit 3 then SIGTERM gives
    143, SIGKILL then exit 3 gives 137); srun exits with the code or 128+signal."""
    rc = srun._task_exit(0, "node1", [0], 0)
    rc = srun._task_exit(rc, "node1", [1, 2], 3 << 8)
    assert os.WEXITSTATUS(rc) == 3
    rc = srun._task_exit(rc, "node2", [3], 9)
    rc = srun._task_exit(rc, "node2", [4], 1 << 8)
    assert rc == 9
    assert srun._task_exit(0, "node1", [0], 9) == 9
    assert capfd.readouterr().err == (
        "srun: error: node1: tasks 1-2: Exited with exit code 3\n"
        "srun: error: node2: task 3: Killed\n"
        "srun: error: node2: task 4: Exited with exit code 1\n"
        "srun: error: node1: task 0: Killed\n"
    )


# -- scontrol ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, case",
    [
        (["show", "hostnames", "node[1-3,5]"], "scontrol-show-hostnames.txt"),
        (["show", "hostname", "node[01-03],gpu[1-2],login"], "scontrol-show-hostnames-multi.txt"),
        (["show", "hostlist", "node1,node2,node3"], "scontrol-show-hostlist.txt"),
        (
            ["show", "hostlist", "node3,node1,node2,node10,gpu1,node02"],
            "scontrol-show-hostlist-mixed.txt",
        ),
        (
            ["show", "hostlistsorted", "node3,node1,node2,node10,gpu1"],
            "scontrol-show-hostlistsorted.txt",
        ),
    ],
)
def test_scontrol_hostlists(capsys, argv, case):
    assert scontrol.main(argv, "/nonexistent") == 0
    assert capsys.readouterr().out == capture(case)


def test_scontrol_hostnames_without_a_list(capsys, monkeypatch):
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    assert scontrol.main(["show", "hostnames"], "/nonexistent") == 0
    assert capsys.readouterr().err == capture("scontrol-show-hostnames-noarg-noenv.txt", "stderr")


@pytest.mark.parametrize(
    "tag, word, minimum, matches",
    [
        ("hostn", "hostnames", 5, True),
        ("host", "hostnames", 5, False),
        ("hostlists", "hostlist", 5, False),
        ("hostlists", "hostlistsorted", 9, True),
        ("HOSTLIST", "hostlist", 5, True),
        ("j", "jobs", 1, True),
        ("job", "jobid", 1, True),
    ],
)
def test_scontrol_keyword_abbreviations(tag, word, minimum, matches):
    assert scontrol._is(tag, word, minimum) is matches


# -- the channel -------------------------------------------------------------------------


class _Node0:
    """A listener serving handshakes in a thread, recording what it refused."""

    def __init__(self, secret, job_id, candidates=(0,)):
        self.keys = {r: channel.role_key(secret, r) for r in channel.ROLES}
        self.sock, self.port = channel.listen("127.0.0.1", candidates)
        self.job_id, self.refused, self.hellos = job_id, [], []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:  # closed at the end of the test
                return
            try:
                conn, hello = channel.accept(sock, self.job_id, self.keys)
                self.hellos.append(hello)
                conn.send({"t": "setup"})
            except channel.ChannelError as e:
                self.refused.append(str(e))
                sock.close()


def test_handshake_proves_the_secret_both_ways():
    node0 = _Node0("secret", 4242)
    try:
        key = channel.role_key("secret", "local")
        conn = channel.connect("127.0.0.1", node0.port, 4242, "local", key)
        assert conn.recv()[0] == {"t": "setup"}
        conn.close()
        with pytest.raises(channel.NotOurs):  # a wrong key cannot verify node 0 either
            channel.connect("127.0.0.1", node0.port, 4242, "local", channel.role_key("x", "local"))
        with pytest.raises(channel.NotOurs):
            channel.connect("127.0.0.1", node0.port, 4243, "local", key)
        with pytest.raises(channel.NotOurs):  # a local key is no agent key
            channel.connect("127.0.0.1", node0.port, 4242, "agent", key)
        with socket.create_connection(("127.0.0.1", node0.port)) as s:
            raw = channel.Conn(s)
            raw.send({"t": "hello", "job": 4242, "role": "agent", "rank": 1, "nonce": "1"})
            raw.recv()
            raw.send({"t": "auth", "proof": "0" * 64})
            assert raw.recv()[0] == {"t": "denied"}
        deadline = time.monotonic() + 10
        while len(node0.refused) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [h["role"] for h in node0.hellos] == ["local"]
        assert node0.refused[-1] == "authentication failed (role agent)"
        assert "connection for job 4243" in node0.refused
    finally:
        node0.sock.close()


def test_agents_skip_another_jobs_listener():
    """Two jobs with the same id (two clusters) on one address, on the job's port range (nodes
    on other machines): the agent finds its own node 0 on the next port, because the first
    cannot prove the secret."""
    other = _Node0("their secret", 4300, channel.ports(4300))
    mine = _Node0("my secret", 4300, channel.ports(4300))
    try:
        assert mine.port > other.port
        conn, port = channel.find_node0(
            "127.0.0.1",
            4300,
            channel.role_key("my secret", "agent"),
            1,
            time.monotonic() + 5,
            lambda: False,
            lambda: channel.ports(4300),
        )
        assert port == mine.port and conn.recv()[0] == {"t": "setup"}
        conn.close()
    finally:
        other.sock.close()
        mine.sock.close()


# -- spec and identity -------------------------------------------------------------------


def _spec(**kw):
    base = {
        "version": 1,
        "job_id": 10,
        "job_name": "j",
        "partition": "p",
        "cluster_name": "c",
        "user": "u",
        "uid": 1,
        "gid": 1,
        "submit_dir": "/",
        "submit_host": "h",
        "script": "#!/bin/sh\n",
        "num_nodes": 2,
        "tasks_per_node": [1, 1],
        "cpus_per_node": [1, 1],
        "output": "o",
    }
    base.update(kw)
    for key, value in spec.DEFAULTS.items():
        base.setdefault(key, value)
    return base


def test_identity_from_skypilot_variables():
    array = {"job_id": 31, "ranges": "1-7:2", "count": 4, "throttle": 2}
    job = spec.Job(
        _spec(array=array),
        {
            "SKYPILOT_NODE_RANK": "1",
            "SKYPILOT_JOB_RANK": "2",
            "SKYPILOT_NODE_IPS": "10.0.0.5\n10.0.0.6\n",
        },
    )
    assert (job.rank, job.ips, job.name) == (1, ["10.0.0.5", "10.0.0.6"], "10.0.0.6")
    assert (job.job_id, job.array_job_id, job.array_task_id) == (34, 31, 5)
    last = spec.Job(_spec(array=array), {"SKYPILOT_JOB_RANK": "3", "SKYPILOT_NODE_IPS": "a\nb"})
    assert (last.job_id, last.array_task_id) == (31, 7)  # the last element: the array's id
    # an element the agent names (the local executor: split off in any order)
    named = dict(array, task_id=3, task_job_id=40)
    assert spec.Job(_spec(array=named), {"SKYPILOT_NODE_IPS": "a\nb"}).job_id == 40
    with pytest.raises(spec.SpecError):
        spec.Job(_spec(), {"SKYPILOT_NODE_IPS": "10.0.0.5"})


def test_node_names_must_resolve_to_their_nodes():
    environ = {"SKYPILOT_NODE_IPS": "127.0.0.1\n127.0.0.2"}
    job = spec.Job(_spec(node_names=["localhost", "127.0.0.2"]), environ)
    assert spec.settle_names(job) == ["localhost", "127.0.0.2"]
    job = spec.Job(_spec(node_names=["node1", "node2.invalid"]), environ)
    assert spec.settle_names(job) == ["127.0.0.1", "127.0.0.2"]


@pytest.mark.parametrize(
    "kw, skypilot, expected",
    [
        ({}, "0", None),
        ({"gres": "gpu:a100:2"}, "0", 2),
        ({"gpus": 3}, "0", 2),
        ({"gpus_per_task": 2}, "0", 2),
        ({"gpus": 1}, "4", 4),
        ({"gres": "gpu"}, "0", 1),
    ],
)
def test_gpus_on_node(kw, skypilot, expected):
    job = spec.Job(
        _spec(**kw), {"SKYPILOT_NODE_IPS": "a\nb", "SKYPILOT_NUM_GPUS_PER_NODE": skypilot}
    )
    assert job.gpus_on_node() == expected


@pytest.mark.parametrize(
    "ranges, step", [("1-7:2", 2), ("0-10:5,20", 5), ("5", 1), ("1,6-7,12", 1)]
)
def test_array_step_is_the_specs_not_the_compressed_ranges(ranges, step):
    """SLURM_ARRAY_TASK_STEP is the step the user's spec gave (plan/runtime_spec), never one
    read back from the stored ranges: 1,6,7,12 compresses to ranges whose first stride is 5."""
    array = {"job_id": 9, "ranges": ranges, "count": 4, "throttle": None, "step": step}
    job = spec.Job(_spec(array=array, num_nodes=1, tasks_per_node=[1], cpus_per_node=[1]), {})
    assert env._array_env(job)["SLURM_ARRAY_TASK_STEP"] == str(step)


# -- the exec trampoline -----------------------------------------------------------------


def _launch(cwd, *argv):
    return subprocess.run(
        procs.launch_argv("node1", 0o22, cwd, argv),
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_trampoline_reports_exec_failure_as_slurmstepd():
    done = _launch("/tmp", "no-such-command")
    assert (done.returncode, done.stderr) == (
        2,
        capture("srun-nonexistent-cmd.txt", "stderr").splitlines(True)[0],
    )


def test_trampoline_task_pid_umask_cwd_and_signals():
    done = _launch(
        "/nonexistent", "bash", "-c", "echo $SLURM_TASK_PID $$; umask; pwd; trap -p; yes | head -1"
    )
    task_pid, shell_pid, mask, cwd, *rest = done.stdout.split()
    assert task_pid == shell_pid and mask == "0022" and cwd == "/tmp" and rest == ["y"]
    assert done.stderr == (
        "slurmstepd-node1: error: couldn't chdir to `/nonexistent': No such "
        "file or directory: going to /tmp instead\n"
    )
    assert sys.executable in procs.launch_argv("n", 0, "/", ["x"])


# -- shipped alone -----------------------------------------------------------------------


def test_runtime_ships_alone_with_the_standard_library(tmp_path):
    """slurmsky/__init__.py + slurmsky/runtime/ in a directory of their own import under a
    python without site-packages (-I -S): nothing else of slurmsky, nothing third-party."""
    package = tmp_path / "slurmsky"
    shutil.copytree(
        ROOT / "slurmsky" / "runtime",
        package / "runtime",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "slurmsky" / "__init__.py", package / "__init__.py")
    modules = sorted(p.stem for p in (package / "runtime").glob("*.py"))
    code = (
        "import sys; sys.path.insert(0, %r)\n" % str(tmp_path)
        + "".join("import slurmsky.runtime.%s\n" % m for m in modules)
        + "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
        " - {'__main__', 'slurmsky'}))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


def test_only_groups_that_hold_a_process_of_the_job_are_signalled():
    """A task's process group id is free once its last process has gone, and a stranger's
    new group may get it: the runtime signals a group only while one of its own descendants
    (every process of the job, the runtime being their subreaper) is in it."""
    ours = subprocess.Popen(["sleep", "60"], start_new_session=True)
    # a stranger: its own group, whose leader exited at once, re-parented away from us
    out = subprocess.run(
        ["setsid", "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $$ $!"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    stranger_group, stranger = int(out[0]), int(out[1])
    try:
        assert os.getpgid(stranger) == stranger_group
        assert stranger not in procs.descendants(os.getpid())
        procs.kill_groups([ours.pid, stranger_group], 9)
        assert ours.wait(timeout=10) == -9
        time.sleep(0.2)
        assert _running(stranger)  # not ours to signal
        procs.signal_trees([], 15, [stranger_group])
        time.sleep(0.2)
        assert _running(stranger)
    finally:
        os.kill(stranger, 9)
        if ours.poll() is None:
            ours.kill()
            ours.wait()


def _running(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
