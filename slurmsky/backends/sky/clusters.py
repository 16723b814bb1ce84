"""salloc on SkyPilot: the allocation is a SkyPilot cluster of its own (`sky.launch`, not a
managed job), kept while the command salloc runs here; `srun` in it runs each step as a job
on that cluster (steps.py); salloc relinquishing it, scancel, its time limit, or salloc's
death (core/watcher.py) end it with `sky.down`. Each call goes to the SkyPilot server its
salloc named (recorded with its task, as a batch job's; the ref names it).

The job's states: CONFIGURING while SkyPilot provisions the cluster (Slurm's CF for nodes
that boot; salloc says `Waiting for resource configuration`), RUNNING once it is up (its
nodes from the cluster's handle), COMPLETING while it goes down, then what ended it:
COMPLETED/FAILED with the exit code salloc handed over (kill_action "release"), CANCELLED
(scancel), TIMEOUT, or FAILED with the launch's error (JobLaunchFailure).

`Clusters` is the agent's side, driven by the sky executor's sync(); the SDK calls run on
its thread pool. A restarted agent launches a cluster whose launch it did not see end once
more (`sky.launch` of an existing cluster returns it as it is) and downs again what was
being downed. The rest of this module is standard library (salloc reads allocation_env).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.core import state
from slurmsky.core.state import JobRecord
from slurmsky.core.states import ACTIVE_STATES
from slurmsky.core.transitions import finish

TYPE_CHECKING = False  # salloc reads allocation_env: no typing import at run time
if TYPE_CHECKING:
    from collections.abc import Callable

    from slurmsky.backends.sky.client import SkyClient
    from slurmsky.backends.sky.server import Server

log = logging.getLogger("slurmsky.core.daemon")

DOWN_RETRY = 60.0  # s before a down that failed is tried again
LAUNCHES = 16  # cluster launches at once (each holds a thread while it waits for capacity)
# Keys of the stored task a cluster's launch leaves out: `run` and `secrets` are each step's
# own (steps.py), `_metadata` the managed job's (resources.job_recovery too).
NOT_LAUNCHED = ("run", "secrets", "_metadata")


def cluster_name(job_id: int, instance: str) -> str:
    """The allocation's SkyPilot cluster: its job id and this state directory's instance."""
    return f"slurmsky-{job_id}-{instance[:8]}"


def launch_task(task: dict) -> dict:
    """The stored task as the cluster's launch: resources, workdir, file mounts (the node
    runtime), envs and setup; no run."""
    launched = {k: v for k, v in task.items() if k not in NOT_LAUNCHED}
    if "job_recovery" in launched.get("resources", {}):
        launched["resources"] = {
            k: v for k, v in launched["resources"].items() if k != "job_recovery"
        }
    return launched


def allocation_env(spec: dict, ref: dict) -> dict[str, str]:
    """What the allocation's batch shell would see on its first node (the node runtime's
    own batch_env, for the cluster's nodes); salloc keeps its SLURM_* variables."""
    from slurmsky.runtime.env import batch_env
    from slurmsky.runtime.spec import Job, complete

    node_spec = complete(dict(spec, node_names=ref["nodes"]))
    job = Job(node_spec, {"SKYPILOT_NODE_IPS": "\n".join(ref["ips"]), "SKYPILOT_NODE_RANK": "0"})
    return batch_env(job, {}, "")


