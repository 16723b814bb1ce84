"""salloc on the sky backend without a cloud: the cluster's launch task and each step's task
against SkyPilot's own schema, the allocation's environment against real salloc's, a step's
run command on a "node" here (the runtime's srun with its step id, output onto a terminal),
the SDK calls against SkyPilot's signatures, and the agent's side of an allocation
(launch, up, relinquish, scancel, failed launch, time limit, a restarted agent) with the
SkyPilot calls standing in."""

from __future__ import annotations

import inspect
import io
import json
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest
from captures import read_capture
from test_sky_units import run_on_node

from slurmsky.backends.sky import steps
from slurmsky.backends.sky.client import SkyClient
from slurmsky.backends.sky.clusters import Clusters, allocation_env, cluster_name, launch_task
from slurmsky.backends.sky.task import translate
from slurmsky.commands.salloc import _allocation_vars
from slurmsky.config import Config
from slurmsky.parse.request import build_step_request, parse_command_line

ROOT = Path(__file__).resolve().parent.parent
sky = pytest.importorskip("sky")
CFG = Config(path="x", backend="sky", partitions={"debug": {"default": True, "infra": "slurm"}})
REF = {"cluster": "slurmsky-7-abc", "nodes": ["node1", "node2"], "ips": ["10.0.0.1", "10.0.0.2"]}


def _salloc(tmp_path: Path, *argv: str):
    return build_step_request(
        "salloc",
        parse_command_line("salloc", list(argv)),
        {"HOME": "/home/u", "AWS_SECRET_ACCESS_KEY": "x", "KEEP": "1"},
        str(tmp_path),
    )


def test_cluster_and_step_tasks_pass_skypilots_validation(tmp_path):
    """The launch has the stored task's resources, workdir and runtime mount but no run,
    secret or metadata; a step runs on every node with a fresh secret, its own step id and
    the nodes' names, the allocation's resources and no file mounts (they stay on the
    cluster)."""
    result = translate(_salloc(tmp_path, "-N", "2", "-n", "2", "-t", "10"), CFG, job_id=7)
    task = dict(result.task, resources=dict(result.task["resources"], job_recovery={}))
    launch = launch_task(task)
    assert set(launch) == {"name", "workdir", "num_nodes", "resources", "envs", "file_mounts"}
    assert (
        "job_recovery" not in launch["resources"] and "AWS_SECRET_ACCESS_KEY" not in launch["envs"]
    )
    assert sky.Task.from_yaml_config(json.loads(json.dumps(launch))).run is None
    step = steps.step_task(task, result.spec, REF, ["-l", "hostname"], 3, now=1030.0, start=1000.0)
    assert set(step) == {"name", "workdir", "envs", "resources", "num_nodes", "secrets", "run"}
    parsed = sky.Task.from_yaml_config(json.loads(json.dumps(step)))
    assert (parsed.num_nodes, parsed.name) == (2, "interactive-step3")
    assert steps.SECRET_VAR not in parsed.envs and parsed.secrets[steps.SECRET_VAR]
    node = json.loads(step["run"].split("<<'SLURMSKY_SPEC_EOF'\n")[1].split("\n")[0])
    assert (node["first_step"], node["script"], node["script_args"]) == (
        3,
        steps.STEP_SCRIPT,
        ["-l", "hostname"],
    )
    assert (node["node_names"], node["time_limit"], node["job_id"]) == (["node1", "node2"], 570, 7)
    assert node["files_home"]["left"] == (  # a file past the cap: the cluster stays till then
        "left on the node until salloc ends; fetch it from here with: "
        "rsync -Pavz slurmsky-7-abc{worker}:sky_workdir/{path} {path}"
    )
    assert cluster_name(7, "0123456789abcdef") == "slurmsky-7-01234567"


