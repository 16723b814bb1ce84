"""sacct's output: columns from a table of Slurm's names and widths (negative =
left-justified), values longer than the column cut with `+`, `--parsable` (trailing `|`)
and `--parsable2`; one `.batch` row per started batch job.
"""

from __future__ import annotations

from slurmsky import backends
from slurmsky.core.state.engine import SQLITE_DIALECT  # its listing runs on SQLite alone
from slurmsky.core.states import FINISHED_STATES
from slurmsky.display import format_hms, format_mem
from slurmsky.render.common import cluster_name, group_name, iso, printf_sql
from slurmsky.render.jobview import ID_TEXT_SQL, Job
from slurmsky.render.usage_format import USAGE_FIELDS, Usage, cpu_time_text
from slurmsky.runtime.getopt_long import UsageError

# Slurm 22.05's sacct fields (its --helpformat order) and default column widths; a negative
# width is left-justified.
SACCT_WIDTHS = {
    "Account": 10,
    "AdminComment": 15,
    "AllocCPUS": 10,
    "AllocNodes": 10,
    "AllocTRES": 10,
    "AssocID": 7,
    "AveCPU": 10,
    "AveCPUFreq": 10,
    "AveDiskRead": 14,
    "AveDiskWrite": 14,
    "AvePages": 10,
    "AveRSS": 10,
    "AveVMSize": 10,
    "BlockID": 16,
    "Cluster": 10,
    "Comment": 14,
    "Constraints": 19,
    "ConsumedEnergy": 14,
    "ConsumedEnergyRaw": 17,
    "Container": 19,
    "CPUTime": 10,
    "CPUTimeRAW": 10,
    "DBIndex": 9,
    "DerivedExitCode": 15,
    "Elapsed": 10,
    "ElapsedRaw": 10,
    "Eligible": 19,
    "End": 19,
    "ExitCode": 8,
    "Flags": 19,
    "GID": 6,
    "Group": 9,
    "JobID": -12,
    "JobIDRaw": -12,
    "JobName": 10,
    "Layout": 9,
    "MaxDiskRead": 12,
    "MaxDiskReadNode": 15,
    "MaxDiskReadTask": 15,
    "MaxDiskWrite": 12,
    "MaxDiskWriteNode": 16,
    "MaxDiskWriteTask": 16,
    "MaxPages": 8,
    "MaxPagesNode": 12,
    "MaxPagesTask": 14,
    "MaxRSS": 10,
    "MaxRSSNode": 10,
    "MaxRSSTask": 10,
    "MaxVMSize": 10,
    "MaxVMSizeNode": 14,
    "MaxVMSizeTask": 14,
    "McsLabel": 12,
    "MinCPU": 10,
    "MinCPUNode": 10,
    "MinCPUTask": 10,
    "NCPUS": 10,
    "NNodes": 8,
    "NodeList": 15,
    "NTasks": 8,
    "Partition": 10,
    "Priority": 10,
    "QOS": 10,
    "QOSRAW": 6,
    "Reason": 22,
    "ReqCPUFreq": 10,
    "ReqCPUFreqGov": 13,
    "ReqCPUFreqMax": 13,
    "ReqCPUFreqMin": 13,
    "ReqCPUS": 8,
    "ReqMem": 10,
    "ReqNodes": 8,
    "ReqTRES": 10,
    "Reservation": 20,
    "ReservationId": 13,
    "Reserved": 10,
    "ResvCPU": 10,
    "ResvCPURAW": 10,
    "Start": 19,
    "State": 10,
    "Submit": 19,
    "SubmitLine": 20,
    "Suspended": 10,
    "SystemComment": 15,
    "SystemCPU": 10,
    "Timelimit": 10,
    "TimelimitRaw": 12,
    "TotalCPU": 10,
    "TRESUsageInAve": 14,
    "TRESUsageInMax": 14,
    "TRESUsageInMaxNode": 18,
    "TRESUsageInMaxTask": 18,
    "TRESUsageInMin": 14,
    "TRESUsageInMinNode": 18,
    "TRESUsageInMinTask": 18,
    "TRESUsageInTot": 14,
    "TRESUsageOutAve": 15,
    "TRESUsageOutMax": 15,
    "TRESUsageOutMaxNode": 19,
    "TRESUsageOutMaxTask": 19,
    "TRESUsageOutMin": 15,
    "TRESUsageOutMinNode": 19,
    "TRESUsageOutMinTask": 19,
    "TRESUsageOutTot": 15,
    "UID": 6,
    "User": 9,
    "UserCPU": 10,
    "WCKey": 10,
    "WCKeyID": 7,
    "WorkDir": 20,
}
SACCT_NAMES = sorted(SACCT_WIDTHS, key=str.lower)
SACCT_DEFAULT = "jobid,jobname,partition,account,alloccpus,state,exitcode"
SACCT_BRIEF = "jobid,state,exitcode"
SACCT_LONG = (
    "jobid,jobidraw,jobname,partition,maxvmsize,maxvmsizenode,maxvmsizetask,"
    "avevmsize,maxrss,maxrssnode,maxrsstask,averss,maxpages,maxpagesnode,"
    "maxpagestask,avepages,mincpu,mincpunode,mincputask,avecpu,ntasks,alloccpus,"
    "elapsed,state,exitcode,avecpufreq,reqcpufreqmin,reqcpufreqmax,reqcpufreqgov,"
    "reqmem,consumedenergy,maxdiskread,maxdiskreadnode,maxdiskreadtask,avediskread,"
    "maxdiskwrite,maxdiskwritenode,maxdiskwritetask,avediskwrite,reqtres,alloctres,"
    "tresusageinave,tresusageinmax,tresusageinmaxnode,tresusageinmaxtask,"
    "tresusageinmin,tresusageinminnode,tresusageinmintask,tresusageintot,"
    "tresusageoutmax,tresusageoutmaxnode,tresusageoutmaxtask,tresusageoutave,"
    "tresusageouttot"
)


