"""Run the node runtime as N local "nodes" (127.0.0.1, 127.0.0.2, ...) the way both executors
do: one ``python -m slurmsky.runtime node`` per node, each in its own session, with the
SKYPILOT_* identity variables and SLURMSKY_STEP_SECRET. Every process a test starts is
ended by pid at teardown, and what is left of the job is checked with psutil.

The default spec mirrors the real-Slurm probe jobs of the captures next to this file
(user peeruser 1001, cluster peer, partition debug, account research, DefMemPerCPU=100).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent
SECRET = "a9f2c1e0d3b4a5968778695a4b3c2d1e0f1e2d3c4b5a6978"
SITE_VARS = ("SLURM_CONF=", "SLURM_WORKING_CLUSTER=")  # docs/compatibility.md: why not set
# The probe jobs' submit environment (--export=ALL): asuser's "minimal clean environment"
# (plus OLDPWD: the probe had cd'ed into the submit directory, see LocalJob).
JOB_ENVIRONMENT = {
    "HOME": "<peeruser-home>",
    "LANG": "C.UTF-8",
    "LOGNAME": "peeruser",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "SHELL": "/bin/bash",
    "TERM": "xterm",
    "USER": "peeruser",
}
ENVDUMP = """#!/bin/bash
echo "== SLURM/SBATCH env"
env | grep -E '^(SLURM|SBATCH)' | sort
echo "== process"
echo "pwd=$(pwd)"
echo "hostname=$(hostname)"
echo "argv0=$0"
echo "args=$*"
echo "nproc=$(nproc)"
echo "umask=$(umask)"
echo "== other env"
env | grep -vE '^(SLURM|SBATCH)' | sort
"""


def capture(name: str, part: str = "stdout"):
    """A section of a real-Slurm capture copied into runtime_fixtures/: stdout, stderr, exit."""
    text = (FIXTURES / name).read_text()
    m = re.search(r"--- stdout\n(.*?)--- stderr\n(.*?)--- exit (\d+)", text, re.S)
    return {"stdout": m.group(1), "stderr": m.group(2), "exit": int(m.group(3))}[part]


def without_site_vars(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.startswith(SITE_VARS))


class LocalJob:
    """One job on N local nodes. ``spec`` overrides the defaults."""

    def __init__(
        self, tmp: Path, nodes: int = 1, script: str = ENVDUMP, python: str = sys.executable, **spec
    ):
        self.tmp, self.python = tmp, python
        self.workdir = tmp / "work"
        self.workdir.mkdir(exist_ok=True)
        self.rundir = tmp / "run"
        self.result_path = tmp / "result.json"
        self.nodes = nodes
        self.spec = {
            "version": 1,
            "job_id": 28,
            "job_name": "job",
            "partition": "debug",
            "cluster_name": "peer",
            "account": "research",
            "qos": "normal",
            "user": "peeruser",
            "uid": 1001,
            "gid": 1001,
            "submit_dir": "<probe-dir>/c",
            "submit_host": "vm",
            "workdir": str(self.workdir),
            "script": script,
            "script_args": [],
            "num_nodes": nodes,
            "ntasks": None,
            "ntasks_per_node": None,
            "cpus_per_task": None,
            "tasks_per_node": [1] * nodes,
            "cpus_per_node": [1] * nodes,
            "mem_per_node": None,
            "mem_per_cpu": 100,
            "gpus": None,
            "gpus_per_node": None,
            "gpus_per_task": None,
            "gres": None,
            "time_limit": None,
            "kill_wait": 1,
            "signal": None,
            "output": "slurm-%j.out",
            "error": None,
            "input": None,
            "open_mode": "truncate",
            "extra_env": {},
            "environment": dict(JOB_ENVIRONMENT, OLDPWD=str(self.workdir)),
            "node_names": None,
            "array": None,
        }
        self.spec.update(spec)
        self.ips = ["127.0.0.%d" % (i + 1) for i in range(nodes)]
        self.procs: list[subprocess.Popen] = []
        self.known: dict[int, psutil.Process] = {}

    def start(self, secrets: list[str] | None = None, **environ) -> "LocalJob":
        spec_path = self.tmp / "spec.json"
        spec_path.write_text(json.dumps(self.spec))
        for rank in range(self.nodes):
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(ROOT),
                "SKYPILOT_NODE_RANK": str(rank),
                "SKYPILOT_NODE_IPS": "\n".join(self.ips),
                "SKYPILOT_NUM_NODES": str(self.nodes),
                "SKYPILOT_NUM_GPUS_PER_NODE": "0",
                "SKYPILOT_JOB_RANK": "0",
                "SKYPILOT_NUM_JOBS": "1",
                "SLURMSKY_STEP_SECRET": (secrets or [SECRET] * self.nodes)[rank],
            }
            env.update(environ)
            log = open(self.tmp / ("node%d.log" % rank), "wb")
            argv = [
                self.python,
                "-m",
                "slurmsky.runtime",
                "node",
                "--spec",
                str(spec_path),
                "--rundir",
                str(self.rundir),
            ]
            if rank == 0:
                argv += ["--result", str(self.result_path)]
            self.procs.append(
                subprocess.Popen(
                    argv, env=env, stdout=log, stderr=log, cwd=self.workdir, start_new_session=True
                )
            )
            log.close()
        return self

    @property
    def node0(self) -> subprocess.Popen:
        return self.procs[0]

    def remember(self) -> set[int]:
        """Record every process of the job now (to check later that none survived)."""
        for proc in self.procs:
            try:
                root = psutil.Process(proc.pid)
                for p in [root] + root.children(recursive=True):
                    self.known.setdefault(p.pid, p)
            except psutil.NoSuchProcess:
                pass
        return set(self.known)

    def wait(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        return json.loads(self.result_path.read_text())

    def output(self, name: str | None = None) -> str:
        return (self.workdir / (name or "slurm-%d.out" % self.spec["job_id"])).read_text()

    def log(self, rank: int = 0) -> str:
        return (self.tmp / ("node%d.log" % rank)).read_text()

    def wait_for(self, path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, "%s never appeared" % path
            assert all(p.poll() is None for p in self.procs), "a node ended early:\n%s" % (
                "\n".join(self.log(rank) for rank in range(self.nodes))
            )
            time.sleep(0.05)

    def wait_until(self, condition, timeout: float = 30) -> None:
        """Poll condition() (bounded): what a job does takes longer on a loaded machine."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition never met"
            time.sleep(0.05)

    def survivors(self) -> list[psutil.Process]:
        """Processes of this job still alive (zombies count as gone)."""
        alive = []
        for p in self.known.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive

    def cleanup(self) -> None:
        self.remember()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for p in self.survivors():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        for proc in self.procs:
            proc.wait(10)


