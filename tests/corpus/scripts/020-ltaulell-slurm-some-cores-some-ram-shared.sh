#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/some_cores_some_RAM_shared.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=test
#SBATCH --partition=Lake-short
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8          # half a node, on Lake-short
#SBATCH --mem-per-cpu=1024         # in MiB, so 8GiB (8c x 1GiB)
#SBATCH --time=0-10:00:00          # day-hours:minutes:seconds, 10 hours

echo "running $SLURM_JOB_NAME"
