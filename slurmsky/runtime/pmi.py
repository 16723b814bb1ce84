"""PMI for ``srun --mpi=pmi2``: the simple PMI-1 and PMI-2 wire protocols, served by srun.

As Slurm's mpi/pmi2 plugin does, every task of the step gets PMI_FD (its end of a socketpair
that the node's runtime holds), PMI_RANK, PMI_SIZE, PMI_JOBID (``job.step.<random>``: see
controller.py) and SLURM_MPI_TYPE=pmi2. The node relays what a task writes there to the step's srun over the step
channel (``pmi`` messages, raw bytes) and srun's answers back (tasks.py, controller.py,
agent.py). srun holds the step's one key-value space, so a fence over many nodes is a count.

A task's library picks the wire (MPICH: MPIR_CVAR_PMI_VERSION):

* PMI-1, ``cmd=NAME key=value ...`` and a newline: init, get_maxes, get_universe_size,
  get_appnum, get_my_kvsname, put, get, barrier_in, finalize, abort.
* PMI-2, a 6-character length then ``cmd=NAME;key=value;...;``: fullinit, job-getid,
  info-getjobattr (PMI_process_mapping, universeSize), info-putnodeattr, info-getnodeattr,
  kvs-put, kvs-get, kvs-fence, finalize, abort.

PMI_process_mapping (how ranks lie on the step's nodes, ``(vector,(node,nodes,tasks),...)``)
is preset. Every barrier is over the whole step. Not served, answered rc=-1: spawn, name
publishing, job-connect. An abort (PMI-2: unless isworld=FALSE) kills the step, as Slurm does.
Values are kept as the task wrote them (PMI-1 escapes included) and given back the same.
Answers are Slurm's byte for byte, but that a threaded client's ``thrid`` comes back in
every PMI-2 answer.
"""

import re

KVSNAME_MAX, KEYLEN_MAX, VALLEN_MAX = 256, 64, 1024  # Slurm's get_maxes answer
MAX_PENDING = 1 << 20  # bytes of one unfinished command kept; beyond, it is no PMI
V1_WORD = re.compile(r"(?:\\.|[^ ])+")
TYPES = "MPI plugin types are...\n\tnone\n\tpmi2"  # srun --mpi=list: the types served
NOT_SERVED = re.compile(r"(pmix(_v[0-9]+)?|cray_shasta)$")  # Slurm's other MPI plugins


class MpiTypeError(Exception):
    """An MPI type Slurm does not have: srun's lines (it exits 1)."""


def mpi_type(value):
    """--mpi (or SLURM_MPI_TYPE) -> (the type served, or None; a warning line, or None), as
    Slurm 22.05's srun takes it: none and openmpi (its old name for none) start no PMI; pmi2
    is served here; pmix and cray_shasta are Slurm's but not served (run such programs with
    mpirun in the allocation); anything else is refused with srun's lines. ``list`` is the
    caller's: it prints TYPES and exits 0."""
    if value in ("none", "openmpi"):
        return None, None
    if value == "pmi2":
        return value, None
    if NOT_SERVED.match(value):
        return None, (
            "srun: warning: --mpi=%s is not served by slurmsky (pmi2 is): start MPI programs "
            "that need it with mpirun inside the allocation" % value
        )
    raise MpiTypeError(
        "srun: error: Couldn't find the specified plugin name for mpi/%s looking at all files\n"
        "srun: error: cannot find mpi plugin for mpi/%s\n"
        "srun: error: MPI: Cannot create context for mpi/%s\n"
        "srun: error: MPI: Unable to load any plugin\n"
        "srun: error: Invalid MPI type '%s', --mpi=list for acceptable types" % ((value,) * 4)
    )


