#!/bin/bash
# corpus: https://github.com/mila-iqia/mila-docs/blob/12229ef44970bc65d1f878217e1953bcb946af6e/docs/userguides/compute_utilization_guidelines/code/job.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --ntasks=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH --gpus-per-task=rtx8000:1
#SBATCH --time=00:15:00

echo "running $SLURM_JOB_NAME"
