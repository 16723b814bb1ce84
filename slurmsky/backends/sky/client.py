"""SkyClient: the only code that calls SkyPilot's SDK.

Everything else in backends/sky talks to SkyPilot through one `SkyClient` (the executor, its
launcher, queue watcher, log readers and salloc's clusters get it as a parameter; srun's
steps, the pool commands and doctor use `CLIENT`), so tests swap it for one shared fake
(tests/fake_sky.py, checked against this class and SkyPilot's real signatures).

SkyPilot (~2.3 s to import) is imported inside each method: only the agent, srun in an
allocation and the `slurmsky` tool's SkyPilot subcommands pay for it. Each call returns plain
values (ids, dicts, text); what SkyPilot raises passes through, but for an API server that
does not answer, which is `Unreachable` naming its endpoint (the pending reason).

Several servers. A managed job goes to the server its sbatch named (server.Server, recorded
with the job), so the managed-job calls take the server they go to. SkyPilot resolves its
endpoint in `server_common.get_server_url()` (an lru_cache over $SKYPILOT_API_SERVER_ENDPOINT
and the config's `api_server.endpoint`), looked up at each request; `_at(server)` makes that
lookup answer the server of the calling thread (a thread-local; SkyPilot's own threads in a
call, the upload's chunks, are handed the endpoint explicitly), so calls to different servers
run at once. SkyPilot's config is process-wide state (skypilot_config's global context, sent
with each request): a request that takes a task (a launch, a cluster's launch, a step's
exec, a pool's apply) is made under the config files its command had (the user's and the
project's .sky.yaml, `_config`), and requests under different files take turns; the other
calls do not depend on the client's config. salloc's clusters and their steps go to the
allocation's server, a pool's calls to the server it was made on (pools.py).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slurmsky.backends.sky import server
from slurmsky.backends.sky.server import Server
from slurmsky.backends.sky.sync import clean

ABSENT = -1  # tail_run: the job's cluster is not on that server

# What the queue watcher asks SkyPilot's managed-job queue for (sync.py reads these).
QUEUE_FIELDS = [
    "job_id",
    "task_id",
    "job_name",
    "status",
    "submitted_at",
    "start_at",
    "end_at",
    "failure_reason",
    "metadata",
    "user_name",
    "user_hash",
    "resources",
    "node_names",
    "cloud",
    "region",
    "zone",
    "recovery_count",
    "cluster_resources_full",  # the instance launched (price.py), while its cluster is up
]


class Unreachable(Exception):
    """The API server did not answer; str() is the pending reason, naming its endpoint."""


def skypilot_missing() -> str | None:
    """What is wrong when this Python cannot import SkyPilot (a bare `pip install slurmsky`
    leaves it out): the extras that bring it."""
    import importlib.util

    try:
        if importlib.util.find_spec("sky") is not None:
            return None
    except (ImportError, ValueError):
        pass
    return (
        f"the sky backend needs SkyPilot, which {sys.executable} cannot import (pip install "
        "'slurmsky[aws]', or the extra of your infra: [gcp], [azure], [kubernetes], [slurm], "
        "[ssh], ... or [sky] for SkyPilot alone)"
    )


def connection_error(exc: Exception) -> bool:
    """SkyPilot's ways of saying it could not talk to the server (its health check failing
    ends in the "starting a local API server is disabled" RuntimeError)."""
    import requests

    sky = sdk()
    return isinstance(
        exc, (sky.exceptions.ApiServerConnectionError, requests.ConnectionError, requests.Timeout)
    ) or (isinstance(exc, RuntimeError) and "SKYPILOT_DISABLE_LOCAL_API_SERVER" in str(exc))


def sdk():
    """SkyPilot's SDK, imported (seconds: never on squeue's or sbatch's path)."""
    os.environ.setdefault("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")  # never auto-start one
    try:
        import sky
    except ImportError as exc:
        from slurmsky.errors import SlurmError

        raise SlurmError(skypilot_missing() or str(exc)) from None

    _route(sky)
    return sky