def test_the_allocation_environment_is_real_sallocs(tmp_path):
    """`salloc -N2 -n2`'s SLURM_* variables are those of real Slurm 22.05's capture (less
    the site's: SLURM_CONF, the account and QOS its accounting set)."""
    capture = read_capture("salloc-env.txt").stdout
    real = {line.split("=")[0] for line in capture.splitlines() if "=" in line} - {
        "SLURM_CONF",
        "SLURM_JOB_ACCOUNT",
        "SLURM_JOB_QOS",
    }
    req = _salloc(tmp_path, "-N2", "-n2", "bash")
    spec = translate(req, CFG, job_id=42).spec
    env = _allocation_vars(allocation_env(spec, REF))
    assert set(env) == real
    assert (env["SLURM_JOB_NODELIST"], env["SLURM_TASKS_PER_NODE"]) == ("node[1-2]", "1(x2)")
    assert (env["SLURM_JOB_ID"], env["SLURM_JOB_NAME"], env["SLURM_NTASKS"]) == (
        "42",
        "interactive",
        "2",
    )


def test_a_step_runs_on_a_node_with_its_step_id(tmp_path):
    """A step's run, as SkyPilot's bash would run it on one node: the node's srun runs the
    command as step 4 of the allocation, its stdout and stderr reach the terminal apart and
    its exit code comes back, with the step's record for sacct."""
    spec = translate(_salloc(tmp_path, "bash"), CFG, job_id=9).spec
    task = {"name": "interactive", "num_nodes": 1}
    ref = {"cluster": "c", "nodes": ["127.0.0.1"], "ips": ["127.0.0.1"]}
    cmd = ["bash", "-c", "echo id=$SLURM_JOB_ID.$SLURM_STEP_ID; echo oops >&2; exit 5"]
    step = steps.step_task(task, spec, ref, cmd, 4, now=0.0, start=0.0)
    run = run_on_node(
        tmp_path, step["run"], SKYPILOT_TASK_ID="sky-2026_c_3", **{steps.SECRET_VAR: "s"}
    )
    assert run.returncode == 5, run.stderr
    out, err = io.BytesIO(), io.BytesIO()
    home = tmp_path / "home"  # the allocation's directory: the step wrote no file to send
    terminal = steps.Terminal(SimpleNamespace(job_id=9, stdout="", stderr="", workdir=str(home)))
    terminal.sinks = {"o": out, "e": err}
    for chunk in (run.stdout[:50], run.stdout[50:], run.stdout):  # a second read: nothing twice
        terminal.write(chunk)
    terminal.write("\n")
    assert out.getvalue() == b"id=9.4\n"
    assert err.getvalue() == b"oops\nsrun: error: 127.0.0.1: task 0: Exited with exit code 5\n"
    assert steps.exit_code(terminal.result) == 5
    (record,) = [s for s in terminal.result["steps"] if s["id"] == 4]
    assert (record["name"], record["exit_code"]) == ("bash", 5)
    # the next step, in the same workdir on the cluster, shows its own output only
    step = steps.step_task(task, spec, ref, ["echo", "next"], 5, now=0.0, start=0.0)
    run = run_on_node(tmp_path, step["run"], SKYPILOT_TASK_ID="sky-2026_c_4")
    terminal.sinks, terminal.written, terminal.result = {"o": out, "e": err}, {"o": 0, "e": 0}, None
    out.seek(0), out.truncate(), err.seek(0), err.truncate()
    terminal.write(run.stdout + "\n")
    assert (out.getvalue(), err.getvalue(), steps.exit_code(terminal.result)) == (b"next\n", b"", 0)


def test_the_cluster_handle_has_what_launch_cluster_reads():
    """(SkyClient's cluster calls are held to SkyPilot's signatures in test_sky_client.py.)"""
    from sky.backends.cloud_vm_ray_backend import CloudVmRayResourceHandle

    assert "cached_internal_ips" in vars(CloudVmRayResourceHandle)  # what it reads
    assert "cluster_info" in inspect.signature(CloudVmRayResourceHandle.__init__).parameters


class Calls:
    """The SkyClient calls Clusters makes, by name, each a Future the test completes."""

    def __init__(self):
        self.made: list[tuple[str, tuple, Future]] = []

    def __call__(self, fn, *args, pool=None) -> Future:
        future: Future = Future()
        self.made.append((fn.__name__, args, future))
        return future

    def last(self, name: str) -> tuple[tuple, Future]:
        args, future = next((a, f) for n, a, f in reversed(self.made) if n == name)
        return args, future