def sacct_helpformat(names: list[str] = SACCT_NAMES) -> str:
    out = []
    for n, name in enumerate(names):
        out.append(f"{name:<19}" + ("\n" if n % 4 == 3 else " "))
    text = "".join(out)
    return text if text.endswith("\n") else text[:-1] + "\n"


def parse_sacct_fields(
    text: str, prog: str = "sacct", names: list[str] = SACCT_NAMES, widths: dict = SACCT_WIDTHS
) -> list[tuple[str, int]]:
    """`JobID%20,state,NodeList%-30` -> [(Slurm's name, width)]; an unknown name is
    `Invalid field requested: "name"` (sstat's fields: its own names and widths)."""
    fields = []
    for token in filter(None, text.split(",")):
        name, percent, width = token.partition("%")
        lower = name.lower()
        found = next((n for n in names if n.lower().startswith(lower)), None) if lower else None
        if found is None:
            raise UsageError(f'{prog}: error: Invalid field requested: "{name}"')
        size = widths[found]
        if percent:
            try:
                size = int(width) or size
            except ValueError:
                pass
        fields.append((found, size))
    return fields


class Row:
    """One sacct line: a job (`step` None) or one of its steps (`batch`, `0`, ...)."""

    __slots__ = ("job", "step", "info", "_usage")

    def __init__(self, job: Job, step: str | None = None, info: dict | None = None):
        self.job, self.step, self.info = job, step, info or {}
        self._usage: dict | None = None

    def usage(self) -> dict:
        """A step's usage fields (usage_format); {} for a job or a step with no usage."""
        if self._usage is None:
            tasks = [t for t in self.info.get("usage") or () if isinstance(t, dict)]
            self._usage = Usage(tasks).fields() if self.step is not None and tasks else {}
        return self._usage


def step_rows(job: Job) -> list[Row]:
    """The steps sacct lists under a started job: `.batch` for a batch job (`.0` for an
    allocation made by srun/salloc), plus the steps the node runtime recorded in its RESULT
    (`result["steps"]`: [{"id", "name", "state", "exit_code", "signal", "start", "end",
    "nodes", "ntasks", "cpus"}], every key optional, exit_code None: never reported, shown
    blank; an entry with id "batch" describes the batch step itself)."""
    rec = job.rec
    if job.tasks is not None or not job.started:
        return []
    recorded = [s for s in (rec.result or {}).get("steps") or () if isinstance(s, dict)]
    first = "batch" if rec.batch else "0"
    if rec.het_job_offset:  # a heterogeneous job's other components: their steps alone
        if not recorded:
            return []
        first = str(recorded[0].get("id"))
    own = next((s for s in recorded if str(s.get("id")) == first), {})
    rows = [Row(job, first, own)]
    rows.extend(Row(job, str(s.get("id")), s) for s in recorded if s is not own)
    return rows