class Clusters:
    """The agent's side of salloc's clusters (the sky executor's sync() calls sync())."""

    def __init__(
        self, client: SkyClient, db, instance: str, background, where: Callable[[JobRecord], Server]
    ):
        self.client, self.db, self.instance, self.background = client, db, instance, background
        self.where = where  # the server of an allocation: the one its salloc named
        self.launches: dict[int, Future] = {}  # job id -> future of (node names, IPs)
        self.requests: dict[int, str] = {}  # job id -> its launch's request id (to cancel)
        self.cancelled: set[int] = set()  # launches asked to stop (api_cancel sent)
        self.downs: dict[int, Future] = {}  # job id -> future of its cluster's down
        self.failed: dict[int, float] = {}  # job id -> when its down last failed
        self.pool = ThreadPoolExecutor(LAUNCHES, thread_name_prefix="sky-cluster")

    def launch(self, job: JobRecord, task: dict) -> dict:
        """Start the allocation's cluster (CONFIGURING meanwhile); returns the job's ref."""
        name = cluster_name(job.job_id, self.instance)
        self._start(job, name, task)
        return {"cluster": name, "server": self.where(job).name}

    def _start(self, job: JobRecord, name: str, task: dict) -> None:
        def requested(request: str) -> None:  # its request id, to cancel it
            self.requests[job.job_id] = request

        self.launches[job.job_id] = self.background(
            self.client.launch_cluster,
            self.where(job),
            launch_task(task),
            name,
            requested,
            pool=self.pool,
        )

    def jobs(self) -> list[JobRecord]:
        """The active allocations that hold (or are getting) a cluster."""
        return state.jobs_with_ref(self.db, "sky", "cluster")

    def sync(self, now: float, wake: list[float]) -> bool:
        """One pass over the allocations; `wake` gets when the next is due (a retry, a
        time limit)."""
        changed = False
        for job in self.jobs():
            try:
                changed |= self._follow(job, now, wake)
            except Exception:  # looked at again next pass; the other allocations go on
                log.exception("job %s: following its cluster failed", job.job_id)
        return changed

    def _follow(self, job: JobRecord, now: float, wake: list[float]) -> bool:
        ref = dict(job.executor_ref or {})
        launch = self.launches.get(job.job_id)
        if launch is not None and launch.done():
            del self.launches[job.job_id]
            self.requests.pop(job.job_id, None)
            self.cancelled.discard(job.job_id)
            return self._launched(job, ref, launch, now)
        if job.kill_action or ref.get("end"):
            return self._down(job, ref, launch, now, wake)
        if launch is None and not ref.get("nodes"):  # launched by an agent that died
            log.info("job %s: launching cluster %s again", job.job_id, ref["cluster"])
            task = state.get_spec(self.db, job.submission)[1]
            assert task is not None  # the sky backend stores a task with each submission
            self._start(job, ref["cluster"], task)
            return False
        if job.state != "RUNNING" or not job.time_limit or job.start_time is None:
            return False
        deadline = job.start_time + job.time_limit * state.seconds_per_minute()
        if now < deadline:
            wake.append(deadline)
            return False
        log.info("job %s: time limit; taking cluster %s down", job.job_id, ref["cluster"])
        return state.update_job(
            self.db,
            job.job_id,
            where_state=("RUNNING",),
            state="COMPLETING",
            executor_ref=dict(ref, end={"state": "TIMEOUT", "end": now}),
        )

    def _launched(self, job: JobRecord, ref: dict, launch: Future, now: float) -> bool:
        """The cluster is up (RUNNING, unless it is being ended), or its launch failed (the
        job fails once whatever it made is down)."""
        try:
            names, ips = launch.result()
        except Exception as exc:
            from slurmsky.backends.sky.sync import clean

            log.error("job %s: launching cluster %s failed: %s", job.job_id, ref["cluster"], exc)
            end = {
                "state": "FAILED",
                "exit_code": 1,
                "reason": f"JobLaunchFailure: {clean(str(exc))}"[:300],
                "end": now,
            }
            if job.kill_action:
                end = {}  # cancelled meanwhile: that is how it ends
            return state.update_job(
                self.db,
                job.job_id,
                where_state=ACTIVE_STATES,
                state="COMPLETING",
                executor_ref=dict(ref, end=end) if end else ref,
            )
        from slurmsky.runtime import hostlist

        log.info("job %s: cluster %s up on %s", job.job_id, ref["cluster"], ",".join(names))
        ref.update(nodes=names, ips=ips)
        fields: dict = dict(executor_ref=ref)
        if job.state == "CONFIGURING":
            fields.update(state="RUNNING", nodelist=hostlist.compress(names), batch_host=names[0])
        return state.update_job(self.db, job.job_id, where_state=ACTIVE_STATES, **fields)

    def _down(
        self, job: JobRecord, ref: dict, launch: Future | None, now: float, wake: list[float]
    ) -> bool:
        """End an allocation: stop its launch if one is under way, take its cluster down,
        then record how it ended."""
        if launch is not None:  # down once the launch has stopped
            request = self.requests.get(job.job_id)
            if request is not None and job.job_id not in self.cancelled:
                self.cancelled.add(job.job_id)
                self.background(self.client.cancel_request, self.where(job), request)
            return False
        down = self.downs.get(job.job_id)
        if down is None:
            retry = self.failed.get(job.job_id, now - DOWN_RETRY) + DOWN_RETRY
            if now < retry:
                wake.append(retry)
                return False
            log.info("job %s: taking cluster %s down", job.job_id, ref["cluster"])
            where = self.where(job)
            self.downs[job.job_id] = self.background(self.client.down, where, ref["cluster"])
            return job.kill_sent is None and state.update_job(self.db, job.job_id, kill_sent=now)
        if not down.done():
            return False
        del self.downs[job.job_id]
        try:
            down.result()
        except Exception as exc:
            log.warning("job %s: sky.down %s failed: %s", job.job_id, ref["cluster"], exc)
            self.failed[job.job_id] = now
            return False
        self.failed.pop(job.job_id, None)
        fields = finish(
            self.db, job.job_id, self._result(job, ref, now), now, ACTIVE_STATES, executor_ref=ref
        )
        if fields is None:
            return False
        log.info("job %s: %s (cluster %s down)", job.job_id, fields["state"], ref["cluster"])
        return True

    @staticmethod
    def _result(job: JobRecord, ref: dict, now: float) -> dict:
        """The RESULT an allocation ends with: the steps it ran, and what ended it."""
        steps = {"steps": (job.result or {}).get("steps") or []}
        if job.kill_action == "release":  # salloc's command's exit code (core/allocation.py)
            return dict(job.result or {}, end=(job.result or {}).get("end") or now)
        if job.kill_action == "cancel" or not ref.get("end"):
            return dict(steps, state="CANCELLED", end=now)
        return dict(steps, **ref["end"])