@pytest.fixture
def agent(tmp_path, monkeypatch):
    """A state directory with the sky backend, salloc's job stored (no agent starts) and
    the allocation's Clusters with stand-in SkyPilot calls."""
    from slurmsky.backends.sky import SkyBackend
    from slurmsky.core import daemon, state, submit

    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(SkyBackend, "unreachable", lambda self: None)
    monkeypatch.setattr(daemon, "wake", lambda: False)
    conn = state.connect()
    calls = Calls()
    clusters = Clusters(SkyClient(), conn, "inst", calls, _where(conn))

    def store(*argv: str) -> int:
        req = _salloc(tmp_path, *argv)
        job_id = submit.store(req, CFG, batch=False)
        task = state.get_spec(conn, job_id)[1]
        ref = clusters.launch(state.get_job(conn, job_id), task)
        state.update_job(
            conn, job_id, state="CONFIGURING", start_time=1000.0, executor_ref=ref, reason="None"
        )
        return job_id

    def sync(now: float = 1001.0) -> list[float]:
        wake: list[float] = []
        clusters.sync(now, wake)
        return wake

    return SimpleNamespace(conn=conn, calls=calls, clusters=clusters, store=store, sync=sync)


def _where(conn):
    """The executor's choice of an allocation's server: the one recorded with its task."""
    from slurmsky.backends.sky import server
    from slurmsky.core import state

    return lambda job: server.of_task(state.get_spec(conn, job.submission)[1])


def _job(agent, job_id):
    from slurmsky.core import state

    return state.get_job(agent.conn, job_id)


def test_an_allocation_runs_once_its_cluster_is_up_and_ends_as_salloc_says(agent):
    from slurmsky.core.allocation import Allocation

    job_id = agent.store("-N2", "bash")
    (_at, task, name, _requested), launched = agent.calls.last("launch_cluster")
    assert name == f"slurmsky-{job_id}-inst" and "run" not in task
    agent.sync()
    assert _job(agent, job_id).state == "CONFIGURING"
    launched.set_result((["node1", "node2"], ["10.0.0.1", "10.0.0.2"]))
    agent.sync()
    job = _job(agent, job_id)
    assert (job.state, job.nodelist, job.batch_host) == ("RUNNING", "node[1-2]", "node1")
    assert steps.next_step(agent.conn, job_id) == 0 and steps.next_step(agent.conn, job_id) == 1
    steps._record(agent.conn, job_id, 0, ["hostname"], {"steps": [{"id": 0, "name": "x"}]}, 0.0)
    with Allocation("salloc") as alloc:
        alloc.job_id = job_id
        alloc.relinquish(3, wait=0)
    agent.sync()
    (_at, down_name), down = agent.calls.last("down")
    assert down_name == name and _job(agent, job_id).state == "COMPLETING"
    down.set_result(None)
    agent.sync()
    job = _job(agent, job_id)
    assert (job.state, job.exit_code, job.reason) == ("FAILED", 3, "NonZeroExitCode")
    assert job.result["steps"] == [{"id": 0, "name": "x"}]


def test_scancel_during_the_launch_stops_it_then_takes_the_cluster_down(agent):
    from slurmsky.core import jobcontrol

    job_id = agent.store("bash")
    _, launched = agent.calls.last("launch_cluster")
    agent.clusters.requests[job_id] = "req-1"
    jobcontrol.cancel(agent.conn, [_job(agent, job_id)])
    agent.sync()
    agent.sync()
    assert [n for n, _, _ in agent.calls.made] == ["launch_cluster", "cancel_request"]
    assert agent.calls.last("cancel_request")[0][1:] == ("req-1",)
    launched.set_exception(RuntimeError("cancelled"))
    agent.sync()
    agent.sync()
    _, down = agent.calls.last("down")
    down.set_exception(RuntimeError("try again"))
    agent.sync(1002.0)
    assert agent.sync(1003.0) == [1062.0]  # a failed down is tried again a minute later
    agent.sync(1062.0)
    _, down = agent.calls.last("down")
    down.set_result(None)
    agent.sync(1063.0)
    job = _job(agent, job_id)
    assert (job.state, job.exit_code) == ("CANCELLED", 0)


