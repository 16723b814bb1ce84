"""The local executor: jobs run as processes on this machine, one "node" per loopback address.

The machine is shown as LOCAL_NODES nodes (127.0.0.1, 127.0.0.2, ...; override with
$SLURMSKY_LOCAL_NODES), each with all of its CPUs and memory, as Slurm's multi-node emulation
does: `--nodes=2` runs two node runtimes here, each in its own session, so one job's
processes are found (and ended) by session even after the runtime itself has gone.

GPUs (`node_gpus`): a partition's `gpus: N` gives each of its nodes N devices, indices
0..N-1, as a Slurm node's `Gres=gpu:N` (fake ones, like the peer's); without it the nodes have
the machine's own GPUs (`CUDA_VISIBLE_DEVICES`, else /dev/nvidiaN), all on the first node:
the nodes share one machine, and a device must not be handed to two of them. GPUs are
accounted per node like CPUs and memory; each job gets distinct device indices on a node.

Module import stays light (sbatch checks requests against the nodes): psutil and
subprocess are imported only by the agent's calls.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass

from .. import state
from ..state import JobRecord

LOCAL_NODES = 4
ORPHAN_POLL = 1.0  # s between looks at jobs an earlier agent started
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Node:
    name: str  # the node's address doubles as its name: it resolves from every "node"
    cpus: int
    mem: int  # MB


def nodes(environ=os.environ) -> list[Node]:
    count = int(environ.get("SLURMSKY_LOCAL_NODES") or LOCAL_NODES)
    cpus = os.cpu_count() or 1
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return [Node(f"127.0.0.{k + 1}", cpus, mem) for k in range(count)]


def job_mem(job_cpus: int, mem_per_node: int | None, mem_per_cpu: int | None, node: Node) -> int:
    """MB a job holds on one node (--mem=0 is the whole node, as on Slurm)."""
    if mem_per_node is not None:
        return mem_per_node or node.mem
    return (mem_per_cpu or 0) * job_cpus


def machine_gpus(environ=os.environ) -> list[str]:
    """The machine's GPUs, cheaply: CUDA_VISIBLE_DEVICES if set, else /dev/nvidiaN."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        found = [int(name[6:]) for name in os.listdir("/dev")
                 if name.startswith("nvidia") and name[6:].isdigit()]
    except OSError:
        return []
    return [str(n) for n in sorted(found)]


def node_gpus(part: dict | None, count: int, environ=os.environ) -> list[list[str]]:
    """The GPU device ids of each of `count` local nodes, for jobs of partition `part`."""
    if part and part.get("gpus") is not None:
        return [[str(i) for i in range(part["gpus"])] for _ in range(count)]
    return [machine_gpus(environ)] + [[] for _ in range(count - 1)]


def refusal(cpus_per_node: list[int], mem_per_node: int | None,
            gpus_per_node: int, part: dict | None = None) -> list[str] | None:
    """Slurm's submit-time errors for what no node here can ever give, or None.
    mem_per_node: MB the job needs on each node (None: not asked, 0: the whole node);
    part: the partition's config (its `gpus`)."""
    all_nodes = nodes()
    node = all_nodes[0]
    failed = "Batch job submission failed: Requested node configuration is not available"
    if gpus_per_node and all(len(g) < gpus_per_node for g in node_gpus(part, len(all_nodes))):
        return [failed]  # too few such nodes: pends (PartitionNodeLimit), as on Slurm
    if max(cpus_per_node) > node.cpus:
        return ["CPU count per node can not be satisfied", failed]
    if mem_per_node and mem_per_node > node.mem:
        return ["Memory specification can not be satisfied", failed]
    return None


def submit_reason(num_nodes: int) -> str | None:
    """The pending reason Slurm's attempt to start a job at submission leaves on a job no
    partition here can hold (more nodes than there are): `PartitionConfig`, until the main
    scheduler's first pass finds `PartitionNodeLimit` (place)."""
    return "PartitionConfig" if num_nodes > len(nodes()) else None


LOGIN_DEFS = "/etc/login.defs"
LOGIN_TIMEOUT = 8  # s for the login shell to print its environment (Slurm's default wait)
# set by the shell itself, not part of what the login gives the job
SHELL_OWN = ("_", "PWD", "OLDPWD", "SHLVL")
LOGIN_MARK = "SLURMSKY_LOGIN_ENV"  # what the profiles print before it is not the environment


def login_defs(path: str = LOGIN_DEFS) -> dict:
    """The settings of login.defs(5) (`NAME value` lines), empty if it cannot be read."""
    found = {}
    try:
        with open(path) as fh:
            for line in fh:
                words = line.split(None, 1)
                if len(words) == 2 and not words[0].startswith("#"):
                    found[words[0]] = words[1].strip()
    except OSError:
        pass
    return found


