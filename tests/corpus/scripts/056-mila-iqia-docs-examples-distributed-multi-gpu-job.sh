#!/bin/bash
# corpus: https://github.com/mila-iqia/mila-docs/blob/12229ef44970bc65d1f878217e1953bcb946af6e/docs/examples/distributed/multi_gpu/job.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --ntasks=2
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=4
#SBATCH --gpus-per-task=l40s:1
#SBATCH --mem-per-gpu=16G
#SBATCH --time=00:15:00

echo "running $SLURM_JOB_NAME"