def _resources(sky, resources: dict) -> list:
    """SkyPilot's Resources of a task's resources (a set or list of accelerators: each)."""
    return list(sky.Resources.from_yaml_config(copy.deepcopy(resources))) or [sky.Resources()]


# SkyPilot's catalogs (files here, no server): price.py's
def cloud_of(resources: dict) -> str | None:
    """The cloud that resources name, as SkyPilot writes it (None: any)."""
    cloud = _resources(sdk(), resources)[0].cloud
    return None if cloud is None else str(cloud)


def catalog_path(cloud: str) -> str:
    """Where SkyPilot keeps `cloud`'s catalog of instances."""
    sdk()
    from sky.catalog import common

    return common.get_catalog_path(f"{cloud.lower()}/vms.csv")


def cheapest(resources: dict, nodes: int) -> dict | None:
    """The step of SkyPilot's optimizer for one cloud: the cheapest instance its catalog has
    for these resources, in the cheapest region offering it unless they name one: {instance,
    spot, region, node_rate} (None: none has them)."""
    sky = sdk()
    wanted = _resources(sky, resources)
    cloud = wanted[0].cloud
    launchable = [
        one
        for r in wanted
        for one in cloud.get_feasible_launchable_resources(r, num_nodes=nodes).resources_list
    ]
    if not launchable:
        return None
    best = min(launchable, key=lambda one: one.get_cost(3600))
    offered = cloud.regions_with_offering(
        best.instance_type, best.accelerators, best.use_spot, best.region, best.zone, best
    )
    region = best.region or next((r.name for r in offered), None)
    return {
        "instance": best.instance_type,
        "spot": bool(best.use_spot),
        "region": region,
        "node_rate": hourly_cost(str(cloud), best.instance_type, best.use_spot, region, best.zone),
    }


def hourly_cost(cloud: str, instance: str, spot: bool, region, zone) -> float:
    """The catalog's price an hour of one instance (the cheapest of its region's zones
    without a zone, of every region without a region); ValueError where it has none."""
    return sdk().catalog.get_hourly_cost(instance, spot, region, zone, clouds=cloud.lower())


_THREAD = threading.local()  # .url: the server this thread's SDK calls go to (None: SkyPilot's)
_GATE = threading.Condition()
_CONFIG: dict = {"path": (), "users": 0}  # the SkyPilot config loaded (() none yet), its calls


def _route(sky) -> None:
    """Make SkyPilot's endpoint lookups answer the calling thread's server (once)."""
    from sky.server import common

    with _GATE:
        if getattr(common.get_server_url, "slurmsky", False):
            return
        url_of, local = common.get_server_url, common.is_api_server_local

        def get_server_url(host: str | None = None) -> str:
            # as $SKYPILOT_API_SERVER_ENDPOINT does, the thread's server wins whatever `host`
            # (the health check before each call asks with host="127.0.0.1")
            url = getattr(_THREAD, "url", None)
            return url if url is not None else url_of(host)

        def is_api_server_local(endpoint: str | None = None) -> bool:
            return local(endpoint if endpoint is not None else get_server_url())

        for new, old in ((get_server_url, url_of), (is_api_server_local, local)):
            setattr(new, "cache_clear", old.cache_clear)  # SkyPilot calls it
            setattr(new, "slurmsky", True)
        common.get_server_url = get_server_url
        common.is_api_server_local = is_api_server_local


@contextlib.contextmanager
def _at(where: Server | None) -> Iterator[None]:
    """The SDK calls of this thread go to `where` (None: the server SkyPilot's own settings
    name) for the block."""
    sdk()
    before = getattr(_THREAD, "url", None)
    _THREAD.url = where.url if where else None
    try:
        yield
    finally:
        _THREAD.url = before


