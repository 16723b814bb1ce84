#!/bin/bash
# corpus: https://github.com/mila-iqia/mila-docs/blob/12229ef44970bc65d1f878217e1953bcb946af6e/docs/examples/advanced/imagenet/job.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --gpus-per-task=l40s:1
#SBATCH --mem-per-gpu=16G
#SBATCH --tmp=200G  # We need 200GB of storage on the local disk of each node.
#SBATCH --time=02:00:00
#SBATCH --output=checkpoints/%j/out.txt

echo "running $SLURM_JOB_NAME"
