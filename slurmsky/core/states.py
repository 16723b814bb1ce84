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
# States Slurm names that slurmsky never gives a job: its commands still take them (`-t RV`).
OTHER_STATE_CODES = {
    "RESIZING": "RS",
    "RESV_DEL_HOLD": "RD",
    "REQUEUE_FED": "RF",
    "REQUEUE_HOLD": "RH",
    "REVOKED": "RV",
    "SIGNALING": "SI",
    "SPECIAL_EXIT": "SE",
    "STAGE_OUT": "SO",
    "STOPPED": "ST",
}
# Every state name Slurm knows, in its job_state_string order (squeue's "Valid job states
# include" list), and every squeue code back to its name (what `-t`/`-s`/`--state` read).
SLURM_STATES = (
    "PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT",
    "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "COMPLETING",
    "CONFIGURING", "RESIZING", "RESV_DEL_HOLD", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
    "REVOKED", "SIGNALING", "SPECIAL_EXIT", "STAGE_OUT", "STOPPED",
)  # fmt: skip
CODE_STATES = {
    code: name for codes in (STATE_CODES, OTHER_STATE_CODES) for name, code in codes.items()
}
ACTIVE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED")
STARTED_STATES = ("CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED")
FINISHED_STATES = tuple(s for s in STATE_CODES if s not in ACTIVE_STATES)
KILLABLE_STATES = (
    "CONFIGURING",
    "RUNNING",
    "REQUEUED",
    "SUSPENDED",
)  # a cancel signals the job's processes
CANCELLABLE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED")  # scancel's

# Pending reasons only time or running jobs change (or, FrontEndDown, the agent its member's
# command starts again: a team's state); the others (held, never satisfiable, too big) wait
# for a command (release, scancel, ...), which wakes the agent itself.
AGENT_REASONS = (
    "None",
    "Priority",
    "Resources",
    "BeginTime",
    "JobArrayTaskLimit",
    "PartitionConfig",
    "FrontEndDown",
)
