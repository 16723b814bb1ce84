"""The differential harness: run a case against real Slurm (the peer) and against slurmsky's
local backend, normalise what legitimately differs, and compare byte for byte.

A case (cases/*.yaml) is data: files to create, then steps run by bash in a fresh directory,
with Slurm's commands on PATH (the peer's in /usr/bin, or slurmsky's bin/ first). Every step's
stdout, stderr and exit status is recorded (or the subset the step names in `compare`).
Special steps wait, bounded, for the case's jobs to end (`wait`), for a file (`wait_file`), or
sleep. Job ids a step prints (sbatch, salloc) are given to later steps as $JOB1, $JOB2, ...

Normalisation (NORMALISATIONS below, plus a case's own `normalise` rules, each with its
reason) only rewrites what a site or a scheduler legitimately chooses: job ids, node names,
paths, times, pids/ports, variables that describe the site's slurm.conf. Nothing else is
touched: two outputs are "identical" only when their normalised renderings are equal bytes.
"""

from __future__ import annotations

import difflib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CASES_DIR = HERE / "cases"
EXPECTED_DIR = HERE / "expected"
RATCHET_FILE = HERE / "RATCHET"
PEER_TOOLS = REPO.parent / "shared" / "tools"
SKYSTATE = HERE / "skystate.py"

PEER_BIN = "/usr/bin"  # Debian's slurm-client
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_STEP_TIMEOUT = 30.0
# A PostgreSQL server (tests/pgserver.py's URL): slurmsky's state on it, a database a case
POSTGRES = os.environ.get("SLURMSKY_TEST_POSTGRES")
if POSTGRES:
    sys.path.insert(0, str(HERE.parent))  # tests/pgserver.py
DEFAULT_WAIT_TIMEOUT = 45.0
# slurmsky mirrors the peer's site configuration where configuration can express it:
# the peer's gpu partition has nodes with Gres=gpu:2 (slurm.conf, gres.conf), so its local
# nodes have 2 GPUs each here
SKY_CONFIG = """\
cluster_name: peer
kill_wait: 2
partitions:
  debug: {default: true}
  gpu: {gpus: 2}
"""
# ... and, for cases whose answer depends on them (`peer_shape: true`) and for the corpus
# (tests/corpus), the peer's node shape, DefMemPerCPU and MaxArraySize too: four nodes of 4
# CPUs and 4000 MB in debug, two of them with two GPUs each in gpu
PEER_SHAPE_CONFIG = """\
cluster_name: peer
kill_wait: 2
max_array_size: 10001
def_mem_per_cpu: 100
partitions:
  debug: {default: true, nodes: 4, cpus_per_node: 4, mem_per_node: 4000, tmp_disk_per_node: 0}
  gpu: {gpus: 2, nodes: 2, cpus_per_node: 4, mem_per_node: 4000, tmp_disk_per_node: 0}
"""
COMPARE_ALL = ("stdout", "stderr", "exit")
FINAL_ACTIVE = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "COMPLETING",
    "CONFIGURING",
    "RESIZING",
    "SUSPENDED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
}


# ------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Step:
    run: str | None = None  # a bash command line
    wait: str | None = None  # "done": every job of the case has ended
    wait_file: str | None = None  # a path (relative to the case directory) exists
    sleep: float | None = None
    compare: tuple = COMPARE_ALL
    input: str | None = None  # stdin text (default: /dev/null)
    timeout: float | None = None

    def describe(self) -> str:
        if self.run is not None:
            return self.run
        if self.wait is not None:
            return f"wait {self.wait}"
        if self.wait_file is not None:
            return f"wait for file {self.wait_file}"
        return f"sleep {self.sleep}"


@dataclass(frozen=True)
class Rule:
    pattern: str
    replace: str
    why: str
    side: str | None = None  # "peer" or "slurmsky": applies to that side only

    def apply(self, text: str) -> str:
        return re.sub(self.pattern, self.replace, text, flags=re.M)


@dataclass(frozen=True)
class Case:
    id: str
    covers: tuple
    steps: tuple
    files: dict = field(default_factory=dict)
    user: str = "root"
    rules: tuple = ()
    timeout: float = 90.0
    slow: bool = False
    exclusive: bool = False  # runs alone: its commands see the whole cluster
    peer_shape: bool = False  # slurmsky's nodes shaped as the peer's (PEER_SHAPE_CONFIG)
    source: str = ""