def _step_state(row: Row) -> tuple[str, str]:
    """(State, ExitCode) of a step row."""
    job, info = row.job, row.info
    rec = job.rec
    if info and ("exit_code" in info or "signal" in info or "state" in info):
        code, sig = int(info.get("exit_code") or 0), int(info.get("signal") or 0)
        state = info.get("state") or ("CANCELLED" if sig else "FAILED" if code else "COMPLETED")
        if "exit_code" in info and info["exit_code"] is None:  # never reported (its node
            return state, ""  # was lost): slurmdbd has no code for it
        return state, f"{code}:{sig}"
    if not rec.finished:
        return ("RUNNING" if rec.state != "COMPLETING" else "COMPLETING"), "0:0"
    result = rec.result or {}
    code, sig = int(result.get("exit_code") or 0), int(result.get("signal") or 0)
    if rec.state in ("CANCELLED", "TIMEOUT") and not sig and not code:
        sig = 15
    if rec.state == "OUT_OF_MEMORY":
        return "OUT_OF_MEMORY", f"0:{sig or 125}"
    if rec.state == "NODE_FAIL":
        return "NODE_FAIL", f"{code}:{sig}"
    if sig:
        return "CANCELLED", f"0:{sig}"
    if code:
        return "FAILED", f"{code}:0"
    return "COMPLETED", "0:0"


def derived_exit_code(rec) -> str:
    """Slurm's DerivedExitCode: the highest exit code of the job's steps (srun steps; the batch
    step's is the job's own ExitCode), signals not counted."""
    result = rec.result or {}
    if result.get("derived_exit_code"):
        return str(result["derived_exit_code"])
    codes = [
        int(s.get("exit_code") or 0)
        for s in result.get("steps") or ()
        if isinstance(s, dict) and str(s.get("id")) != "batch"
    ]
    return f"{max(codes, default=0)}:0"


def _elapsed(row: Row) -> int:
    info = row.info
    if row.step is not None and info.get("start"):
        end = info.get("end") or row.job.rec.end_time or row.job.now
        return max(int(end - info["start"]), 0)
    return row.job.used()


def _sacct_state(row: Row) -> str:
    if row.step is not None:
        return _step_state(row)[0]
    rec = row.job.rec
    if rec.state == "CANCELLED" and rec.cancelled_by is not None:
        return f"CANCELLED by {rec.cancelled_by}"
    if rec.state == "CONFIGURING":
        return "RUNNING"  # a flag on a running job: accounting stores the base state only
    return rec.state


def _sacct_exit(row: Row) -> str:
    if row.step is not None:
        return _step_state(row)[1]
    rec = row.job.rec
    return rec.exit_text if rec.finished else "0:0"


def _sacct_jobid(row: Row, raw: bool) -> str:
    job = row.job
    base = str(job.job_id) if raw else job.id_text
    return base if row.step is None else f"{base}.{row.step}"


def _sacct_start(row: Row) -> str:
    rec = row.job.rec
    if row.step is not None and row.info.get("start"):
        return iso(row.info["start"])
    if row.job.started:
        return iso(rec.start_time)
    if rec.finished:
        return iso(rec.end_time)
    return "Unknown"


def _sacct_end(row: Row) -> str:
    rec = row.job.rec
    if row.step is not None and row.info.get("end"):
        return iso(row.info["end"])
    return iso(rec.end_time) if rec.finished else "Unknown"


def _job_only(func):
    return lambda row: func(row) if row.step is None else None


def _tres(row: Row) -> str:
    """AllocTRES/ReqTRES: `billing=2,cpu=2,gres/gpu=1,mem=200M,node=1` for the job; a
    step's has no billing (the peer's, for --gres=gpu:1)."""
    rec = row.job.rec
    gpus = (rec.gpus_per_node or 0) * rec.num_nodes
    text = "cpu=%d,%smem=%s,node=%d" % (
        rec.num_cpus,
        f"gres/gpu={gpus}," if gpus else "",
        format_mem(row.job.total_mem),
        rec.num_nodes,
    )
    return text if row.step is not None else f"billing={rec.num_cpus},{text}"