NUMBER_KEYS = ("SLURM_TASK_PID", "SLURM_SRUN_COMM_PORT", "SLURM_STEP_LAUNCHER_PORT", "nproc")
NAME_KEYS = (
    "SLURMD_NODENAME",
    "HOSTNAME",
    "SLURM_JOB_NODELIST",
    "SLURM_NODELIST",
    "SLURM_STEP_NODELIST",
    "SLURM_TOPOLOGY_ADDR",
)


def normalise(text: str, names: dict | None = None, paths: dict | None = None) -> str:
    """Make an env dump comparable across runs: pids/ports/CPU counts -> <n>, node names by
    ``names`` (only in the variables that hold names: IPs elsewhere stay), paths by ``paths``,
    the batch script's copy -> <slurm_script>."""
    lines = []
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and key in NUMBER_KEYS:
            value = "<n>"
        elif eq and key in NAME_KEYS and names:
            value = names.get(value, value)
        elif eq and key == "argv0" and value.endswith("/slurm_script"):
            value = "<slurm_script>"
        for mine, real in (paths or {}).items():
            value = value.replace(mine, real)
        lines.append(key + eq + value)
    return "\n".join(lines) + "\n"


def ip_names(nodes: int) -> dict:
    """Our node names (127.0.0.N) and their hostlists -> the captures' node1.. names."""
    from slurmsky.runtime import hostlist

    ours = ["127.0.0.%d" % (i + 1) for i in range(nodes)]
    theirs = ["node%d" % (i + 1) for i in range(nodes)]
    mapping = dict(zip(ours, theirs))
    mapping[hostlist.compress(ours)] = hostlist.compress(theirs)
    return mapping


def machine() -> str:
    """This machine's hostname (what `hostname` prints in every job, as on the peer)."""
    return socket.gethostname()


@pytest.fixture
def local_job(tmp_path):
    """``local_job(nodes, script=..., **spec)`` -> a LocalJob, cleaned up after the test."""
    jobs = []

    def make(*args, **kw):
        jobs.append(LocalJob(tmp_path, *args, **kw))
        return jobs[-1]

    yield make
    for job in jobs:
        job.cleanup()