CASE_KEYS = {
    "id",
    "covers",
    "steps",
    "files",
    "user",
    "normalise",
    "timeout",
    "slow",
    "exclusive",
    "peer_shape",
    "why",
}
STEP_KEYS = {"run", "wait", "wait_file", "sleep", "compare", "input", "timeout", "why"}


def _step(raw, where: str) -> Step:
    if isinstance(raw, str):
        return Step(wait="done") if raw == "wait" else Step(run=raw)
    if not isinstance(raw, dict) or set(raw) - STEP_KEYS:
        raise ValueError(f"{where}: bad step {raw!r} (keys: {sorted(STEP_KEYS)})")
    compare = tuple(raw.get("compare", COMPARE_ALL))
    if set(compare) - set(COMPARE_ALL):
        raise ValueError(f"{where}: compare takes {COMPARE_ALL}, got {compare}")
    if compare != COMPARE_ALL and not raw.get("why"):
        raise ValueError(f"{where}: a step that compares less must say why")
    kinds = [k for k in ("run", "wait", "wait_file", "sleep") if k in raw]
    if len(kinds) != 1:
        raise ValueError(f"{where}: a step has exactly one of run/wait/wait_file/sleep")
    return Step(
        run=raw.get("run"),
        wait=raw.get("wait"),
        wait_file=raw.get("wait_file"),
        sleep=raw.get("sleep"),
        compare=compare,
        input=raw.get("input"),
        timeout=raw.get("timeout"),
    )


def load_cases(directory: Path = CASES_DIR) -> list[Case]:
    cases, seen = [], set()
    for path in sorted(directory.glob("*.yaml")):
        for i, raw in enumerate(yaml.safe_load(path.read_text()) or []):
            where = f"{path.name}[{i}]"
            if set(raw) - CASE_KEYS:
                raise ValueError(f"{where}: unknown keys {set(raw) - CASE_KEYS}")
            cid = raw["id"]
            if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]*", cid) or cid in seen:
                raise ValueError(f"{where}: bad or duplicate id {cid!r}")
            seen.add(cid)
            rules = []
            for r in raw.get("normalise", []):
                if not r.get("why"):
                    raise ValueError(f"{where}: every normalise rule needs a why")
                rules.append(Rule(r["re"], r.get("to", ""), r["why"], r.get("side")))
            cases.append(
                Case(
                    id=cid,
                    covers=tuple(raw.get("covers", ())),
                    steps=tuple(_step(s, f"{where}.steps") for s in raw["steps"]),
                    files=dict(raw.get("files", {})),
                    user=raw.get("user", "root"),
                    rules=tuple(rules),
                    timeout=float(raw.get("timeout", 90)),
                    slow=bool(raw.get("slow", False)),
                    exclusive=bool(raw.get("exclusive", False)),
                    peer_shape=bool(raw.get("peer_shape", False)),
                    source=path.name,
                )
            )
    return cases


# ------------------------------------------------------------------------------- results


@dataclass
class StepResult:
    command: str
    compare: tuple
    stdout: str = ""
    stderr: str = ""
    exit: int | str = 0
    note: str = ""  # for waits: "" when satisfied, else what went wrong


@dataclass
class SideResult:
    side: str
    steps: list
    cwd: str
    state: str = ""
    path_prefix: str = ""
    id_digits: int = 0


# Job ids that commands print; later steps see them as $JOB1, $JOB2, ...
PRINTED_ID_PATTERNS = [
    r"Submitted batch job (\d+)",
    r"job allocation (\d+)",  # salloc/srun: Granted / Pending / Relinquishing
    r"\bjob (\d+) queued",
    r"\bJob (\d+) to start at",  # --test-only
]
PARSABLE_ID = r"(?m)^(\d+)(?:;\w+)?$"  # sbatch --parsable, only for commands that ask for it
# ... and where a job id shows in what a job or a command printed, for normalisation
SEEN_ID_PATTERNS = PRINTED_ID_PATTERNS + [
    r"\bSLURM_ARRAY_JOB_ID=(\d+)",
    r"\bSLURM_JOB_ID=(\d+)",
    r"\bSLURM_JOBID=(\d+)",
    r"\bJobId=(\d+)",
    r"\bArrayJobId=(\d+)",
    r"\bJOB (\d+) ON\b",
    r"\bStepId=(\d+)\.",
]


