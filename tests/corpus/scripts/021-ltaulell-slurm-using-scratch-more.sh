#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/using_scratch_more.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=scratch-test
#SBATCH --partition=Cascade,Lake
#SBATCH --cpus-per-task=1
#SBATCH --ntasks=1
#SBATCH --mem=100M
#SBATCH --time=0-0:02:0 # asking for 2mn

echo "running $SLURM_JOB_NAME"
