"""Node 0: the batch step, the step channel's listener, step ids, limits, cancel, RESULT.json.

Node 0 plays slurmctld and the batch node's slurmstepd: it waits for every agent to check in,
runs the batch script, hands out step ids and fans steps out (its own tasks directly, the
others' through their agents), relays task output, exits and PMI bytes (both ways) between
tasks and the step's srun, enforces the time limit and --signal, obeys a cancel (SIGTERM to
this process) and the ``signal`` command, then ends every process on every node and writes
RESULT.json (atomically)::

    {"state": "COMPLETED"|"FAILED"|"TIMEOUT"|"CANCELLED"|"NODE_FAIL",
     "exit_code": int, "signal": int,      # the batch shell's (Slurm's N:S ExitCode)
     "start": float, "end": float, "reason": str|null,
     "requeue": true,                      # only when `scontrol requeue` ended the job
     "cancel_line": [int, str],            # a SIGTERM's CANCELLED line: its offset, text
     "steps": [{"id": "batch"|int, "name": str, "state": str, "exit_code": int,
                "signal": int, "start": float, "end": float, "nodes": str,
                "ranks": [int],                   # the nodes' ranks, but the batch step's (0):
                "ntasks": int, "cpus": int,       # sky names them as SkyPilot (sync.named_steps)
                "usage": [task usage record]}]} # what sacct lists as N.batch, N.0, ...

The running steps' usage (usage.py's records), refreshed at each sample, is in USAGE_FILE
for sstat: {"batch": [record], "0": [record, ...], ...}.
"""

import json
import logging
import os
import shutil
import signal
import threading
import time

from . import channel, filesync, het, hostlist, layout, procs, rundir, usage
from . import env as envmod
from .batch import Batch, LaunchError
from .spec import settle_names
from .tasks import NodeSteps
from .waker import Waker

log = logging.getLogger(__name__)

HEARTBEAT = 5  # seconds between pings on agent connections
HEARTBEAT_DEAD = 30  # seconds of silence after which a peer is lost
AGENT_GOODBYE = 5  # seconds to wait for agents to finish at the end
STEP_GRACE = 3  # seconds for steps to report after the final SIGKILL
ABORT_GRACE = 0.2  # seconds an aborted step's Ctrl-C has to end it before the SIGKILL
# Slurm's reason suffixes for "*** JOB N ON node CANCELLED AT time<suffix> ***".
SUFFIXES = {
    "cancel": "",
    "timeout": " DUE TO TIME LIMIT",
    "requeue": " DUE TO JOB REQUEUE",
    "node_fail": " DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS",
}
# The running steps (RESULT's step records without an end), rewritten as steps start and end,
# for squeue -s; removed when the job ends (RESULT has them all then).
STEPS_FILE = "steps.json"
USAGE_FILE = "usage.json"
STATES = {
    "cancel": "CANCELLED",
    "timeout": "TIMEOUT",
    "requeue": "CANCELLED",
    "node_fail": "NODE_FAIL",
    "launch": "FAILED",
}


class _Step:
    """A running step as node 0 sees it: its srun, the nodes still running it (and each
    task's), and what sacct will show of it (``record``; its state is the worst task
    status, as Slurm's)."""

    def __init__(self, conn, nodes, tasks, srun_pid, record):
        self.conn, self.nodes, self.pending = conn, nodes, set(nodes)
        self.node_of = {gid: nodes[pos] for pos, gids in enumerate(tasks) for gid in gids}
        self.srun_pid, self.record = srun_pid, record
        self.worst = 0
        self.usage = {}  # node rank -> its tasks' usage records
        self.held = {}  # an --exact step's: node rank -> CPUs it holds there
        self.cancelled_by = None  # the uid whose scancel J.S ended it

    def tell(self, msg, payload=b""):
        try:
            self.conn.send(msg, payload)
        except OSError:
            pass  # srun is gone; the step is being killed

    def tasks_usage(self):
        return sorted((r for recs in self.usage.values() for r in recs), key=lambda r: r["task"])

    def ended(self):
        fields = status_fields(self.worst)
        if self.cancelled_by is not None and fields["state"] == "CANCELLED":
            fields["state"] = "CANCELLED by %d" % self.cancelled_by
        return dict(self.record, end=time.time(), usage=self.tasks_usage(), **fields)