def printed_ids(command: str, text: str) -> list[int]:
    patterns = PRINTED_ID_PATTERNS + ([PARSABLE_ID] if "--parsable" in command else [])
    return _ids(text, patterns)


def _ids(text: str, patterns) -> list[int]:
    found = []
    for m in sorted((m for p in patterns for m in re.finditer(p, text)), key=lambda m: m.start(1)):
        found.append(int(m.group(1)))
    return found


# --------------------------------------------------------------------------------- sides


def user_env(user: str) -> dict:
    entry = pwd.getpwnam(user)
    return {
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": entry.pw_shell or "/bin/sh",
        "LANG": "C.UTF-8",
    }


def as_user(user: str, argv: list[str], env: dict) -> list[str]:
    """argv run by `user` with exactly `env` (root: env -i; others: runuser + env -i)."""
    assign = [f"{k}={v}" for k, v in env.items()]
    if user == pwd.getpwuid(os.getuid()).pw_name:
        return ["env", "-i", *assign, *argv]
    return ["runuser", "-u", user, "--", "env", "-i", *assign, *argv]


def run_bounded(argv: list[str], cwd: str, timeout: float, stdin: str | None = None):
    """(stdout, stderr, exit) of argv; its whole process group is killed at the timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        code: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        code = f"timed out after {timeout:g}s"
    if isinstance(code, int) and code < 0:
        code = f"killed by signal {-code}"
    dec = lambda b: b.decode("utf-8", "backslashreplace")  # noqa: E731
    return dec(out), dec(err), code


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Side:
    """One implementation of Slurm's commands, and how to wait for and clean up its jobs."""

    name = ""

    def __init__(self, root: Path):
        self.root = root

    def path(self) -> str:
        raise NotImplementedError

    def env(self, case: Case, workdir: Path) -> dict:
        return dict(user_env(case.user), PATH=self.path())

    def prepare(self, case: Case, workdir: Path, id_digits: int) -> dict:
        return {}

    def run_case(self, case: Case, id_digits: int = 4) -> SideResult:
        workdir = self.root / self.short / case.id
        workdir.mkdir(parents=True)
        for name, text in case.files.items():
            p = workdir / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            if text.startswith("#!"):
                p.chmod(0o755)
        if case.user != "root":
            shutil.chown(workdir, case.user)
            for p in workdir.rglob("*"):
                shutil.chown(p, case.user)
        ctx = self.prepare(case, workdir, id_digits)
        env = self.env(case, workdir)
        ids: list[int] = []
        results = []
        deadline = time.monotonic() + case.timeout
        try:
            for step in case.steps:
                left = max(1.0, deadline - time.monotonic())
                if step.run is not None:
                    jobs = {f"JOB{i + 1}": str(j) for i, j in enumerate(ids)}
                    timeout = min(step.timeout or DEFAULT_STEP_TIMEOUT, left)
                    out, err, code = run_bounded(
                        as_user(
                            case.user,
                            ["bash", "--noprofile", "--norc", "-c", step.run],
                            {**env, **jobs},
                        ),
                        str(workdir),
                        timeout,
                        step.input,
                    )
                    for j in printed_ids(step.run, out + "\n" + err):
                        if j not in ids:
                            ids.append(j)
                    results.append(StepResult(step.run, step.compare, out, err, code))
                else:
                    timeout = min(step.timeout or DEFAULT_WAIT_TIMEOUT, left)
                    note = self.wait_step(case, step, workdir, ids, ctx, timeout)
                    results.append(StepResult(step.describe(), (), note=note))
        finally:
            self.cleanup(case, workdir, ids, ctx)
        return SideResult(
            self.name,
            results,
            str(workdir),
            ctx.get("state", ""),
            ctx.get("path_prefix", ""),
            id_digits,
        )

    def wait_step(self, case, step, workdir, ids, ctx, timeout) -> str:
        if step.sleep is not None:
            time.sleep(min(step.sleep, timeout))
            return ""
        if step.wait_file is not None:
            target = workdir / step.wait_file
            if _poll(lambda: target.exists(), timeout):
                return ""
            return f"TIMED OUT after {timeout:g}s waiting for {step.wait_file}"
        if step.wait != "done":
            raise ValueError(f"{case.id}: unknown wait {step.wait!r}")
        return self.wait_done(case, workdir, ids, ctx, timeout)

    def wait_done(self, case, workdir, ids, ctx, timeout) -> str:
        raise NotImplementedError

    def cleanup(self, case, workdir, ids, ctx) -> None:
        pass


