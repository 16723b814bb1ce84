"""The SkyPilot backend: every job is a SkyPilot managed job (task.py builds its task), which
the agent's executor launches and follows in SkyPilot's queue (executor.py, sync.py); the
commands read what the agent wrote. salloc's allocation is a cluster of its own instead
(clusters.py), whose steps srun runs on it (steps.py). server.py runs a local API server
on request.

Imported by sbatch and squeue: the standard library only; SkyPilot loads with the executor.
"""

from __future__ import annotations

from slurmsky.backends import Backend, Feature, NodeState

REF_ID_KEYS = ("sky_job_id", "managed_job_id", "job_id")  # where a ref holds SkyPilot's id


class SkyBackend(Backend):
    name = "sky"
    unsupported = {
        Feature.STEP_SIGNALS: "no channel from here reaches a managed job's nodes (scancel "
        "without --signal ends the job through SkyPilot)",
        Feature.SUSPEND: "SkyPilot cannot stop a managed job's processes and resume them",
        Feature.LOGIN_AT_LAUNCH: "a cloud node has no login of the user's to read: the task "
        "carries the environment that may ship",
        Feature.FIXED_NODES: "its nodes are launched for each job (or are a pool's workers, "
        "which come and go): no fixed set of them is known",
        Feature.STEP_IO: "a managed job's nodes are SkyPilot's, with no filesystem shared with "
        "this machine and no channel from here to their steps' input and output",
        Feature.SPEC_ENVIRONMENT: "the environment travels in SkyPilot's task (what may ship: "
        "credentials stay home), not in the stored spec",
    }

    def unavailable(self):
        """SkyPilot, found without importing it (sbatch stays light): what to install."""
        from slurmsky.backends.sky.client import skypilot_missing

        return skypilot_missing()

    def executor(self):
        from slurmsky.backends.sky.executor import SkyExecutor

        return SkyExecutor()

    def task(self, plan, cfg):
        """The SkyPilot task of the plan (task.py), with its warnings (credentials kept
        home, module lines without effect)."""
        from slurmsky.backends.sky.task import plan_task

        return plan_task(plan, cfg)

    def admit(self, plan, cfg):
        """The SkyPilot server this command names (its endpoint and SkyPilot config files:
        the user's and the project's) recorded with the task, or for a pool partition's job
        the server its pool was made on: the agent sends the job there. The workdir's upload is
        checked (the size cap) and any credential in it made SkyPilot's to leave out, said
        once, as are FIFOs, sockets, devices and the state directory, unsaid (upload.py).
        A candidate infra the agent last found unusable there is said too (infra.py)."""
        from slurmsky.backends.sky import infra, pools, server, upload
        from slurmsky.core import state

        req, warnings = plan.request, []
        if req.exclude:
            warnings.append(
                f"{req.command}: warning: --exclude={req.exclude} ignored by slurmsky: a "
                "SkyPilot node has no name before it is launched"
            )
        if plan.task is not None:  # the server this command names; a pool's: the pool's
            meta = plan.task["_metadata"]["slurmsky"]
            where = pools.server_of(meta.get("pool")) or server.current()
            meta["server"] = where.record()
            warnings += infra.submission_warnings(plan.task, where.name, req.command)
        from slurmsky.backends.sky.group import group_tasks

        first = (group_tasks(plan.task) or [plan.task])[0] if plan.task else None
        if first is None or "workdir" not in first:  # a path on the cluster
            return warnings
        up = upload.plan(req.workdir, cfg.upload_max_mb * 1048576, state.home())
        upload.check(up, cfg.upload_max_mb, cfg.path)
        upload.exclude_credentials(up)
        if up.left_out:
            warnings.append(
                f"{req.command}: warning: credentials stay home (left out of the upload of "
                f"{up.root}): " + " ".join(up.left_out)
            )
        return warnings

    def invalid(self, req, part):
        """-w names nodes SkyPilot has not launched (none has a name before): no node has
        them, as slurmctld says of a name it does not know."""
        return "Invalid node name specified" if req.nodelist else None

    def describe(self, plan):
        """The task as YAML, after what becomes of its workdir (an upload, what it would be;
        else a chdir on the node), of the files the job writes there, and its price
        (price.py: SkyPilot's catalogs) as comments."""
        from slurmsky.backends.sky.group import group_documents, group_tasks
        from slurmsky.backends.sky.task import task_notes
        from slurmsky.config import dump_yaml

        assert plan.task is not None  # the sky backend makes a task of every plan
        group = group_tasks(plan.task)
        first = group[0] if group else plan.task
        from slurmsky.backends.sky.price import estimate

        notes = (
            task_notes(plan.request.workdir, first, plan.spec) + estimate(plan.task, plan.spec)[0]
        )
        said = "".join(f"# {line}\n" for line in notes)
        if group:  # a heterogeneous job: SkyPilot's job group, its documents
            return said + "---\n".join(dump_yaml(doc) for doc in group_documents(plan.task))
        return said + dump_yaml(plan.task)

    def allocation_env(self, conn, job):
        from slurmsky.backends.sky.clusters import allocation_env
        from slurmsky.core import state

        assert job.executor_ref is not None  # a started allocation has its cluster's nodes
        return allocation_env(state.get_spec(conn, job.submission)[0], job.executor_ref)

    def run_step(self, conn, job, options, command):
        from slurmsky.backends.sky.steps import run_step

        return run_step(conn, job, options, command)

    def refresh(self):
        from slurmsky.backends.sky.sync import refresh

        refresh()

    def max_nodes(self, part=None):
        """The partition's size (room.py): a job asking more nodes is refused, as Slurm
        refuses one larger than its partition."""
        from slurmsky.backends.sky import room

        return room.size_of(part or {})

    def nodes(self, partition, part, running):
        """A pool's workers (pools.worker_nodes, as the agent last recorded them); else the
        nodes the partition's running jobs hold (SkyPilot's clusters come and go), and its
        room up to its size as powered-down cloud nodes (idle~, PARTITION-K), as Slurm
        shows the nodes it may power up."""
        from slurmsky.backends.sky import pools, room
        from slurmsky.runtime.hostlist import expand

        pool = pools.pool_of(partition, part)
        workers = pools.worker_nodes(pool, part, running) if pool else None
        if workers is not None:
            return workers
        held = [
            NodeState(
                host,
                job.cpus_per_node[0],
                job.cpus_per_node[0],
                job.mem_per_node or 0,
                gres=job.gres,
            )
            for job in running
            if job.partition == partition
            for host in expand(job.nodelist or "")
        ]
        cpus, mem = pools.partition_shape(part)
        return held + [
            NodeState(f"{partition}-{k}", cpus, 0, mem, state="idle~", remote=True)
            for k in range(len(held) + 1, room.size_of(part) + 1)
        ]

    def remote_id(self, job):
        ref = job.executor_ref or {}
        found = next((ref[key] for key in REF_ID_KEYS if ref.get(key) is not None), None)
        return None if found is None else ("SkyPilotJobId", found)

    def cost(self, job):
        spent = (job.result or {}).get("cost")
        return spent["usd"] if spent else None

    def admin_comment(self, job):
        """Its price (costs.py): the estimate at launch, the instance's while it runs, what it
        cost once it ended."""
        from slurmsky.backends.sky.costs import admin_comment

        return admin_comment(job.executor_ref, job.result)

    def cost_line(self, job):
        from slurmsky.backends.sky.costs import cost_line

        return cost_line(job.result)

    def add_commands(self, group):
        from slurmsky.backends.sky.cli import pool, sky_server, translate

        group.add_command(translate)
        group.add_command(sky_server)
        group.add_command(pool)

    def unreachable(self):
        """The API server this command names does not answer (a health check, no SkyPilot
        import); none when the agent's own query of it got an answer moments ago (sbatch in a
        loop asks no more)."""
        import time

        from slurmsky.backends.sky import server, sync

        where = server.endpoint()
        answered = sync.sync_status().get("servers", {}).get(where, 0.0)
        if time.time() - answered < 2 * sync.SYNC_INTERVAL:
            return None
        if server.health(where, timeout=3) is None:
            return server.unreachable_message(where)
        return None

    def doctor(self, cfg):
        from slurmsky.backends.sky.doctor import check

        return check(cfg)

    def needs_agent(self, conn):
        """Jobs slurmsky handed to SkyPilot, or that wait for its API server to answer, are
        followed; SkyPilot's other jobs only while readers come (sync.READERS_IDLE) or one
        still waits for the answer to a query."""
        import time

        from slurmsky.backends.sky import sync
        from slurmsky.core import state

        waiting = "SkyPilotApiServerUnreachable"
        if state.handed_jobs_exist(conn, self.name, sync.FOREIGN_BASE, waiting):
            return True
        # readers came lately, or one came after the last query that answered
        return sync.readers_recent(time.time()) or sync.last_read() > sync.sync_status()["attempt"]


BACKEND = SkyBackend()
