#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/AI/PyTorch/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -c 1
#SBATCH -N 1
#SBATCH -t 0-00:30
#SBATCH -p gpu
#SBATCH --gres=gpu:1
#SBATCH --mem=4G
#SBATCH -o pytorch_%j.out
#SBATCH -e pytorch_%j.err

echo "running $SLURM_JOB_NAME"