def status_fields(status):
    """A step's sacct State and ExitCode parts from a wait status."""
    if os.WIFSIGNALED(status):
        return {"state": "CANCELLED", "exit_code": 0, "signal": os.WTERMSIG(status)}
    code = os.WEXITSTATUS(status)
    return {"state": "FAILED" if code else "COMPLETED", "exit_code": code, "signal": 0}


class Controller:
    def __init__(self, job, secret, run_dir, result_path, node_environ):
        self.job, self.result_path, self.node_environ = job, result_path, node_environ
        self.node_dir = rundir.node_dir(run_dir, 0)
        self.steps_path = os.path.join(run_dir, STEPS_FILE)
        self.usage_path = os.path.join(run_dir, USAGE_FILE)
        self.keys = {role: channel.role_key(secret, role) for role in channel.ROLES}
        self.lock = threading.Lock()
        self.waker = Waker()
        self.reaper = procs.Reaper()
        self.agents = {}  # rank -> Conn
        self.agents_gone = {}  # rank -> Event set when its connection ends
        self.steps = {}  # step id -> _Step
        self.step_records = []  # ended steps, for RESULT's "steps"
        self.next_step = job.spec["first_step"]
        self.outcome = None  # why the job ends early: a key of STATES
        self.reason = None
        self.cancel_line = None  # [offset, text] of the CANCELLED line a SIGTERM wrote
        self.ending = False
        self.batch = self.local = self.port = self.job_info = None
        self.next_ping = 0.0
        self.suspended_at = None  # monotonic time of scontrol suspend's SIGSTOP, until resume
        self.suspended_for = 0.0  # seconds suspended before, added to the time limit

    # -- the job's life ------------------------------------------------------------------
    def run(self):
        job = self.job
        if self.result_path:
            rundir.reserve(self.result_path)  # RESULT is written even on a full disk
        procs.become_subreaper()
        job.names = settle_names(job)
        if job.spec["node_names"] and job.names != job.spec["node_names"]:
            log.warning(
                "node names %s do not resolve to their nodes; using the node IPs",
                ",".join(job.spec["node_names"]),
            )
        here = channel.all_here(job.ips)
        listener, self.port = channel.listen(job.ip, (0,) if here else channel.ports(job.job_id))
        rundir.write_control(self.node_dir, job.job_id, job.ip, self.port, self.keys["local"])
        bin_dir = rundir.install_tools(self.node_dir)
        sampler = usage.Sampler(job.spec["acct_gather_frequency"], self._on_sample)
        self.local = NodeSteps(job, self.reaper, self.route, bin_dir, self.node_environ, sampler)
        self.batch = Batch(
            job,
            self.node_dir,
            self.reaper,
            envmod.batch_env(job, self.node_environ, bin_dir),
            self.waker.wake,
            sampler,
        )
        files = filesync.start(
            job,
            self.batch.write_error,
            (self.batch.stdout_path, self.batch.stderr_path, self.batch.stdin_path),
        )
        start = time.time()
        self.job_info = self._job_info(start)
        rundir.write_job_info(self.node_dir, self.job_info)
        self.waker.catch((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), self._on_signal)
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()
        log.info(
            "job %d: node 0 of %d listening on %s:%d", job.job_id, job.num_nodes, job.ip, self.port
        )
        if self._wait_agents():
            try:
                self.batch.start()
            except LaunchError as e:
                log.error("job %d: launch failed: %s", job.job_id, e)
                self._end("launch", "JobLaunchFailure")
            else:
                self._watch(time.monotonic())
        self._terminate()
        if files:
            files.finish()  # what the job left, whatever its end, before the result
        end = time.time()
        result = self._result(start, end)
        self.batch.close()
        if self.result_path:
            rundir.write_result(self.result_path, json.dumps(result) + "\n")
        log.info(
            "job %d: %s %d:%d", job.job_id, result["state"], result["exit_code"], result["signal"]
        )
        shutil.rmtree(self.node_dir, ignore_errors=True)
        if result["state"] == "COMPLETED":
            return 0
        return result["exit_code"] or (128 + result["signal"] if result["signal"] else 1)

    def _wait_agents(self):
        deadline = time.monotonic() + self.job.spec["startup_timeout"]
        while not self.outcome:
            with self.lock:
                if len(self.agents) == self.job.num_nodes - 1:
                    return True
            if time.monotonic() > deadline:
                with self.lock:
                    missing = [
                        self.job.ips[r]
                        for r in range(1, self.job.num_nodes)
                        if r not in self.agents
                    ]
                log.error("job %d: no agent from %s", self.job.job_id, ", ".join(missing))
                self._end("node_fail", "agents did not start")
                break
            self.waker.wait(min(self._heartbeat(), deadline) - time.monotonic())
        return False

    def _watch(self, started):
        """Until the batch script ends or something ends the job: time limit, --signal."""
        spec = self.job.spec
        sig = spec["signal"]
        signalled = False
        while not self.outcome and not self.batch.done.is_set():
            now = time.monotonic()
            limit = signal_at = None  # none runs out while the job is suspended
            if spec["time_limit"] and self.suspended_at is None:
                limit = started + self.suspended_for + spec["time_limit"]
                signal_at = limit - sig["seconds"] if sig and not signalled else None
            if limit is not None and now >= limit:
                self._end("timeout")
                break
            if signal_at is not None and now >= signal_at:
                target = "full" if sig["full"] else "batch" if sig["batch"] else "steps"
                self.deliver(sig["signum"], target)
                signal_at, signalled = None, True
            wake_at = min(t for t in (limit, signal_at, self._heartbeat()) if t is not None)
            self.waker.wait(wake_at - now)

    def _heartbeat(self):
        """Ping the agents when due (they give node 0 up after HEARTBEAT_DEAD of silence);
        -> when the next ping is due."""
        now = time.monotonic()
        if now >= self.next_ping:
            self._to_agents({"t": "ping"})
            self.next_ping = now + HEARTBEAT
        return self.next_ping

    def _on_signal(self, signum, frame):
        self._end("cancel")

    def _end(self, outcome, reason=None):
        """The first reason to end the job early wins; none counts once the job is ending
        (a cancel that comes after the script's end leaves the job COMPLETED)."""
        if not self.outcome and not self.ending:
            self.outcome, self.reason = outcome, reason
        self.waker.wake()

    def _terminate(self):
        """End everything on every node: the Slurm line, TERM, KillWait, KILL, agents out."""
        job = self.job
        with self.lock:
            self.ending = True
            steps = dict(self.steps)
        if self.outcome in SUFFIXES:
            when = time.strftime("%Y-%m-%dT%H:%M:%S")
            suffix = SUFFIXES[self.outcome]
            head = job.names[0]
            line = "slurmstepd-%s: error: *** JOB %d ON %s CANCELLED AT %s%s ***" % (
                head,
                job.job_id,
                head,
                when,
                suffix,
            )
            at = self.batch.write_error(line)
            if self.outcome == "cancel" and at is not None:
                # a SIGTERM: scancel's, or (on SkyPilot) a lost node's, which Slurm prints
                # nothing for; the agent at home, which knows, drops the line for the latter
                self.cancel_line = [at, line + "\n"]
            for sid, step in sorted(steps.items()):
                first = job.names[step.nodes[0]]
                step.tell(
                    {
                        "t": "msg",
                        "aborted": True,
                        "text": "srun: Job step aborted: Waiting up to %d seconds "
                        "for job step to finish." % (job.kill_wait + 2),
                    }
                )
                step.tell(
                    {
                        "t": "msg",
                        "text": "slurmstepd-%s: error: *** STEP %d.%d ON %s "
                        "CANCELLED AT %s%s ***" % (first, job.job_id, sid, first, when, suffix),
                    }
                )
        if self._busy():
            self._everywhere(signal.SIGCONT)
            self._everywhere(signal.SIGTERM)
            deadline = time.monotonic() + job.kill_wait
            while self._busy() and time.monotonic() < deadline:
                self._heartbeat()
                self.waker.wait(0.05)
        self._everywhere(signal.SIGKILL)
        deadline = time.monotonic() + STEP_GRACE
        while self.steps and time.monotonic() < deadline:
            self.waker.wait(0.05)
        with self.lock:
            left = list(self.steps.values())
            self.steps.clear()
            self.step_records.extend(step.ended() for step in left)
        for step in left:  # a lost node never reported: end its srun anyway
            step.tell({"t": "end"})
        for path in (self.steps_path, self.usage_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        self._to_agents({"t": "shutdown"})
        for gone in list(self.agents_gone.values()):
            gone.wait(AGENT_GOODBYE)

    def _busy(self):
        batch_running = self.batch.pid is not None and not self.batch.done.is_set()
        return batch_running or bool(self.steps) or bool(procs.descendants(os.getpid()))

    def _everywhere(self, signum):
        if signum == signal.SIGKILL:
            procs.kill_everything()
        else:
            procs.signal_everything(signum)
        self._to_agents({"t": "kill", "signum": signum})

    def _result(self, start, end):
        status = self.batch.status or 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        if self.outcome == "launch":
            code, sig = 0, 53  # what sacct shows for a JobLaunchFailure
        state = STATES.get(self.outcome) or ("COMPLETED" if status == 0 else "FAILED")
        result = {
            "state": state,
            "exit_code": code,
            "signal": sig,
            "start": start,
            "end": end,
            "reason": self.reason,
        }
        if self.outcome == "requeue":
            result["requeue"] = True
        if self.cancel_line:
            result["cancel_line"] = self.cancel_line
        steps = sorted(self.step_records, key=lambda r: r["id"])
        if self.batch.pid is not None:
            job = self.job
            steps.insert(
                0,
                dict(
                    id="batch",
                    name="batch",
                    start=self.batch.started,
                    end=end,
                    nodes=job.names[0],
                    ntasks=1,
                    cpus=job.spec["cpus_per_node"][0],
                    usage=[self.batch.usage.record],
                    **status_fields(status),
                ),
            )
        result["steps"] = steps
        return result

    def _job_info(self, start):
        """What scontrol show job prints inside the job (every node gets it)."""
        job, batch, spec = self.job, self.batch, self.job.spec
        return {
            "job_id": job.job_id,
            "array_job_id": job.array_job_id,
            "array_task_id": job.array_task_id,
            "job_name": spec["job_name"],
            "user": spec["user"],
            "uid": spec["uid"],
            "gid": spec["gid"],
            "account": spec["account"],
            "qos": spec["qos"],
            "partition": spec["partition"],
            "start": start,
            "time_limit": spec["time_limit"],
            "names": job.names,
            "ntasks": spec["ntasks"] or sum(spec["tasks_per_node"]),
            "cpus": sum(spec["cpus_per_node"]),
            "cpus_per_task": spec["cpus_per_task"] or 1,
            "workdir": job.workdir,
            "stdout": batch.stdout_path,
            "stderr": batch.stderr_path,
            "stdin": batch.stdin_path,
        }

    # -- the step channel ----------------------------------------------------------------
    def _accept_loop(self, listener):
        while True:
            sock, addr = listener.accept()
            threading.Thread(target=self._serve, args=(sock, addr), daemon=True).start()

    def _serve(self, sock, addr):
        try:
            conn, hello = channel.accept(sock, self.job.job_id, self.keys)
        except channel.ChannelError as e:
            log.warning("refused connection from %s:%d: %s", addr[0], addr[1], e)
            sock.close()
            return
        if hello["role"] == "agent":
            self._serve_agent(conn, hello.get("rank"), addr)
            return
        try:
            request, _ = conn.recv()
            if request.get("t") == "launch":
                self._run_step(conn, request)
            elif request.get("t") == "signal":
                self.deliver(int(request["signum"]), request.get("target", "steps"))
                conn.send({"t": "ok"})
            elif request.get("t") == "requeue":
                self._end("requeue", "requeue")
                conn.send({"t": "ok"})
        except (channel.ChannelError, OSError):
            pass
        finally:
            conn.close()

    def _serve_agent(self, conn, rank, addr):
        with self.lock:
            if (
                not isinstance(rank, int)
                or not 0 < rank < self.job.num_nodes
                or rank in self.agents
                or self.ending
            ):
                log.warning("refused agent %r from %s: unexpected", rank, addr[0])
                conn.close()
                return
            self.agents[rank] = conn
            gone = self.agents_gone[rank] = threading.Event()
        log.info("agent of node %d (%s) joined from %s", rank, self.job.names[rank], addr[0])
        try:
            conn.send(
                {
                    "t": "setup",
                    "names": self.job.names,
                    "port": self.port,
                    "job_info": self.job_info,
                }
            )
            self.waker.wake()
            conn.sock.settimeout(HEARTBEAT_DEAD)
            while True:
                msg, payload = conn.recv()
                if msg["t"] == "bye":
                    break
                if msg["t"] != "ping":
                    self.route(msg, payload)
        except (channel.ChannelError, OSError) as e:
            if not self.ending:
                log.error("lost node %d (%s): %s", rank, self.job.names[rank], e)
                self._end("node_fail", "lost node %s" % self.job.names[rank])
        finally:
            conn.close()
            gone.set()
            for sid in list(self.steps):  # the node will report nothing more
                self.route({"t": "done", "step": sid, "node": rank})
            self.waker.wake()

    def _to_agents(self, msg):
        with self.lock:
            agents = list(self.agents.values())
        for conn in agents:
            try:
                conn.send(msg)
            except OSError:
                pass

    # -- steps ---------------------------------------------------------------------------
    def _step_layout(self, req):
        """The step's nodes and tasks (layout.plan); an --exact step's beside the CPUs the
        job's other --exact steps hold (with self.lock held)."""
        job = self.job
        if het.components(job.spec):
            return het.step_layout(job, req)
        busy = None
        if req.get("exact"):
            busy = [0] * len(job.names)
            for other in self.steps.values():
                for node, cpus in other.held.items():
                    busy[node] += cpus
        names, cpus = job.names, job.spec["cpus_per_node"]
        return layout.plan_request(names, cpus, req, req["ntasks"], req["nnodes"], busy)

    def _run_step(self, conn, req):
        job = self.job
        with self.lock:
            try:
                nodes, tasks = self._step_layout(req)
            except layout.LayoutError as e:
                conn.send({"t": "error", "message": str(e)})
                return
            if self.ending:
                conn.send({"t": "error", "message": "Job/step already completing or completed"})
                return
            sid = self.next_step
            self.next_step += 1
            step = {
                "id": sid,
                "nodes": nodes,
                "tasks": tasks,
                "argv": req["argv"],
                "programs": req.get("programs"),  # --multi-prog: {rank: argv}
                "cwd": req["cwd"],
                "stdin": req.get("stdin"),  # srun -i FILE: (path, per task) or None
                "stdin_to": req.get("stdin_to"),  # the tasks srun's own stdin goes to
                "rlimits": req.get("rlimits"),  # srun's soft limits, for its tasks
                "debugger_test": req.get("debugger_test", False),  # tasks start stopped
                # as do a suspended job's (its srun asked before the SIGSTOP): resume's
                # SIGCONT starts them
                "suspended": self.suspended_at is not None,
                "task_prolog": req.get("task_prolog"),  # srun --task-prolog/--task-epilog
                "task_epilog": req.get("task_epilog"),
                "stepd_level": req.get("stepd_level", 0),  # --slurmd-debug (tasks.py)
                "umask": req["umask"],
                "bin_dir": req["bin_dir"],
                "srun_host": req["srun_host"],
                "srun_port": req["srun_port"],
                "cpus_per_task": req["cpus_per_task"],
                "cpus_per_task_set": req["cpus_per_task_set"],
                "job_name": req["job_name"],
                "exact": req.get("exact", False),
                "label": req.get("label", False),
                "overcommit": req.get("overcommit", False),
                "preserve_env": req.get("preserve_env", False),
                # the srun that made an allocation of its own runs as the batch process
                "allocating": job.spec["command"] == "srun"
                and req.get("pid") is not None
                and req.get("pid") == self.batch.pid,
                "gpus": req.get("gpus"),
                "het_groups": req.get("het_groups"),
                # srun --mpi=pmi2: Slurm's PMI_JOBID (job.step), and a random part, as MPICH
                # names its shared memory after it and job ids repeat across state dirs
                "pmi_jobid": "%d.%d.%s" % (job.job_id, sid, os.urandom(4).hex())
                if req.get("mpi") == "pmi2"
                else None,
            }
            step["env"] = envmod.step_env(req["env"], job, step)
            ntasks = sum(len(gids) for gids in tasks)
            self.steps[sid] = _Step(
                conn,
                nodes,
                tasks,
                req.get("pid"),
                {
                    "id": sid,
                    "name": req["job_name"] or os.path.basename(req["argv"][0]),
                    "start": time.time(),
                    "nodes": hostlist.compress([job.names[i] for i in nodes]),
                    "ranks": nodes,
                    "ntasks": ntasks,
                    "srun": "%s:%d" % (os.uname().nodename, req.get("pid") or 0),  # scontrol's
                    # an --exact step its tasks' CPUs; any other the job's on its nodes
                    # (Slurm 22.05: a 1-task step of a 2-CPU job has AllocCPUS 2)
                    "cpus": ntasks * req["cpus_per_task"]
                    if req.get("exact")
                    else max(
                        ntasks * req["cpus_per_task"],
                        sum(job.spec["cpus_per_node"][i] for i in nodes),
                    ),
                },
            )
            if req.get("exact"):  # the CPUs it holds on each node
                self.steps[sid].held = {
                    node: len(gids) * req["cpus_per_task"] for node, gids in zip(nodes, tasks)
                }
            self._publish_steps()
        conn.send(
            {
                "t": "step",
                "id": sid,
                "nodes": nodes,
                "tasks": tasks,
                "names": [job.names[i] for i in nodes],
                "pmi_jobid": step["pmi_jobid"],
                "stdin_to": step["stdin_to"],
            }
        )
        for node in nodes:
            if node == 0:
                self.local.launch(step)
            else:
                self._to_agent(node, {"t": "launch", "step": step})
        try:
            while True:  # srun's requests until it goes away
                msg, payload = conn.recv()
                if msg.get("t") == "pmi":  # srun's PMI answer to a task
                    self._pmi_answer(sid, msg.get("task"), payload)
                elif msg.get("t") == "in":  # srun's own stdin
                    self._stdin_step(sid, step["stdin_to"], payload)
                elif msg.get("t") == "signal":
                    self._signal_step(sid, int(msg["signum"]))
                elif msg.get("t") == "terminate":  # srun -K: a task failed
                    self._terminate_step(sid)
                elif msg.get("t") == "abort":  # srun: SIGTERM, Ctrl-C twice, a PMI abort, -W
                    self._abort_step(sid, 0 if msg.get("pmi") or msg.get("now") else ABORT_GRACE)
        except channel.ChannelError:
            if sid in self.steps:  # srun died: so does its step, as on Slurm
                self._signal_step(sid, signal.SIGKILL)

    def _on_sample(self):
        """After a sample: this node's steps' usage in, then every running step's out to
        USAGE_FILE for sstat (other nodes' as their last reports gave it)."""
        self.local.report_usage()
        with self.lock:
            if self.ending:
                return
            running = {str(sid): step.tasks_usage() for sid, step in self.steps.items()}
        if self.batch.pid is not None and not self.batch.done.is_set():
            running["batch"] = [self.batch.usage.record]
        try:
            rundir.write_private(self.usage_path, json.dumps(running) + "\n")
        except OSError as e:
            log.warning("cannot write %s: %s", self.usage_path, e)

    def _publish_steps(self):
        """Write the running steps for squeue -s (called with the lock held)."""
        if self.ending:
            return
        records = [step.record for _, step in sorted(self.steps.items())]
        try:
            rundir.write_private(self.steps_path, json.dumps(records) + "\n")
        except OSError as e:
            log.warning("cannot write %s: %s", self.steps_path, e)

    def _terminate_step(self, sid):
        """End one step as slurmstepd does: its line, CONT, TERM, KillWait, KILL."""
        with self.lock:
            step = self.steps.get(sid)
        if step is None:
            return
        self._tell_cancelled(step, sid)
        self._signal_step(sid, signal.SIGCONT)
        self._signal_step(sid, signal.SIGTERM)
        timer = threading.Timer(self.job.kill_wait, self._signal_step, (sid, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def _abort_step(self, sid, grace):
        """srun aborts its step (Slurm's slurm_kill_job_step SIGKILL): srun's line and
        slurmstepd's, then SIGKILL, after `grace` for the tasks a Ctrl-C sent just before
        (ABORT_GRACE: they die of the Ctrl-C, as on Slurm, where the kill takes a round
        through slurmctld), at once for a PMI abort."""
        with self.lock:
            step = self.steps.get(sid)
        if step is None:
            return
        step.tell(
            {
                "t": "msg",
                "aborted": True,
                "text": "srun: Job step aborted: Waiting up to %d seconds for job step to "
                "finish." % (self.job.kill_wait + 2),
            }
        )
        self._tell_cancelled(step, sid)
        timer = threading.Timer(grace, self._signal_step, (sid, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def _tell_cancelled(self, step, sid):
        first = self.job.names[step.nodes[0]]
        step.tell(
            {
                "t": "msg",
                "text": "slurmstepd-%s: error: *** STEP %d.%d ON %s CANCELLED AT "
                "%s ***" % (first, self.job.job_id, sid, first, time.strftime("%Y-%m-%dT%H:%M:%S")),
            }
        )

    def _to_agent(self, rank, msg, payload=b""):
        with self.lock:
            conn = self.agents.get(rank)
        if conn is not None:
            try:
                conn.send(msg, payload)
            except OSError:
                pass

    def _pmi_answer(self, sid, gid, payload):
        with self.lock:
            step = self.steps.get(sid)
        node = step.node_of.get(gid) if step is not None else None
        if node == 0:
            self.local.pmi(sid, gid, payload)
        elif node is not None:
            self._to_agent(node, {"t": "pmi", "step": sid, "task": gid}, payload)

    def _stdin_step(self, sid, to, data):
        """srun's stdin (b"": its end) to the nodes of the step's tasks that read it (`to`:
        "all" or a task id)."""
        with self.lock:
            step = self.steps.get(sid)
        if step is None:
            return
        nodes = step.nodes if to == "all" else [step.node_of[to]] if to in step.node_of else []
        for node in nodes:
            if node == 0:
                self.local.stdin(sid, data)
            else:
                self._to_agent(node, {"t": "in", "step": sid}, data)

    def _signal_step(self, sid, signum):
        with self.lock:
            step = self.steps.get(sid)
        if step is None:
            return
        for node in step.nodes:
            if node == 0:
                self.local.signal(signum, [sid])
            else:
                self._to_agent(node, {"t": "signal", "signum": signum, "steps": [sid]})

    def route(self, msg, payload=b""):
        """Output, PMI requests, exits and completion of a step on some node -> the step's
        srun."""
        with self.lock:
            step = self.steps.get(msg.get("step"))
        if step is None:
            return
        if msg.get("usage") is not None:
            step.usage[msg.get("node")] = msg["usage"]
        if msg["t"] in ("out", "exit", "pmi", "pids", "msg"):
            if msg["t"] == "exit":
                step.worst = max(step.worst, msg["status"])
            step.tell(msg, payload)
        elif msg["t"] == "done":
            with self.lock:
                step.pending.discard(msg.get("node"))
                finished = not step.pending and self.steps.pop(msg["step"], None) is not None
                if finished:
                    self.step_records.append(step.ended())
                    self._publish_steps()
            if finished:
                step.tell({"t": "end"})
                self.waker.wake()

    def deliver(self, signum, target):
        """scancel --signal [--batch|--full] and sbatch --signal, as Slurm delivers them;
        target "job": every process of the job on every node (scontrol suspend's SIGSTOP,
        resume's SIGCONT; the time suspended does not count towards the time limit);
        "step:S": step S alone (scancel J.S)."""
        if target.startswith("step:"):  # scancel J.S: that step (SIGKILL: cancelled, by UID)
            sid_text, _, by = target[5:].partition(":")
            sid = int(sid_text)
            if signum == signal.SIGKILL:
                with self.lock:
                    step = self.steps.get(sid)
                if step is not None and by:
                    step.cancelled_by = int(by)
                self._abort_step(sid, 0)
            else:
                self._signal_step(sid, signum)
            return
        if target == "job":
            now = time.monotonic()
            if signum == signal.SIGSTOP and self.suspended_at is None:
                self.suspended_at = now
            elif signum == signal.SIGCONT and self.suspended_at is not None:
                self.suspended_for += now - self.suspended_at
                self.suspended_at = None
            self._everywhere(signum)
            self.waker.wake()
            return
        if target in ("batch", "full") and self.batch.pid and not self.batch.done.is_set():
            if target == "batch":
                procs.kill(self.batch.pid, signum)
            else:  # the shell and its children, but not the sruns: they would forward the
                # signal to the very tasks signalled below, which would then get it twice
                with self.lock:
                    sruns = {step.srun_pid for step in self.steps.values()}
                for pid in [self.batch.pid] + procs.descendants(self.batch.pid):
                    if pid not in sruns:
                        procs.kill(pid, signum)
        if target in ("steps", "full"):
            self.local.signal(signum)
            self._to_agents({"t": "signal", "signum": signum, "steps": None})
