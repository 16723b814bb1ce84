"""The local executor: jobs run as processes on this machine, one "node" per loopback address
(machine.py: the nodes, their CPUs, memory and GPUs).

`--nodes=2` runs two node runtimes here, each in its own session, so one job's processes are
found (and ended) by session even after the runtime itself has gone. GPUs are accounted per
node like CPUs and memory; each job gets distinct device indices on a node.

psutil and subprocess are imported only by the agent's calls.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from slurmsky.backends.local.nodes import (
    Node,
    job_mem,
    machine_gpus,
    node_gpus,
    nodes,
    pool,
    psutil_missing,
)
from slurmsky.core import state
from slurmsky.core.state import JobRecord
from slurmsky.errors import SlurmError
from slurmsky.plan.login import login_environment
from slurmsky.runtime import PACKAGE_PARENT

if TYPE_CHECKING:
    import subprocess

ORPHAN_POLL = 1.0  # s between looks at jobs an earlier agent started


def running_steps(job: JobRecord) -> list[dict]:
    """The srun steps the job's node runtime reports as running (its steps.json: RESULT's
    step records without an end); [] when it has none or has ended."""
    rundir = (job.executor_ref or {}).get("rundir")
    steps = _read_json(os.path.join(rundir, "steps.json")) if rundir else None
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


def step_usage(job: JobRecord) -> dict[str, list[dict]]:
    """The running steps' usage as the node runtime last sampled it (its usage.json)."""
    rundir = (job.executor_ref or {}).get("rundir")
    found = _read_json(os.path.join(rundir, "usage.json")) if rundir else None
    return {str(k): v for k, v in found.items() if isinstance(v, list)} if found else {}


def _ref(job: JobRecord) -> dict:
    """The ref of a job this executor launched: the scheduler asks only about those."""
    ref = job.executor_ref
    assert ref is not None, f"job {job.job_id} has no executor_ref"
    return ref


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _runtime_env(environment: dict) -> dict:
    env = dict(environment)
    user_path = environment.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + user_path if user_path else "")
    return env