def _usage_value(name: str):
    """A usage field: a step's from its tasks' usage (empty before its end, as sacct's);
    the job's CPU times are its steps' sums."""
    cpu = name in ("TotalCPU", "UserCPU", "SystemCPU")

    def value(row: Row) -> str | None:
        if row.step is not None:
            return row.usage().get(name) or ("00:00:00" if cpu else None)
        if cpu:
            key = {"TotalCPU": ("user", "sys"), "UserCPU": ("user",), "SystemCPU": ("sys",)}
            return cpu_time_text(
                sum(
                    float(t.get(k) or 0)
                    for s in (row.job.rec.result or {}).get("steps") or ()
                    if isinstance(s, dict)
                    for t in s.get("usage") or ()
                    if isinstance(t, dict)
                    for k in key[name]
                )
            )
        return "0" if name == "ConsumedEnergy" else None

    return value


def _admin_comment(row: Row) -> str:
    """What the job's backend says in it (a sky job's price or cost); Slurm's admins' own."""
    rec = row.job.rec
    return backends.get(rec.executor).admin_comment(rec) if rec.executor else ""


SACCT_VALUES = {
    "Account": lambda r: r.job.rec.account or "",
    "AdminComment": _job_only(_admin_comment),
    "AllocCPUS": lambda r: str(
        r.job.rec.num_cpus if r.step is None else r.info.get("cpus") or r.job.rec.cpus_per_node[0]
    ),
    "AllocNodes": lambda r: str(r.job.rec.num_nodes if r.job.started else 0),
    "AllocTRES": lambda r: _tres(r) if r.job.started else "",
    "Cluster": lambda r: cluster_name(),
    # AccountingStoreFlags=job_comment is not set, as by default: no --comment here, only
    # what of a sky job's files did not come home (backends/sky/files_home.py)
    "Comment": _job_only(lambda r: (r.job.rec.result or {}).get("files_home") or ""),
    "CPUTime": lambda r: format_hms(_elapsed(r) * r.job.rec.num_cpus),
    "CPUTimeRAW": lambda r: str(_elapsed(r) * r.job.rec.num_cpus),
    "DerivedExitCode": _job_only(lambda r: derived_exit_code(r.job.rec)),
    "Elapsed": lambda r: format_hms(_elapsed(r)),
    "ElapsedRaw": lambda r: str(_elapsed(r)),
    "Eligible": lambda r: iso(r.job.rec.eligible_time),
    "End": _sacct_end,
    "ExitCode": _sacct_exit,
    "GID": lambda r: str(r.job.rec.gid),
    "Group": lambda r: group_name(r.job.rec.gid),
    "JobID": lambda r: _sacct_jobid(r, False),
    "JobIDRaw": lambda r: _sacct_jobid(r, True),
    "JobName": lambda r: (
        r.job.rec.name
        if r.step is None
        else ("batch" if r.step == "batch" else r.info.get("name") or r.job.rec.name)
    ),
    "NCPUS": lambda r: str(
        r.job.rec.num_cpus if r.step is None else r.info.get("cpus") or r.job.rec.cpus_per_node[0]
    ),
    "NNodes": lambda r: str(r.job.rec.num_nodes if r.step is None or r.step != "batch" else 1),
    "NodeList": lambda r: (
        (r.job.rec.nodelist or "None assigned")
        if r.step is None
        else (
            r.job.rec.batch_host if r.step == "batch" else r.info.get("nodes") or r.job.rec.nodelist
        )
        or ""
    ),
    "NTasks": lambda r: (
        None
        if r.step is None
        else str(r.info.get("ntasks") or (1 if r.step == "batch" else r.job.rec.num_tasks))
    ),
    "Partition": _job_only(lambda r: r.job.rec.partition),
    "Priority": lambda r: str(r.job.priority),
    "QOS": lambda r: "normal",
    "QOSRAW": lambda r: "1",
    "Reason": _job_only(lambda r: r.job.rec.reason),
    "ReqCPUS": lambda r: str(r.job.rec.num_cpus),
    "ReqMem": _job_only(lambda r: format_mem(r.job.total_mem)),
    "ReqNodes": lambda r: str(r.job.rec.num_nodes),
    "ReqTRES": _job_only(_tres),
    "Start": _sacct_start,
    "State": _sacct_state,
    "Submit": lambda r: iso(
        r.job.rec.submit_time if r.step is None else r.info.get("start") or r.job.rec.start_time
    ),
    "Suspended": lambda r: "00:00:00",
    "Timelimit": _job_only(
        lambda r: (
            "UNLIMITED" if r.job.rec.time_limit is None else format_hms(r.job.rec.time_limit * 60)
        )
    ),
    "TimelimitRaw": _job_only(
        lambda r: "UNLIMITED" if r.job.rec.time_limit is None else str(r.job.rec.time_limit)
    ),
    "UID": lambda r: str(r.job.rec.uid),
    "User": _job_only(lambda r: r.job.rec.user),
    "WorkDir": _job_only(lambda r: r.job.rec.workdir),
}
SACCT_VALUES.update((name, _usage_value(name)) for name in USAGE_FIELDS)


