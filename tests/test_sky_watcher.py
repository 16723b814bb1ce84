"""What the agent asks SkyPilot's queue and when (backends/sky/watcher.py): each query costs
the API server a Python process, so one query an interval is the rule, and a query never
follows its answer at once."""

from __future__ import annotations

from concurrent.futures import Future

from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.server import Server
from slurmsky.backends.sky.watcher import NEW_JOBS_MARGIN, ONE_QUERY_SPAN, REST, QueueWatcher

HERE = Server("http://127.0.0.1:1")
DAY = 86400.0


class Queue:
    """SkyClient.queue as the watcher calls it: each call's (since, watched, active), and
    `records` as the answer."""

    def __init__(self, records: list[dict]):
        self.records, self.calls = records, []

    def queue(self, where, since, watched, active=False):
        self.calls.append((since, list(watched), active))
        return self.records, "h"


def _at_once(fn, *args) -> Future:
    done: Future = Future()
    done.set_result(fn(*args))
    return done


def _rec(job_id: int, submitted: float | None, status: str) -> dict:
    return {"job_id": job_id, "task_id": 0, "submitted_at": submitted, "status": status}


def _asked(records: list[dict], now: float = 1e9) -> tuple[float | None, list[int], bool]:
    """The query a watcher asks after a first answer of `records` (at `now`)."""
    client = Queue(records)
    watcher = QueueWatcher(client, HERE, _at_once)  # type: ignore[arg-type]
    watcher.ask(now, [], lambda: [5], True)
    assert watcher.collect(now, lambda recs, watched: False) is False
    watcher.ask(now + skysync.SYNC_INTERVAL, [], lambda: [5], True)
    assert client.calls[0] == (None, [5], False)  # the first lists every job
    return client.calls[1]


def test_one_query_reaches_back_to_the_oldest_active_job(monkeypatch):
    monkeypatch.setattr(skysync, "record_sync", lambda *a, **k: None)
    newest = 5000.0
    recent = newest - NEW_JOBS_MARGIN
    # no active job before the margin: the jobs submitted since it
    assert _asked([_rec(1, 100.0, "SUCCEEDED"), _rec(2, newest, "RUNNING")]) == (
        recent,
        [5],
        False,
    )
    # an active job submitted earlier: from it on, still one query
    assert _asked([_rec(1, 100.0, "RUNNING"), _rec(2, newest, "SUCCEEDED")]) == (
        99.0,
        [5],
        False,
    )
    # one from more than ONE_QUERY_SPAN before: the active ones beside (two queries)
    far = recent - ONE_QUERY_SPAN - 1
    assert _asked([_rec(1, far, "PENDING"), _rec(2, newest, "RUNNING")]) == (recent, [5], True)
    # an active job without a submission time counts as the oldest
    assert _asked([_rec(1, None, "STARTING"), _rec(2, newest + DAY * 2, "RUNNING")])[2] is True


def test_a_query_waits_after_its_answer(monkeypatch):
    """Every SYNC_INTERVAL from one query's start, but never sooner than REST intervals after its
    answer: a slow server is not asked back to back."""
    monkeypatch.setattr(skysync, "record_sync", lambda *a, **k: None)
    client = Queue([_rec(1, 10.0, "RUNNING")])
    watcher = QueueWatcher(client, HERE, _at_once)  # type: ignore[arg-type]
    start = 1e9
    watcher.ask(start, [], list, True)
    answered = start + skysync.SYNC_INTERVAL + 1.0  # answered after longer than the interval
    watcher.collect(answered, lambda recs, watched: False)
    wake: list[float] = []
    rest = REST * skysync.SYNC_INTERVAL
    watcher.ask(answered + rest - 0.1, wake, list, True)
    assert len(client.calls) == 1 and wake == [answered + rest]
    watcher.ask(answered + rest, [], list, True)
    assert len(client.calls) == 2
    # answered at once: the interval from the start rules
    watcher.collect(answered + rest, lambda recs, watched: False)
    wake = []
    watcher.ask(answered + rest + 0.1, wake, list, True)
    assert len(client.calls) == 2 and wake == [answered + rest + skysync.SYNC_INTERVAL]
