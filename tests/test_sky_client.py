"""SkyClient is the sky backend's one boundary with SkyPilot: its calls must fit SkyPilot
0.14's real SDK, and the fake every sky test drives the executor through (fake_sky.py) must
be the same shape as SkyClient.

Each SkyClient method runs here with SkyPilot's SDK functions replaced by autospecs of the
real ones (`mock.create_autospec`: a call whose arguments the real signature would not take
raises TypeError) and `sky.get` answering as the server would; the test then checks what
was asked.
"""

from __future__ import annotations

import inspect
import io
from types import SimpleNamespace
from unittest import mock

import pytest
from fake_sky import FakeSkyClient

from slurmsky.backends.sky.client import ABSENT, SkyClient
from slurmsky.backends.sky.server import Server

sky = pytest.importorskip("sky")

TASK = {"name": "t", "run": "true", "_metadata": {"slurmsky": {"pool": None}}}
HERE = Server("http://127.0.0.1:47001")


def _public(cls) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_fake_has_every_method_of_the_client_with_its_signature():
    client, fake = _public(SkyClient), _public(FakeSkyClient)
    assert set(client) <= set(fake)
    for name, signature in client.items():
        assert fake[name] == signature, name
    assert all(getattr(FakeSkyClient, name) is not getattr(SkyClient, name) for name in client)


@pytest.fixture
def sdk(monkeypatch):
    """SkyPilot's SDK functions as autospecs of the real ones; `sdk.get.return_value` is
    what the server answers."""
    from sky.client import sdk as client_sdk

    spec = SimpleNamespace()
    for owner, names in (
        (sky.jobs, ["launch", "queue_v2", "cancel", "tail_logs", "pool_status", "pool_apply"]),
        (sky.jobs, ["pool_down"]),
        (sky, ["launch", "api_cancel", "down", "exec", "tail_logs", "cancel", "stream_and_get"]),
        (client_sdk, ["enabled_clouds"]),
    ):
        for name in names:
            fake = mock.create_autospec(getattr(owner, name), return_value="request-id")
            monkeypatch.setattr(owner, name, fake)
            setattr(spec, f"{getattr(owner, '__name__', '')}.{name}", fake)
    spec.get = mock.MagicMock(name="sky.get")
    monkeypatch.setattr(sky, "get", spec.get)
    monkeypatch.setattr(SkyClient, "check_server", lambda self, where=None: None)
    return spec


def _called(spec, name: str) -> mock.MagicMock:
    return next(v for k, v in vars(spec).items() if k.endswith(name))


def test_managed_job_calls_fit_skypilots_signatures(sdk):
    client = SkyClient()
    sdk.get.return_value = ([7, 8], None)
    requests: list[str] = []
    assert client.launch(HERE, TASK, 2, requests.append) == [7, 8]
    assert requests == ["request-id"]  # before its wait: the server has it
    launch = _called(sdk, "jobs.launch")
    assert launch.call_args.kwargs == {"name": "t", "pool": None, "num_jobs": 2}

    status = SimpleNamespace(value="RUNNING")
    sdk.get.return_value = ([{"job_id": 7, "task_id": 0, "status": status}], 1, {}, 1)
    records, _user = client.queue(HERE, 100.0, [9])
    assert [r["job_id"] for r in records] == [7, 7]  # the by-id answer is not deduplicated
    queue = _called(sdk, "jobs.queue_v2")
    asked = [c.kwargs for c in queue.call_args_list]
    # one query of every job submitted since, then the missing watched ones by id
    assert [a.get("submitted_after") for a in asked] == [100.0, None]
    assert "skip_finished" not in asked[0] and asked[1]["job_ids"] == [9]
    queue.reset_mock()
    client.queue(HERE, 100.0, [7], active=True)
    asked = [c.kwargs for c in queue.call_args_list]
    # with the active ones: two at once (either may be asked first), none missing
    assert sorted(str(a.get("skip_finished")) for a in asked) == ["None", "True"]
    assert next(a for a in asked if "submitted_after" in a)["submitted_after"] == 100.0

    assert client.cancel(HERE, 7) == "SkyPilot job 7: "
    assert _called(sdk, "jobs.cancel").call_args.kwargs == {"job_ids": [7]}

    out = io.StringIO()
    assert client.tail(HERE, 7, True, out) is out and out.getvalue() == "\n"
    assert _called(sdk, "jobs.tail_logs").call_args.kwargs["job_id"] == 7
    client.tail(HERE, 7, False, out, 0)  # a job group's task 0
    assert _called(sdk, "jobs.tail_logs").call_args.kwargs["task"] == 0


