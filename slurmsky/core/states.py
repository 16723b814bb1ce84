"""Slurm's job-state vocabulary, the one place that defines it: states, their squeue codes,
which are active, started or finished, and the pending reasons the agent itself resolves.
"""

from __future__ import annotations

# Slurm's states and their squeue codes.
STATE_CODES = {
    "PENDING": "PD",
    "CONFIGURING": "CF",
    "RUNNING": "R",
    "COMPLETING": "CG",
    "COMPLETED": "CD",
    "FAILED": "F",
    "CANCELLED": "CA",
    "TIMEOUT": "TO",
    "NODE_FAIL": "NF",
    "OUT_OF_MEMORY": "OOM",
    "PREEMPTED": "PR",
    "REQUEUED": "RQ",
    "BOOT_FAIL": "BF",
    "DEADLINE": "DL",
    "SUSPENDED": "S",
}
ACTIVE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED")
STARTED_STATES = ("CONFIGURING", "RUNNING", "COMPLETING")
FINISHED_STATES = tuple(s for s in STATE_CODES if s not in ACTIVE_STATES)
KILLABLE_STATES = ("CONFIGURING", "RUNNING", "REQUEUED")  # a cancel signals the job's processes
CANCELLABLE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED")  # scancel's

# Pending reasons only time or running jobs change; the others (held, never satisfiable,
# too big) wait for a command (release, scancel, ...), which wakes the agent itself.
AGENT_REASONS = (
    "None",
    "Priority",
    "Resources",
    "BeginTime",
    "JobArrayTaskLimit",
    "PartitionConfig",
)
