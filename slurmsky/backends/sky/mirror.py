"""A server's queue answer mirrored into the state of the jobs that went there.

Our jobs (their metadata names this agent's instance) follow SkyPilot's records: state,
restarts, the partition SkyPilot's infra chose, a heterogeneous job's nodes; their output
comes home from SkyPilot's log (logs.py; a lane's elements: lane_tracker.py), the instance
they run on is priced (price.py) and their end is recorded, with what they cost, once that
log is read (`finish`). A record whose slurmsky job was cancelled or
requeued meanwhile is cancelled there; a launch whose answer an earlier agent never saw is
found again by its token and rank. SkyPilot jobs slurmsky did not submit get rows of their
own (FOREIGN_BASE + id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slurmsky.backends.sky import price
from slurmsky.backends.sky import sync as skysync
from slurmsky.backends.sky.lane_tracker import LaneTracker, ref_of, sky_ids
from slurmsky.backends.sky.launcher import Launcher
from slurmsky.backends.sky.logs import JobLogs
from slurmsky.backends.sky.server import Server
from slurmsky.core import state, transitions
from slurmsky.core.state import JobRecord, team
from slurmsky.core.states import ACTIVE_STATES, STARTED_STATES
from slurmsky.runtime.spec import infra_matches

log = logging.getLogger("slurmsky.core.daemon")


class Mirror:
    def __init__(
        self,
        db,
        instance: str,
        parts: tuple[Launcher, JobLogs, LaneTracker],
        plan: Callable[[int], tuple[dict, dict]],
        where: Callable[[JobRecord], Server],
        active: Callable[[str], list[JobRecord]],
        cancel: Callable[[Server, int], None],
    ):
        self.db, self.instance = db, instance
        self.launcher, self.logs, self.lanes = parts
        self.plan, self.where, self.active, self.cancel = plan, where, active, cancel

    def apply(
        self, where: Server, user_hash: str | None, records: list[dict], watched: list[int], now
    ) -> bool:
        """One server's queue answer (`watched`: the ids it was asked for by id)."""
        by_job: dict[int, list[dict]] = {}
        for rec in records:
            rec["server"] = where  # where its log is read and its cancel sent
            by_job.setdefault(rec["job_id"], []).append(rec)
        views = [skysync.job_view(recs) for recs in by_job.values()]
        mine = {
            v["job_id"]
            for v in views
            if (v.get("metadata") or {}).get("slurmsky", {}).get("instance") == self.instance
        }
        changed = self._own(where, [v for v in views if v["job_id"] in mine], now)
        foreign = [v for v in views if v["job_id"] not in mine]
        if team.is_team(self.db, fresh=True):
            # another member's jobs are in the queue already (their agent mirrors them); a
            # job no member submitted is mirrored by its SkyPilot user's member
            foreign = [
                v
                for v in foreign
                if "slurmsky" not in (v.get("metadata") or {})
                and user_hash is not None
                and v.get("user_hash") == user_hash
            ]
        changed |= self._foreign(where, user_hash, foreign, now)
        gone = set(watched) - set(by_job)  # asked for by id and not there: SkyPilot lost them
        if gone:
            self._gone(where, gone)
        return changed

    def _gone(self, where: Server, gone: set[int]) -> None:
        """Jobs SkyPilot lost end FAILED_CONTROLLER (NODE_FAIL); a lane of a release it lost
        ends so for the lanes' tracker (the elements it ran end so, the others wait for the
        release's other lanes)."""
        lost = {"status": "FAILED_CONTROLLER", "failure_reason": "NotInSkyPilotQueue"}
        releases: dict[str, list[JobRecord]] = {}
        for job in self.active(where.name):
            ref = ref_of(job)
            if "lanes" in ref:
                releases.setdefault(ref["token"], []).append(job)
            elif ref.get("sky_job_id") in gone:
                log.warning("job %s: SkyPilot job %s is gone", job.job_id, ref["sky_job_id"])
                self.logs.lost(job.job_id, dict(lost, job_id=ref["sky_job_id"]))
        for token, members in releases.items():
            for sky_id in sorted(set(sky_ids(ref_of(members[0]))) & gone):
                log.warning("release %s: SkyPilot job %s is gone", token, sky_id)
                meta = {"slurmsky": {"token": token}}
                self.lanes.follow(
                    token, members, dict(lost, job_id=sky_id, server=where, metadata=meta)
                )

    def finish(self, now: float) -> bool:
        """Record the end of jobs SkyPilot finished, once their log (if any) is read."""
        changed = False
        for job_id, rec, marker in self.logs.ends():
            result = skysync.result_of(rec, marker)
            job = state.get_job(self.db, job_id)
            spent = self._cost(job, rec) if job and job.executor_ref else None
            if spent:
                result = dict(result, cost=spent)
            placed = self._placed(job, rec) if job and job.executor_ref else {}
            fields = transitions.finish(self.db, job_id, result, now, ACTIVE_STATES, **placed)
            if fields is not None:
                changed = True
                log.info("job %s: %s (SkyPilot %s)", job_id, fields["state"], rec["status"])
        return changed

    @staticmethod
    def _cost(job: JobRecord, rec: dict) -> dict | None:
        """What the job cost: the price of the instance it was seen on (or is still listed
        on at its end) over SkyPilot's start_at..end_at."""
        launch = ref_of(job).get("launched") or price.launched(rec)
        if launch and "rate" not in launch:
            launch = price.hourly(launch)
        return price.cost(launch, rec.get("start_at"), rec.get("end_at")) if launch else None

    def _own(self, where: Server, records: list[dict], now: float) -> bool:
        changed = False
        jobs = self.active(where.name)
        by_sky = {
            ref_of(j)["sky_job_id"]: j for j in jobs if ref_of(j).get("sky_job_id") is not None
        }
        lane_members: dict[str, list[JobRecord]] = {}
        for j in jobs:
            if "lane" in ref_of(j):
                lane_members.setdefault(ref_of(j)["token"], []).append(j)
        by_token: dict[str, list[dict]] = {}
        for rec in records:
            by_token.setdefault(rec["metadata"]["slurmsky"].get("token"), []).append(rec)
        for rec in records:
            token = rec["metadata"]["slurmsky"].get("token")
            if token in self.launcher.pending:
                continue  # listed before its launch answered: next time
            self.lanes.name(rec)
            if token in lane_members:
                self.lanes.follow(token, lane_members[token], rec)
                continue
            job = by_sky.get(rec["job_id"])
            if job is None or ref_of(job).get("token") != token:
                job = self._adopt(rec, jobs, by_token)
            if job is None:
                if rec["status"] not in skysync.FINAL and not self.lanes.settled(rec):
                    # its job was cancelled or requeued
                    log.info(
                        "SkyPilot job %s has no slurmsky job any more: cancelling it", rec["job_id"]
                    )
                    self.cancel(where, rec["job_id"])
                continue
            changed |= self._follow(job, rec, now)
        for job in jobs:  # a launch an earlier agent started that never reached SkyPilot
            ref = ref_of(job)
            if not sky_ids(ref) and ref.get("token") not in self.launcher.pending:
                log.info("job %s: its launch never reached SkyPilot; pending again", job.job_id)
                changed |= transitions.pend_again(self.db, job.job_id)
        return changed

    def _adopt(self, rec: dict, jobs: list[JobRecord], by_token: dict) -> JobRecord | None:
        """A launch whose answer this agent never saw (it restarted): match by token/rank."""
        token = rec["metadata"]["slurmsky"].get("token")
        ids = sorted(r["job_id"] for r in by_token.get(token, []))
        for job in jobs:
            ref = ref_of(job)
            if (
                ref.get("token") == token
                and ref.get("sky_job_id") is None
                and ids.index(rec["job_id"]) == (ref.get("rank") or 0)
            ):
                ref = dict(ref, sky_job_id=rec["job_id"])
                state.update_job(self.db, job.job_id, executor_ref=ref)
                job.executor_ref = ref
                log.info("job %s: found SkyPilot job %s again", job.job_id, rec["job_id"])
                return job
        return None

    def _follow(self, job: JobRecord, rec: dict, now: float) -> bool:
        """One of our jobs: its state from SkyPilot's, its output from SkyPilot's log."""
        if rec["status"] in skysync.FINAL:
            self.logs.ended_there(job, rec)
            return False
        if rec["status"] == "RECOVERING" and not job.requeue and not job.kill_action:
            return self._node_fail(job, rec, now)
        if rec["status"] not in skysync.QUEUED_THERE:
            self.logs.running(job, rec["server"], rec["job_id"])
        if job.kill_action:
            return False  # COMPLETING until SkyPilot has cancelled it
        return self._update(job, rec, now)

    def _node_fail(self, job: JobRecord, rec: dict, now: float) -> bool:
        """--no-requeue: a job SkyPilot would recover on new nodes ends NODE_FAIL, as Slurm
        ends a job that may not be requeued when its node fails; SkyPilot's job is cancelled."""
        log.info("job %s: SkyPilot recovers it and it may not requeue: NODE_FAIL", job.job_id)
        self.cancel(rec["server"], rec["job_id"])
        result = {"state": "NODE_FAIL", "start": job.start_time, "end": now, "reason": "NodeDown"}
        ended = transitions.finish(self.db, job.job_id, result, now, ACTIVE_STATES)
        return ended is not None

    def _placed(self, job: JobRecord, rec: dict, ref: dict | None = None) -> dict:
        """What SkyPilot's record says of the runs of one of our jobs: its restarts (the
        requeues before its launch, and the recoveries since: SkyPilot's count, or the
        RECOVERING states seen here when more, as SkyPilot 0.14.1 on Slurm infra counts
        none) and, for a job over several partitions (-p a,b), the partition whose infra
        SkyPilot chose."""
        ref = ref or ref_of(job)
        if ref.get("foreign"):
            return {}
        runs = max(rec.get("recovery_count") or 0, ref.get("recovered") or 0)
        fields = {"restarts": (ref.get("restarts") or 0) + runs}
        pairs = self.plan(job.submission)[0].get("partition_infra")
        if pairs and rec.get("cloud") not in (None, "-"):
            at = (rec["cloud"], rec.get("region"), rec.get("zone"))
            fields["partition"] = next((p for i, p in pairs if infra_matches(i, *at)), None)
        return {k: v for k, v in fields.items() if v is not None}

    def _update(self, job: JobRecord, rec: dict, now: float) -> bool:
        """The active columns SkyPilot's record changes. A run SkyPilot recovers on new
        nodes (RECOVERING, or a recovery seen only by its count) ends NODE_FAIL, kept as
        Slurm keeps the run of a job requeued when its node fails (`sacct -D`)."""
        fields = skysync.active_fields(rec, job, now)
        ref = ref_of(job)
        if fields.get("state") == "REQUEUED" and job.state in STARTED_STATES:
            seen = max((ref.get("recovered") or 0) + 1, rec.get("recovery_count") or 0)
            ref = fields["executor_ref"] = dict(ref, recovered=seen)
        fields = dict(fields, **self._placed(job, rec, ref))
        seen = price.launched(rec)
        known = ref.get("launched") or {}
        if seen and {k: known.get(k) for k in seen} != seen:  # priced once per instance
            ref = fields["executor_ref"] = dict(ref, launched=price.hourly(seen) or seen)
        names = skysync.group_names(rec)
        if names and ref.get("names") != names:  # a heterogeneous job's: each component's
            ref = fields["executor_ref"] = dict(ref, names=names)
            self._component_nodes(job, names)
        fields = {k: v for k, v in fields.items() if getattr(job, k) != v}
        if not fields:
            return False
        recovered = job.state in STARTED_STATES and (
            fields.get("state") == "REQUEUED" or fields.get("restarts", 0) > job.restarts
        )
        with state.write(self.db):
            changed = state.update_job(self.db, job.job_id, where_state=ACTIVE_STATES, **fields)
            if changed and recovered:
                transitions.keep_run(self.db, job, now, ended="NODE_FAIL")
        return changed

    def _component_nodes(self, job: JobRecord, names: list[str]) -> None:
        """A heterogeneous job's rows each with its component's nodes (its group task's),
        the leader's too (its executor_ref's names share its steps out: transitions)."""
        from slurmsky.runtime import hostlist

        for comp in self.plan(job.submission)[0].get("het") or ():
            first, count = comp["nodes"]
            own = names[first : first + count]
            if own:
                nodes = hostlist.compress(own)
                state.update_job(self.db, comp["job_id"], nodelist=nodes, batch_host=own[0])

    def _foreign(self, where: Server, user_hash, records: list[dict], now: float) -> bool:
        """SkyPilot jobs slurmsky did not submit: rows FOREIGN_BASE + id, kept in step; a row
        is the server's whose queue listed that id first (ids repeat across servers)."""
        changed = False
        for rec in records:
            job_id = skysync.FOREIGN_BASE + rec["job_id"]
            job = state.get_job(self.db, job_id)
            if job is None:
                row = skysync.foreign_row(rec, user_hash)
                row["executor_ref"]["server"] = where.name
                state.add_submission(self.db, job_id, {}, None, [row])
                job = state.get_job(self.db, job_id)
                assert job is not None  # just added
                changed = True
            if job.finished or self.where(job).name != where.name:
                continue
            if rec["status"] in skysync.FINAL:
                self.logs.ended[job_id] = rec
            elif not job.kill_action:
                changed |= self._update(job, rec, now)
        return changed
