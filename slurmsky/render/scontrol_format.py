"""scontrol's output: `show job` blocks (multi-line with a 3-space indent, or `-o` on one
line), and `show config` / `partition` / `node` blocks.
"""

from __future__ import annotations

from slurmsky import backends
from slurmsky.core.states import FINISHED_STATES
from slurmsky.display import format_hms, format_mem
from slurmsky.render.common import group_name, iso
from slurmsky.render.jobview import Job, tres
from slurmsky.render.sacct_format import derived_exit_code
from slurmsky.runtime.filepattern import NO_VAL


def _hms(seconds: int) -> str:
    return format_hms(seconds)


# --mail-type's flags in the order Slurm prints them; ALL is the first six but ARRAY_TASKS
_MAIL_ORDER = (
    "ARRAY_TASKS INVALID_DEPEND BEGIN END FAIL REQUEUE STAGE_OUT TIME_LIMIT_50 TIME_LIMIT_80 "
    "TIME_LIMIT_90 TIME_LIMIT"
).split()


def _mail_line(asked: dict, user: str) -> list[str]:
    """`MailUser=u MailType=BEGIN,END` of a job that asked mail (--mail-type), else none."""
    kinds = {k.upper() for k in (asked.get("mail_type") or "").split(",")}
    if "ALL" in kinds:
        kinds |= set(_MAIL_ORDER[1:7])
    shown = [k for k in _MAIL_ORDER if k in kinds]
    if not shown:
        return []
    return [f"MailUser={asked.get('mail_user') or user} MailType={','.join(shown)}"]


def _tres_per(spec: dict, gres: str | None) -> list[str]:
    """The job's per-TRES requests, in Slurm's order: CpusPerTres (--cpus-per-gpu),
    MemPerTres (--mem-per-gpu, MB), TresPerJob (--gpus), TresPerNode (--gres,
    --gpus-per-node; with the GPU type), TresPerTask (--gpus-per-task)."""
    if spec.get("gpus_per_task") is None and not any(
        spec.get(k) for k in ("gres", "gpus", "gpus_per_node")
    ):
        # no GPU request in the submission (or none known): what the record keeps
        return [f"TresPerNode=gres:{gres}"] if gres else []
    lines = []
    for key, field in (("cpus_per_gpu", "CpusPerTres"), ("mem_per_gpu", "MemPerTres")):
        if spec.get(key):
            lines.append(f"{field}=gres:gpu:{spec[key]}")
    types = spec.get("gpu_types") or {}

    def gpu(key: str) -> str:  # Slurm keeps the type asked: gpu:l40s:1
        return f"gpu:{types[key]}:{spec[key]}" if key in types else f"gpu:{spec[key]}"

    if spec.get("gpus"):
        lines.append(f"TresPerJob=gres:{gpu('gpus')}")
    per_node = spec.get("gres") or (gpu("gpus_per_node") if spec.get("gpus_per_node") else None)
    if per_node:
        lines.append(f"TresPerNode=gres:{per_node}")
    if spec.get("gpus_per_task") is not None:
        lines.append(f"TresPerTask=gres:{gpu('gpus_per_task')}")
    return lines


def _std_path(job: Job, spec: dict, which: str) -> str:
    """StdOut/StdErr/StdIn as scontrol shows them (libslurm's _fname_format): the pattern
    as given, under WorkDir unless absolute, with only %A %a %j %u %x replaced (%n, %J, %N,
    %t, %s, %% and widths stay). Without the submission's spec, the record's own paths."""
    if "output" not in spec:
        return job.std_path(which)
    pattern = {"out": spec["output"], "err": spec.get("error") or spec["output"]}.get(
        which, spec.get("input")
    )
    if not pattern:
        return "/dev/null"
    rec = job.rec
    task = rec.array_task_id if job.tasks is None else None
    element = task is not None and rec.array_job_id is not None
    for code, value in (
        ("%A", rec.array_job_id if element else job.job_id),
        ("%a", NO_VAL if task is None else task),
        ("%j", job.job_id),
        ("%u", rec.user),
        ("%x", rec.name),
    ):
        pattern = pattern.replace(code, str(value))
    return pattern if pattern.startswith("/") else f"{rec.workdir}/{pattern}"


