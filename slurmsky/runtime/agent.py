"""Nodes 1..N-1: the step agent (slurmd + slurmstepd for srun steps on this node).

The agent connects to node 0's step channel (at the port node 0 published in the shared
rundir, or among the job's ports when node 0 is on another machine; proving the job secret
and checking node 0 proves it too), learns the node names, then runs the
step tasks node 0 sends it and signals what node 0 tells it to. It exits when node 0 says
the job is over, when node 0 goes silent (bounded: heartbeats), or on SIGTERM -- always after
killing every process of the job on this node.
"""

import logging
import shutil
import signal
import threading
import time

from . import channel, filesync, procs, rundir, usage
from .controller import HEARTBEAT, HEARTBEAT_DEAD
from .tasks import NodeSteps
from .waker import Waker

log = logging.getLogger(__name__)


class Agent:
    def __init__(self, job, secret, run_dir, node_environ):
        self.job, self.node_environ = job, node_environ
        self.run_dir = run_dir
        self.node_dir = rundir.node_dir(run_dir, job.rank)
        self.agent_key = channel.role_key(secret, "agent")
        self.local_key = channel.role_key(secret, "local")
        self.waker = Waker()
        self.stop = None  # why the agent ends: "shutdown", "lost" or "signal"
        self.conn = self.steps = None

    def run(self):
        job = self.job
        procs.become_subreaper()
        self.waker.catch((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), self._on_signal)
        deadline = time.monotonic() + job.spec["startup_timeout"]
        try:
            self.conn, port = channel.find_node0(
                job.ips[0],
                job.job_id,
                self.agent_key,
                job.rank,
                deadline,
                lambda: self.stop,
                self._node0_ports,
            )
            self.conn.sock.settimeout(HEARTBEAT_DEAD)
            setup, _ = self.conn.recv()
        except channel.ChannelError as e:
            log.error("node %d: cannot join node 0: %s", job.rank, e)
            return 1
        job.names = setup["names"]
        rundir.write_control(self.node_dir, job.job_id, job.ips[0], port, self.local_key)
        rundir.write_job_info(self.node_dir, setup["job_info"])
        bin_dir = rundir.install_tools(self.node_dir)
        sampler = usage.Sampler(job.spec["acct_gather_frequency"], self._report_usage)
        self.steps = NodeSteps(
            job, procs.Reaper(), self.conn.send, bin_dir, self.node_environ, sampler
        )
        files = filesync.start(job, log.warning)
        threading.Thread(target=self._listen, daemon=True).start()
        log.info("node %d (%s) joined job %d", job.rank, job.name, job.job_id)
        next_ping = 0
        while not self.stop:
            now = time.monotonic()
            if now >= next_ping:
                self._send({"t": "ping"})
                next_ping = now + HEARTBEAT
            self.waker.wait(next_ping - now)
        procs.kill_everything()
        if self.stop == "shutdown":
            self._send({"t": "bye"})
        if files:
            files.finish()  # node 0 need not wait for it
        self.conn.close()
        shutil.rmtree(self.node_dir, ignore_errors=True)
        return 0 if self.stop == "shutdown" else 1

    def _node0_ports(self):
        """Where node 0 may listen: the port it published in the shared rundir, or the job's
        range when it is on another machine."""
        if channel.all_here(self.job.ips):
            return rundir.published_port(self.run_dir)
        return channel.ports(self.job.job_id)

    def _report_usage(self):
        if self.steps is not None:
            self.steps.report_usage()

    def _on_signal(self, signum, frame):
        self.stop = self.stop or "signal"

    def _listen(self):
        try:
            while True:
                msg, payload = self.conn.recv()
                kind = msg.get("t")
                if kind == "launch":
                    self.steps.launch(msg["step"])
                elif kind == "pmi":
                    self.steps.pmi(msg["step"], msg["task"], payload)
                elif kind == "in":
                    self.steps.stdin(msg["step"], payload)
                elif kind == "signal":
                    self.steps.signal(msg["signum"], msg["steps"])
                elif kind == "kill":
                    if msg["signum"] == signal.SIGKILL:
                        procs.kill_everything()
                    else:
                        procs.signal_everything(msg["signum"])
                elif kind == "shutdown":
                    self.stop = self.stop or "shutdown"
                    break
        except channel.ChannelError as e:
            if not self.stop:
                log.error("node %d: lost node 0: %s", self.job.rank, e)
            self.stop = self.stop or "lost"
        self.waker.wake()

    def _send(self, msg):
        try:
            self.conn.send(msg)
        except OSError:
            pass
