"""An in-memory backend for scheduler tests: no processes, no network, no clock of its own.

Register it with `monkeypatch.setitem(backends.REGISTRY, "fake", "fake_backend")`; the test
sets `BACKEND.current` to the `FakeExecutor` the scheduler is to get, and may give it features
with monkeypatch: `setattr(BACKEND, "unsupported", only(Feature.QUEUE_SYNC))`.
"""

from __future__ import annotations

from slurmsky.backends import Backend, BackendFeature, Feature


def only(*features: BackendFeature) -> dict[BackendFeature, str]:
    """The `unsupported` map of a backend that has `features` and no other."""
    return {f: "the fake backend lacks it" for f in Feature if f not in features}


class FakeExecutor:
    """`nodes` nodes, each holding one job at a time. Every call is recorded in `calls` as
    (method, job_id, ...); a job ends when the test puts its RESULT in `results`."""

    name = "fake"

    def __init__(self, nodes: int = 2):
        self.nodes = nodes
        self.calls: list[tuple] = []
        self.results: dict[int, dict] = {}  # job_id -> the RESULT poll() returns
        self.interval: float | None = None  # poll_interval() for every job
        self.launch_errors: dict[int, BaseException] = {}  # job_id -> raised once by launch()
        self.adopted: dict[int, dict] = {}  # job_id -> the ref adopt() finds (else None)
        self.cancel_ends = True  # cancel() makes the next poll report CANCELLED
        self.on_launch = None  # called with the job before launch() returns
        self.on_sync = None  # sync()'s body: (conn, now, wake) -> changed

    def called(self, method: str) -> list[int]:
        """The job ids `method` was called with, in order."""
        return [c[1] for c in self.calls if c[0] == method]

    def place(self, job, running):
        self.calls.append(("place", job.job_id))
        if job.num_nodes > self.nodes:
            return "PartitionNodeLimit"
        busy = {k for j in running for k in (j.executor_ref or {}).get("nodes", ())}
        free = [k for k in range(self.nodes) if k not in busy]
        return free[: job.num_nodes] if len(free) >= job.num_nodes else "Resources"

    def prepare(self, job, placement):
        self.calls.append(("prepare", job.job_id, list(placement)))
        return {"nodes": list(placement), "names": [f"fake{k}" for k in placement], "pids": []}

    def launch(self, job, spec, ref):
        self.calls.append(("launch", job.job_id))
        if self.on_launch:
            self.on_launch(job)
        if job.job_id in self.launch_errors:
            raise self.launch_errors.pop(job.job_id)
        # the scheduler takes a ref without "pids" for a half-started job (adopt)
        return dict(ref, pids=[[100000 + job.job_id, 0.0]])

    def adopt(self, job):
        self.calls.append(("adopt", job.job_id))
        return self.adopted.get(job.job_id)

    def poll(self, job):
        self.calls.append(("poll", job.job_id))
        return self.results.get(job.job_id)

    def poll_interval(self, job):
        return self.interval

    def cancel(self, job):
        self.calls.append(("cancel", job.job_id))
        if self.cancel_ends:
            self.results[job.job_id] = {"state": "CANCELLED", "exit_code": 0, "signal": 15}

    def signal(self, job, signum, scope):
        self.calls.append(("signal", job.job_id, signum, scope))

    def cleanup(self, job):
        self.calls.append(("cleanup", job.job_id))

    def sync(self, conn, now, wake):
        """Only called when BACKEND has QUEUE_SYNC."""
        self.calls.append(("sync", now))
        return bool(self.on_sync(conn, now, wake)) if self.on_sync else False

    def handed(self, job, ref):
        """Only called when BACKEND has QUEUE_SYNC: the job stays CONFIGURING."""
        return {}


class FakeBackend(Backend):
    name = "fake"
    unsupported = only()
    current: FakeExecutor | None = None

    def executor(self) -> FakeExecutor:
        assert self.current is not None, "set fake_backend.BACKEND.current first"
        return self.current


BACKEND = FakeBackend()