def _poll(predicate, timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


class PeerSide(Side):
    """Real Slurm 22.05 (shared/tools/slurm-peer-up.sh): Debian's commands in /usr/bin."""

    name = "peer"
    short = "p"

    def path(self) -> str:
        return BASE_PATH

    def _q(self, *argv: str, timeout: float = 15) -> tuple[str, int | str]:
        out, _err, code = run_bounded([f"{PEER_BIN}/{argv[0]}", *argv[1:]], "/", timeout)
        return out, code

    def prepare(self, case, workdir, id_digits) -> dict:
        if case.exclusive:  # its commands see the whole cluster: let running jobs end first
            _poll(
                lambda: not self._q("squeue", "-h", "-t", "CF,R,CG,S", "-o", "%i")[0].strip(),
                20,
                every=0.5,
            )
        return {}

    def wait_done(self, case, workdir, ids, ctx, timeout) -> str:
        if not ids:
            return ""
        joined = ",".join(map(str, ids))
        deadline = time.monotonic() + timeout

        def ended():
            out, code = self._q("squeue", "-h", "-j", joined, "-o", "%T")
            return code == 1 or (code == 0 and not out.strip())

        if not _poll(ended, timeout):
            return f"TIMED OUT after {timeout:g}s waiting for the jobs to end"
        # accounting lags slurmctld by 1-2 s (names show as "allocation", array elements and
        # steps come late): wait until sacct lists every job and array element slurmctld
        # knows, all ended, and says the same for 1.2 s
        known, _code = self._q("squeue", "-h", "-r", "-t", "all", "-j", joined, "-o", "%i")
        elements = set(known.split())
        history: list[str] = []

        def settled():
            out, code = self._q(
                "sacct",
                "-n",
                "-P",
                "-j",
                joined,
                "-o",
                "JobID,JobName,State,ExitCode,Reason,NodeList",
            )
            if code != 0:
                return True  # no accounting: nothing to wait for
            rows = [line.split("|") for line in out.splitlines() if line]
            listed = {r[0] for r in rows}
            history.append(out)
            return (
                elements <= listed
                and not any(r[2].split()[0] in FINAL_ACTIVE for r in rows)
                and not any(r[1] == "allocation" for r in rows)
                and history[-4:] == [out] * 4
            )

        if not _poll(settled, max(1.0, deadline - time.monotonic()), every=0.4):
            return "TIMED OUT waiting for accounting to settle"
        return ""

    def cleanup(self, case, workdir, ids, ctx) -> None:
        """Cancel what is left of this case's jobs (only jobs that run in its directory)."""
        if not ids:
            return
        out, _code = self._q("squeue", "-h", "-j", ",".join(map(str, ids)), "-o", "%A %Z")
        mine = [
            line.split()[0]
            for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].startswith(str(workdir))
        ]
        if mine:
            self._q("scancel", *mine)

    # --- cluster-wide ----------------------------------------------------------------------

    @staticmethod
    def is_up() -> bool:
        if not os.path.exists(f"{PEER_BIN}/scontrol"):
            return False
        out, _err, code = run_bounded([f"{PEER_BIN}/scontrol", "ping"], "/", 10)
        return code == 0 and "is UP" in out

    def next_job_id(self) -> int:
        _out, err, _code = run_bounded(
            [f"{PEER_BIN}/sbatch", "--test-only", "--wrap", "true"], "/tmp", 15
        )
        m = re.search(r"Job (\d+) to start", err)
        if not m:
            raise RuntimeError(f"cannot read the peer's next job id: {err.strip()}")
        return int(m.group(1))

    def raise_ids_to(self, floor: int) -> int:
        """Job ids well above the small numbers jobs print (a --fresh peer starts at 1):
        each `sbatch --test-only` consumes one id and creates no job."""
        nxt = self.next_job_id()
        if nxt < floor:
            n = floor - nxt - 1
            run_bounded(
                [
                    "bash",
                    "-c",
                    f"for i in $(seq {n}); do {PEER_BIN}/sbatch --test-only "
                    "--wrap true 2>/dev/null; done",
                ],
                "/tmp",
                120,
            )
            nxt = self.next_job_id()
        return nxt


