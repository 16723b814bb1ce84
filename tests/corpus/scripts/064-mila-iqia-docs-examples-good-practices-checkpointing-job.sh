#!/bin/bash
# corpus: https://github.com/mila-iqia/mila-docs/blob/12229ef44970bc65d1f878217e1953bcb946af6e/docs/examples/good_practices/checkpointing/job.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --ntasks=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=4
#SBATCH --gpus-per-task=l40s:1
#SBATCH --mem-per-gpu=16G
#SBATCH --time=00:15:00
#SBATCH --requeue
#SBATCH --signal=B:TERM@300 # tells the controller to send SIGTERM to the job 5

echo "running $SLURM_JOB_NAME"