def test_a_managed_jobs_run_log_is_read_from_its_cluster_by_skypilots_name_for_it(sdk):
    """tail_run follows the latest job of the cluster SkyPilot names for managed job 7 of
    task `lane`; no cluster there is ABSENT, one not up or running nothing yet None."""
    from sky import exceptions

    client, tail = SkyClient(), getattr(sdk, "sky.tail_logs")
    tail.return_value = 0
    out = io.StringIO()
    assert client.tail_run(HERE, 7, "lane", out) == 0 and out.getvalue() == "\n"
    assert tail.call_args.args == ("lane-7", None)
    assert tail.call_args.kwargs == {"follow": True, "output_stream": out}
    tail.return_value = exceptions.JobExitCode.FAILED
    assert client.tail_run(HERE, 7, "lane", out) == 100
    tail.return_value = exceptions.JobExitCode.NOT_FOUND  # up, its job not submitted yet
    assert client.tail_run(HERE, 7, "lane", out) is None
    tail.side_effect = exceptions.ClusterNotUpError("INIT", cluster_status=None)
    assert client.tail_run(HERE, 7, "lane", out) is None
    tail.side_effect = exceptions.ClusterDoesNotExist("lane-7")
    assert client.tail_run(HERE, 7, "lane", out) == ABSENT
    assert out.getvalue() == "\n\n"


def test_a_job_group_launches_as_one_dag_skypilots_loader_made(sdk):
    """A heterogeneous job's stored job group (task.group_tasks) goes to sky.jobs.launch as
    the Dag SkyPilot's own loader makes of its YAML: a job group of its tasks."""
    group = {
        "name": "het",
        "execution": "parallel",
        "primary_tasks": ["het-0"],
        "_metadata": {"slurmsky": {"job_id": 3}},
        "job_group": [
            dict(TASK, name=f"het-{n}", num_nodes=n + 1, secrets={"S": "x"}) for n in range(2)
        ],
    }
    sdk.get.return_value = ([4], None)
    assert SkyClient().launch(HERE, group, None, lambda request: None) == [4]
    launch = _called(sdk, "jobs.launch")
    assert launch.call_args.kwargs == {"name": "het", "pool": None, "num_jobs": None}
    (dag,) = launch.call_args.args
    assert dag.is_job_group() and dag.name == "het" and dag.primary_tasks == ["het-0"]
    assert [(t.name, t.num_nodes) for t in dag.tasks] == [("het-0", 1), ("het-1", 2)]


def test_pool_cluster_and_step_calls_fit_skypilots_signatures(sdk):
    client = SkyClient()
    sdk.get.return_value = [{"name": "p"}]
    assert client.pool_status(HERE, ["p"]) == [{"name": "p"}]
    client.pool_apply(HERE, {"pool": {"workers": 1}, "resources": {"cpus": 1}}, "p")
    assert client.pool_down(HERE, "p") == ""

    handle = SimpleNamespace(
        cached_internal_ips=["10.0.0.1"],
        cached_external_ips=None,
        cached_cluster_info=SimpleNamespace(get_node_names=lambda: ["n0"]),
    )
    sdk.get.return_value = (1, handle)
    requests: list[str] = []
    launched = client.launch_cluster(HERE, {"run": None}, "c", requests.append)
    assert launched == (["n0"], ["10.0.0.1"]) and requests == ["request-id"]
    client.cancel_request(HERE, "request-id")
    client.down(HERE, "c")
    sdk.get.return_value = (3, None)
    assert client.exec(HERE, {"run": "true"}, "c") == 3
    client.tail_cluster(HERE, "c", 3, io.StringIO())
    client.cancel_cluster_job(HERE, "c", 3)
    sdk.get.return_value = ["Slurm"]
    assert client.enabled_clouds() == ["Slurm"]