class SkySide(Side):
    """slurmsky from this checkout (bin/), local backend, one state directory per case."""

    name = "slurmsky"
    short = "s"

    def __init__(self, root: Path, bin_dir: Path | None = None, python: str | None = None):
        super().__init__(root)
        self.bin_dir = Path(bin_dir or REPO / "bin")
        self.python = python or sys.executable
        self.config = root / "slurmsky.yaml"
        self.shaped_config = root / "slurmsky-peer-shape.yaml"
        for path, text in ((self.config, SKY_CONFIG), (self.shaped_config, PEER_SHAPE_CONFIG)):
            if not path.exists():
                path.write_text(text)
                path.chmod(0o644)
        self._pythons: dict[str, str] = {}
        self.databases: dict[str, str] = {}  # case id -> its state's database (POSTGRES)
        self._lock = threading.Lock()

    def python_for(self, user: str) -> str:
        """An interpreter `user` may run, with slurmsky's dependencies.

        Usually the harness's own. When that one lives where the user cannot reach it (a
        venv made from a pyenv Python under /root), a small venv is made from the system
        Python of the same version, reading the dependencies of the harness's venv.
        """
        with self._lock:
            if user not in self._pythons:
                self._pythons[user] = self._find_python(user)
            return self._pythons[user]

    def _find_python(self, user: str) -> str:
        probe = ["-c", "import lark, psutil, yaml, click"]
        env = dict(user_env(user), PATH=BASE_PATH)
        if run_bounded(as_user(user, [self.python, *probe], env), "/", 30)[2] == 0:
            return self.python
        import sysconfig

        version = "python%d.%d" % sys.version_info[:2]
        system = shutil.which(version, path="/usr/bin:/usr/local/bin")
        venv = self.root / f"python-{user}"
        if system is None:
            return self.python
        subprocess.run(
            [system, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        site = run_bounded(
            [
                str(venv / "bin" / "python3"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            "/",
            30,
        )[0].strip()
        Path(site, "harness-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        return str(venv / "bin" / "python3")

    def path_prefix(self, user: str = "root") -> str:
        return f"{self.bin_dir}:{os.path.dirname(self.python_for(user))}:"

    def path(self, user: str = "root") -> str:
        return self.path_prefix(user) + BASE_PATH

    def prepare(self, case, workdir, id_digits) -> dict:
        state = self.root / "state" / case.id
        state.parent.mkdir(exist_ok=True)
        state.mkdir(mode=0o700)
        if case.user != "root":
            shutil.chown(state, case.user)
        ctx = {"state": str(state), "path_prefix": self.path_prefix(case.user)}
        if POSTGRES:  # the state on a database of the case's own (tests/pgserver.py)
            import pgserver

            self.databases[case.id] = pgserver.database(POSTGRES)
        # job ids of as many digits as the peer's (see PeerSide.raise_ids_to), from 1777...:
        # not a number a case's values take (--mem-per-cpu=1000, uid 1001), which the job id
        # normalisation would rewrite
        self._state(case, state, "floor", int("1" + "7" * (id_digits - 1)))
        return ctx

    def env(self, case, workdir) -> dict:
        return dict(
            user_env(case.user),
            PATH=self.path(case.user),
            SLURMSKY_HOME=str(self.root / "state" / case.id),
            SLURMSKY_CONFIG=str(self.shaped_config if case.peer_shape else self.config),
            **self._engine(case),
        )

    def _engine(self, case) -> dict:
        """SLURMSKY_STATE for a case whose state is on PostgreSQL (else nothing)."""
        found = self.databases.get(case.id)
        return {"SLURMSKY_STATE": found} if found else {}

    def _state(self, case, state, what: str, *args, timeout: float = 15):
        """skystate.<what>(...): in-process for the harness's own user, else as the user."""
        if case.user == pwd.getpwuid(os.getuid()).pw_name:
            if str(REPO) not in sys.path:
                sys.path.insert(0, str(REPO))
            import skystate

            return getattr(skystate, what)(
                {"SLURMSKY_HOME": str(state), **self._engine(case)}, *args
            )
        env = dict(
            user_env(case.user),
            PATH=BASE_PATH,
            SLURMSKY_HOME=str(state),
            PYTHONPATH=str(REPO),
            **self._engine(case),
        )
        out, err, code = run_bounded(
            as_user(
                case.user, [self.python_for(case.user), str(SKYSTATE), what, *map(str, args)], env
            ),
            "/",
            timeout,
        )
        if what == "wait":
            return "" if code == 0 else ((out + err).strip() or f"wait failed: {code}")
        if what == "pids":
            try:
                return json.loads(out)
            except ValueError:
                return {}
        return None

    def wait_done(self, case, workdir, ids, ctx, timeout) -> str:
        return self._state(case, ctx["state"], "wait", timeout, timeout=timeout + 10)

    def cleanup(self, case, workdir, ids, ctx) -> None:
        """Stop the case's agent and every process its jobs started (by pid, not by name)."""
        state = ctx.get("state")
        if not state:
            return
        info = self._state(case, state, "pids")
        agent = info.get("agent")
        if agent:
            _term(agent)
        sessions = set(info.get("sessions", []))
        if sessions:
            import psutil

            for pid in psutil.pids():
                try:
                    if os.getsid(pid) in sessions:
                        os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        database = self.databases.pop(case.id, None)
        if database:  # the case's own database goes with it (WITH FORCE ends its sessions)
            import pgserver

            pgserver.drop(POSTGRES, database)


def _term(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _poll(lambda: not _alive(pid), 5, every=0.05):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


# ----------------------------------------------------------------------------- normalise

# (pattern, replacement, why) applied to both sides, in this order, before the case's rules.
NORMALISATIONS = [
    (
        r"^(\d+: )?(SLURM_CONF|SLURM_WORKING_CLUSTER|SLURM_TOPOLOGY_ADDR|SLURM_TOPOLOGY_ADDR_PATTERN)"
        r"=.*\n",
        "",
        "site variables: they describe the peer's slurm.conf and topology",
    ),
    (
        r"^(\d+: )?SLURMSKY_[A-Z_]+=.*\n",
        "",
        "slurmsky's own wiring (state directory, config file): the harness sets them",
    ),
    (
        r"^(\d+: )?SLURM_JOB_ACCOUNT=research\n",
        "",
        "the peer's accounting assigns every job the account 'research' (site accounting)",
    ),
    (
        r"^(\d+: )?SLURM_JOB_QOS=normal\n",
        "",
        "the peer's accounting assigns every job the QOS 'normal' (site accounting)",
    ),
    (
        r"^(\d+: )?SLURM_MEM_PER_CPU=100\n",
        "",
        "the peer's DefMemPerCPU=100 (site default; cases never ask for 100 MB themselves)",
    ),
    (
        r"^(srun|salloc): job \d+ (queued and waiting for resources|has been allocated resources)\n"
        r"|^salloc: Pending job allocation \d+\n"
        r"|^srun: Job \d+ step creation temporarily disabled, retrying \(Requested nodes are busy\)\n"
        r"|^srun: Step created for job \d+\n",
        "",
        "printed only when the allocation or step had to wait for other jobs (cluster load)",
    ),
    (
        r"^salloc: Job allocation \d+ has been revoked\.\n",
        "",
        "a race in salloc: printed when the end-of-job message arrives before salloc exits",
    ),
    (r"\b(SLURM_TASK_PID|SLURM_PRIO_PROCESS_PID)=\d+", r"\1=<pid>", "process ids"),
    (r"\b(SLURM_SRUN_COMM_PORT|SLURM_STEP_LAUNCHER_PORT)=\d+", r"\1=<port>", "TCP ports"),
    (
        r"\b(SLURM_SRUN_COMM_HOST|SLURM_LAUNCH_NODE_IPADDR)=\S+",
        r"\1=<addr>",
        "the address srun listens on (the peer's nodes all share 127.0.0.1)",
    ),
    (
        r"/var/spool/slurm-peer/d/node\d+/job\d+/slurm_script",
        "<batch script>",
        "where the node keeps its copy of the batch script",
    ),
    (
        r"<state>/jobs/\d+/node\d+/slurm_script",
        "<batch script>",
        "where the node keeps its copy of the batch script",
    ),
    (
        r"<state>/jobs/\d+/node\d+/bin:",
        "",
        "slurmsky's in-job srun/scontrol directory on PATH (Slurm's are in /usr/bin)",
    ),
    (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\b", "<time>", "wall-clock times"),
    (
        r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
        r"[ \d]\d \d\d:\d\d:\d\d \d{4}\b",
        "<date>",
        "wall-clock dates",
    ),
]
NODE_RE = re.compile(r"\b(?:node|127\.0\.0\.)(\d+|\[[\d,\-]+\])(?![\d.])")


def _expand(body: str) -> list[int]:
    if not body.startswith("["):
        return [int(body)]
    out = []
    for part in body[1:-1].split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _compress(nums: list[int]) -> str:
    if len(nums) == 1:
        return f"node{nums[0]}"
    runs, start, prev = [], nums[0], nums[0]
    for n in nums[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return "node[" + ",".join(runs) + "]"


class Normaliser:
    """Rewrites one side's outputs; job ids and nodes are numbered by first appearance."""

    def __init__(self, case: Case, side: SideResult):
        self.case = case
        self.side = side
        self.ids: dict[int, str] = {}
        self.nodes: dict[str, int] = {}

    def text(self, s: str, command: str = "") -> str:
        side = self.side
        if side.path_prefix:
            s = s.replace(side.path_prefix, "")
        if side.state:
            s = s.replace(side.state, "<state>")
        if side.cwd:
            s = s.replace(side.cwd, "<cwd>")
        for pattern, repl, _why in NORMALISATIONS:
            s = re.sub(pattern, repl, s, flags=re.M)
        for rule in self.case.rules:
            if rule.side in (None, side.side):
                s = rule.apply(s)
        parsable = [PARSABLE_ID] if "--parsable" in command else []
        for j in _ids(s, SEEN_ID_PATTERNS + parsable):
            self.ids.setdefault(j, f"<JOB{len(self.ids) + 1}>")
        for j, name in self.ids.items():  # also zero-padded (%5j); not an amount (1000M)
            s = re.sub(rf"(?<![\d.])(0*){j}(?!\d|[KMGT]\b)", rf"\g<1>{name}", s)
        return self._nodes(s)

    def _nodes(self, s: str) -> str:
        lines = []
        for line in s.split("\n"):
            out, pos = [], 0
            for m in NODE_RE.finditer(line):
                nums = []
                for n in _expand(m.group(1)):
                    self.nodes.setdefault(str(n), len(self.nodes) + 1)
                    nums.append(self.nodes[str(n)])
                new = _compress(nums)
                # keep fixed-width columns aligned (127.0.0.N is 4 characters longer than
                # nodeN): pad on the side the column's padding is on
                pad = " " * max(0, len(m.group(0)) - len(new))
                before, after = line[: m.start()], line[m.end() :]
                if after.startswith("  "):
                    new = new + pad  # left-aligned
                elif before.endswith("  ") or (before == "" and after.startswith(" ")):
                    new = pad + new  # right-aligned
                out.append(line[pos : m.start()] + new)
                pos = m.end()
            out.append(line[pos:])
            lines.append("".join(out))
        return "\n".join(lines)


def render(case: Case, side: SideResult) -> str:
    """The normalised, comparable text of one side's run of a case (capture-like)."""
    norm = Normaliser(case, side)
    parts = []
    for r in side.steps:
        if not r.compare:
            parts.append(f"# {r.command}" + (f": {r.note}" if r.note else "") + "\n")
            continue
        parts.append(f"$ {r.command}\n")
        for what in ("stdout", "stderr"):
            if what in r.compare:
                body = norm.text(getattr(r, what), r.command)
                if body and not body.endswith("\n"):
                    body += "\n\\ (no newline at end)\n"
                parts.append(f"--- {what}\n{body}")
            else:
                parts.append(f"--- {what} (not compared)\n")
        parts.append(f"--- exit {r.exit}\n" if "exit" in r.compare else "--- exit (not compared)\n")
    return "".join(parts)


# ------------------------------------------------------------------------------- compare


@dataclass
class Outcome:
    case: Case
    identical: bool
    diff: str = ""
    reference: str = ""  # "live" or "expected"
    peer_text: str = ""
    sky_text: str = ""
    note: str = ""
    seconds: float = 0.0
    timing: str = ""


def _visible(line: str) -> str:
    stripped = line.rstrip(" \t")
    return stripped + "·" * (len(line) - len(stripped)) if stripped != line else line


def compare(case: Case, reference: str, actual: str, ref_name="real Slurm") -> tuple[bool, str]:
    if reference == actual:
        return True, ""
    diff = difflib.unified_diff(
        reference.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        f"{case.id} ({ref_name})",
        f"{case.id} (slurmsky)",
        n=2,
    )
    text = "".join(_visible(d.rstrip("\n")) + "\n" for d in diff)
    return False, text or "(outputs differ only in line endings)\n"


EXPECTED_HEADER = (
    "# {id}: real Slurm's answer, normalised (tests/compat/regenerate.py; do not edit)\n"
)


def write_expected(case: Case, text: str, digits: int, directory: Path = EXPECTED_DIR) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{case.id}.txt").write_text(
        EXPECTED_HEADER.format(id=case.id) + f"# job-id-digits: {digits}\n" + text
    )


def read_expected(case: Case, directory: Path = EXPECTED_DIR) -> tuple[str, int] | None:
    path = directory / f"{case.id}.txt"
    if not path.exists():
        return None
    lines = path.read_text().splitlines(keepends=True)
    digits = 4
    body = []
    for i, line in enumerate(lines):
        if i < 2 and line.startswith("# "):
            m = re.match(r"# job-id-digits: (\d+)", line)
            if m:
                digits = int(m.group(1))
            continue
        body.append(line)
    return "".join(body), digits


def run_one(
    case: Case,
    peer: PeerSide | None,
    sky: Side,
    peer_digits: int = 4,
    expected_dir: Path = EXPECTED_DIR,
) -> Outcome:
    """Run a case on slurmsky (and on the peer when given: both at once) and compare with
    the live answer, or with the stored one in expected_dir."""
    t0 = time.monotonic()
    if peer is not None:
        box: dict = {}

        def on_peer():
            try:
                t = time.monotonic()
                box["r"] = peer.run_case(case, peer_digits)
                box["t"] = time.monotonic() - t
            except Exception as exc:  # noqa: BLE001 - report, never hang the suite
                box["e"] = exc

        th = threading.Thread(target=on_peer)
        th.start()
        t_sky = time.monotonic()
        sky_res = sky.run_case(case, peer_digits)
        t_sky = time.monotonic() - t_sky
        th.join()
        if "e" in box:
            return Outcome(
                case,
                False,
                f"the peer side failed: {box['e']!r}\n",
                "live",
                seconds=time.monotonic() - t0,
            )
        ref_text, ref_name, reference = render(case, box["r"]), "real Slurm", "live"
        note = ""
        timing = f"real Slurm {box.get('t', 0):.1f}s, slurmsky {t_sky:.1f}s"
        stored = read_expected(case, expected_dir)
        if stored is None:
            note = "no stored expectation (run tests/compat/regenerate.py)"
        elif stored[0] != ref_text:
            note = "the stored expectation differs from the live peer (regenerate?)"
    else:
        stored = read_expected(case, expected_dir)
        if stored is None:
            return Outcome(
                case,
                False,
                "no stored expectation: run tests/compat/regenerate.py with the peer up\n",
                "expected",
                seconds=time.monotonic() - t0,
            )
        ref_text, digits = stored
        sky_res = sky.run_case(case, digits)
        ref_name, reference, note = "real Slurm, stored", "expected", ""
    sky_text = render(case, sky_res)
    same, diff = compare(case, ref_text, sky_text, ref_name)
    return Outcome(
        case,
        same,
        diff,
        reference,
        ref_text,
        sky_text,
        note,
        time.monotonic() - t0,
        timing if peer is not None else "",
    )


def id_digits(next_id: int) -> int:
    return len(str(next_id))


def new_root(prefix: str = "sscompat-") -> Path:
    """A run's directory; same-length paths for both sides (p/ and s/) keep columns aligned."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    for sub in ("p", "s"):
        (root / sub).mkdir(mode=0o755)
    return root


def quote(cmd: str) -> str:
    return shlex.quote(cmd)