def show_job(
    job: Job, *, oneliner: bool = False, details: bool = False, spec: dict | None = None
) -> str:
    """`scontrol show job`'s record of one job; `spec` (the submission's runtime spec, when
    known) gives the submit host and the --ntasks-per-node asked."""
    rec = job.rec
    spec = spec or {}
    het = spec.get("het") if rec.het_job_id is not None else None
    if rec.het_job_offset:  # the spec's top level is component 0's: this one has its row
        spec = {k: v for k, v in spec.items() if k not in ("requested", "output", "error")}
    submit_host = (spec.get("submit_host") or "localhost").split(".")[0]
    per_node = spec.get("ntasks_per_node") or 0
    group = job.tasks is not None
    first = f"JobId={job.job_id}"
    if rec.array_job_id is not None:
        first += f" ArrayJobId={rec.array_job_id} ArrayTaskId={job.task_text}"
        if rec.array_throttle:
            first += f" ArrayTaskThrottle={rec.array_throttle}"
    if het:
        first += f" HetJobId={rec.het_job_id} HetJobOffset={rec.het_job_offset}"
    first += f" JobName={rec.name}"
    pending = rec.state == "PENDING"
    started = job.started
    if rec.held or group:
        eligible = "Unknown"
    elif rec.eligible_time:
        eligible = iso(rec.eligible_time)
    else:
        eligible = iso(rec.begin_time if pending else rec.submit_time)
    accrue = "Unknown" if rec.held else iso(rec.submit_time)
    if started:
        end = (
            iso(rec.end_time)
            if rec.end_time
            else (iso(rec.start_time + rec.time_limit * 60) if rec.time_limit else "Unknown")
        )
        start = iso(rec.start_time)
    elif rec.state in FINISHED_STATES:
        start = end = iso(rec.end_time)
    else:
        start = iso(rec.begin_time) if rec.begin_time and not rec.held else "Unknown"
        end = "Unknown"
    limit = "UNLIMITED" if rec.time_limit is None else _hms(rec.time_limit * 60)
    asked = spec.get("requested") or {}
    time_min = _hms(asked["time_min"] * 60) if asked.get("time_min") else "N/A"
    if spec.get("mem_per_gpu") is not None and (started or rec.state in FINISHED_STATES):
        mem = "MinMemoryNode=0"  # counted per GPU now; pending, DefMemPerCPU shows
    elif rec.mem_per_cpu is not None:
        mem = f"MinMemoryCPU={format_mem(rec.mem_per_cpu)}"
    else:
        mem = f"MinMemoryNode={format_mem(rec.mem_per_node or 0)}"
    num_cpus = rec.num_cpus
    if asked and not started:  # what slurmctld counted at submission
        num_cpus = asked.get("cpus", num_cpus)
        tres_text = (
            f"cpu={num_cpus},mem={format_mem(asked['mem'])},node={asked['nodes']},"
            f"billing={num_cpus}" + (f",gres/gpu={asked['gpus']}" if asked["gpus"] else "")
        )
    else:
        gpu_mem = (spec.get("mem_per_gpu") or 0) * job.gpu_count
        tres_text = tres(job, format_mem(gpu_mem or job.total_mem))
    exit_text = rec.exit_text if rec.state in FINISHED_STATES else "0:0"
    if rec.state == "DEADLINE":  # slurmctld's exit code 1, which scontrol reads as a signal
        exit_text = "0:1"
    lines = [first]
    if het:
        last = rec.het_job_id + len(het) - 1
        lines.append(f"HetJobIdSet={rec.het_job_id}-{last}")
    lines += [
        f"UserId={rec.user}({rec.uid}) GroupId={group_name(rec.gid)}({rec.gid}) MCS_label=N/A",
        f"Priority={job.priority} Nice={rec.nice or 0} Account={rec.account or '(null)'} QOS=normal",
        f"JobState={rec.state} Reason={rec.reason} Dependency={rec.dependency or '(null)'}",
        f"Requeue={int(rec.requeue)} Restarts={rec.restarts} BatchFlag={int(rec.batch)} "
        f"Reboot=0 ExitCode={exit_text}",
    ]
    if details:
        lines.append(f"DerivedExitCode={derived_exit_code(rec)}")
    lines += [
        f"RunTime={_hms(job.used())} TimeLimit={limit} TimeMin={time_min}",
        f"SubmitTime={iso(rec.submit_time)} EligibleTime={eligible}",
        f"AccrueTime={accrue}",
        f"StartTime={start} EndTime={end} Deadline={iso(rec.deadline) if rec.deadline else 'N/A'}",
        f"SuspendTime=None SecsPreSuspend=0 "
        f"LastSchedEval={iso(rec.start_time or rec.submit_time)} Scheduler=Main",
        f"Partition={rec.partition} AllocNode:Sid={submit_host}:0",
        f"ReqNodeList={asked.get('nodelist') or '(null)'} "
        f"ExcNodeList={asked.get('exclude') or '(null)'}",
        f"NodeList={(rec.nodelist or '') if started else ''}",
    ]
    if started and rec.batch_host:
        lines.append(f"BatchHost={rec.batch_host}")
    # a pending job shows the count asked: `1-2` for --nodes=1-2, `2-2` for -N2 (none: `1`);
    # once started or ended (even cancelled while pending), one number
    num_nodes = (
        f"{rec.num_nodes}-{rec.max_nodes}"
        if rec.max_nodes and rec.state == "PENDING"
        else rec.num_nodes
    )
    lines += [
        f"NumNodes={num_nodes} NumCPUs={num_cpus} NumTasks={rec.num_tasks} "
        f"CPUs/Task={rec.cpus_per_task or 1} ReqB:S:C:T=0:0:*:*",
        f"TRES={tres_text}",
        f"Socks/Node=* NtasksPerN:B:S:C={per_node}:0:"
        f"{asked.get('ntasks_per_socket') or '*'}:{asked.get('ntasks_per_core') or '*'} CoreSpec=*",
    ]
    gres = job.gres
    if details and started:
        name, _, count = (gres or "").rpartition(":")
        each = int(count) if count.isdigit() else 0
        lines.append("JOB_GRES=" + (f"{name}:{each * rec.num_nodes}" if gres else "(null)"))
        cpus = rec.cpus_per_node[0] if rec.cpus_per_node else 1
        mem_each = (
            rec.mem_per_node if rec.mem_per_node is not None else (rec.mem_per_cpu or 0) * cpus
        )
        lines.append(
            f"  Nodes={rec.nodelist} CPU_IDs={'0' if cpus == 1 else f'0-{cpus - 1}'}"
            f" Mem={mem_each} GRES="
            + (f"{gres}(IDX:{'0' if each == 1 else f'0-{each - 1}'})" if gres else "")
        )
    min_cpus = max(
        per_node * (rec.cpus_per_task or 1) if per_node else (rec.cpus_per_task or 1),
        asked.get("mincpus") or 0,
    )
    lines += [
        f"MinCPUsNode={min_cpus} {mem} MinTmpDiskNode={format_mem(asked.get('tmp') or 0)}",
        "Features=(null) DelayBoot=00:00:00",
        f"OverSubscribe={rec.oversubscribe or ('NO' if spec.get('exclusive') else 'OK')} "
        f"Contiguous={int(bool(asked.get('contiguous')))} "
        "Licenses=(null) Network=(null)",
        f"Command={rec.command or '(null)'}",
        f"WorkDir={rec.workdir}",
    ]
    backend = backends.get(rec.executor) if rec.executor else None
    admin = backend.admin_comment(rec) if backend else ""
    if admin:
        lines.append(f"AdminComment={admin} ")
    if rec.comment:
        lines.append(f"Comment={rec.comment} ")
    if rec.batch:
        lines += [
            f"StdErr={_std_path(job, spec, 'err')}",
            f"StdIn={_std_path(job, spec, 'in')}",
            f"StdOut={_std_path(job, spec, 'out')}",
        ]
    remote = backend.remote_id(rec) if backend else None
    if remote is not None:
        lines.append("%s=%s" % remote)
    lines.append("Power=")
    lines += _tres_per(spec, gres) + _mail_line(asked, rec.user)
    if asked.get("ntasks_per_gpu"):
        lines.append(f"NtasksPerTRES={asked['ntasks_per_gpu']}")
    if oneliner:
        return " ".join(lines) + " \n"
    return "\n   ".join(lines) + "\n   \n\n"


