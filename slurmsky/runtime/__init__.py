"""The node runtime: the Slurm world inside every job.

Standard library only (Python 3.8+): this package is shipped inside every job and runs with
whatever python3 the node has. Nothing here may import slurmsky modules outside runtime/.
"""
