"""scontrol: show jobs, hostlists, the configuration, partitions and nodes; hold, release,
requeue and update jobs. Messages and exit codes as Slurm 22.05's.

The control operations are control.py's (which wake the agent); the records are the state
database's. Finished jobs are visible for MinJobAge after their end, as in slurmctld.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from slurmsky import SLURM_VERSION, backends
from slurmsky.commands.common import run
from slurmsky.commands.read_options import REQUIRED, Opt, Table, answered
from slurmsky.core import jobcontrol as control
from slurmsky.core import state, states
from slurmsky.display import format_limit
from slurmsky.record import Record
from slurmsky.render import common, jobview, scontrol_format, sinfo_format
from slurmsky.render.jobview import Job
from slurmsky.runtime.getopt_long import UsageError


class ScontrolArgs(Record, frozen=False):
    """What scontrol's options before its command ask."""

    oneliner: bool = False
    details: bool = False
    quiet: bool = False
    action: str | None = None


_NO_EFFECT = "accepted, no effect"
# fmt: off
OPTIONS = Table("scontrol", (
    Opt("a", ("all",), help=_NO_EFFECT),
    Opt("M", ("cluster", "clusters"), REQUIRED, help=_NO_EFFECT),
    Opt("d", ("details",), dest="details", help="more detail"),
    Opt("h", ("help",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("", ("hide",), help=_NO_EFFECT),
    Opt("", ("local",), help=_NO_EFFECT),
    Opt("o", ("oneliner",), dest="oneliner", help="one line per record"),
    Opt("Q", ("quiet",), dest="quiet", help="no error messages"),
    Opt("", ("sibling",), help=_NO_EFFECT),
    Opt("", ("usage",), dest="action", const="help", stop=True, help="Slurm's help text"),
    Opt("v", ("verbose",), help=_NO_EFFECT),
    Opt("V", ("version",), dest="action", const="version", stop=True, help="the version"),
    Opt("", ("federation",), help=_NO_EFFECT),
    Opt("", ("future",), help=_NO_EFFECT),
    Opt("", ("json",), help=_NO_EFFECT),
    Opt("", ("yaml",), help=_NO_EFFECT),
), permute=False)
# fmt: on
SUPPORTED = """\
slurmsky: of Slurm's <COMMAND> values, these:
     hold <job_list>          prevent specified job from starting
     ping                     print status of slurmctld daemons
     release <job_list>       permit specified job to start
     requeue <job_id>         re-queue a batch job
     resume <job_list>        resume previously suspended job (see suspend)
     show <ENTITY> [<ID>]     display state of identified entity
                              (config, hostlist, hostlistsorted, hostnames, job, node,
                              partition)
     suspend <job_list>       susend specified job (see resume)
     uhold <job_list>         place user hold on specified job
     update <SPECIFICATIONS>  update job (JobId=, TimeLimit=, JobName=, Comment=,
                              StartTime=, ArrayTaskThrottle=)
     version                  display tool version number"""


def help_text() -> str:
    """`scontrol --help`, `--usage` and `help`: Slurm's text, then what slurmsky supports."""
    from slurmsky.runtime.help_texts import HELP

    return HELP["scontrol"] + SUPPORTED


INVALID_JOB = "slurm_load_jobs error: Invalid job id specified"
# scontrol.c's slurm_perror after a hold/uhold/release argument that failed (so named there)
HOLD_ERROR = "slurm_suspend error"


def _is(tag: str, word: str, minimum: int) -> bool:
    """Slurm's xstrncasecmp(tag, word, MAX(strlen(tag), minimum)) == 0."""
    tag = tag.lower()
    return len(tag) >= min(minimum, len(word)) and word.startswith(tag)


class Session:
    def __init__(self, oneliner: bool, details: bool, quiet: bool):
        self.oneliner, self.details, self.quiet = oneliner, details, quiet
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            self._conn = state.connect()
        return self._conn

    # --- dispatch -----------------------------------------------------------------------
    def run(self, words: list[str]) -> int:
        if not words:
            return 0
        command, args = words[0], words[1:]
        if _is(command, "show", 3):
            return self.show(args)
        if command.lower() in ("hold", "uhold"):
            return self.each_job(
                args,
                lambda conn, job: control.hold(
                    conn, job, admin=command.lower() == "hold" and os.geteuid() == 0
                ),
                HOLD_ERROR,
            )
        if _is(command, "release", 3):
            return self.each_job(args, control.release, HOLD_ERROR)
        if _is(command, "requeue", 3):
            return self.each_job(args, control.requeue)
        if _is(command, "suspend", 2) or _is(command, "resume", 3):
            if not args:
                raise UsageError(f"too few arguments for keyword:{command}")
            resume = _is(command, "resume", 3)
            return self.each_job(
                [_job_word(a) for a in args],
                lambda conn, job: control.suspend(conn, job, resume=resume),
            )
        if _is(command, "update", 1):
            return self.update(args)
        if _is(command, "ping", 2):
            print(f"Slurmctld(primary) at {_host()} is UP")
            return 0
        if _is(command, "version", 4):
            print(common.version_line())
            return 0
        if command.lower() in ("quit", "exit"):
            return 0
        if command.lower() == "help":
            print(help_text())
            return 0
        raise UsageError(f"invalid keyword: {command}")

    def show(self, args: list[str]) -> int:
        if not args:
            raise UsageError("scontrol: error: too few arguments for keyword:show")
        entity, value = args[0], (args[1] if len(args) > 1 else None)
        if _is(entity, "hostnames", 5):
            from slurmsky.runtime.hostlist import expand

            if value is None:
                value = os.environ.get("SLURM_NODELIST")
                if value is None:  # unset; set but empty prints nothing, as on Slurm
                    sys.stderr.write("scontrol: error: host list is empty\n")
            try:
                names = expand(value or "")
            except ValueError as exc:  # Slurm prints it and carries on: exit 0
                sys.stderr.write(f"{exc.log('scontrol')}{exc}\n")
                return 0
            sys.stdout.write("".join(n + "\n" for n in names))
            return 0
        if _is(entity, "hostlist", 5) or _is(entity, "hostlistsorted", 9):
            from slurmsky.runtime.hostlist import compress, expand

            if value is None:
                raise UsageError("invalid encode argument")
            try:
                names = expand(value)
            except ValueError as exc:
                raise UsageError(exc.log("scontrol") + str(exc)) from None
            print(compress(names, sort=_is(entity, "hostlistsorted", 9)))
            return 0
        if _is(entity, "jobs", 1) or _is(entity, "jobid", 4):
            return self.show_job(value)
        if _is(entity, "config", 2):
            return self.show_config()
        if _is(entity, "partitions", 1):
            return self.show_partitions(value)
        if _is(entity, "nodes", 1):
            return self.show_nodes(value)
        if _is(entity, "steps", 2):
            return self.show_steps(value)
        raise UsageError(f"invalid entity:{entity} for keyword:show")

    # --- jobs -----------------------------------------------------------------------------
    def visible(self, **filters):
        backends.refresh_all()  # an outside queue (SkyPilot's) fresh enough (bounded wait)
        now = common.clock()
        return state.find_jobs(
            self.conn, active_or_ended_after=now - state.MIN_JOB_AGE, **filters
        ), now

    def show_job(self, value: str | None) -> int:
        if value is None:
            records, now = self.visible()
        else:
            head, _, task = value.partition("_")
            component = control.parse_het_id(value)
            if component is not None:  # J+N: that component of heterogeneous job J
                job_id, offset = component
                records, now = self.visible(ids=[job_id + offset])
                records = [
                    r for r in records if (r.het_job_id, r.het_job_offset) == (job_id, offset)
                ]
                if not records:
                    raise UsageError(f"Job {value} not found")
            elif not head.isdigit() or (_ and not task.isdigit()):
                raise UsageError("scontrol_print_job error: Invalid job id specified")
            elif int(head) == 0:  # job 0 is every job (scontrol_load_job); 0_N their elements N
                records, now = self.visible()
                if _:
                    arrays = sorted({r.array_job_id for r in records if r.array_job_id})
                    records, now = self.visible(tasks=[(a, int(task)) for a in arrays])
                    if not records:
                        print(f"Job 0_{int(task)} not found")
                        return 1
            elif _:
                records, now = self.visible(tasks=[(int(head), int(task))])
            else:
                records, now = self.visible(ids=[int(head)])
            if not records:
                raise UsageError(INVALID_JOB)
        jobs = jobview.collapse(records, now=now)
        jobs.sort(
            key=lambda j: (
                j.rec.array_job_id or j.rec.job_id,
                -1 if j.tasks is not None else j.rec.array_task_id or 0,
            )
        )
        specs = _specs(self.conn, jobs)
        for job in jobs:
            sys.stdout.write(
                scontrol_format.show_job(
                    job,
                    oneliner=self.oneliner,
                    details=self.details,
                    spec=specs.get(job.rec.submission),
                )
            )
        if not jobs:
            print("No jobs in the system")
        return 0

    def show_steps(self, value: str | None) -> int:
        """scontrol show step [J[.S]]: the running steps, each job's batch step first, as
        the peer lists them; of an ended job or a step it lacks, `Job step J.S not found`."""
        head, _, sid = (value or "").partition(".")
        if value and not head.isdigit():
            raise UsageError("slurm_get_job_steps error: Invalid job id specified")
        records = state.find_jobs(
            self.conn, ids=[int(head)] if value else None, states=("RUNNING", "COMPLETING")
        )
        if value and not records and state.get_job(self.conn, int(head)) is None:
            raise UsageError("slurm_get_job_steps error: Invalid job id specified")
        shown = []
        for rec in sorted(records, key=lambda r: r.job_id):
            steps = backends.get(rec.executor).running_steps(rec) if rec.executor else []
            if rec.batch and sid in ("", "batch"):
                shown.append(scontrol_format.show_step(rec, None, self.oneliner))
            shown += [
                scontrol_format.show_step(rec, step, self.oneliner)
                for step in sorted(steps, key=lambda s: int(s.get("id") or 0))
                if sid in ("", str(step.get("id")))
            ]
        if value and not shown:
            print(f"Job step {head}.{sid} not found")
            return 1
        sys.stdout.write("".join(shown) or "No job steps in the system\n")
        return 0

    def each_job(self, args: list[str], operation, word_error: str | None = None) -> int:
        """hold/uhold/release/requeue over `1,2 3_4`: Slurm's `<error> for job <id>`, and
        after a word with errors `<word_error>: <its last error>` (hold and release)."""
        if not args:
            raise UsageError("scontrol: error: too few arguments for keyword")
        status = 0
        for word in args:
            last = None
            for item in filter(None, word.split(",")):
                try:
                    job_id, indices = control.parse_job_id(item)
                except ValueError:
                    last = control.INVALID_ID
                    sys.stderr.write(f"{last} for job {item}\n")
                    continue
                records = control.select(self.conn, job_id, indices)
                live = [r for r in records if not r.finished] or records
                if not records:
                    errors = [control.INVALID_ID]
                else:
                    errors = [e for e in (operation(self.conn, r) for r in live) if e]
                    if len(errors) < len(live):
                        errors = []
                if errors:
                    last = errors[0]
                    sys.stderr.write(f"{last} for job {item}\n")
            if last is not None:
                status = 1
                if word_error:
                    sys.stderr.write(f"{word_error}: {last}\n")
        return status

    def update(self, args: list[str]) -> int:
        pairs = []
        words = iter(args)
        for word in words:
            key, eq, val = word.partition("=")
            if not eq:  # `Tag Value` as two words, as update_job.c takes them
                val = next(words, None)  # type: ignore[arg-type]
                if val is None:
                    raise UsageError(f"Invalid input: {word}", "Request aborted")
            pairs.append((key, val))
        job_text = next((v for k, v in pairs if k.lower() in ("jobid", "job")), None)
        if job_text is None:
            raise UsageError("scontrol: error: No job id specified", "Request aborted")
        changes: dict = {}
        throttle = None
        from slurmsky.core import daemon
        from slurmsky.parse.times import TimeSpecError, parse_begin, parse_time

        for key, val in pairs:
            lower = key.lower()
            if lower in ("jobid", "job"):
                continue
            if len(lower) >= 10 and "arraytaskthrottle".startswith(lower):
                digits = val.strip().lstrip("+-")
                digits = digits[: len(digits) - len(digits.lstrip("0123456789"))]
                throttle = int(digits or 0) * (-1 if val.strip().startswith("-") else 1)
                if throttle < 0:  # strtoll's value
                    raise UsageError("scontrol: error: Invalid ArrayTaskThrottle value")
            elif lower in ("starttime", "eligibletime"):
                try:  # a bad time is parse_time's line, and no change
                    changes["begin_time"] = max(parse_begin(val, key), time.time())
                except TimeSpecError as exc:
                    sys.stderr.write("".join(f"{note}\n" for note in exc.notes))
            elif lower == "timelimit":
                try:
                    changes["time_limit"] = parse_time(val, "TimeLimit")
                except ValueError:
                    raise UsageError(
                        f"scontrol: error: Invalid TimeLimit value: {val}", "Request aborted"
                    ) from None
            elif lower in ("jobname", "name"):
                changes["name"] = val
            elif lower == "comment":
                changes["comment"] = val
            else:
                raise UsageError(
                    f"scontrol: error: Update of this parameter is not "
                    f"supported: {word_of(key, val)}",
                    "Request aborted",
                )
        if not changes and throttle is None:
            raise UsageError("No changes specified")
        try:
            job_id, indices = control.parse_job_id(job_text)
        except ValueError:
            raise UsageError(f"Invalid job id specified for job {job_text}") from None
        records = control.select(self.conn, job_id, indices)
        if not records:
            raise UsageError(f"Invalid job id specified for job {job_text}")
        if throttle is not None:  # even for an array whose elements all ended
            uid = os.geteuid()
            if uid != 0 and any(rec.uid != uid for rec in records):
                raise UsageError(f"{control.NOT_OWNER} for job {job_text}")
            if records[0].array_job_id is not None:
                state.set_array_throttle(self.conn, records[0].array_job_id, throttle)
                daemon.wake()
            if not changes:
                return 0
        for rec in records:
            uid = os.geteuid()
            if uid != 0 and rec.uid != uid:
                raise UsageError(f"{control.NOT_OWNER} for job {job_text}")
            if rec.finished:
                raise UsageError(f"{control.FINISHED} for job {job_text}")
            if "time_limit" in changes and rec.state != "PENDING":
                # the node runtime of a started job enforces the limit it started with
                raise UsageError(f"{control.DISABLED} for job {job_text}")
            if "begin_time" in changes and rec.state != "PENDING":
                raise UsageError(f"{control.NOT_PENDING} for job {job_text}")
            own = control.split_off(self.conn, rec)
            if own is None:
                raise UsageError(f"{control.NOT_PENDING} for job {job_text}")
            state.update_job(self.conn, own.job_id, where_state=states.ACTIVE_STATES, **changes)
        if "begin_time" in changes:
            daemon.wake()  # the agent looks at its begin time again
        return 0

    # --- configuration ----------------------------------------------------------------------
    def show_config(self) -> int:
        from slurmsky import SLURM_VERSION
        from slurmsky.config import load_config

        cfg = load_config()
        items = [
            # sacct answers from the state as from slurmdbd: tools test this name for
            # "accounting is on" (Slurm's own tests skip sacct checks without it)
            ("AccountingStorageType", "accounting_storage/slurmdbd"),
            ("BOOT_TIME", common.iso(_boot_time())),
            ("ClusterName", cfg.cluster_name),
            ("EnforcePartLimits", "NO"),
            ("FirstJobId", "1"),
            ("InactiveLimit", "0 sec"),
            ("JobRequeue", "1"),
            ("KillWait", f"{cfg.kill_wait} sec"),
            ("MaxArraySize", str(cfg.max_array_size)),
            ("MaxJobCount", "10000"),
            ("MaxTasksPerNode", "512"),  # Slurm's default; slurmsky sets no such limit
            ("MinJobAge", f"{state.MIN_JOB_AGE} sec"),
            ("NEXT_JOB_ID", str(state.next_job_id(self.conn))),
            ("OverTimeLimit", "0 min"),
            ("PriorityType", "priority/basic"),
            ("ProctrackType", "proctrack/linuxproc"),  # a job's processes: the runtime's tree
            ("SchedulerType", "sched/builtin"),
            ("SelectType", "select/cons_tres"),
            ("SelectTypeParameters", "CR_CPU_MEMORY"),
            ("SlurmctldHost[0]", _host()),
            ("SLURM_CONF", cfg.path),
            ("SLURM_VERSION", SLURM_VERSION),
            ("SlurmskyBackend", cfg.backend),
            ("StateSaveLocation", state.home()),
        ]
        sys.stdout.write(scontrol_format.show_config(items, common.clock(), _host()))
        return 0

    def show_partitions(self, name: str | None) -> int:
        from slurmsky.commands.sinfo import partitions

        parts = partitions(self.conn)
        if name is not None:
            parts = [p for p in parts if p["name"] == name]
            if not parts:
                raise UsageError(f"Partition {name} not found")
        from slurmsky.runtime.hostlist import compress

        out = []
        for p in parts:
            nodes = p["nodes"]
            cpus = sum(n.cpus for n in nodes)
            mem = sum(n.memory for n in nodes)
            limit = "UNLIMITED" if p["limit"] is None else format_limit(p["limit"])
            out.append(
                scontrol_format.show_block(
                    [
                        [f"PartitionName={p['name']}"],
                        ["AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL"],
                        [f"AllocNodes=ALL Default={'YES' if p['default'] else 'NO'} QoS=N/A"],
                        [
                            "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO"
                        ],
                        [
                            f"MaxNodes=UNLIMITED MaxTime={limit} MinNodes=0 LLN=NO "
                            "MaxCPUsPerNode=UNLIMITED"
                        ],
                        [f"Nodes={compress([n.name for n in nodes]) or '(null)'}"],
                        [
                            "PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO"
                        ],
                        ["OverTimeLimit=NONE PreemptMode=OFF"],
                        [
                            f"State=UP TotalCPUs={cpus} TotalNodes={len(nodes)} "
                            "SelectTypeParameters=NONE"
                        ],
                        ["JobDefaults=(null)"],
                        ["DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED"],
                        [f"TRES=cpu={cpus},mem={mem}M,node={len(nodes)},billing={cpus}"],
                    ],
                    self.oneliner,
                )
            )
        sys.stdout.write("".join(out))
        return 0

    def show_nodes(self, name: str | None) -> int:
        from slurmsky.commands.sinfo import partitions

        nodes: dict = {}
        for p in partitions(self.conn):
            for n in p["nodes"]:
                seen = nodes.setdefault(n.name, (n, []))
                if n.gres and not seen[0].gres:  # a node's GRES, whichever partition lists it
                    seen = nodes[n.name] = (n, seen[1])
                seen[1].append(p["name"])
        status, wanted = 0, list(nodes)
        if name is not None:  # a hostlist, each name in its order (scontrol_print_node_list)
            from slurmsky.runtime.hostlist import expand

            try:
                wanted = expand(name)
            except ValueError:
                raise UsageError(f"unable to parse node list {name}") from None
        uname = os.uname()
        out = []
        for wanted_name in wanted:
            if wanted_name not in nodes:
                out.append(f"Node {wanted_name} not found\n")
                status = 1
                continue
            node, parts = nodes[wanted_name]
            # a remote node (a pool worker): what no slurmd reported is left out or N/A, as
            # Slurm prints a node that never registered
            arch = "" if node.remote else f"Arch={uname.machine} "
            load = "N/A" if node.remote else f"{os.getloadavg()[0]:.2f}"
            os_line = (
                [] if node.remote else [[f"OS={uname.sysname} {uname.release} {uname.version} "]]
            )
            if node.remote:  # up since its cloud cluster was launched, if it is
                booted = started = common.iso(node.boot_time, "None")
                busy = common.iso(node.boot_time)
            else:
                booted, started = common.iso(_machine_boot()), common.iso(_boot_time())
                busy = started
            out.append(
                scontrol_format.show_block(
                    [
                        [f"NodeName={node.name} {arch}CoresPerSocket={node.cpus} "],
                        [
                            f"CPUAlloc={node.alloc_cpus} CPUEfctv={node.cpus} CPUTot={node.cpus} "
                            f"CPULoad={load}"
                        ],
                        ["AvailableFeatures=(null)"],
                        ["ActiveFeatures=(null)"],
                        [f"Gres={node.gres or '(null)'}"],
                        [f"NodeAddr={node.name} NodeHostName={node.name} Version={SLURM_VERSION}"],
                        *os_line,
                        [f"RealMemory={node.memory} AllocMem=0 FreeMem=N/A Sockets=1 Boards=1"],
                        [
                            f"State={sinfo_format.LONG_STATES.get(node.state, node.state).upper()} "
                            f"ThreadsPerCore=1 TmpDisk={node.tmp} Weight=1 Owner=N/A MCS_label=N/A"
                        ],
                        [f"Partitions={','.join(parts)} "],
                        [f"BootTime={booted} SlurmdStartTime={started}"],
                        [f"LastBusyTime={busy}"],
                        [
                            f"CfgTRES=cpu={node.cpus},mem={node.memory}M,billing={node.cpus}"
                            + (f",gres/gpu={node.gres.rpartition(':')[2]}" if node.gres else "")
                        ],
                        ["AllocTRES="],
                        ["CapWatts=n/a"],
                        ["CurrentWatts=0 AveWatts=0"],
                        ["ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s"],
                    ],
                    self.oneliner,
                )
            )
        sys.stdout.write("".join(out))
        return status


def _job_word(word: str) -> str:
    """`JobId=12` or `Job=12` as `12`, as scontrol_suspend reads its argument."""
    for prefix in ("jobid=", "job="):
        if word.lower().startswith(prefix):
            word = word[len(prefix) :]
    return word


def word_of(key: str, val: str) -> str:
    return f"{key}={val}"


def _host() -> str:
    return socket.gethostname().split(".")[0]


def _machine_boot() -> float:
    try:
        with open("/proc/uptime") as fh:
            return common.clock() - float(fh.read().split()[0])
    except (OSError, ValueError):
        return 0.0


def _boot_time() -> float:
    try:
        return os.stat(os.path.join(state.home(), "state.db")).st_mtime
    except OSError:
        return common.clock()


def _specs(conn, jobs: list[Job]) -> dict:
    """submission -> its runtime spec (submit host, --ntasks-per-node), where readable."""
    specs = {}
    for job in jobs:
        sub = job.rec.submission
        if sub not in specs:
            try:
                specs[sub] = state.get_spec(conn, sub)[0]
            except (TypeError, ValueError):
                specs[sub] = {}
    return specs


def body(argv: list[str]) -> int:
    o, words = OPTIONS.parse(argv, ScontrolArgs())
    if o.action == "help":
        print(help_text())
        return 0
    if answered(o, ""):
        return 0
    oneliner, details, quiet = o.oneliner, o.details, o.quiet
    # options may also follow the command (`scontrol show job -o 12`)
    rest = []
    for word in words:
        if word in ("-o", "--oneliner"):
            oneliner = True
        elif word in ("-d", "--details"):
            details = True
        elif word in ("-dd",):
            details = True
        else:
            rest.append(word)
    session = Session(oneliner, details, quiet)
    if rest:
        return session.run(rest)
    status = 0  # no command: read commands from stdin, as scontrol's interactive mode
    for line in sys.stdin:
        words = line.split()
        if words and words[0].lower() in ("quit", "exit"):
            break
        try:
            status = session.run(words)
        except UsageError as exc:
            sys.stderr.write("".join(line + "\n" for line in exc.lines))
            status = exc.exit_code
    return status


def main() -> None:
    run("scontrol", body)
