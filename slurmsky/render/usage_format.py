"""A step's usage fields as sacct and sstat print them (Slurm 22.05, jobacct_gather/linux).

A step's usage is its tasks' records (slurmsky/runtime/usage.py: node, task, peak and
current RSS and VM in KiB, user and system CPU seconds). Memory prints in KiB, divided by
1024 while exact (`323672K`, `1G`); TotalCPU/UserCPU/SystemCPU as `MM:SS.mmm`; AveCPU and
MinCPU in whole seconds (`00:00:06`). sstat's averages are of the tasks' current memory, sacct's
of their peaks, as Slurm's. What slurmsky does not measure (pages, disk, energy, CPU frequency)
is 0, as on a node without those counters.
"""

from __future__ import annotations

from slurmsky.display import format_hms, format_mem


def kib(amount: float) -> str:
    return format_mem(int(amount), "KMGTP")


def cpu_time_text(seconds: float) -> str:
    """sacct's TotalCPU/UserCPU/SystemCPU: `MM:SS.mmm` under an hour."""
    if not seconds:
        return "00:00:00"
    whole = int(seconds)
    if whole >= 3600:  # as Elapsed: `01:02:03`, `1-00:00:00`
        return format_hms(whole)
    millis = int(round((seconds - whole) * 1e6)) // 1000
    return "%02d:%02d.%03d" % (whole // 60, whole % 60, millis)


def _cpu(rec: dict) -> float:
    return float(rec.get("user") or 0) + float(rec.get("sys") or 0)


def _extreme(tasks: list[dict], key, pick=max) -> dict:
    """The task with the largest (or smallest) key; the first such by task rank."""
    return pick(sorted(tasks, key=lambda r: r.get("task", 0)), key=key)


class Usage:
    """The usage fields of one step from its tasks' records; `live`: a running step (sstat)."""

    def __init__(self, tasks: list[dict], live: bool = False):
        self.tasks, self.live = tasks, live

    def _mem(self, peak: str, current: str) -> tuple[dict, float, float]:
        """(the task with the peak, the peak, the tasks' average)."""
        top = _extreme(self.tasks, lambda r: r.get(peak) or 0)
        avg_key = current if self.live else peak
        total = sum(int(r.get(avg_key) or 0) for r in self.tasks)
        return top, top.get(peak) or 0, total // len(self.tasks)

    def fields(self) -> dict[str, str]:
        """Every usage field by Slurm's name; only the CPU times for a step that ended
        before its first sample with no rusage of its memory (as sacct shows one)."""
        if not any(r.get("rss") for r in self.tasks):
            return {
                "TotalCPU": cpu_time_text(sum(_cpu(r) for r in self.tasks)),
                "UserCPU": cpu_time_text(sum(float(r.get("user") or 0) for r in self.tasks)),
                "SystemCPU": cpu_time_text(sum(float(r.get("sys") or 0) for r in self.tasks)),
            }
        rss_top, rss_max, rss_ave = self._mem("rss", "cur_rss")
        vm_top, vm_max, vm_ave = self._mem("vm", "cur_vm")
        cpu_min = _extreme(self.tasks, _cpu, min)
        cpu_max = _extreme(self.tasks, _cpu)
        cpus = [_cpu(r) for r in self.tasks]
        total_cpu = sum(cpus)
        rss_tot = sum(int(r.get("cur_rss" if self.live else "rss") or 0) for r in self.tasks)
        vm_tot = sum(int(r.get("cur_vm" if self.live else "vm") or 0) for r in self.tasks)
        first_node = self.tasks[0].get("node", "")

        def tres(cpu: float, mem: float, vmem: float) -> str:
            return "cpu=%s,energy=0,fs/disk=0,mem=%s,pages=0,vmem=%s" % (
                format_hms(int(cpu)),
                kib(mem),
                kib(vmem),
            )

        def where(cpu: dict, mem: dict, vmem: dict, key: str) -> str:
            return "cpu=%s,energy=%s,fs/disk=%s,mem=%s,pages=%s,vmem=%s" % (
                cpu.get(key, ""),
                first_node if key == "node" else 0,
                first_node if key == "node" else 0,
                mem.get(key, ""),
                first_node if key == "node" else 0,
                vmem.get(key, ""),
            )

        def task_where(cpu: dict, mem: dict, vmem: dict) -> str:
            return "cpu=%s,fs/disk=0,mem=%s,pages=0,vmem=%s" % (
                cpu.get("task", 0),
                mem.get("task", 0),
                vmem.get("task", 0),
            )

        ave_cpu = total_cpu / len(cpus)
        return {
            "MaxRSS": kib(rss_max),
            "MaxRSSNode": rss_top.get("node", ""),
            "MaxRSSTask": str(rss_top.get("task", 0)),
            "AveRSS": kib(rss_ave),
            "MaxVMSize": kib(vm_max),
            "MaxVMSizeNode": vm_top.get("node", ""),
            "MaxVMSizeTask": str(vm_top.get("task", 0)),
            "AveVMSize": kib(vm_ave),
            "MaxPages": "0",
            "MaxPagesNode": first_node,
            "MaxPagesTask": "0",
            "AvePages": "0",
            "MinCPU": format_hms(int(_cpu(cpu_min))),
            "MinCPUNode": cpu_min.get("node", ""),
            "MinCPUTask": str(cpu_min.get("task", 0)),
            "AveCPU": format_hms(int(ave_cpu)),
            "AveCPUFreq": "0",
            "ConsumedEnergy": "0",
            "ConsumedEnergyRaw": "0",
            "MaxDiskRead": "0",
            "MaxDiskReadNode": first_node,
            "MaxDiskReadTask": "0",
            "AveDiskRead": "0",
            "MaxDiskWrite": "0",
            "MaxDiskWriteNode": first_node,
            "MaxDiskWriteTask": "0",
            "AveDiskWrite": "0",
            "TotalCPU": cpu_time_text(total_cpu),
            "UserCPU": cpu_time_text(sum(float(r.get("user") or 0) for r in self.tasks)),
            "SystemCPU": cpu_time_text(sum(float(r.get("sys") or 0) for r in self.tasks)),
            "TRESUsageInAve": tres(ave_cpu, rss_ave, vm_ave),
            "TRESUsageInMax": tres(_cpu(cpu_max), rss_max, vm_max),
            "TRESUsageInMaxNode": where(cpu_max, rss_top, vm_top, "node"),
            "TRESUsageInMaxTask": task_where(cpu_max, rss_top, vm_top),
            "TRESUsageInMin": tres(
                _cpu(cpu_min),
                min(int(r.get("rss") or 0) for r in self.tasks),
                min(int(r.get("vm") or 0) for r in self.tasks),
            ),
            "TRESUsageInMinNode": where(cpu_min, cpu_min, cpu_min, "node"),
            "TRESUsageInMinTask": task_where(cpu_min, cpu_min, cpu_min),
            "TRESUsageInTot": tres(total_cpu, rss_tot, vm_tot),
            "TRESUsageOutAve": "energy=0,fs/disk=0",
            "TRESUsageOutMax": "energy=0,fs/disk=0",
            "TRESUsageOutMaxNode": f"energy={first_node},fs/disk={first_node}",
            "TRESUsageOutMaxTask": "fs/disk=0",
            "TRESUsageOutMin": "energy=0,fs/disk=0",
            "TRESUsageOutMinNode": f"energy={first_node},fs/disk={first_node}",
            "TRESUsageOutMinTask": "fs/disk=0",
            "TRESUsageOutTot": "energy=0,fs/disk=0",
        }


USAGE_FIELDS = tuple(Usage([{"node": "", "task": 0, "rss": 1}]).fields())
