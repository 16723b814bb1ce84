#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Notes/JobArrays/Exercise_recursive/recursive-array.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --partition=test # Change partition name based on Cannon or FASSE and resources require
#SBATCH --nodes=1
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
#SBATCH --mem-per-cpu=100M
#SBATCH --array=[0-4]

echo "running $SLURM_JOB_NAME"
