"""seff's report (Slurm's contribs/seff, version 2.1): a job's CPU and memory efficiency from
what accounting holds of its ended steps, line for line as the Perl tool prints it."""

from __future__ import annotations

import math

from slurmsky import backends
from slurmsky.display import format_hms
from slurmsky.render.common import cluster_name, group_name
from slurmsky.render.jobview import Job


def kbytes2str(kbytes: float) -> str:
    if kbytes == 0:
        return "0.00 MB"
    exp = int(math.log(kbytes) / math.log(1024))
    prefix = "KMGTPE"[exp] if exp < 6 else ""
    return "%.2f %sB" % (kbytes / 1024**exp, prefix)


def _steps(rec) -> list[dict]:
    return [s for s in (rec.result or {}).get("steps") or () if isinstance(s, dict)]


def seff_lines(job: Job, debug: bool = False) -> list[str]:
    rec = job.rec
    state = {"CONFIGURING": "RUNNING", "COMPLETING": "RUNNING"}.get(rec.state, rec.state)
    ncpus = rec.num_cpus or 1
    nnodes = rec.num_nodes or 1
    if rec.mem_per_cpu is not None:
        reqmem, pernode = rec.mem_per_cpu * 1024 * ncpus, False
    else:
        reqmem, pernode = (rec.mem_per_node or 0) * 1024 * nnodes, True
    walltime = job.used()
    exit_status = rec.exit_code or 0 if rec.finished else 0
    cpu_sec = cpu_usec = 0
    mem = 0.0
    ntasks = 0
    for step in _steps(rec):
        tasks = [t for t in step.get("usage") or () if isinstance(t, dict)]
        total = sum(float(t.get("user") or 0) + float(t.get("sys") or 0) for t in tasks)
        cpu_sec += int(total)
        cpu_usec += int(round((total - int(total)) * 1e6))
        peak = max((int(t.get("rss") or 0) for t in tasks), default=0)
        if mem < peak:
            mem, ntasks = peak, int(step.get("ntasks") or len(tasks))
    cput = cpu_sec + int(cpu_usec / 1e6 + 0.5)
    mem *= ntasks
    lines = []
    if debug:
        array = f"{rec.array_job_id}_{rec.array_task_id}" if rec.array_job_id else ""
        lines += [
            "Slurm data: JobID ArrayJobID User Group State Clustername Ncpus Nnodes Ntasks "
            "Reqmem PerNode Cput Walltime Mem ExitStatus",
            f"Slurm data: {rec.job_id} {array} {rec.user} {group_name(rec.gid)} {state} "
            f"{cluster_name()} {ncpus} {nnodes} {ntasks} {reqmem} {int(pernode)} {cput} "
            f"{walltime} {mem:g} {exit_status}",
            "",
        ]
    lines.append(f"Job ID: {rec.job_id}")
    if rec.array_job_id is not None and rec.array_task_id is not None:
        lines.append(f"Array Job ID: {rec.array_job_id}_{rec.array_task_id}")
    lines += [f"Cluster: {cluster_name()}", f"User/Group: {rec.user}/{group_name(rec.gid)}"]
    if state in ("PENDING", "RUNNING"):
        lines.append(f"State: {state}")
    else:
        lines.append(f"State: {state} (exit code {exit_status})")
    if ncpus == 1:
        lines.append(f"Cores: {ncpus}")
    else:
        lines += [f"Nodes: {nnodes}", "Cores per node: %d" % (ncpus / nnodes)]
    if state == "PENDING":
        return lines + ["Efficiency not available for jobs in the PENDING state."]
    core_walltime = walltime * ncpus
    cpu_eff = cput / core_walltime * 100 if core_walltime else 0.0
    mem_eff = mem / reqmem * 100 if reqmem else 0.0
    lines += [
        f"CPU Utilized: {format_hms(int(cput))}",
        "CPU Efficiency: %.2f%% of %s core-walltime" % (cpu_eff, format_hms(int(core_walltime))),
        f"Job Wall-clock time: {format_hms(int(walltime))}",
    ]
    if ntasks == 1:
        lines.append(f"Memory Utilized: {kbytes2str(mem)}")
        lines.append("Memory Efficiency: %.2f%% of %s" % (mem_eff, kbytes2str(reqmem)))
    else:
        lines.append(f"Memory Utilized: {kbytes2str(mem)} (estimated maximum)")
        share, unit = (reqmem / nnodes, "node") if pernode else (reqmem / ncpus, "core")
        lines.append(
            "Memory Efficiency: %.2f%% of %s (%s/%s)"
            % (mem_eff, kbytes2str(reqmem), kbytes2str(share), unit)
        )
    cost = backends.get(rec.executor).cost_line(rec) if rec.executor else None
    if cost:  # slurmsky's line (a sky job's: what its instances cost)
        lines.append(cost)
    if state == "RUNNING":
        lines.append(f"WARNING: Efficiency statistics may be misleading for {state} jobs.")
    return lines