def test_each_thread_calls_the_server_its_job_named_and_launches_load_its_config(tmp_path):
    """SkyPilot resolves its endpoint at each request (server_common.get_server_url, an
    lru_cache over the environment and config): inside `_at`, each thread's lookups answer
    its own server, at the same time as other threads' answer theirs; outside, SkyPilot's
    own settings hold. A launch loads its job's SkyPilot config file for its request."""
    import threading

    from sky import skypilot_config
    from sky.server import common

    from slurmsky.backends.sky import client as skyclient

    skyclient.sdk()
    before = common.get_server_url()
    servers = [Server(f"http://user:pw@127.0.0.1:{47010 + k}") for k in range(4)]
    inside = threading.Barrier(len(servers))
    seen: dict[str, tuple[str, bool]] = {}

    def call(where: Server) -> None:
        with skyclient._at(where):
            inside.wait(10)  # every thread inside its block at once
            seen[where.url] = (common.get_server_url(), common.is_api_server_local())

    threads = [threading.Thread(target=call, args=(where,)) for where in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {w.url: (w.url, False) for w in servers}
    assert common.get_server_url() == before
    assert servers[0].name == "http://127.0.0.1:47010"  # what reasons and refs name

    config = tmp_path / "team.yaml"
    config.write_text("jobs:\n  bucket: s3://team-bucket\n")
    with skyclient._config(Server(HERE.url, str(config))):
        assert skypilot_config.get_nested(("jobs", "bucket"), None) == "s3://team-bucket"
    with skyclient._config(HERE):
        assert skypilot_config.get_nested(("jobs", "bucket"), None) is None


def test_a_launch_loads_the_project_config_its_command_had_wherever_it_runs(tmp_path, monkeypatch):
    """The job's .sky.yaml (recorded by absolute path) overlays its user config, from any
    directory; a job that had none never gets the agent's directory's .sky.yaml."""
    from sky import skypilot_config

    from slurmsky.backends.sky import client as skyclient

    user = tmp_path / "user.yaml"
    user.write_text("jobs:\n  bucket: s3://user\nallowed_clouds: [aws]\n")
    project = tmp_path / "proj" / ".sky.yaml"
    project.parent.mkdir()
    project.write_text("jobs:\n  bucket: s3://project\n")
    elsewhere = tmp_path / "agent"
    elsewhere.mkdir()
    (elsewhere / ".sky.yaml").write_text("jobs:\n  bucket: s3://agent-dir\n")
    monkeypatch.chdir(elsewhere)
    with skyclient._config(Server(HERE.url, str(user), str(project))):
        assert skypilot_config.get_nested(("jobs", "bucket"), None) == "s3://project"
        assert skypilot_config.get_nested(("allowed_clouds",), None) == ["aws"]
    with skyclient._config(Server(HERE.url, str(user))):
        assert skypilot_config.get_nested(("jobs", "bucket"), None) == "s3://user"
    with skyclient._config(HERE):
        assert skypilot_config.get_nested(("jobs", "bucket"), None) is None


def test_a_real_sdk_call_goes_to_the_threads_server_health_check_included():
    """SkyPilot's health check before each call asks get_server_url(host="127.0.0.1"): the
    thread's server must win there too, as $SKYPILOT_API_SERVER_ENDPOINT does. Nothing
    listens on these ports: each thread's call fails naming its own server."""
    import threading

    from slurmsky.backends.sky import client as skyclient

    ports = (47311, 47312)
    said: dict[int, str] = {}

    def call(port: int) -> None:
        with skyclient._at(Server(f"http://127.0.0.1:{port}")):
            try:
                sky.jobs.queue_v2(refresh=False)
            except sky.exceptions.ApiServerConnectionError as exc:
                said[port] = str(exc)

    threads = [threading.Thread(target=call, args=(port,)) for port in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(said) == list(ports)
    for port in ports:
        assert f"SkyPilot API server at http://127.0.0.1:{port}." in said[port]


def test_the_health_check_of_a_server_with_credentials_in_its_url_reaches_it():
    """A team server's URL may carry basic-auth credentials (SkyPilot's own client sends
    them); the health check asks the same host and port without them (an answer behind
    auth still says it is there)."""
    import http.server
    import threading

    from slurmsky.backends.sky.client import Unreachable

    class Auth(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Auth)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        SkyClient().check_server(Server(f"http://user:pw@127.0.0.1:{port}"))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
    with pytest.raises(
        Unreachable, match=f"^SkyPilotApiServerUnreachable:http://127.0.0.1:{port}$"
    ):
        SkyClient().check_server(Server(f"http://user:pw@127.0.0.1:{port}"))
