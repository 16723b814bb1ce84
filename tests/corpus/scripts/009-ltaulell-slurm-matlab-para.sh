#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/matlab_para.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=test_matlab
#SBATCH --partition=Lake-short
#SBATCH --cpus-per-task=16          # -n
#SBATCH --mem=63G                   # global to node, in GiB
#SBATCH --ntasks=1
#SBATCH --time=0-03:00:00           # day-hours:minutes:seconds

echo "running $SLURM_JOB_NAME"
