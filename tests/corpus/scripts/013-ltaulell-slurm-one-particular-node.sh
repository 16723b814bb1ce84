#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/one_particular_node.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=test
#SBATCH --partition=Lake-short
#SBATCH --cpus-per-task=16          # -n
#SBATCH --ntasks=1
#SBATCH --time=0-00:10:00           # day-hours:minutes:seconds
#SBATCH --nodes=1                   # -N (exclusive way)
#SBATCH --nodelist=c8220node[41-56,169-176]     # a particular set of nodes

echo "running $SLURM_JOB_NAME"