@contextlib.contextmanager
def _config(where: Server) -> Iterator[None]:
    """SkyPilot's config loaded as `where`'s command had it (its user and project files;
    none where it had none: os.devnull reads as an empty config) for the block; blocks
    under other files wait for this one's to end."""
    from sky import skypilot_config

    files = (where.config, where.project)
    with _GATE:
        while _CONFIG["users"] and _CONFIG["path"] != files:
            _GATE.wait()
        if _CONFIG["path"] != files:
            os.environ.pop(skypilot_config.ENV_VAR_SKYPILOT_CONFIG, None)
            for var, path in zip(
                (skypilot_config.ENV_VAR_GLOBAL_CONFIG, skypilot_config.ENV_VAR_PROJECT_CONFIG),
                files,
            ):
                os.environ[var] = path or os.devnull
            skypilot_config.reload_config()
            _CONFIG["path"] = files
        _CONFIG["users"] += 1
    try:
        yield
    finally:
        with _GATE:
            _CONFIG["users"] -= 1
            _GATE.notify_all()


@contextlib.contextmanager
def _on(where: Server) -> Iterator[None]:
    """This thread's SDK calls go to `where` under its config files (launches: the config
    travels with the request)."""
    with _at(where), _config(where):
        yield


class SkyClient:
    """SkyPilot's SDK as slurmsky uses it: managed jobs, their queue and logs, pools,
    salloc's clusters and the steps run in them."""

    # --- the API server ------------------------------------------------------------------

    def endpoint(self) -> str:
        """SkyPilot's API server URL here, without credentials (it names the server in
        reasons)."""
        sdk()
        from sky.server import common

        return server.without_credentials(common.get_server_url())

    def check_server(self, where: Server | None = None) -> None:
        """Raise Unreachable (naming the endpoint) unless the API server (`where`, else
        SkyPilot's) answers /api/health."""
        url = where.name if where else self.endpoint()  # urllib takes no credentials in URLs
        if server.health(url) is None:  # {} when it answered behind auth
            raise Unreachable(f"SkyPilotApiServerUnreachable:{url}")

    def _unreachable_instead(self, where: Server, exc: Exception) -> None:
        """After a failed call: raise Unreachable when the server went away meanwhile or did
        not answer for a while (the job pends and goes out again), not SkyPilot's side effect."""
        self.check_server(where)
        if connection_error(exc):
            raise Unreachable(f"SkyPilotApiServerUnreachable:{where.name}") from exc

    # --- managed jobs --------------------------------------------------------------------

    def launch(self, where: Server, task: dict, num_jobs: int | None, requested) -> list[int]:
        """`sky.jobs.launch` of a task config (its `_metadata.slurmsky.pool` names a pool),
        or of a job group (a heterogeneous job's: task.group_tasks; one managed job, read
        by SkyPilot's own loader of the multi-document YAML), on `where`, under its
        SkyPilot config: the new managed jobs' ids, in order. `requested(request_id)` is
        called once the server has the request (the workdir zipped and uploaded)."""
        from slurmsky.backends.sky.group import group_documents, group_tasks

        self.check_server(where)
        sky = sdk()
        try:
            with _on(where):
                if group_tasks(task):
                    from sky.utils import dag_utils, yaml_utils

                    text = yaml_utils.dump_yaml_str(group_documents(copy.deepcopy(task)))
                    entry: Any = dag_utils.load_job_group_from_yaml_str(text)
                else:
                    entry = sky.Task.from_yaml_config(copy.deepcopy(task))
                request = sky.jobs.launch(
                    entry,
                    name=task.get("name"),
                    pool=task["_metadata"]["slurmsky"].get("pool"),
                    num_jobs=num_jobs,
                )
                requested(request)
                ids, _handle = sky.get(request)  # the handle's repr raises in consolidation mode
        except Exception as exc:
            self._unreachable_instead(where, exc)
            raise
        assert ids is not None  # None only for a dry run
        return sorted(ids)

    def queue(
        self, where: Server, since: float | None, watched: list[int], active: bool = False
    ) -> tuple[list[dict], str | None]:
        """`where`'s jobs (all users) submitted from `since` on whatever their state (None:
        every job), its `active` ones beside (two queries at once), and the `watched` ones
        missing from those, by id; and this user's hash. Each query costs the server a
        Python process of its own: one is the rule."""
        self.check_server(where)
        sky = sdk()
        from sky.utils import common_utils

        def query(kw: dict) -> list[dict]:
            try:
                with _at(where):
                    records = sky.get(
                        sky.jobs.queue_v2(refresh=False, all_users=True, fields=QUEUE_FIELDS, **kw)
                    )[0]
            except sky.exceptions.ClusterNotUpError:  # no controller: no jobs
                return []
            return [
                dict({f: rec.get(f) for f in QUEUE_FIELDS}, status=rec["status"].value)
                for rec in records
            ]

        try:
            if since is None:
                records = query({"skip_finished": False})
            elif not active:
                records = query({"submitted_after": since})
            else:
                with ThreadPoolExecutor(2, thread_name_prefix="sky-queue") as both:
                    running, new = both.map(
                        query, [{"skip_finished": True}, {"submitted_after": since}]
                    )
                seen = {(r["job_id"], r["task_id"]) for r in running}
                records = running + [r for r in new if (r["job_id"], r["task_id"]) not in seen]
            missing = sorted(set(watched) - {r["job_id"] for r in records})
            if missing:
                records += query({"job_ids": missing})
        except Exception:
            self.check_server(where)  # the server went away meanwhile: say so
            raise
        return records, common_utils.get_user_hash()

    def cancel(self, where: Server, sky_id: int) -> str:
        """`sky.jobs.cancel` on `where` never raises for unknown or finished ids: its streamed
        text says."""
        sky = sdk()
        out = io.StringIO()
        with _at(where):
            sky.stream_and_get(sky.jobs.cancel(job_ids=[sky_id]), output_stream=out)
        return f"SkyPilot job {sky_id}: " + " ".join(clean(out.getvalue()).split())

    def tail(
        self, where: Server, sky_id: int, follow: bool, stream: Any, task: int | None = None
    ) -> Any:
        """A managed job's run log on `where` into `stream` (file-like: write, flush), then a
        newline; of a job group, its task `task`'s (None: every task's)."""
        sky = sdk()
        # SkyPilot annotates output_stream as io.TextIOBase; write and flush are all it uses
        with _at(where):
            sky.jobs.tail_logs(job_id=sky_id, follow=follow, output_stream=stream, task=task)
        stream.write("\n")
        return stream

    def tail_run(self, where: Server, sky_id: int, name: str, stream: Any) -> int | None:
        """A managed job's run log read straight from its cluster (SkyPilot's name for the
        cluster of job `sky_id` named `name`) into `stream`, followed until the run ends
        there, then a newline: SkyPilot's exit code of the read; ABSENT where the cluster is
        not this server's (not yet made, or a jobs controller's of its own), None while it
        is not up or runs nothing yet. SkyPilot's own stream of a managed job (`tail`) waits
        for the controller to say RUNNING, and then up to 15 s more."""
        sky = sdk()
        from sky.jobs.utils import generate_managed_job_cluster_name

        cluster = generate_managed_job_cluster_name(name, sky_id)
        try:
            with _at(where):
                code = sky.tail_logs(cluster, None, follow=True, output_stream=stream)
        except sky.exceptions.ClusterDoesNotExist:
            return ABSENT
        except sky.exceptions.ClusterNotUpError:
            return None
        if code == sky.exceptions.JobExitCode.NOT_FOUND:
            return None
        stream.write("\n")
        return code

    # --- pools ---------------------------------------------------------------------------

    def pool_status(self, where: Server, names: list[str]) -> list[dict]:
        """`where`'s records of these pools (none without a jobs controller)."""
        sky = sdk()
        try:
            with _at(where):
                return sky.get(sky.jobs.pool_status(names))
        except sky.exceptions.ClusterNotUpError:
            return []

    def pool_apply(self, where: Server, task: dict, name: str) -> None:
        """Create a pool on `where` from its task config, or apply it again (rolling)."""
        sky = sdk()
        from sky.serve import serve_utils

        # SkyPilot's table of the resources goes to stderr
        with contextlib.redirect_stdout(sys.stderr), _on(where):
            request = sky.jobs.pool_apply(
                sky.Task.from_yaml_config(task), name, mode=serve_utils.UpdateMode.ROLLING
            )
            sky.get(request)

    def pool_down(self, where: Server, name: str) -> str:
        """Ask `where` to take a pool down: what its request's log said (plain text)."""
        sky = sdk()
        said = io.StringIO()
        with contextlib.redirect_stdout(sys.stderr), _at(where):
            sky.stream_and_get(sky.jobs.pool_down(name), output_stream=said)
        return clean(said.getvalue())

    # --- clusters (salloc) and the steps run in them: on the allocation's server ----------

    def launch_cluster(
        self, where: Server, task: dict, name: str, requested
    ) -> tuple[list[str], list[str]]:
        """`sky.launch` a cluster on `where` until it is up (no capacity now is a wait, as a
        Slurm job waits for its nodes); `requested(request_id)` is called first (to cancel
        it). Its node names and IPs, head first."""
        sky = sdk()
        with _on(where):  # the request carries the config; its wait (minutes) needs none
            request = sky.launch(
                sky.Task.from_yaml_config(copy.deepcopy(task)),
                cluster_name=name,
                retry_until_up=True,
            )
        requested(request)
        handle: Any  # a CloudVmRayResourceHandle; its repr raises in consolidation mode
        with _at(where):
            _job, handle = sky.get(request)
        ips = [str(ip) for ip in (handle.cached_internal_ips or handle.cached_external_ips or [])]
        try:
            names = [str(n) for n in handle.cached_cluster_info.get_node_names()]
        except Exception:  # a handle without node names: the IPs name the nodes
            names = []
        if len(names) != len(ips):
            names = list(ips)
        return names, ips

    def cancel_request(self, where: Server, request: str) -> None:
        sky = sdk()
        with _at(where):
            sky.get(sky.api_cancel(request_ids=[request]))

    def down(self, where: Server, name: str) -> None:
        """`sky.down` a cluster on `where`; one that is not there any more is down."""
        sky = sdk()
        try:
            with _at(where):
                sky.get(sky.down(name))
        except sky.exceptions.ClusterDoesNotExist:
            pass

    def exec(self, where: Server, task: dict, cluster: str) -> int:
        """`sky.exec` a task on a cluster of `where`: the cluster job's id."""
        sky = sdk()
        with _on(where):
            request = sky.exec(sky.Task.from_yaml_config(task), cluster_name=cluster)
        with _at(where):
            cluster_job, _handle = sky.get(request)
        assert cluster_job is not None  # None only for a dry run
        return cluster_job

    def tail_cluster(self, where: Server, cluster: str, cluster_job: int, stream: Any) -> None:
        """A cluster job's log into `stream` (file-like), followed until it ends."""
        sky = sdk()
        with _at(where):
            sky.tail_logs(cluster, cluster_job, follow=True, output_stream=stream)

    def cancel_cluster_job(self, where: Server, cluster: str, cluster_job: int) -> None:
        sky = sdk()
        with _at(where):
            sky.get(sky.cancel(cluster, job_ids=[cluster_job]))

    def enabled_clouds(self, where: Server | None = None) -> list[str]:
        """The infra `where` (None: SkyPilot's own server) has enabled, Kubernetes contexts,
        Slurm clusters and SSH pools named (`Kubernetes/ctx`, `Slurm/peer`)."""
        if where is not None:
            self.check_server(where)
        sky = sdk()
        from sky.client import sdk as client_sdk

        with _at(where):
            return sorted(str(c) for c in sky.get(client_sdk.enabled_clouds(expand=True)))


CLIENT = SkyClient()
