"""The local executor: jobs run as processes on this machine, one "node" per loopback address
(machine.py: the nodes, their CPUs, memory and GPUs).

`--nodes=2` runs two node runtimes here, each in its own session, so one job's processes are
found (and ended) by session even after the runtime itself has gone. GPUs are accounted per
node like CPUs and memory; each job gets distinct device indices on a node.

psutil and subprocess are imported only by the agent's calls.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from slurmsky.backends.local.nodes import machine_gpus, psutil_missing
from slurmsky.backends.local.placement import Placement
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
        self.constrain_devices = constrain_devices  # hide GPUs from jobs holding none
        self.placement = Placement(partitions)
        self._children: dict[int, subprocess.Popen] = {}  # node runtimes this agent started

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        return self.placement.place(job, running)

    # --- running ---------------------------------------------------------------------------

    def place_again(
        self, job: JobRecord, placement: list[int], running: list[JobRecord]
    ) -> list[int] | str:
        """Placed afresh: the local placement counts what `running` holds, nothing else."""
        return self.place(job, running)

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        rundir = os.path.join(state.home(), "jobs", str(job.job_id))
        chosen = self.placement
        parts = chosen.het_parts.pop(job.job_id, None) or [job.partition] * len(placement)
        ref = {
            "rundir": rundir,
            "nodes": placement,
            "names": [chosen.nodes_of(p)[k].name for p, k in zip(parts, placement)],
            "pids": [],
        }
        if len(set(parts)) > 1:
            ref["parts"] = parts
        gpus = chosen.gpu_choice.pop(job.job_id, None)
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
        devices = {p: self.placement.node_gpus(p) for p in set(parts)}
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
                *(["--step", scope[5:]] if scope.startswith("step:") else [f"--{scope}"]),
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