def sacct_lines(
    rows: list[Row],
    fields: list[tuple[str, int]],
    *,
    header: bool,
    parsable: int,
    delimiter: str | None = None,
    values: dict = SACCT_VALUES,
) -> list[str]:
    """Lines of sacct output (sstat's: its `values`, name -> row -> text). parsable: 0
    columns, 1 `--parsable` (trailing `|`), 2 `--parsable2`."""
    sep = delimiter if delimiter is not None else "|"
    lines = []
    columns = [(abs(size), size > 0) for _, size in fields]

    def cells(values: list[str | None], is_header: bool) -> str:
        if parsable:
            text = sep.join(v or "" for v in values)
            return text + (sep if parsable == 1 else "")
        out = []
        for value, (width, right) in zip(values, columns):
            if value is None:
                value = " "
            elif len(value) > width:
                value = value[:width] if is_header else value[: width - 1] + "+"
            out.append(value.rjust(width) if right else value.ljust(width))
        out.append("")
        return " ".join(out)

    if header:
        lines.append(cells([name for name, _ in fields], True))
        if not parsable:
            lines.append("".join("-" * width + " " for width, _ in columns))
    funcs = [values.get(name) or _none for name, _ in fields]
    lines.extend(cells([func(row) for func in funcs], False) for row in rows)
    return lines


def _none(row) -> None:
    return None


# The listing SQLite computes (state.query_jobs): each field's cell in SQL, of a job's row
# and of a step's (`step`: its id, `info`: its RESULT entry as JSON text, `{}` if none), as
# the functions of SACCT_VALUES make them; None: the cell is empty.
_FINISHED = "state IN (" + ", ".join(f"'{s}'" for s in FINISHED_STATES) + ")"


def _int(doc: str, key: str) -> str:
    """`int(doc.get(key) or 0)` of a JSON object."""
    return f"CAST(coalesce(json_extract({doc}, '$.{key}'), 0) AS INTEGER)"


def _or(value: str, other: str) -> str:
    """Python's `value or other` for a JSON value."""
    return f"coalesce(nullif(nullif({value}, ''), 0), {other})"


