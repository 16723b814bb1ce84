#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/all_cpu_all_ram_exclusive.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=test
#SBATCH --partition=Lake-short
#SBATCH --cpus-per-task=16
#SBATCH --ntasks=1
#SBATCH --exclusive                 # exclusive mode
#SBATCH --nodes=1                   # eq: I want this node for myself alone
#SBATCH --time=0-00:10:00           # day-hours:minutes:seconds

echo "running $SLURM_JOB_NAME"