def login_base(entry, defs: dict) -> dict:
    """What `su - user` starts the login shell with: HOME, SHELL, USER, LOGNAME, PATH from
    login.defs (ENV_SUPATH for root, ENV_PATH otherwise, su's own default without them) and
    MAIL (pam_mail: MAIL_DIR/user)."""
    key, default = ("ENV_SUPATH", "/sbin:/bin:/usr/sbin:/usr/bin") if entry.pw_uid == 0 \
        else ("ENV_PATH", "/bin:/usr/bin")
    path = defs.get(key, default)
    path = path[len("PATH="):] if path.startswith("PATH=") else path
    return {"HOME": entry.pw_dir, "SHELL": entry.pw_shell or "/bin/sh", "USER": entry.pw_name,
            "LOGNAME": entry.pw_name, "PATH": path,
            "MAIL": os.path.join(defs.get("MAIL_DIR", "/var/mail"), entry.pw_name)}


LOGIN_REUSE = 60  # s a login environment read for one job serves the next ones
_login_read: tuple[float, dict] | None = None


def login_environment() -> dict:
    """The user's login environment, the base of --export=NONE or --export=NAME jobs.

    Read by running the login shell (`read_login_environment`), which can take seconds
    (profiles that set up pyenv, conda, ...): an array of such jobs reuses one reading for
    LOGIN_REUSE seconds instead of holding the agent for each element.
    """
    global _login_read
    now = time.monotonic()
    if _login_read is None or now - _login_read[0] > LOGIN_REUSE:
        _login_read = (now, read_login_environment())
    return dict(_login_read[1])


def read_login_environment() -> dict:
    """As Slurm's slurmd does (`su - user -c env`, SLURM_GET_USER_ENV): the user's login
    shell runs its profile files (/etc/profile, ~/.profile, ...) from what `su -` gives
    (`login_base`) and prints the environment it ends with after a marker, so that what the
    profiles print is not taken for it. If the shell fails or hangs, the base alone.
    """
    import pwd
    import subprocess

    entry = pwd.getpwuid(os.getuid())
    base = login_base(entry, login_defs())
    shell = base["SHELL"]
    try:
        proc = subprocess.run(
            ["-" + os.path.basename(shell), "-c", f"printf '\\0{LOGIN_MARK}\\0'; exec env -0"],
            executable=shell, env=base, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd=entry.pw_dir if os.path.isdir(entry.pw_dir) else "/",
            timeout=LOGIN_TIMEOUT, start_new_session=True, check=False)
    except (OSError, subprocess.SubprocessError):
        return base
    marker = f"\0{LOGIN_MARK}\0".encode()
    if proc.returncode != 0 or marker not in proc.stdout:
        return base
    env = {}
    for item in proc.stdout.rsplit(marker, 1)[1].split(b"\0"):
        name, sep, value = item.decode(errors="surrogateescape").partition("=")
        if sep and name not in SHELL_OWN:
            env[name] = value
    return env or base