_CODE, _SIG = _int("info", "exit_code"), _int("info", "signal")
_RECORDED = " OR ".join(  # a RESULT entry that says how the step ended
    f"json_type(info, '$.{key}') IS NOT NULL" for key in ("exit_code", "signal", "state")
)
_RC, _RS0 = _int("result", "exit_code"), _int("result", "signal")
_RS = (
    f"(CASE WHEN state IN ('CANCELLED', 'TIMEOUT') AND {_RS0} = 0 AND {_RC} = 0 THEN 15 "
    f"ELSE {_RS0} END)"
)
_STEP_STATE = (  # _step_state(row)[0]
    f"(CASE WHEN {_RECORDED} THEN "
    + _or(
        "json_extract(info, '$.state')",
        f"(CASE WHEN {_SIG} THEN 'CANCELLED' WHEN {_CODE} THEN 'FAILED' ELSE 'COMPLETED' END)",
    )
    + f" WHEN NOT {_FINISHED} THEN (CASE WHEN state != 'COMPLETING' THEN 'RUNNING' "
    "ELSE 'COMPLETING' END) WHEN state IN ('OUT_OF_MEMORY', 'NODE_FAIL') THEN state "
    f"WHEN {_RS} THEN 'CANCELLED' WHEN {_RC} THEN 'FAILED' ELSE 'COMPLETED' END)"
)
_STEP_EXIT = (  # _step_state(row)[1]
    f"(CASE WHEN {_RECORDED} THEN {_CODE} || ':' || {_SIG} WHEN NOT {_FINISHED} THEN '0:0' "
    f"WHEN state = 'OUT_OF_MEMORY' THEN '0:' || (CASE WHEN {_RS} THEN {_RS} ELSE 125 END) "
    f"WHEN state = 'NODE_FAIL' THEN {_RC} || ':' || {_RS} WHEN {_RS} THEN '0:' || {_RS} "
    f"WHEN {_RC} THEN {_RC} || ':0' ELSE '0:0' END)"
)
_RAW_ID = "CAST((CASE WHEN array_pending IS NOT NULL THEN array_job_id ELSE job_id END) AS TEXT)"
_STEP_CPUS = _or("json_extract(info, '$.cpus')", "json_extract(cpus_per_node, '$[0]')")
_CPUS = ("CAST(num_cpus AS TEXT)", f"CAST({_STEP_CPUS} AS TEXT)")
_STEP_NAME = _or("json_extract(info, '$.name')", "name")
SACCT_SQL: dict[str, tuple[str | None, str | None]] = {
    "Account": ("coalesce(account, '')", "coalesce(account, '')"),
    "AllocCPUS": _CPUS,
    "ExitCode": (
        f"(CASE WHEN {_FINISHED} THEN coalesce(exit_code, 0) || ':' || coalesce(exit_signal, 0) "
        "ELSE '0:0' END)",
        _STEP_EXIT,
    ),
    "JobID": (ID_TEXT_SQL, f"{ID_TEXT_SQL} || '.' || step"),
    "JobIDRaw": (_RAW_ID, f"{_RAW_ID} || '.' || step"),
    "JobName": (
        "name",
        f"(CASE WHEN step = 'batch' THEN 'batch' ELSE {_STEP_NAME} END)",
    ),
    "NCPUS": _CPUS,
    "NNodes": (
        "CAST(num_nodes AS TEXT)",
        "(CASE WHEN step = 'batch' THEN '1' ELSE CAST(num_nodes AS TEXT) END)",
    ),
    "Partition": ("partition", None),
    "ReqCPUS": ("CAST(num_cpus AS TEXT)", "CAST(num_cpus AS TEXT)"),
    "State": (
        "(CASE WHEN state = 'CANCELLED' AND cancelled_by IS NOT NULL "
        "THEN 'CANCELLED by ' || cancelled_by WHEN state = 'CONFIGURING' THEN 'RUNNING' "
        "ELSE state END)",
        _STEP_STATE,
    ),
    "UID": ("CAST(uid AS TEXT)", "CAST(uid AS TEXT)"),
    "User": ("user", None),
}

# sacct's order (commands/sacct.py): by job id; an array's rows at the highest id it holds
# (its pending record's reserved ids count), its elements by index, then its pending record
_LISTING = """WITH tops AS (
    SELECT array_job_id AS array_id,
        max(job_id + (CASE WHEN array_pending IS NOT NULL THEN array_count(array_pending)
            ELSE 0 END)) AS top
    FROM (SELECT * FROM {{jobs}}) WHERE array_job_id IS NOT NULL GROUP BY array_job_id
)
SELECT {line} FROM (
    SELECT *,
        (CASE WHEN array_job_id IS NULL THEN job_id
            ELSE (SELECT top FROM tops WHERE array_id = array_job_id) END) AS k1,
        (array_pending IS NOT NULL) AS k2,
        (CASE WHEN array_job_id IS NULL THEN 0 ELSE array_task_id END) AS k3
    FROM {{jobs}}
) ORDER BY k1, k2, k3, job_id"""
_PLAIN_LISTING = "SELECT {line} FROM {{jobs}} ORDER BY job_id"  # no array among the jobs
# A started job's steps (step_rows), each line after a newline: `step` its id, `info` its
# RESULT entry (JSON text, `{}` if none): the batch step (or `0`), then the others recorded
# (without json_each, which parses the RESULT anew, where there is one entry or none; the
# aggregate's argument is its own query's column, so that it is never the listing's)
_STEP_ID = "coalesce(CAST(json_extract(e.value, '$.id') AS TEXT), 'None')"  # str(s.get('id'))
_FIRST = (  # a heterogeneous job's other components: their first recorded step
    "(CASE WHEN het_job_offset > 0 "
    "THEN coalesce(CAST(json_extract(result, '$.steps[0].id') AS TEXT), 'None') "
    "WHEN batch THEN 'batch' ELSE '0' END)"
)
_OWN = (  # the position of the first step's own RESULT entry (the first with its id), if any
    f"(SELECT min(e.key) FROM json_each(result, '$.steps') e WHERE e.type = 'object' "
    f"AND {_STEP_ID} = {_FIRST})"
)
_STEPS = f"""(CASE WHEN NOT (start_time IS NOT NULL AND state != 'PENDING')
        OR array_pending IS NOT NULL
        OR (het_job_offset > 0 AND coalesce(json_array_length(result, '$.steps'), 0) = 0)
        THEN ''
    WHEN coalesce(json_array_length(result, '$.steps'), 0) = 0
    THEN (SELECT char(10) || {{line}} FROM (SELECT {_FIRST} AS step, '{{{{}}}}' AS info))
    WHEN json_array_length(result, '$.steps') = 1 AND json_type(result, '$.steps[0]') = 'object'
        AND coalesce(CAST(json_extract(result, '$.steps[0].id') AS TEXT), 'None') = {_FIRST}
    THEN (SELECT char(10) || {{line}} FROM (
        SELECT {_FIRST} AS step, json_extract(result, '$.steps[0]') AS info))
    ELSE (SELECT group_concat(line, '') FROM (SELECT char(10) || {{line}} AS line FROM (
        SELECT {_FIRST} AS step, coalesce((SELECT e.value FROM json_each(result, '$.steps') e
            WHERE e.key = {_OWN}), '{{{{}}}}') AS info
        UNION ALL
        SELECT {_STEP_ID} AS step, e.value AS info FROM json_each(result, '$.steps') e
        WHERE e.type = 'object' AND e.key IS NOT {_OWN}))) END)"""


