"""sstat's fields: a running step's usage at the last sample (usage_format), its id, tasks
and nodes; columns and parsable forms as sacct's (sacct_format.sacct_lines)."""

from __future__ import annotations

from slurmsky.render.sacct_format import SACCT_WIDTHS
from slurmsky.render.usage_format import Usage

# Slurm 22.05's `sstat --helpformat`, in its order
SSTAT_NAMES = (
    "AveCPU AveCPUFreq AveDiskRead AveDiskWrite AvePages AveRSS AveVMSize ConsumedEnergy "
    "ConsumedEnergyRaw JobID MaxDiskRead MaxDiskReadNode MaxDiskReadTask MaxDiskWrite "
    "MaxDiskWriteNode MaxDiskWriteTask MaxPages MaxPagesNode MaxPagesTask MaxRSS MaxRSSNode "
    "MaxRSSTask MaxVMSize MaxVMSizeNode MaxVMSizeTask MinCPU MinCPUNode MinCPUTask Nodelist "
    "NTasks Pids ReqCPUFreq ReqCPUFreqMin ReqCPUFreqMax ReqCPUFreqGov TRESUsageInAve "
    "TRESUsageInMax TRESUsageInMaxNode TRESUsageInMaxTask TRESUsageInMin TRESUsageInMinNode "
    "TRESUsageInMinTask TRESUsageInTot TRESUsageOutAve TRESUsageOutMax TRESUsageOutMaxNode "
    "TRESUsageOutMaxTask TRESUsageOutMin TRESUsageOutMinNode TRESUsageOutMinTask "
    "TRESUsageOutTot"
).split()
SSTAT_WIDTHS = {**SACCT_WIDTHS, "AveDiskRead": 12, "AveDiskWrite": 12, "Nodelist": 20, "Pids": 20}
SSTAT_DEFAULT = (
    "JobID,MaxVMSize,MaxVMSizeNode,MaxVMSizeTask,AveVMSize,MaxRSS,MaxRSSNode,MaxRSSTask,"
    "AveRSS,MaxPages,MaxPagesNode,MaxPagesTask,AvePages,MinCPU,MinCPUNode,MinCPUTask,AveCPU,"
    "NTasks,AveCPUFreq,ReqCPUFreqMin,ReqCPUFreqMax,ReqCPUFreqGov,ConsumedEnergy,MaxDiskRead,"
    "MaxDiskReadNode,MaxDiskReadTask,AveDiskRead,MaxDiskWrite,MaxDiskWriteNode,"
    "MaxDiskWriteTask,AveDiskWrite,TRESUsageInAve,TRESUsageInMax,TRESUsageInMaxNode,"
    "TRESUsageInMaxTask,TRESUsageInMin,TRESUsageInMinNode,TRESUsageInMinTask,TRESUsageInTot,"
    "TRESUsageOutAve,TRESUsageOutMax,TRESUsageOutMaxNode,TRESUsageOutMaxTask,TRESUsageOutMin,"
    "TRESUsageOutMinNode,TRESUsageOutMinTask,TRESUsageOutTot"
)


class StepRow:
    """One running step: `job_id.step`, its nodes and its tasks' usage records."""

    def __init__(self, step_id: str, step: str, nodes: str, tasks: list[dict]):
        freq = "0" if step == "batch" else "Unknown"  # srun steps have no --cpu-freq set
        self.fields = {
            **Usage(tasks, live=True).fields(),
            "JobID": step_id,
            "Nodelist": nodes,
            "NTasks": str(len(tasks)),
            "Pids": "",
            "ReqCPUFreq": freq,
            "ReqCPUFreqMin": freq,
            "ReqCPUFreqMax": freq,
            "ReqCPUFreqGov": freq,
        }


SSTAT_VALUES = {name: (lambda row, name=name: row.fields.get(name)) for name in SSTAT_NAMES}