def show_step(rec, step: dict | None, oneliner: bool) -> str:
    """`scontrol show step`'s record of a running step: the node runtime's record of an
    srun step, or the batch step (`step` None). Its memory is the job's on the step's
    nodes (a step's own --mem is not recorded)."""
    if step is None:
        pairs = [
            [
                f"StepId={rec.job_id}.batch",
                f"UserId={rec.uid}",
                f"StartTime={iso(rec.start_time)}",
                "TimeLimit=UNLIMITED",
            ],
            [f"State={rec.state}", f"Partition={rec.partition}", f"NodeList={rec.batch_host}"],
            ["Nodes=1", "CPUs=0", "Tasks=1", "Name=batch", "Network=(null)"],
            ["TRES=(null)"],
            ["ResvPorts=(null)"],
            ["CPUFreqReq=Default"],
            ["SrunHost:Pid=(null):0"],
        ]
    else:
        nodes, cpus, ntasks = len(step.get("ranks") or [0]), step.get("cpus"), step.get("ntasks")
        if rec.mem_per_node is not None:
            mem = rec.mem_per_node * nodes
        else:
            mem = (rec.mem_per_cpu or 0) * (cpus or 0)
        pairs = [
            [
                f"StepId={rec.job_id}.{step.get('id')}",
                f"UserId={rec.uid}",
                f"StartTime={iso(step.get('start'))}",
                "TimeLimit=UNLIMITED",
            ],
            ["State=RUNNING", f"Partition={rec.partition}", f"NodeList={step.get('nodes')}"],
            [
                f"Nodes={nodes}",
                f"CPUs={cpus}",
                f"Tasks={ntasks}",
                f"Name={step.get('name')}",
                "Network=(null)",
            ],
            [f"TRES=cpu={cpus},mem={format_mem(mem)},node={nodes}"],
            ["ResvPorts=(null)"],
            ["CPUFreqReq=Default", "Dist=" + ("Cyclic" if (ntasks or 0) <= nodes else "Block")],
            [f"SrunHost:Pid={step.get('srun') or '(null):0'}"],
        ]
    return show_block(pairs, oneliner)


def show_config(items: list[tuple[str, str]], now: float, host: str) -> str:
    lines = [f"Configuration data as of {iso(now)}"]
    lines += [f"{key:<23} = {value}" for key, value in items]
    return "\n".join(lines) + f"\n\nSlurmctld(primary) at {host} is UP\n"


def show_block(pairs: list[list[str]], oneliner: bool) -> str:
    """A `Key=Value` record whose first line is unindented (show partition/node)."""
    lines = [" ".join(p) for p in pairs]
    if oneliner:
        return " ".join(lines) + "\n"
    return "\n   ".join(lines) + "\n\n"
