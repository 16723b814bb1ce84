"""What the agent asks SkyPilot, when, and how fresh the answer is.

`QueueWatcher` watches one API server's managed-job queue (the executor has one per server
its jobs went to): one query in flight at most, every sync.SYNC_INTERVAL and no sooner than
REST intervals after the last answer (a query costs the server a Python process: back to
back they starved the stack's two cores), while the queue is worth asking (the executor
says: never asked yet, slurmsky's own jobs for that server are active, or readers came
lately and it is the server of the latest submission; SkyPilot's other jobs show in squeue
then). Queries of different servers run at once. The first query of a watcher lists every
finished job too (adoption after a restart, sacct's history); later ones, in one query,
those submitted since shortly before the newest seen or since the oldest still active
(within ONE_QUERY_SPAN; else the active ones are a second query), and the watched jobs
(ours, active) that a query missed, by id. It also holds whether its server answers: while
it does not, its reason (naming the server) is the pending reason of every released job for
it.

`PoolWatcher` asks for the configured pools' status every POOL_EVERY intervals, for sinfo
(pools.record): placement counts a pool's workers from the configuration, not from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from slurmsky.backends.sky import pools
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.client import SkyClient, Unreachable
from slurmsky.backends.sky.server import Server
from slurmsky.config import load_config
from slurmsky.errors import SlurmError

log = logging.getLogger("slurmsky.core.daemon")

QUERY_TIMEOUT = 120.0  # s after which a query that never answered is given up
NEW_JOBS_MARGIN = 300.0  # s before the newest submission seen that a query lists ended jobs
ONE_QUERY_SPAN = 86400.0  # s back that one query reaches for the oldest active job's submission
REST = 0.5  # intervals at least between an answer and the next query (2.5 s)
POOL_EVERY = 6  # queue intervals between two questions for the pools' status

Background = Callable[..., Future]  # fn, *args -> its future; the agent wakes when it returns


class QueueWatcher:
    def __init__(self, client: SkyClient, where: Server, background: Background):
        self.client, self.where, self.background = client, where, background
        self.query: Future | None = None
        self.started = 0.0  # when the last query was asked (0: never)
        self.answered = 0.0  # when its answer came
        self.watched: list[int] = []  # SkyPilot ids the query in flight must account for
        self.newest = 0.0  # the latest submitted_at (SkyPilot's clock) an answer held
        self.oldest_active: float | None = None  # the earliest of the last answer's active jobs
        self.full_done = False  # the first answer of an agent lists finished jobs too
        self.user_hash: str | None = None
        self.unreachable: str | None = None  # the pending reason while the server is down

    def collect(self, now: float, apply: Callable[[list[dict], list[int]], bool]) -> bool:
        """Hand the answer of the query in flight, once it came, to `apply(records,
        watched)`; a query unanswered for QUERY_TIMEOUT is given up. True when the state
        changed (the API server answering again changes every pending reason)."""
        if self.query is None:
            return False
        if not self.query.done():
            if now - self.started > QUERY_TIMEOUT:
                log.warning(
                    "SkyPilot queue query unanswered after %.0f s; asking again", QUERY_TIMEOUT
                )
                skysync.record_sync(self.started, "queue query timed out", self.where.name)
                self.query = None
            return False
        query, self.query, self.answered = self.query, None, now
        try:
            records, self.user_hash = query.result()
        except Unreachable as exc:
            self.server_unreachable(str(exc))
            return False
        except Exception as exc:
            log.error("SkyPilot queue failed: %s", exc)
            skysync.record_sync(self.started, str(exc), self.where.name)
            return False
        changed = self.unreachable is not None
        self.unreachable = None
        self.full_done = True
        self.newest = max([self.newest] + [r.get("submitted_at") or 0.0 for r in records])
        active = [r.get("submitted_at") or 0.0 for r in records if r["status"] not in skysync.FINAL]
        self.oldest_active = min(active, default=None)
        changed |= apply(records, self.watched)
        skysync.record_sync(self.started, None, self.where.name)
        return changed

    def server_unreachable(self, reason: str) -> None:
        if self.unreachable != reason:
            log.warning("%s", reason)
        self.unreachable = reason
        skysync.record_sync(self.started, reason, self.where.name)

    def ask(
        self, now: float, wake: list[float], watched: Callable[[], list[int]], wanted: bool
    ) -> None:
        """Start the next query when one is due (`wanted`, or never asked yet) and none is in
        flight (its answer wakes the agent); else add when it is due to `wake`."""
        if self.query is not None or not (wanted or not self.started):
            return
        interval = skysync.SYNC_INTERVAL
        due = max(self.started + interval, self.answered + REST * interval)
        if now < due:
            wake.append(due)
            return
        self.started, self.watched = now, watched()
        since, active = self.since()
        self.query = self.background(self.client.queue, self.where, since, self.watched, active)

    def since(self) -> tuple[float | None, bool]:
        """What the next query lists of finished jobs: all of them (None) the first time,
        then those submitted since shortly before the newest one seen (a job that started
        and ended between two queries is listed too) or since the oldest job still active,
        whichever is earlier; and whether the active jobs must be asked beside (the oldest
        is more than ONE_QUERY_SPAN back: the jobs submitted since would be too many)."""
        if not self.full_done or not self.newest:
            return None, False
        since = self.newest - NEW_JOBS_MARGIN
        oldest = self.oldest_active
        if oldest is None or oldest >= since:
            return since, False
        if since - oldest <= ONE_QUERY_SPAN:
            return oldest - 1.0, False
        return since, True


class PoolWatcher:
    """The configured pools' status, asked every POOL_EVERY queue intervals while the queue is
    kept fresh, and recorded for sinfo when an answer comes (the last record stays for the
    pools whose server failed to answer). Each pool is asked of the server it was made on
    (pools.server_of), else of `home`."""

    def __init__(self, client: SkyClient, background: Background, home: Server):
        self.client, self.background, self.home = client, background, home
        self.query: Future | None = None
        self.started = 0.0
        self.error: str | None = None

    def sync(self, now: float, wake: list[float], keep_fresh: bool) -> None:
        if self.query is not None:
            if self.query.done():
                try:
                    answer, answered, error = self.query.result()
                    pools.record(answer, answered, self.started)
                except Exception as exc:  # the last record stays
                    error = str(exc)
                if error and error != self.error:
                    log.warning("SkyPilot pool status failed: %s", error)
                self.error = error
                self.query = None
            elif now - self.started <= QUERY_TIMEOUT:
                return  # its answer wakes the agent
            else:
                self.query = None
        if not keep_fresh:
            return
        due = self.started + skysync.SYNC_INTERVAL * POOL_EVERY
        if now < due:
            wake.append(due)
            return
        self.started = now
        try:
            names = pools.configured_pools(load_config())
        except SlurmError:  # a broken config: the commands say so
            names = []
        if names:
            self.query = self.background(self._status, names)

    def _status(self, names: list[str]) -> tuple[list[dict], list[str], str | None]:
        """Each server's answer for its pools: the records, the pools answered for, and
        what a server that did not answer said (None: all answered)."""
        answer: list[dict] = []
        answered: list[str] = []
        error = None
        for where, group in pools.by_server(names, self.home):
            try:
                self.client.check_server(where)
                answer += self.client.pool_status(where, group)
                answered += group
            except Exception as exc:
                error = str(exc)
        return answer, answered, error