def test_a_failed_launch_fails_the_allocation_after_its_down(agent):
    job_id = agent.store("bash")
    _, launched = agent.calls.last("launch_cluster")
    launched.set_exception(RuntimeError("\x1b[31mResourcesUnavailableError\x1b[0m: no nodes"))
    agent.sync()
    agent.sync()
    agent.calls.last("down")[1].set_result(None)
    agent.sync()
    job = _job(agent, job_id)
    assert (job.state, job.exit_code) == ("FAILED", 1)
    assert job.reason == "JobLaunchFailure: ResourcesUnavailableError: no nodes"


def test_time_limit_and_a_restarted_agent(agent):
    from slurmsky.core import state

    job_id = agent.store("-t", "2", "bash")
    agent.calls.last("launch_cluster")[1].set_result((["n1"], ["10.0.0.1"]))
    agent.sync()
    limit = 1000.0 + 2 * state.seconds_per_minute()
    assert agent.sync(1010.0) == [limit]
    # a new agent: the cluster is up, nothing to launch again; the limit still holds
    fresh = Clusters(SkyClient(), agent.conn, "inst", agent.calls, _where(agent.conn))
    fresh.sync(limit + 1, [])
    fresh.sync(limit + 2, [])
    assert _job(agent, job_id).state == "COMPLETING"
    fresh.downs[job_id].set_result(None)
    fresh.sync(limit + 3, [])
    assert (_job(agent, job_id).state, _job(agent, job_id).reason) == ("TIMEOUT", "TimeLimit")
    # one whose launch an agent that died never saw end is launched again
    other = agent.store("bash")
    again = Clusters(SkyClient(), agent.conn, "inst", agent.calls, _where(agent.conn))
    again.sync(1001.0, [])
    assert agent.calls.last("launch_cluster")[0][2] == f"slurmsky-{other}-inst"


def test_each_steps_files_come_home_into_the_allocations_directory(
    agent, tmp_path, monkeypatch, capfd
):
    """srun in salloc, through run_step with the cluster's `exec` and `tail_logs` run here
    (the step's `run` on a "node" whose workdir stays between steps, as a cluster's): each
    step sends what it created or changed since it started, into salloc's directory; a
    file that cannot be written here (a directory holds its name) is named in the
    allocation's Comment, by step."""
    import threading

    from slurmsky.backends.sky import client
    from slurmsky.core import state

    job_id = agent.store("bash")
    agent.calls.last("launch_cluster")[1].set_result((["127.0.0.1"], ["127.0.0.1"]))
    agent.sync()
    logs: list[str] = []

    def run(where, body, cluster):
        proc = run_on_node(
            tmp_path, body["run"], SKYPILOT_TASK_ID=f"sky-c-{len(logs)}", **body["secrets"]
        )
        logs.append(proc.stdout)
        return len(logs)

    monkeypatch.setattr(
        client,
        "CLIENT",
        SimpleNamespace(exec=run, tail_cluster=lambda w, c, n, out: out.write(logs[n - 1])),
    )
    (tmp_path / "blocked").mkdir()
    capfd.readouterr()  # salloc's own warnings
    write = "mkdir -p out; echo one > out/a.txt; echo x > blocked"

    def step(*command: str) -> int:  # no signal handlers in the test's process
        job = _job(agent, job_id)
        return steps.run_step(agent.conn, job, [], list(command), lambda *a: threading.Event())

    assert step("bash", "-c", write) == 0
    assert step("bash", "-c", "echo two > b") == 0
    assert (tmp_path / "out" / "a.txt").read_text() == "one\n"
    assert (tmp_path / "b").read_text() == "two\n"
    assert [line.split(" ")[2] for line in logs[1].splitlines() if "SLURMSKY-FILE" in line] == [
        "b",
        "c",
        "e",
    ]  # the second step sends its own file only
    assert capfd.readouterr().err == ""  # the node said nothing of files
    job = state.get_job(agent.conn, job_id)
    assert job.result["files_home"] == (
        "files home: step 0: blocked: not written here: Is a directory"
    )
    assert [s["id"] for s in job.result["steps"]] == [0, 1]
