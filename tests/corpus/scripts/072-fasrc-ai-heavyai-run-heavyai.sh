#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/AI/heavyAI/run_heavyAI.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -c 8               # number of cores
#SBATCH -N 1               # number of nodes
#SBATCH -t 0-00:20         # time in D-HH:MM
#SBATCH -p gpu             # partition
#SBATCH --gres=gpu:1       # number of gpus
#SBATCH --mem-per-cpu=4G   # memory per core in GB
#SBATCH -o heavyAI.out     # standard output file
#SBATCH -e heavyAI.err     # standard error file

echo "running $SLURM_JOB_NAME"
