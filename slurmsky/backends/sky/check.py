"""SkyPilot's own check of a job's infra and accelerator choices, at submission.

A partition's infra (a string, an ordered list, a set), its accelerators and spot fallback
become SkyPilot resources (task.failover); an infra SkyPilot does not know, or candidates its
schema refuses, are refused by sbatch, translate and --test-only with SkyPilot's reason.
SkyPilot takes seconds to import: each shape it accepted is remembered in the state
directory (CHECKED_FILE), so sbatch in a loop imports it once, and a job whose resources
name no infra is not checked here (SkyPilot checks it at launch).
"""

from __future__ import annotations

import hashlib
import json
import os

from slurmsky.core import state
from slurmsky.errors import SlurmError

CHECKED_FILE = "sky-checked.json"  # hashes of the resources SkyPilot accepted
KEEP = 256  # hashes remembered
KEYS = ("infra", "ordered", "any_of", "accelerators", "use_spot")  # what the partition chose


def check(resources: dict, partition: str) -> None:
    """Refuse (SlurmError, Slurm's words and SkyPilot's reason) resources SkyPilot's
    `Resources.from_yaml_config` refuses."""
    chosen = {k: v for k, v in resources.items() if k in KEYS}
    if not any(k in chosen for k in ("infra", "ordered", "any_of")):
        return
    key = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()
    path = os.path.join(state.ensure_home(), CHECKED_FILE)
    try:
        with open(path) as fh:
            known = json.load(fh)
    except (OSError, ValueError):
        known = []
    if key in known:
        return
    from slurmsky.backends.sky.client import resources_refusal

    reason = resources_refusal(chosen)
    if reason is not None:
        raise SlurmError(
            f"partition {partition}: SkyPilot refuses its resources: {reason}",
            "Batch job submission failed: Requested node configuration is not available",
        )
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump((known + [key])[-KEEP:], fh)
    os.replace(tmp, path)
