"""The one fake SkyPilot every sky test drives the executor through: a SkyClient whose
managed jobs run their task's `run` here.

`FakeSkyClient` has SkyClient's methods with SkyClient's signatures
(tests/test_sky_client.py holds them equal, and SkyClient's SDK calls to SkyPilot 0.14's
real signatures). Each launch runs its task's `run` in bash on a "node" here (as
test_sky_units.run_on_node does), its log a file that `tail` follows; `queue` lists every
job as SkyPilot's managed-job queue would; `cancel` ends the job's whole process tree, as
SkyPilot's does; `stuck` launches hang on their way to the server; a launch naming a cloud
not in `enabled` fails (`enabled_clouds` answers it); the infra every job gets is
`cluster_info` (SKYPILOT_CLUSTER_INFO on the node,
cloud/region/zone in the queue) on the instance `launched` says (the queue's
cluster_resources_full while it runs; a job's `ran`, its start_at and end_at there once it
ended, when a test sets it), and `preempt` / `recover` play SkyPilot's recovery of a
preempted job (RECOVERING, recovery_count + 1, the same task run again). A job whose first
infra candidate is Slurm runs on the fake's Slurm infra: its $HOME is
BASE/.sky_clusters/<cluster> under one `slurm_base` every such job shares (SkyPilot's Slurm
infra; a recovery gives it a fresh one, as SkyPilot deletes the cluster's home with its
allocation), else the one node home all jobs share. A job named in `delays` (its id: seconds)
stays STARTING that long before its `run` starts (a cluster slow to come up; `begin` starts
it at once), and a cancel meanwhile ends it CANCELLED without running. Its world has several
API servers, each with its own managed jobs (their ids start at 1 on each, as SkyPilot's do);
a server named in `dead` does not answer. Pools live on the server they were applied on
(`pools`; `pool_status` answers them, or `pool_answer` when set). salloc's clusters
(`clusters`, by server) are a name and this host as their one node; a step `exec`'d on one
runs its task's `run` as a managed job does (in the cluster's one workdir, its log followed
by `tail_cluster`). Every call is logged with its server in `calls`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.client import ABSENT, SkyClient, Unreachable
from slurmsky.backends.sky.group import group_tasks
from slurmsky.backends.sky.server import Server

ROOT = Path(__file__).resolve().parent.parent


class FakeSkyClient(SkyClient):
    """SkyPilot's managed jobs, run here (see the module's docstring)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.worlds: dict[str, dict[int, dict]] = {}  # server name -> its managed jobs by id
        self.dead: set[str] = set()  # servers that do not answer
        self.cluster_info: dict = {"cloud": "Fake", "region": None, "zone": None}
        # what the queue's cluster_resources_full says of a job's running cluster
        self.launched = "1x(cpus=1, mem=1, fake-1x1, ...)"
        self.queried: list[str] = []  # the server each queue query went to
        self.tailed: list[tuple[str, int, bool, int]] = []  # (server, id, follow, bytes read)
        self.lock = threading.Lock()
        self.most_at_once = 0
        self.most_nodes_at_once = 0  # each running job counts its task's num_nodes
        self.burst = False  # logs read only once their job ended (SkyPilot's first bursts)
        # the lines a live read loses (a predicate), read 2 s after its job ended (once the
        # queue said so), without an error: SkyPilot's live stream of a 68 MB log on the stack
        # ended early, or lost a stretch; None: it loses none
        self.live_lost: Callable[[str], bool] | None = None
        # the first N whole reads of each job's log get none of it (on the stack SkyPilot
        # stores an ended job's log a while after its end)
        self.unstored = 0
        self.pool_answer: list[dict] = []
        self.pools_asked: list[tuple[str, list[str]]] = []  # (server, pool names) per query
        self.pools: dict[str, dict[str, dict]] = {}  # server name -> pool name -> its task
        self.clusters: dict[str, dict[str, dict]] = {}  # server name -> cluster -> its jobs
        self.calls: list[tuple[str, str]] = []  # (method, server) of the pool/cluster calls
        # the infra SkyPilot has enabled here: every infra the sky tests' partitions name
        self.enabled = ["AWS", "GCP", "Kubernetes/ctx", "Kubernetes/lab", "Slurm/peer"]
        self.serial = 0  # launches so far, on every server (each a log and a workdir)
        # the next `stuck` launches hang before the server has them until `unstuck` is set
        # (SkyPilot's zip read a FIFO in the workdir for ever)
        self.stuck = 0
        self.stuck_cancels = 0  # the next N cancels hang (doing nothing) until `unstuck`
        self.stuck_reads = 0  # the next N whole log reads hang (reading nothing) as well
        self.unstuck = threading.Event()
        self.agents = 0  # agents gone so far: a read an earlier agent made ends (it died)
        self.slurm_base = tmp_path / "slurm_base"  # BASE of the Slurm infra's cluster homes
        self.delays: dict[int, float] = {}  # managed job id -> s before its run starts
        # s the controller takes to say RUNNING once a job's run started (STARTING till
        # then, ended or not; SkyPilot's stream of it waits for RUNNING); its cluster's log
        # reads at once
        self.controller_lag = 0.0
        self.direct = True  # the server reads its jobs' clusters (consolidation mode)
        home = tmp_path / "nodehome" / ".slurmsky" / "runtime"
        home.mkdir(parents=True)
        (home / "slurmsky").symlink_to(ROOT / "slurmsky")
        (tmp_path / "sky_workdir").mkdir()

    @property
    def jobs(self) -> dict[int, dict]:
        """The managed jobs of the one server used (tests of a single server)."""
        (jobs,) = self.worlds.values()
        return jobs

    def endpoint(self) -> str:
        return "http://fake-sky.invalid"

    def check_server(self, where: Server | None = None) -> None:
        if where is not None and where.name in self.dead:
            raise Unreachable(f"SkyPilotApiServerUnreachable:{where.name}")

    def launch(self, where: Server, task: dict, num_jobs: int | None, requested) -> list[int]:
        self.check_server(where)
        with self.lock:
            hang = self.stuck > 0
            self.stuck -= hang
        if hang:
            self.unstuck.wait(120)
        self._refuse_disabled(task)
        requested(f"launch-{task.get('name')}")
        with self.lock:
            jobs = self.worlds.setdefault(where.name, {})
            if group_tasks(task):  # a job group: one managed job, a task per component
                ids = [self._start_group(jobs, task)]
            else:
                ids = [self._start(jobs, task, rank) for rank in range(num_jobs or 1)]
            running = [
                j
                for world in self.worlds.values()
                for j in world.values()
                if j["proc"] is not None and j["proc"].poll() is None and not j["cancelled"]
            ]
            self.most_at_once = max(self.most_at_once, len(running))
            nodes = sum(j["task"].get("num_nodes", 1) for j in running)
            self.most_nodes_at_once = max(self.most_nodes_at_once, nodes)
        return ids

    def _refuse_disabled(self, task: dict) -> None:
        """SkyPilot fails a launch any of whose candidates names a cloud it has not enabled
        (on the stack: `ordered: [k8s, slurm]` without skypilot[kubernetes] failed whole)."""
        enabled = {e.split("/")[0].lower() for e in self.enabled}
        for component in group_tasks(task) or [task]:
            resources = component.get("resources") or {}
            for one in resources.get("ordered") or resources.get("any_of") or [resources]:
                infra = one.get("infra", resources.get("infra")) or "*"
                cloud = {"k8s": "kubernetes"}.get(infra.split("/")[0].lower(), infra.split("/")[0])
                if cloud != "*" and cloud.lower() not in enabled:
                    raise RuntimeError(f"Failed to import dependencies for {cloud}")

    def _start_group(self, jobs: dict[int, dict], group: dict) -> int:
        """A job group: each task on its own cluster (its own log and workdir), with
        SKYPILOT_JOBGROUP_NAME in its envs as SkyPilot's controller adds it; the job's dict
        is task 0's, the others its `members`. Task 0 is the primary: when it ends, the
        others are cancelled (SkyPilot's auxiliary tasks)."""
        sky_id = len(jobs) + 1
        tasks = group_tasks(group) or []
        members = []
        for n, task in enumerate(tasks):
            task = dict(task, envs=dict(task.get("envs", {}), SKYPILOT_JOBGROUP_NAME=group["name"]))
            self._start(jobs, task, 0, sky_id=sky_id, task_id=n)
            members.append(jobs.pop(sky_id))
        jobs[sky_id] = dict(members[0], members=members[1:], group=group)
        return sky_id

    def _start(
        self,
        jobs: dict[int, dict],
        task: dict,
        rank: int,
        sky_id: int = 0,
        task_id: int = 0,
        cwd: Path | None = None,
    ) -> int:
        sky_id = sky_id or len(jobs) + 1
        serial, self.serial = self.serial, self.serial + 1
        info = dict(self.cluster_info, cluster_name=f"fake-{serial}-{task_id}")
        pooled = (task.get("_metadata") or {}).get("slurmsky", {}).get("pool")
        home = self.tmp / ("poolhome" if pooled else "nodehome")
        if _on_slurm(task):
            home = self._cluster_home(info["cluster_name"])
        env = {  # a pool's job brings the runtime itself (pools.bootstrap): a bare home
            "HOME": str(home),
            "PATH": os.environ["PATH"],
            "SKYPILOT_NODE_RANK": "0",
            "SKYPILOT_NODE_IPS": "127.0.0.1",
            "SKYPILOT_NUM_NODES": "1",
            "SKYPILOT_JOB_RANK": str(rank),
            # SkyPilot's carries the launch's time (unique across servers, whose ids repeat):
            # the node's rundir is named by it
            "SKYPILOT_TASK_ID": f"sky-managed-{serial}_{task.get('name')}_{sky_id}-{task_id}",
            "SKYPILOT_MANAGED_JOB_ID": str(sky_id),
            "SKYPILOT_CLUSTER_INFO": json.dumps(info),
            **task.get("envs", {}),
            **task["secrets"],
        }
        log = self.tmp / f"sky-{serial}.log"
        workdir = cwd or self.tmp / "sky_workdir" / str(serial)  # a managed job: its own
        workdir.mkdir(exist_ok=True)
        jobs[sky_id] = dict(
            log=log, task=task, env=env, at=time.time(), cancelled=False, info=info, cwd=workdir
        )
        jobs[sky_id]["launched"] = self.launched
        jobs[sky_id].update(recovering=False, recovery_count=0, task_id=task_id, members=[])
        jobs[sky_id].update(proc=None, begun=None, timer=None)
        log.touch()
        delay = self.delays.get(sky_id) if not cwd else None
        if delay:
            timer = threading.Timer(delay, self._due, (jobs[sky_id],))
            timer.daemon = True
            jobs[sky_id]["timer"] = timer
            timer.start()
        else:
            self._run(jobs[sky_id])
        return sky_id

    def _cluster_home(self, cluster: str) -> Path:
        """A fresh $HOME for a cluster of the Slurm infra, the runtime in it (file_mounts)."""
        home = self.slurm_base / ".sky_clusters" / cluster
        shutil.rmtree(home, ignore_errors=True)
        (home / ".slurmsky" / "runtime").mkdir(parents=True)
        (home / ".slurmsky" / "runtime" / "slurmsky").symlink_to(ROOT / "slurmsky")
        return home

    def _due(self, job: dict) -> None:
        """A delayed job's cluster is up: its run starts, unless it was cancelled."""
        with self.lock:
            if job["proc"] is None and not job["cancelled"]:
                self._run(job)

    def begin(self, sky_id: int) -> None:
        """A delayed job starts now."""
        job = self.jobs[sky_id]
        if job["timer"] is not None:
            job["timer"].cancel()
        self._due(job)

    @staticmethod
    def _run(job: dict) -> None:
        """The task's `run` from a script, as SkyPilot runs it (a pool job's, which carries
        the node runtime, is more than one argument may hold)."""
        job["begun"] = job["begun"] or time.time()
        script = job["log"].with_suffix(".run.sh")
        script.write_text(job["task"]["run"] or "")
        with open(job["log"], "ab") as out:
            job["proc"] = subprocess.Popen(
                ["bash", str(script)],
                cwd=job["cwd"],
                env=job["env"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def preempt(self, sky_id: int, counted: bool = True, term: bool = False) -> None:
        """The job's nodes are lost: SkyPilot's queue says RECOVERING until `recover`;
        `counted=False`: its recovery_count stays (SkyPilot 0.14.1 on Slurm infra, seen on
        the sky-e2e stack: #RECOVERIES 0 after a recovery); `term`: the node runtime gets a
        SIGTERM first and the run ends by itself, its output shipped (Slurm infra: the
        allocation's cancel signals every process of it)."""
        with self.lock:
            job = self.jobs[sky_id]
            job["recovering"] = True
            job["recovery_count"] += counted
            if term:
                for proc in psutil.Process(job["proc"].pid).children(recursive=True):
                    try:  # (a short-lived child, a `sleep` of the job, may end meanwhile)
                        if "slurmsky.runtime" in " ".join(proc.cmdline()):
                            proc.terminate()
                    except psutil.NoSuchProcess:
                        pass
                job["proc"].wait(60)
            _kill_tree(job["proc"])
            job["proc"].wait(10)

    def recover(self, sky_id: int, shared: bool = False) -> None:
        """SkyPilot found new nodes: the same task runs again there (the lost nodes' output
        files are not on them; `shared`: they are, as on Slurm infra, whose home is shared)."""
        with self.lock:
            job = self.jobs[sky_id]
            for lost in Path(job["cwd"], ".slurmsky").glob("std*-*"):
                if not shared:
                    lost.unlink()
            if _on_slurm(job["task"]):  # the cluster's home went with its allocation
                self._cluster_home(job["info"]["cluster_name"])
            job["recovering"] = False
            self._run(job)

    def give_up(self, sky_id: int, status: str, reason: str) -> None:
        """SkyPilot ends a job it recovers no more (FAILED_NO_RESOURCE: no nodes found)."""
        with self.lock:
            self.jobs[sky_id].update(recovering=False, final=(status, reason))

    def records(self, jobs: dict[int, dict], sky_id: int) -> list[dict]:
        """The queue's records of a managed job: one, or one per task of a job group (its
        auxiliary tasks cancelled once the primary one, task 0, ended)."""
        job = jobs[sky_id]
        if job["members"] and job["proc"].poll() is not None:
            for member in job["members"]:
                if member["proc"].poll() is None:
                    member["cancelled"] = True
                    _kill_tree(member["proc"])
                    member["proc"].wait(10)
        return [self.record(job, sky_id)] + [self.record(m, sky_id) for m in job["members"]]

    def _lagging(self, job: dict) -> bool:
        """Whether the controller has yet to say RUNNING of a job whose run started."""
        begun = job["begun"]
        return begun is not None and time.time() < begun + self.controller_lag

    def record(self, job: dict, sky_id: int) -> dict:
        proc = job["proc"]
        if proc is None or proc is not _NEVER_RAN and self._lagging(job):
            # a delayed job not started, or its controller slow to say so: STARTING, or
            # cancelled so
            status = "CANCELLED" if job["cancelled"] else "STARTING"
            return dict(
                self.record(dict(job, proc=_NEVER_RAN), sky_id),
                status=status,
                start_at=None,
                end_at=job["cancelled"] or None,
                node_names=None,  # SkyPilot names a job's nodes once it says RUNNING
            )
        code = job["proc"].poll()
        status = (
            job["final"][0]
            if job.get("final")
            else "RECOVERING"
            if job["recovering"] and not job["cancelled"]
            else "CANCELLED"
            if job["cancelled"] and code is not None
            else "RUNNING"
            if code is None
            else "SUCCEEDED"
            if code == 0
            else "FAILED"
        )
        return {
            "job_id": sky_id,
            "task_id": job["task_id"],
            "job_name": job.get("group", job["task"]).get("name"),
            "status": status,
            "submitted_at": job["at"],
            "start_at": job["ran"][0] if code is not None and job.get("ran") else job["begun"],
            "end_at": (job.get("ran") or (0, time.time()))[1]
            if code is not None and status != "RECOVERING"
            else None,
            "failure_reason": job["final"][1] if job.get("final") else None,
            "metadata": job["task"]["_metadata"],
            "user_name": "u",
            "user_hash": "h",
            "resources": "1x[CPU:1]",
            "node_names": f"fake-node-{sky_id}" + (f"-{job['task_id']}" if job["task_id"] else ""),
            "cloud": job["info"]["cloud"],
            "region": job["info"]["region"],
            "zone": job["info"]["zone"],
            "recovery_count": job["recovery_count"],
            # the launched instance while its cluster is up, then the resources asked
            "cluster_resources_full": job["launched"] if code is None else "1x[CPU:1]",
        }

    def queue(
        self, where: Server, since: float | None, watched: list[int], active: bool = False
    ) -> tuple[list[dict], str | None]:
        self.check_server(where)
        with self.lock:
            self.queried.append(where.name)
            jobs = self.worlds.get(where.name, {})
            return [r for i in jobs for r in self.records(jobs, i)], "h"

    def tail(
        self, where: Server, sky_id: int, follow: bool, stream: Any, task: int | None = None
    ) -> Any:
        self.check_server(where)
        job = self.worlds[where.name][sky_id]
        tasks = [job, *job["members"]]  # a job group's: its task's log (None: each in turn)
        for one in tasks if task is None else [tasks[task]]:
            read = self._tail(one, where, sky_id, follow, stream)
            self.tailed.append((where.name, sky_id, follow, read))
        stream.write("\n")
        return stream

    def tail_run(self, where: Server, sky_id: int, name: str, stream: Any) -> int | None:
        self.check_server(where)
        job = self.worlds[where.name][sky_id]
        assert name == job.get("group", job["task"]).get("name")
        self.calls.append(("tail_run", where.name))
        if not self.direct:
            return ABSENT
        if job["proc"] is None or job["cancelled"]:
            return None
        self.tailed.append((where.name, sky_id, True, self._follow(job, True, stream)))
        stream.write("\n")
        return 0

    def _tail(self, job: dict, where: Server, sky_id: int, follow: bool, reader: Any) -> int:
        """A managed job's log into `reader` as SkyPilot's stream gives it (unstored,
        live_lost, controller_lag): the bytes of the log it read."""
        while follow and self._lagging(job) and not job["cancelled"]:
            time.sleep(0.1)
        whole_reads = sum(
            1 for w, i, f, _ in self.tailed if (w, i, f) == (where.name, sky_id, False)
        )
        if not follow and whole_reads < self.unstored:
            return 0
        if not follow:
            with self.lock:
                hang = self.stuck_reads > 0
                self.stuck_reads -= hang
            if hang:
                self.unstuck.wait(120)
                return 0
        lost = self.live_lost if follow else None
        if not lost:
            return self._follow(job, follow, reader)
        deadline = time.monotonic() + 60
        while job["proc"].poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        text = job["log"].read_text()
        reader.write("".join(x for x in text.splitlines(True) if not lost(x)))
        return len(text)

    def _follow(self, job: dict, follow: bool, reader: Any) -> int:
        """A job's log into `reader` (until it ends, when following, or the agent that
        reads it is gone): the bytes read."""
        offset, agent = 0, self.agents
        deadline = time.monotonic() + 60
        while job["proc"] is None and not job["cancelled"] and time.monotonic() < deadline:
            time.sleep(0.1)  # SkyPilot's stream of a job not running yet waits for it
        if job["proc"] is None:
            return 0
        while self.burst and job["proc"].poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        while time.monotonic() < deadline:
            ended = job["proc"].poll() is not None
            data = job["log"].read_bytes()[offset:]
            offset += len(data)
            reader.write(data.decode())
            if ended or not follow or self.agents != agent:
                break
            time.sleep(0.1)
        return offset

    def cancel(self, where: Server, sky_id: int) -> str:
        self.check_server(where)
        with self.lock:
            hang = self.stuck_cancels > 0
            self.stuck_cancels -= hang
        if hang:
            self.unstuck.wait(120)
            return "a cancel that came back late"
        with self.lock:
            job = self.worlds[where.name][sky_id]
            for one in [job, *job["members"]]:  # a job group's every task
                if one["proc"] is None and one["timer"] is not None:
                    one["timer"].cancel()
                one["cancelled"] = one["cancelled"] or time.time()
                _kill_tree(one["proc"])
        return f"SkyPilot job {sky_id}: cancelled"

    def pool_status(self, where: Server, names: list[str]) -> list[dict]:
        self.check_server(where)
        self.pools_asked.append((where.name, names))
        if self.pool_answer:
            return self.pool_answer
        made = self.pools.get(where.name, {})
        return [{"name": n, "status": "READY", "replica_info": []} for n in names if n in made]

    def pool_apply(self, where: Server, task: dict, name: str) -> None:
        self.check_server(where)
        self.calls.append(("pool_apply", where.name))
        self.pools.setdefault(where.name, {})[name] = task

    def pool_down(self, where: Server, name: str) -> str:
        self.check_server(where)
        self.calls.append(("pool_down", where.name))
        if self.pools.get(where.name, {}).pop(name, None) is None:
            return f"Pool {name} not found."
        return f"Pool {name} is scheduled to be terminated."

    def launch_cluster(
        self, where: Server, task: dict, name: str, requested
    ) -> tuple[list[str], list[str]]:
        self.check_server(where)
        self.calls.append(("launch_cluster", where.name))
        requested(f"launch-{name}")
        with self.lock:
            self.clusters.setdefault(where.name, {})[name] = {}
        return [f"{name}-head"], ["127.0.0.1"]

    def cancel_request(self, where: Server, request: str) -> None:
        self.calls.append(("cancel_request", where.name))

    def down(self, where: Server, name: str) -> None:
        self.check_server(where)
        self.calls.append(("down", where.name))
        with self.lock:
            for job in self.clusters.get(where.name, {}).pop(name, {}).values():
                _kill_tree(job["proc"])

    def exec(self, where: Server, task: dict, cluster: str) -> int:
        self.check_server(where)
        self.calls.append(("exec", where.name))
        with self.lock:
            jobs = self.clusters[where.name][cluster]  # KeyError: no such cluster there
            return self._start(jobs, task, 0, cwd=self.tmp / "sky_workdir" / cluster)

    def tail_cluster(self, where: Server, cluster: str, cluster_job: int, stream: Any) -> None:
        self.check_server(where)
        self.calls.append(("tail_cluster", where.name))
        self._follow(self.clusters[where.name][cluster][cluster_job], True, stream)

    def cancel_cluster_job(self, where: Server, cluster: str, cluster_job: int) -> None:
        self.calls.append(("cancel_cluster_job", where.name))
        _kill_tree(self.clusters[where.name][cluster][cluster_job]["proc"])

    def enabled_clouds(self, where: Server | None = None) -> list[str]:
        self.check_server(where)
        return list(self.enabled)

    def stop(self) -> None:
        steps = (j for c in self.clusters.values() for js in c.values() for j in js.values())
        managed = (t for w in self.worlds.values() for j in w.values() for t in [j, *j["members"]])
        for job in [*managed, *steps]:
            if job.get("timer") is not None:
                job["timer"].cancel()
            job["cancelled"] = job["cancelled"] or time.time()  # (a delayed one starts no more)
            if job["proc"] is not None:
                _kill_tree(job["proc"])
                job["proc"].wait(10)


def _on_slurm(task: dict) -> bool:
    """Whether the task runs on the fake's Slurm infra: its first infra candidate is Slurm."""
    resources = task.get("resources") or {}
    first = (resources.get("ordered") or resources.get("any_of") or [resources])[0]
    return (first.get("infra", resources.get("infra")) or "").lower().startswith("slurm")


class _NeverRan:
    """The process of a job whose run never started (as `record` reads one)."""

    @staticmethod
    def poll() -> None:
        return None


_NEVER_RAN = _NeverRan()


def _kill_tree(lane: subprocess.Popen | None) -> None:
    """A managed job's whole process tree, as SkyPilot's cancel ends it (a job's script
    runs in a process group of its own)."""
    if lane is None or lane.poll() is not None:
        return
    try:
        tree = psutil.Process(lane.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    os.killpg(lane.pid, signal.SIGKILL)
    for proc in tree:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@contextlib.contextmanager
def sky_world(cluster, tmp_path, monkeypatch, partitions: str):
    """A sky-backend cluster with `partitions` (YAML under `partitions:`), the scheduler
    running in this process (a FIFO reader here stands for the agent: commands never start
    one): yields (cluster, the fake SkyPilot, drive(until, timeout))."""
    (cluster.home / "slurmsky.yaml").write_text(
        "backend: sky\nkill_wait: 1\npartitions:\n" + partitions
    )
    cluster.state.mkdir()
    os.mkfifo(cluster.state / "agent.fifo")
    fifo = os.open(cluster.state / "agent.fifo", os.O_RDONLY | os.O_NONBLOCK)
    for key in ("SLURMSKY_HOME", "SLURMSKY_CONFIG", "HOME", "SLURMSKY_STATE"):
        if key in cluster.env:  # (the state's engine: conftest.py)
            monkeypatch.setenv(key, cluster.env[key])
    monkeypatch.setenv("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")
    monkeypatch.setattr(skysync, "SYNC_INTERVAL", 0.3)
    fake = FakeSkyClient(tmp_path)
    from slurmsky.core import state
    from slurmsky.core.scheduler import Scheduler

    conn = state.connect()
    scheduler = Scheduler(conn, backend="sky")
    from slurmsky.backends.sky.executor import SkyExecutor

    agent = {"scheduler": scheduler, "executor": SkyExecutor(fake)}
    scheduler.executors["sky"] = agent["executor"]

    def restart() -> None:
        """The agent dies (its reads end) and a new one starts, knowing only the state."""
        fake.agents += 1
        agent["executor"].shutdown()
        agent["scheduler"] = Scheduler(conn, backend="sky")
        agent["executor"] = agent["scheduler"].executors["sky"] = SkyExecutor(fake)

    fake.restart_agent = restart

    def drive(until, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            agent["scheduler"].run_pass(time.time())
            found = until()
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError("timed out")

    try:
        yield cluster, fake, drive
    finally:
        fake.stop()
        agent["executor"].shutdown()
        conn.close()
        os.close(fifo)
