"""The sky agent's state age under load (issue 33 item 4): how long before now the last
SkyPilot queue query that answered started (sync.sync_status()["ok"]), sampled while jobs
launch, run and end.

The real scheduler, SkyExecutor and SkyClient run in this process (as the tests' sky_world
does), with SkyPilot's SDK functions replaced by a fake API server that takes its time as a
loaded one does (each request: a queue query QUERY s, a launch LAUNCH s, a cancel 0.1 s; a
followed log waits for its job's end). So the figure counts what the agent asks, in what
order and how many at once, not SkyPilot. Jobs are stored through sbatch's own path
(core.submit.store). The fake routes each request to the server SkyPilot's endpoint lookup
names at that moment (server_common.get_server_url), so `--servers 2` sends the jobs
alternately to two servers (only code that records each job's server can).

Load: --jobs one-node jobs of --seconds each, all submitted at once to a partition that
holds them all; samples every 0.1 s from the submissions to the last job's end.

Run: python bench/sky_freshness.py [--jobs 24] [--seconds 20] [--servers 1]
It measures whatever slurmsky is first on PYTHONPATH, so the same file measures the code
before a change (e.g. `git archive BASE | tar -x -C /tmp/base`, PYTHONPATH=/tmp/base).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from types import SimpleNamespace

QUERY = 0.8  # s a queue query takes the server (each of the client's sub-queries)
LAUNCH = 2.0  # s a launch takes
RUN_AFTER = 1.0  # s from a launch's answer to its job's RUNNING


class FakeServers:
    """SkyPilot's managed jobs on one or more API servers, answering after their latency."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.jobs: dict[str, dict[int, dict]] = {}
        self.lock = threading.Lock()
        self.queries: dict[str, int] = {}

    @staticmethod
    def url() -> str:
        from sky.server import common

        return common.get_server_url()

    # the SDK functions: each returns a request that `get` answers
    def launch(self, task, name=None, pool=None, num_jobs=None, **_):
        return ("launch", self.url(), task, num_jobs)

    def queue_v2(self, refresh=False, all_users=True, fields=None, **kw):
        return ("queue", self.url(), kw)

    def cancel(self, job_ids=None, **_):
        return ("cancel", self.url(), job_ids)

    def tail_logs(self, job_id=None, follow=True, output_stream=None, **_):
        with self.lock:
            job = self.jobs[self.url()][job_id]
        if follow:
            time.sleep(max(0.0, job["end"] - time.time()))
        return 0

    def get(self, request):
        kind, url = request[0], request[1]
        time.sleep({"launch": LAUNCH, "queue": QUERY}.get(kind, 0.1))
        with self.lock:
            jobs = self.jobs.setdefault(url, {})
            if kind == "launch":
                task, num_jobs = request[2], request[3]
                now = time.time()
                ids = []
                for _ in range(num_jobs or 1):
                    sky_id = len(jobs) + 1
                    start = now + RUN_AFTER
                    meta = task.to_yaml_config().get("_metadata")
                    jobs[sky_id] = dict(at=now, start=start, end=start + self.seconds, meta=meta)
                    ids.append(sky_id)
                return ids, None
            if kind == "queue":
                self.queries[url] = self.queries.get(url, 0) + 1
                return (
                    [self._record(i, j) for i, j in jobs.items() if self._listed(i, j, request[2])],
                    0,
                    {},
                    0,
                )
            return None

    def stream_and_get(self, request, output_stream=None, **_):
        return self.get(request)

    def _status(self, job: dict) -> str:
        now = time.time()
        return "PENDING" if now < job["start"] else "RUNNING" if now < job["end"] else "SUCCEEDED"

    def _listed(self, sky_id: int, job: dict, kw: dict) -> bool:
        if kw.get("job_ids") is not None:
            return sky_id in kw["job_ids"]
        if kw.get("skip_finished"):
            return self._status(job) != "SUCCEEDED"
        if kw.get("submitted_after") is not None:
            return job["at"] >= kw["submitted_after"]
        return True

    def _record(self, sky_id: int, job: dict) -> dict:
        status = self._status(job)
        return {
            "job_id": sky_id,
            "task_id": 0,
            "job_name": "bench",
            "status": SimpleNamespace(value=status),
            "submitted_at": job["at"],
            "start_at": job["start"] if status != "PENDING" else None,
            "end_at": job["end"] if status == "SUCCEEDED" else None,
            "failure_reason": None,
            "metadata": job["meta"],
            "user_name": "bench",
            "user_hash": "bench",
            "resources": "1x[CPU:1]",
            "node_names": f"node-{sky_id}",
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--servers", type=int, default=1)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="slurmsky-fresh-")
    config = os.path.join(tmp, "slurmsky.yaml")
    with open(config, "w") as fh:
        fh.write(f"backend: sky\npartitions:\n  sky:\n    size: {args.jobs}\n")
    os.environ.update(
        HOME=tmp,
        SLURMSKY_HOME=os.path.join(tmp, "state"),
        SLURMSKY_CONFIG=config,
        SKYPILOT_DISABLE_LOCAL_API_SERVER="1",
        SKYPILOT_DISABLE_USAGE_COLLECTION="1",
    )
    for var in ("SKYPILOT_API_SERVER_ENDPOINT", "SKYPILOT_API_SERVER_LOCAL_PORT"):
        os.environ.pop(var, None)
    os.makedirs(os.environ["SLURMSKY_HOME"])
    fifo_path = os.path.join(os.environ["SLURMSKY_HOME"], "agent.fifo")
    os.mkfifo(fifo_path)  # the agent is this process: sbatch's wake starts none
    fifo = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)

    import logging

    import sky

    logging.getLogger("slurmsky").setLevel(logging.WARNING)  # the agent's log of each job

    from slurmsky.backends.sky import sync as skysync
    from slurmsky.backends.sky.client import SkyClient
    from slurmsky.backends.sky.executor import SkyExecutor
    from slurmsky.config import load_config
    from slurmsky.core import state
    from slurmsky.core.scheduler import Scheduler
    from slurmsky.core.submit import store
    from slurmsky.parse.request import build_batch_request, parse_command_line

    fake = FakeServers(args.seconds)
    for name in ("launch", "queue_v2", "cancel", "tail_logs"):
        setattr(sky.jobs, name, getattr(fake, name))
    sky.get, sky.stream_and_get = fake.get, fake.stream_and_get
    SkyClient.check_server = lambda self, *a, **k: None  # type: ignore[method-assign]

    conn = state.connect()
    scheduler = Scheduler(conn, backend="sky")
    executor = scheduler.executors["sky"] = SkyExecutor()

    def passes(until) -> None:
        while not until():
            scheduler.run_pass(time.time())
            try:
                os.read(fifo, 65536)
            except BlockingIOError:
                pass
            time.sleep(0.05)

    passes(lambda: skysync.sync_status()["ok"] > 0)  # the agent's first query answered
    cfg = load_config()
    ids = []
    for k in range(args.jobs):
        if args.servers > 1:
            os.environ["SKYPILOT_API_SERVER_ENDPOINT"] = (
                f"http://127.0.0.1:{47200 + k % args.servers}"
            )
        req = build_batch_request(
            parse_command_line("sbatch", ["-J", "bench", "-o", "/dev/null", "--wrap", "true"]),
            dict(os.environ),
            tmp,
            lambda: b"",
        )
        ids.append(store(req, cfg, batch=True))
    ages: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            ages.append(time.time() - skysync.sync_status()["ok"])
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    start = time.time()
    sampler.start()

    def ended() -> bool:
        jobs = state.find_jobs(conn, ids=ids)
        return all(j.finished for j in jobs)

    passes(ended)
    done.set()
    sampler.join()
    took = time.time() - start
    states = sorted({j.state for j in state.find_jobs(conn, ids=ids)})
    ages.sort()
    p95 = ages[int(0.95 * (len(ages) - 1))]
    print(
        f"jobs {args.jobs} x {args.seconds:.0f} s on {args.servers} server(s): all ended "
        f"{states} in {took:.1f} s; state age p50 {statistics.median(ages):.1f} s, "
        f"p95 {p95:.1f} s, max {ages[-1]:.1f} s ({len(ages)} samples); queue queries "
        f"{dict(sorted(fake.queries.items()))}"
    )
    executor.pool.shutdown(wait=False, cancel_futures=True)
    os.close(fifo)
    sys.stdout.flush()
    os._exit(0)  # the fake's followed logs may still sleep


if __name__ == "__main__":
    main()
