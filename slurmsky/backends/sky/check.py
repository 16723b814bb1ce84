"""SkyPilot's check of a job's infra choices, at submission, without importing SkyPilot.

A partition's infra (a string, an ordered list, a set) and spot fallback become SkyPilot
resources (task.failover); an infra SkyPilot's schema refuses is refused by sbatch, translate
and --test-only with SkyPilot's words. SkyPilot takes seconds to import and sbatch must not
(tests/test_sky_units.py), so its schema's infra pattern is copied here; tests/test_sky_failover.py
holds it equal to the installed SkyPilot's. Whether the infra is enabled is SkyPilot's to say
at launch (`slurmsky doctor` asks beforehand).
"""

from __future__ import annotations

import re

from slurmsky.errors import SlurmError

# sky.utils.schemas._get_infra_pattern() of SkyPilot 0.14.1: cloud[/region[/zone]], */...,
# kubernetes|k8s[/context]; the clouds are sky.skylet.constants.ALL_CLOUDS.
INFRA_PATTERN = (
    "^(?:(?i:(aws|azure|gcp|ibm|lambda|scp|oci|runpod|vast|vsphere|cudo|fluidstack|paperspace|"
    "primeintellect|do|nebius|ssh|slurm|hyperbolic|seeweb|shadeform|yotta|mithril|verda))"
    "(?:/[^/]+(?:/[^/]+)?)?|\\*(?:/[^/]+(?:/[^/]+)?)?|(?i:kubernetes|k8s)(?:/.+)?)$"
)
_INFRA = re.compile(INFRA_PATTERN)


def check(resources: dict, partition: str) -> None:
    """Refuse (SlurmError: SkyPilot's reason, then Slurm's words) resources whose infra, or
    an `ordered` / `any_of` candidate's, does not match SkyPilot's schema."""
    where = [("$.infra", resources.get("infra"))]
    for keyword in ("ordered", "any_of"):
        where += [
            (f"$.{keyword}[{i}].infra", one.get("infra"))
            for i, one in enumerate(resources.get(keyword) or ())
        ]
    for path, infra in where:
        if infra is not None and not _INFRA.search(infra):
            raise SlurmError(
                f"partition {partition}: SkyPilot refuses its resources: Invalid resources "
                f"YAML: {infra!r} does not match {INFRA_PATTERN!r}. "
                f"Check problematic field(s): {path}",
                "Batch job submission failed: Requested node configuration is not available",
            )