class Server:
    """The PMI world of one step. feed() takes what a task wrote, returns the answers."""

    def __init__(self, kvsname, tasks):
        """tasks: the task ids on each node of the step, in node order."""
        self.kvsname = kvsname
        self.node_of = {gid: pos for pos, gids in enumerate(tasks) for gid in gids}
        self.size = len(self.node_of)
        mapping = process_mapping(tasks)
        self.kvs = {"PMI_process_mapping": mapping}
        self.job_attrs = {"PMI_process_mapping": mapping, "universeSize": str(self.size)}
        self.node_attrs = {}  # (node, key) -> value
        self.waiting = {}  # (node, key) -> [task ids] of info-getnodeattr wait=TRUE
        self.pending = {}  # task id -> bytes not yet a whole command
        self.fence = {}  # task id -> its answer, once every task is in
        self.aborted = False

    def feed(self, gid, data):
        """-> [(task id, answer bytes)]."""
        buf = self.pending.pop(gid, b"") + data
        answers = []
        while buf:
            if buf.startswith((b"cmd=", b"mcmd=")):  # PMI-1 (mcmd: spawn, ends at endcmd)
                end = b"endcmd\n" if buf.startswith(b"mcmd=") else b"\n"
                cut = buf.find(end)
                if cut < 0:
                    break
                line, buf = buf[: cut + len(end)], buf[cut + len(end) :]
                answers += self._v1(gid, line.decode("utf-8", "surrogateescape"))
            else:  # PMI-2
                if len(buf) < 6:
                    break
                try:
                    size = int(buf[:6])
                except ValueError:
                    return answers  # not PMI: nothing more from this task is understood
                if len(buf) < 6 + size:
                    break
                body, buf = buf[6 : 6 + size], buf[6 + size :]
                answers += self._v2(gid, body.decode("utf-8", "surrogateescape"))
        if buf and len(buf) <= MAX_PENDING:
            self.pending[gid] = buf
        return answers

    def _v1(self, gid, line):
        fields = dict(w.partition("=")[::2] for w in V1_WORD.findall(line.replace("\n", " ")))
        cmd = fields.get("cmd", fields.get("mcmd"))
        if cmd == "init":  # MPICH's PMI-2 library starts with a PMI-1 init of version 2
            version = (2, 0) if fields.get("pmi_version") == "2" else (1, 1)
            answer = "response_to_init rc=0 pmi_version=%d pmi_subversion=%d" % version
        elif cmd == "get_maxes":
            answer = "maxes rc=0 kvsname_max=%d keylen_max=%d vallen_max=%d" % (
                KVSNAME_MAX,
                KEYLEN_MAX,
                VALLEN_MAX,
            )
        elif cmd == "get_universe_size":
            answer = "universe_size rc=0 size=%d" % self.size
        elif cmd == "get_appnum":
            answer = "appnum rc=0 appnum=-1"
        elif cmd == "get_my_kvsname":
            answer = "my_kvsname rc=0 kvsname=%s" % self.kvsname
        elif cmd == "put":
            self.kvs[fields.get("key")] = fields.get("value", "")
            answer = "put_result rc=0"
        elif cmd == "get":
            value = self.kvs.get(fields.get("key"))
            answer = "get_result rc=1" if value is None else "get_result rc=0 value=" + value
        elif cmd == "barrier_in":
            return self._enter_fence(gid, _v1("barrier_out rc=0"))
        elif cmd == "finalize":
            answer = "finalize_ack rc=0"
        elif cmd == "abort":
            self.aborted = True
            return []
        else:
            answer = "%s rc=-1 msg=not_supported_by_slurmsky" % _V1_RESULTS.get(cmd, cmd)
        return [(gid, _v1(answer))]

    def _v2(self, gid, body):
        fields = dict(item.partition("=")[::2] for item in body.split(";") if item)
        cmd, key = fields.get("cmd"), fields.get("key")
        if cmd == "fullinit":
            answer = (
                "rc=0;pmi-version=2;pmi-subversion=0;rank=%d;size=%d;appnum=-1;"
                "debugged=FALSE;pmiverbose=FALSE;" % (gid, self.size)
            )
        elif cmd == "job-getid":
            answer = "rc=0;jobid=%s;" % self.kvsname
        elif cmd == "info-getjobattr":
            answer = _found(self.job_attrs.get(key))
        elif cmd == "info-putnodeattr":
            node = self.node_of.get(gid)
            self.node_attrs[node, key] = fields.get("value", "")
            waiting = self.waiting.pop((node, key), [])
            done = _v2(gid, "info-putnodeattr-response", "rc=0;", fields)
            got = _found(self.node_attrs[node, key])
            return [(gid, done)] + [
                (g, _v2(g, "info-getnodeattr-response", got, f)) for g, f in waiting
            ]
        elif cmd == "info-getnodeattr":
            value = self.node_attrs.get((self.node_of.get(gid), key))
            if value is None and fields.get("wait") == "TRUE":
                self.waiting.setdefault((self.node_of.get(gid), key), []).append((gid, fields))
                return []
            answer = _found(value)
        elif cmd == "kvs-put":
            self.kvs[key] = fields.get("value", "")
            answer = "rc=0;"
        elif cmd == "kvs-get":
            answer = _found(self.kvs.get(key))
        elif cmd == "kvs-fence":
            return self._enter_fence(gid, _v2(gid, "kvs-fence-response", "rc=0;", fields))
        elif cmd == "finalize":
            answer = "rc=0;"
        elif cmd == "abort":
            self.aborted = self.aborted or fields.get("isworld") != "FALSE"
            return []
        else:
            answer = "rc=-1;errmsg=not supported by slurmsky;"
        return [(gid, _v2(gid, "%s-response" % cmd, answer, fields))]

    def _enter_fence(self, gid, answer):
        """A task in the barrier; when the last one comes, everyone's answer."""
        self.fence[gid] = answer
        if len(self.fence) < self.size:
            return []
        answers, self.fence = list(self.fence.items()), {}
        return answers