class LocalExecutor:
    name = "local"

    def __init__(self, partitions: dict | None = None, constrain_devices: bool = True):
        try:  # here, not at a job's launch: a job must not start processes no one can follow
            import psutil  # noqa: F401
        except ImportError as exc:
            raise SlurmError(psutil_missing() or str(exc)) from None
        if partitions is None:
            from slurmsky.config import load_config

            cfg = load_config()
            partitions, constrain_devices = cfg.partitions, cfg.constrain_devices
        self.partitions = partitions
        self.constrain_devices = constrain_devices  # hide GPUs from jobs holding none
        self._nodes: dict[str, list[Node]] = {}  # a partition's nodes (nodes.nodes)
        self._children: dict[int, subprocess.Popen] = {}  # node runtimes this agent started
        self._gpu_choice: dict[int, list[list[str]]] = {}  # placed, not yet prepared
        self._het_parts: dict[int, list[str]] = {}  # placed: each node's partition
        self._pass_usage: list | None = None  # _usage's sums for the pass's running list

    def nodes_of(self, partition: str) -> list[Node]:
        if partition not in self._nodes:
            self._nodes[partition] = nodes(self.partitions.get(partition))
        return self._nodes[partition]

    def node_gpus(self, partition: str) -> list[list[str]]:
        return node_gpus(self.partitions.get(partition), len(self.nodes_of(partition)))

    # --- placement -------------------------------------------------------------------------

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        parts = job.__dict__.get("het_parts")
        if parts and len({(p["partition"], p["gpus_per_node"]) for p in parts}) > 1:
            return self._place_het(job, running, parts)
        return self._place(job, running)

    def _place_het(self, job: JobRecord, running: list[JobRecord], parts: list) -> list[int] | str:
        """A heterogeneous job whose components differ in partition or GPUs per node: each
        placed in its own partition, beside the ones placed before it; the partition of each
        node is kept for prepare (ref "parts")."""
        placed: list[JobRecord] = []
        chosen: list[int] = []
        gpus: list[list[str]] = []
        partitions: list[str] = []
        for comp in parts:
            sub = copy.copy(job)
            sub.__dict__.update(
                partition=comp["partition"],
                num_nodes=len(comp["cpus_per_node"]),
                cpus_per_node=comp["cpus_per_node"],
                num_cpus=sum(comp["cpus_per_node"]),
                gpus_per_node=comp["gpus_per_node"],
            )
            where = self._place(sub, running + placed)
            self._pass_usage = None  # the sums were of that list
            if isinstance(where, str):
                self._gpu_choice.pop(job.job_id, None)
                return where
            sub.executor_ref = {"nodes": where}
            choice = self._gpu_choice.pop(job.job_id, None)
            if choice:
                sub.executor_ref["gpus"] = choice
            gpus += choice or [[] for _ in where]
            placed.append(sub)
            chosen += where
            partitions += [comp["partition"]] * len(where)
        if any(gpus):
            self._gpu_choice[job.job_id] = gpus
        self._het_parts[job.job_id] = partitions
        return chosen

    def _place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        part = self.partitions.get(job.partition) or {}
        job_nodes = self.nodes_of(job.partition)
        if job.num_cpus > sum(n.cpus for n in job_nodes):
            return "PartitionConfig"  # more CPUs than the partition has (nodes.submit_reason)
        if job.num_nodes > len(job_nodes):
            return "PartitionNodeLimit"
        free_cpus, free_mem, busy_gpus, devices_of = self._usage(running, job.partition)
        if job.partition not in devices_of:
            devices_of[job.partition] = self.node_gpus(job.partition)
        devices = devices_of[job.partition]
        want = job.gpus_per_node or 0
        if sum(len(d) >= want for d in devices) < job.num_nodes:
            return "PartitionNodeLimit"  # too few nodes with that many GPUs
        free_gpus = [
            [d for d in devices[k] if d not in busy_gpus[k]] for k in range(len(job_nodes))
        ]
        shared = bool(part.get("oversubscribe"))  # CPUs and memory, never GPUs
        chosen: list[int] = []
        for cpus in job.cpus_per_node:
            fits = [
                k
                for k, n in enumerate(job_nodes)
                if k not in chosen
                and len(free_gpus[k]) >= want
                and (
                    shared
                    or (
                        free_cpus[k] >= cpus
                        and free_mem[k] >= job_mem(cpus, job.mem_per_node, job.mem_per_cpu, n)
                    )
                )
            ]
            if not fits:
                return "Resources"
            chosen.append(fits[0])
        if want:
            self._gpu_choice[job.job_id] = [free_gpus[k][:want] for k in chosen]
        return chosen

    def _usage(self, running: list[JobRecord], partition: str) -> tuple[list, list, list, dict]:
        """What `running` holds of each node of the partition's pool (free CPUs and memory,
        busy GPUs: nodes.pool), and the partitions' devices, for one scheduling pass. A pass
        calls place() with one list that only grows (the jobs it places are appended), so the
        sums are kept for that list and only its new entries are added: a pass costs its
        placements, not placements times running jobs (nor a look at /dev for the machine's
        GPUs per pending job)."""
        cache = self._pass_usage
        if cache is None or cache[0] is not running or cache[1] > len(running):
            cache = self._pass_usage = [running, 0, {}, {}]
        _, applied, pools, devices_of = cache

        def sums(name: str) -> tuple[list, list, list]:
            key = pool(name, self.partitions.get(name))
            if key not in pools:
                shape = self.nodes_of(name)
                pools[key] = (
                    [n.cpus for n in shape],
                    [n.mem for n in shape],
                    [set() for _ in shape],
                )
            return pools[key]

        for other in running[applied:]:
            ref = other.executor_ref or {}
            gpus = ref.get("gpus") or self._gpu_choice.get(other.job_id) or ()
            parts = ref.get("parts")  # a heterogeneous job's partition per node
            for i, k in enumerate(ref.get("nodes", ())):
                name = parts[i] if parts else other.partition
                free_cpus, free_mem, busy_gpus = sums(name)
                shape = self.nodes_of(name)
                if k >= len(shape):
                    continue  # placed when the partition had more nodes
                free_cpus[k] -= other.cpus_per_node[i]
                free_mem[k] -= job_mem(
                    other.cpus_per_node[i], other.mem_per_node, other.mem_per_cpu, shape[k]
                )
                busy_gpus[k].update(gpus[i] if i < len(gpus) else ())
        cache[1] = len(running)
        return (*sums(partition), devices_of)

    # --- running ---------------------------------------------------------------------------

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        rundir = os.path.join(state.home(), "jobs", str(job.job_id))
        parts = self._het_parts.pop(job.job_id, None) or [job.partition] * len(placement)
        ref = {
            "rundir": rundir,
            "nodes": placement,
            "names": [self.nodes_of(p)[k].name for p, k in zip(parts, placement)],
            "pids": [],
        }
        if len(set(parts)) > 1:
            ref["parts"] = parts
        gpus = self._gpu_choice.pop(job.job_id, None)
        if gpus:
            ref["gpus"] = gpus
        return ref

    def launch(self, job: JobRecord, spec: dict, ref: dict) -> dict:
        import secrets
        import shutil
        import subprocess

        rundir = ref["rundir"]
        shutil.rmtree(rundir, ignore_errors=True)  # a requeued job starts afresh
        os.makedirs(rundir, mode=0o700)
        names = ref["names"]  # node_names unset: the runtime names nodes by their addresses
        if spec.get("login_environment"):  # --export=NONE/NAME: read now, as slurmd does
            spec = dict(
                spec, environment={**login_environment(), **(spec.get("environment") or {})}
            )
        spec_path = os.path.join(rundir, "spec.json")
        # the node's GPUs: the devices placed for the job, or none of a GPU node's (with
        # constrain_devices, of any node of a machine that has GPUs: they are all this one)
        parts = ref.get("parts") or [job.partition] * len(ref["nodes"])
        devices = {p: self.node_gpus(p) for p in set(parts)}
        machine = self.constrain_devices and bool(machine_gpus())
        spec = dict(
            spec,
            gpu_ids=[
                ref["gpus"][i]
                if ref.get("gpus")
                else ([] if devices[parts[i]][k] or machine else None)
                for i, k in enumerate(ref["nodes"])
            ],
            hide_gpus=self.constrain_devices,
            restart_count=job.restarts,
        )
        if spec.get("array"):  # this element's index and id
            spec["array"] = dict(spec["array"], task_id=job.array_task_id, task_job_id=job.job_id)
        with open(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(json.dumps(spec))  # dumps, not dump: json.dump encodes in Python
        from slurmsky.runtime.rundir import reserve

        reserve(self._result_path(ref))  # before the runtime runs (rundir.write_result)
        if not os.path.isdir(job.workdir):
            now = time.time()
            with open(self._result_path(ref), "w") as fh:
                json.dump(
                    {
                        "state": "FAILED",
                        "exit_code": 0,
                        "signal": 53,
                        "start": now,
                        "end": now,
                        "reason": "JobLaunchFailure",
                    },
                    fh,
                )
            return ref
        secret = secrets.token_hex(16)
        base = _runtime_env(spec.get("environment") or {})
        pids = []
        for rank in range(len(names)):
            env = dict(
                base,
                SKYPILOT_NODE_RANK=str(rank),
                SKYPILOT_NODE_IPS="\n".join(names),
                SKYPILOT_NUM_NODES=str(len(names)),
                SKYPILOT_JOB_RANK=str(job.array_rank or 0),
                SLURMSKY_STEP_SECRET=secret,
            )
            with open(os.path.join(rundir, f"runtime-{rank}.log"), "ab") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "slurmsky.runtime",
                        "node",
                        "--spec",
                        spec_path,
                        "--result",
                        self._result_path(ref),
                        "--rundir",
                        rundir,
                    ],
                    cwd=job.workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._children[proc.pid] = proc
            pids.append([proc.pid, _create_time(proc.pid)])
        return dict(ref, pids=pids)

    def adopt(self, job: JobRecord) -> dict | None:
        """Find the node runtimes by their command line (`--rundir`) and SKYPILOT_NODE_RANK."""
        import psutil

        ref = dict(_ref(job))
        found = {}
        for proc in psutil.process_iter(["cmdline", "create_time"]):
            cmd = proc.info["cmdline"] or []
            if "--rundir" not in cmd or cmd[cmd.index("--rundir") + 1 :][:1] != [ref["rundir"]]:
                continue
            try:
                rank = int(proc.environ().get("SKYPILOT_NODE_RANK", -1))
            except (psutil.Error, ValueError):
                continue
            found[rank] = [proc.pid, proc.info["create_time"]]
        if not found and not os.path.exists(self._result_path(ref)):
            return None
        return dict(ref, pids=[found.get(r, [0, 0]) for r in range(len(ref["names"]))])

    def poll(self, job: JobRecord) -> dict | None:
        ref = _ref(job)
        for pid in [p for p, _ in ref["pids"]]:
            child = self._children.get(pid)
            if child is not None and child.poll() is not None:
                del self._children[pid]
        result = _read_json(self._result_path(ref))
        if result is not None:
            return result
        if ref["pids"] and self._alive(*ref["pids"][0]):
            return None
        result = _read_json(self._result_path(ref))  # written just before the runtime exited
        if result is None:
            now = time.time()
            result = {
                "state": "NODE_FAIL",
                "exit_code": 0,
                "signal": 0,
                "start": job.start_time,
                "end": now,
                "reason": "NodeDown",
            }
        return result

    def poll_interval(self, job: JobRecord) -> float | None:
        """This agent's own children wake it (SIGCHLD); an earlier agent's are polled."""
        pids = _ref(job).get("pids") or [[0, 0]]
        return None if pids[0][0] in self._children else ORPHAN_POLL

    def cancel(self, job: JobRecord) -> None:
        pids = _ref(job).get("pids") or []
        if pids and self._alive(*pids[0]):
            os.kill(pids[0][0], signal.SIGTERM)

    def signal(self, job: JobRecord, signum: int, scope: str) -> None:
        import subprocess

        ref = _ref(job)
        env = _runtime_env({"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        subprocess.run(
            [
                sys.executable,
                "-m",
                "slurmsky.runtime",
                "signal",
                "--rundir",
                ref["rundir"],
                "--signal",
                str(signum),
                f"--{scope}",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )

    def cleanup(self, job: JobRecord) -> None:
        """SIGKILL whatever is left in the job's node sessions (each runtime leads one), then
        remove its run directory but for RESULT and the runtimes' logs: the spec holds the
        job's environment, and the next agent needs RESULT if this one dies now."""
        import shutil

        import psutil

        ref = job.executor_ref or {}
        sessions = {
            pid for pid, created in ref.get("pids", ()) if pid and session_is_ours(pid, created)
        }
        # runtimes that wrote RESULT and exited swept their trees (a subreaper's end): no
        # process of theirs is left to look for among every pid of the machine
        swept = (
            bool(ref.get("rundir"))
            and os.path.exists(self._result_path(ref))
            and not any(self._alive(pid, created) for pid, created in ref.get("pids", ()) if pid)
        )
        for pid in psutil.pids() if sessions and not swept else ():
            try:
                if os.getsid(pid) in sessions:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in sessions:
            child = self._children.pop(pid, None)
            if child is not None:
                child.wait()  # SIGKILLed above: ends at once
        if ref.get("rundir") and not os.path.exists(self._result_path(ref)):
            _kill_escaped(job, ref["rundir"])  # the runtime was killed: it ended none
        if ref.get("rundir") and os.path.isdir(ref["rundir"]):
            for entry in os.scandir(ref["rundir"]):
                if entry.name == "result.json" or entry.name.startswith("runtime-"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _result_path(ref: dict) -> str:
        return os.path.join(ref["rundir"], "result.json")

    def _alive(self, pid: int, create_time: float) -> bool:
        """The same process (pid and start time) still runs; a zombie has ended."""
        import psutil

        if not pid:
            return False
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            proc = psutil.Process(pid)
            return (
                abs(proc.create_time() - create_time) < 0.01
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


def _kill_escaped(job: JobRecord, rundir: str) -> None:
    """SIGKILL the processes of a job whose node runtime was killed (it ends them itself
    otherwise, as their subreaper) that left its sessions (setsid): those of this user,
    started since the job, whose environment names the job (SLURM_JOB_ID) and its run
    directory (PATH, BASH_ENV: the job's srun and scontrol)."""
    import psutil

    since = (job.start_time or 0) - 1
    uid = os.getuid()
    for proc in psutil.process_iter(["uids", "create_time"]):
        try:
            if proc.info["create_time"] < since or proc.info["uids"].real != uid:
                continue
            environ = proc.environ()
        except (psutil.Error, TypeError, AttributeError):
            continue
        if environ.get("SLURM_JOB_ID") == str(job.job_id) and any(
            rundir + os.sep in value for value in environ.values()
        ):
            try:
                proc.kill()
            except psutil.Error:
                pass


def session_is_ours(session: int, created: float) -> bool:
    """Whether session `session` is still the one a job's runtime led: its leader is that
    process, or has gone (the session's id cannot be a new process's while anything of the
    old session is left). A new process that got the number leads a stranger's session."""
    import psutil

    try:
        return abs(psutil.Process(session).create_time() - created) < 0.01
    except psutil.NoSuchProcess:
        return True


def _create_time(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0
