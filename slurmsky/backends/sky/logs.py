"""Each managed job's log, read into its files here while it runs and once more after.

The agent follows a started job's run log with `tail_logs` (a thread each, TAILS at once) into
its LogReader (output.py), so `tail -f` works on the submit host; a read that ended while
SkyPilot still runs the job (a recovery on new nodes) starts again, one that failed up to
LOG_ATTEMPTS times. Once SkyPilot says the job ended, its end waits for the log read whole:
the node runtime's RESULT in it is the job's own state and exit code. A live read that
missed some of the log (the RESULT, a file's frames, output) is done again whole, and a
whole read that got none of it again, up to LOG_ATTEMPTS times, AGAIN seconds apart and
doubling: on the stack SkyPilot's live stream of a big log stalled after 78 KB and ended
with the job, and a whole read just after the job's end got nothing, before SkyPilot had
stored the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from slurmsky.backends.sky.calls import Calls
from slurmsky.backends.sky.client import SkyClient
from slurmsky.backends.sky.output import LogReader
from slurmsky.backends.sky.server import Server
from slurmsky.core import state
from slurmsky.core.state import JobRecord

log = logging.getLogger("slurmsky.core.daemon")

TAILS = 64  # live log reads at once (one per running job; each holds a thread)
LOG_ATTEMPTS = 5  # tries at reading a finished job's log before ending it without output
AGAIN = 5.0  # seconds before an ended job's log is read whole again (doubling each time)


def read_short(reader: Future) -> bool:
    """A finished read (without error) that missed what a whole log holds: the RESULT, or
    some of a file's frames."""
    return reader.exception() is None and not reader.result().whole()


class JobLogs:
    def __init__(self, client: SkyClient, db, pool: Calls, nudge: Callable[[], object]):
        self.client, self.db, self.pool, self.nudge = client, db, pool, nudge
        self.tails = ThreadPoolExecutor(TAILS, thread_name_prefix="sky-log")  # live reads
        self.readers: dict[int, Future] = {}  # job id -> future of its LogReader
        self.logs: dict[int, LogReader] = {}  # job id -> its reader, across reads
        self.failures: dict[int, int] = {}
        self.ended: dict[int, dict] = {}  # job id -> SkyPilot's final record, until recorded
        self.jobs: dict[int, JobRecord] = {}  # job id -> its row, while it is in `ended`
        # job id -> whole reads of its log after it ended, and when the next may start
        self.whole: dict[int, tuple[int, float]] = {}

    def running(self, job: JobRecord, where: Server, sky_id: int) -> None:
        """A job SkyPilot (on `where`) starts or runs: follow its log (again, after a read
        that ended)."""
        reader = self.readers.get(job.job_id)
        if reader is not None:
            if not reader.done():
                return
            if reader.exception() is not None:
                tries = self.failures[job.job_id] = self.failures.get(job.job_id, 0) + 1
                log.warning("job %s: following its log failed: %s", job.job_id, reader.exception())
                if tries >= LOG_ATTEMPTS:
                    return
        self._read(job, where, sky_id, follow=True)

    def ended_there(self, job: JobRecord, rec: dict) -> None:
        """SkyPilot's final record of a job (its `server` the queue's that listed it): its end
        waits for its log, read whole when no read of it is under way or done (ends() reads
        it again when a read missed some of it)."""
        self.ended[job.job_id], self.jobs[job.job_id] = rec, job
        if rec.get("start_at") and job.job_id not in self.readers:
            self._read(job, rec["server"], rec["job_id"], follow=False)

    def lost(self, job_id: int, rec: dict) -> None:
        """A job that ends with `rec` and no log to read (foreign, or gone from SkyPilot)."""
        self.ended.setdefault(job_id, rec)

    def _read(self, job: JobRecord, where: Server, sky_id: int, *, follow: bool) -> None:
        if job.job_id not in self.logs:
            spec = state.get_spec(self.db, job.submission)[0]
            append = spec.get("open_mode") == "append"
            self.logs[job.job_id] = LogReader(job, append, f"{where.name} {sky_id}")
        reader = self.logs[job.job_id].rewind()
        if not follow:
            tries = self.whole.get(job.job_id, (0, 0.0))[0]
            self.whole[job.job_id] = (tries + 1, time.monotonic() + AGAIN * 2**tries)
        # a heterogeneous job's group: component 0's task runs the batch script
        task = 0 if job.het_job_id is not None else None
        future = (self.tails if follow else self.pool).submit(
            self.client.tail, where, sky_id, follow, reader, task
        )
        future.add_done_callback(lambda _: self.nudge())
        self.readers[job.job_id] = future

    def ends(self) -> Iterator[tuple[int, dict, dict | None]]:
        """(job id, SkyPilot's final record, its RESULT or None) of each ended job whose log
        is read (or failed LOG_ATTEMPTS times); a failed read is tried again from the next
        queue answer."""
        for job_id, rec in list(self.ended.items()):
            marker = None
            reader = self.readers.get(job_id)
            if reader is not None:
                if not reader.done():
                    continue
                if self._again(job_id, rec, reader):
                    continue
                try:
                    read = reader.result()
                    row = state.get_job(self.db, job_id)
                    if rec["status"] != "CANCELLED" and not (row and row.kill_action):
                        read.drop_cancel_line()  # no one cancelled it: its node was lost
                    marker = read.final()
                except Exception as exc:
                    tries = self.failures[job_id] = self.failures.get(job_id, 0) + 1
                    log.warning(
                        "job %s: reading its log failed (%s/%s): %s",
                        job_id,
                        tries,
                        LOG_ATTEMPTS,
                        exc,
                    )
                    if tries < LOG_ATTEMPTS:
                        del self.readers[job_id]  # the next queue answer starts a new one
                        del self.ended[job_id]
                        continue
            del self.ended[job_id]
            self.readers.pop(job_id, None)
            self.logs.pop(job_id, None)
            self.failures.pop(job_id, None)
            self.jobs.pop(job_id, None)
            self.whole.pop(job_id, None)
            yield job_id, rec, marker

    def _again(self, job_id: int, rec: dict, reader: Future) -> bool:
        """Whether an ended job's finished read missed some of the log and it is read whole
        now or later: after a live read; after a whole read that got none of the job's log
        (not stored yet), up to LOG_ATTEMPTS times, unless the job was cancelled (what a
        whole read got is all there is)."""
        job = self.jobs.get(job_id)
        if job is None or not rec.get("start_at") or not read_short(reader):
            return False
        tries, after = self.whole.get(job_id, (0, 0.0))
        stored = reader.result().starts or rec["status"] == "CANCELLED"
        if tries and (stored or tries >= LOG_ATTEMPTS):
            return False
        if time.monotonic() >= after:
            log.info(
                "job %s: its log read missed some of it: reading it whole (%s)", job_id, tries + 1
            )
            self._read(job, rec["server"], rec["job_id"], follow=False)
        return True
