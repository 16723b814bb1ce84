#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/using_scratch_naive.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=stress-max
#SBATCH --partition=Cascade
#SBATCH --cpus-per-task=1
#SBATCH --ntasks=1
#SBATCH --time=0-0:12:0 # asking for 12mn

echo "running $SLURM_JOB_NAME"
