#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/parallel_2_nodes.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=test
#SBATCH --partition=Lake-short
#SBATCH --time=0-00:10:00           # day-hours:minutes:seconds
#SBATCH --exclusive
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16

echo "running $SLURM_JOB_NAME"
