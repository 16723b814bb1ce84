#!/bin/bash
# corpus: https://github.com/CSCfi/pytorch-ddp-examples/blob/4467e84197ea364e4b4629e96f78e19e3c3a5907/run-deepspeed-gpu4.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --account=project_2001659
#SBATCH --partition=gputest
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=40
#SBATCH --mem=0
#SBATCH --time=15
#SBATCH --gres=gpu:v100:4

echo "running $SLURM_JOB_NAME"