def running_steps(job: JobRecord) -> list[dict]:
    """The srun steps the job's node runtime reports as running (its steps.json: RESULT's
    step records without an end); [] when it has none or has ended."""
    rundir = (job.executor_ref or {}).get("rundir")
    steps = _read_json(os.path.join(rundir, "steps.json")) if rundir else None
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


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

    def __init__(self, partitions: dict | None = None):
        self.nodes = nodes()
        if partitions is None:
            from ..config import load_config

            partitions = load_config().partitions
        self.partitions = partitions
        self._children: dict[int, subprocess.Popen] = {}  # node runtimes this agent started
        self._gpu_choice: dict[int, list[list[str]]] = {}  # placed, not yet prepared

    def node_gpus(self, partition: str) -> list[list[str]]:
        return node_gpus(self.partitions.get(partition), len(self.nodes))

    # --- placement -------------------------------------------------------------------------

    def place(self, job: JobRecord, running: list[JobRecord]) -> list[int] | str:
        if job.num_nodes > len(self.nodes):
            return "PartitionNodeLimit"
        free_cpus = [n.cpus for n in self.nodes]
        free_mem = [n.mem for n in self.nodes]
        busy_gpus: list[set] = [set() for _ in self.nodes]
        for other in running:
            ref = other.executor_ref or {}
            gpus = ref.get("gpus") or self._gpu_choice.get(other.job_id) or ()
            for i, k in enumerate(ref.get("nodes", ())):
                free_cpus[k] -= other.cpus_per_node[i]
                free_mem[k] -= job_mem(other.cpus_per_node[i], other.mem_per_node,
                                       other.mem_per_cpu, self.nodes[k])
                busy_gpus[k].update(gpus[i] if i < len(gpus) else ())
        devices = self.node_gpus(job.partition)
        want = job.gpus_per_node or 0
        if sum(len(d) >= want for d in devices) < job.num_nodes:
            return "PartitionNodeLimit"  # too few nodes with that many GPUs
        free_gpus = [[d for d in devices[k] if d not in busy_gpus[k]]
                     for k in range(len(self.nodes))]
        chosen: list[int] = []
        for cpus in job.cpus_per_node:
            fits = [k for k, n in enumerate(self.nodes) if k not in chosen
                    and free_cpus[k] >= cpus and len(free_gpus[k]) >= want
                    and free_mem[k] >= job_mem(cpus, job.mem_per_node, job.mem_per_cpu, n)]
            if not fits:
                return "Resources"
            chosen.append(fits[0])
        if want:
            self._gpu_choice[job.job_id] = [free_gpus[k][:want] for k in chosen]
        return chosen

    # --- running ---------------------------------------------------------------------------

    def prepare(self, job: JobRecord, placement: list[int]) -> dict:
        rundir = os.path.join(state.home(), "jobs", str(job.job_id))
        ref = {"rundir": rundir, "nodes": placement,
               "names": [self.nodes[k].name for k in placement], "pids": []}
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
            spec = dict(spec, environment={**login_environment(),
                                           **(spec.get("environment") or {})})
        spec_path = os.path.join(rundir, "spec.json")
        # the node's GPUs: the devices placed for the job, or none of a GPU node's
        devices = self.node_gpus(job.partition)
        spec = dict(spec, gpu_ids=[ref["gpus"][i] if ref.get("gpus") else
                                   ([] if devices[k] else None)
                                   for i, k in enumerate(ref["nodes"])])
        with open(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            json.dump(spec, fh)
        if not os.path.isdir(job.workdir):
            now = time.time()
            with open(self._result_path(ref), "w") as fh:
                json.dump({"state": "FAILED", "exit_code": 0, "signal": 53, "start": now,
                           "end": now, "reason": "JobLaunchFailure"}, fh)
            return ref
        secret = secrets.token_hex(16)
        base = _runtime_env(spec.get("environment") or {})
        pids = []
        for rank in range(len(names)):
            env = dict(base, SKYPILOT_NODE_RANK=str(rank), SKYPILOT_NODE_IPS="\n".join(names),
                       SKYPILOT_NUM_NODES=str(len(names)),
                       SKYPILOT_JOB_RANK=str(job.array_rank or 0), SLURMSKY_STEP_SECRET=secret)
            with open(os.path.join(rundir, f"runtime-{rank}.log"), "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "slurmsky.runtime", "node", "--spec", spec_path,
                     "--result", self._result_path(ref), "--rundir", rundir],
                    cwd=job.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
            self._children[proc.pid] = proc
            pids.append([proc.pid, _create_time(proc.pid)])
        return dict(ref, pids=pids)

    def adopt(self, job: JobRecord) -> dict | None:
        """Find the node runtimes by their command line (`--rundir`) and SKYPILOT_NODE_RANK."""
        import psutil

        ref = dict(job.executor_ref)
        found = {}
        for proc in psutil.process_iter(["cmdline", "create_time"]):
            cmd = proc.info["cmdline"] or []
            if "--rundir" not in cmd or cmd[cmd.index("--rundir") + 1:][:1] != [ref["rundir"]]:
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
        ref = job.executor_ref
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
            result = {"state": "NODE_FAIL", "exit_code": 0, "signal": 0, "start": job.start_time,
                      "end": now, "reason": "NodeDown"}
        return result

    def poll_interval(self, job: JobRecord) -> float | None:
        """This agent's own children wake it (SIGCHLD); an earlier agent's are polled."""
        pids = job.executor_ref.get("pids") or [[0, 0]]
        return None if pids[0][0] in self._children else ORPHAN_POLL

    def cancel(self, job: JobRecord) -> None:
        pids = job.executor_ref.get("pids") or []
        if pids and self._alive(*pids[0]):
            os.kill(pids[0][0], signal.SIGTERM)

    def signal(self, job: JobRecord, signum: int, scope: str) -> None:
        import subprocess

        ref = job.executor_ref
        env = _runtime_env({"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        subprocess.run([sys.executable, "-m", "slurmsky.runtime", "signal", "--rundir",
                        ref["rundir"], "--signal", str(signum), f"--{scope}"],
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, check=False)

    def cleanup(self, job: JobRecord) -> None:
        """SIGKILL whatever is left in the job's node sessions (each runtime leads one), then
        remove its run directory but for RESULT and the runtimes' logs: the spec holds the
        job's environment, and the next agent needs RESULT if this one dies now."""
        import psutil
        import shutil

        ref = job.executor_ref or {}
        sessions = {pid for pid, _ in ref.get("pids", ()) if pid}
        for pid in psutil.pids() if sessions else ():
            try:
                if os.getsid(pid) in sessions:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in sessions:
            child = self._children.pop(pid, None)
            if child is not None:
                child.wait()  # SIGKILLed above: ends at once
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
            return (abs(proc.create_time() - create_time) < 0.01
                    and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False


def _create_time(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0
