#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/pseudo_para.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=pseudo_para
#SBATCH --partition=Lake
#SBATCH --cpus-per-task=1
#SBATCH --ntasks=4
#SBATCH --mem-per-cpu=1024              # not mandatory
#SBATCH --nodes=1
#SBATCH --exclusive                     # not mandatory

echo "running $SLURM_JOB_NAME"