_V1_RESULTS = {
    "spawn": "spawn_result",
    "publish_name": "publish_result",
    "unpublish_name": "unpublish_result",
    "lookup_name": "lookup_result",
}


def _v1(text):
    return ("cmd=%s\n" % text).encode("utf-8", "surrogateescape")


def _v2(gid, name, text, request):
    """A PMI-2 answer: its length in 6 characters (Slurm's %-6d), then the command; the
    request's thrid (a threaded client's) is echoed."""
    thrid = request.get("thrid")
    body = ("cmd=%s;%s" % (name, text) + ("thrid=%s;" % thrid if thrid else "")).encode(
        "utf-8", "surrogateescape"
    )
    return b"%-6d" % len(body) + body


def _found(value):
    return "rc=0;found=FALSE;" if value is None else "rc=0;found=TRUE;value=%s;" % value


def process_mapping(tasks):
    """Slurm's PMI_process_mapping for task ids laid out per node: the ranks in order as
    runs of (first node, node count, tasks per node), e.g. ``(vector,(0,2,2))`` for 4 tasks
    in blocks on 2 nodes, ``(vector,(0,2,1),(0,2,1))`` for cyclic."""
    node_of = {gid: pos for pos, gids in enumerate(tasks) for gid in gids}
    blocks = []  # [node, count]: consecutive ranks on one node
    for rank in sorted(node_of):
        if blocks and blocks[-1][0] == node_of[rank]:
            blocks[-1][1] += 1
        else:
            blocks.append([node_of[rank], 1])
    runs = []  # [first node, nodes, tasks per node]
    for node, count in blocks:
        if runs and runs[-1][2] == count and runs[-1][0] + runs[-1][1] == node:
            runs[-1][1] += 1
        else:
            runs.append([node, 1, count])
    return "(vector,%s)" % ",".join("(%d,%d,%d)" % tuple(run) for run in runs)
