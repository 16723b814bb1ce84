"""This machine as the local backend's nodes: their CPUs, memory and GPUs, what no node
here can ever give (sbatch refuses it at submission), and the user's login environment.

The machine is shown as LOCAL_NODES nodes (127.0.0.1, 127.0.0.2, ...; override with
$SLURMSKY_LOCAL_NODES), each with all of its CPUs and memory, as Slurm's multi-node emulation
does. GPUs (`node_gpus`): a partition's `gpus: N` gives each of its nodes N devices, indices
0..N-1, as a Slurm node's `Gres=gpu:N` (fake ones, like the peer's); without it the nodes have
the machine's own GPUs (`CUDA_VISIBLE_DEVICES`, else /dev/nvidiaN), all on the first node:
the nodes share one machine, and a device must not be handed to two of them.

Imported by sbatch: only the standard library, and nothing heavy at import.
"""

from __future__ import annotations

import os
import time

from slurmsky.record import Record

LOCAL_NODES = 4


class Node(Record):
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
