"""slurmsky: Slurm's commands over SkyPilot managed jobs, and a local backend.

This package's import must stay cheap: no third-party module is imported here.
"""

__version__ = "0.1.0"
from slurmsky.runtime import SLURM_VERSION

__all__ = ["SLURM_VERSION", "__version__"]