def listing_fits(fields: list[tuple[str, int]]) -> bool:
    """Whether SQLite can compute a listing of these fields (SACCT_SQL): some (`-o ''`, none:
    an empty line each, as sacct prints, made in Python)."""
    return bool(fields) and all(name in SACCT_SQL for name, _ in fields)


def listing_sql(
    fields: list[tuple[str, int]],
    *,
    steps: bool,
    parsable: int,
    delimiter: str | None = None,
    arrays: bool = True,
) -> str:
    """state.query_jobs' SQL for sacct's lines of these fields (no header), one row per job:
    its line, with `steps` its steps' lines after it (sacct_lines' cells; SQLite's printf
    counts characters as Python's len does). `arrays`: whether arrays may be among the jobs
    (else their order is their ids')."""
    line = _line(fields, [SACCT_SQL[name][0] for name, _ in fields], parsable, delimiter)
    if steps:
        # a step's cells computed once (OFFSET: SQLite does not fold the subquery into the
        # line, which would compute each twice: its length, its text)
        cells = [SACCT_SQL[name][1] for name, _ in fields]
        columns = ", ".join(f"{cell or 'NULL'} AS c{i}" for i, cell in enumerate(cells))
        named = [f"c{i}" if cell else None for i, cell in enumerate(cells)]
        step = _line(fields, named, parsable, delimiter)
        line += " || " + _STEPS.format(
            line=f"(SELECT {step} FROM (SELECT {columns} LIMIT 1 OFFSET 0))"
        )
    return (_LISTING if arrays else _PLAIN_LISTING).format(line=line)


def _line(fields: list[tuple[str, int]], cells: list, parsable: int, delimiter) -> str:
    """A line in SQL of the cells' SQL (None: an empty cell)."""
    if parsable:
        sep = (delimiter if delimiter is not None else "|").replace("%", "%%")
        parts = [(("" if i == 0 else sep) + "%s", cell or "NULL") for i, cell in enumerate(cells)]
        return printf_sql(parts + [(sep if parsable == 1 else "", None)], SQLITE_DIALECT)
    parts: list[tuple[str, str | None]] = []
    cut = []  # a cell longer than its column ends in `+`: cells one by one
    for cell, (_, size) in zip(cells, fields):
        width = abs(size)
        parts += [(f"%!{'' if size > 0 else '-'}{width}.{width}s", cell or "NULL"), (" ", None)]
        value = f"coalesce({cell or 'NULL'}, ' ')"
        spec = f"%!{width}s" if size > 0 else f"%!-{width}s"
        cut.append(
            f"(CASE WHEN length({value}) > {width} THEN substr({value}, 1, {width - 1}) "
            f"|| '+' ELSE printf('{spec}', {value}) END)"
        )
    long = " OR ".join(f"length({c}) > {abs(s)}" for c, (_, s) in zip(cells, fields) if c)
    one_by_one = " || ' ' || ".join(cut)
    return f"(CASE WHEN {long or 0} THEN {one_by_one} || ' ' ELSE {printf_sql(parts, SQLITE_DIALECT)} END)"
