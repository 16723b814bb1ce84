"""The node runtime: the Slurm world inside every job.

Standard library only (Python 3.8+): this package is shipped inside every job and runs with
whatever python3 the node has. Nothing here may import slurmsky modules outside runtime/.
"""

import os

SLURM_VERSION = "22.05.8"  # the Slurm whose behaviour slurmsky matches

# The directory holding the `slurmsky` package: on PYTHONPATH of what runs the runtime.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
