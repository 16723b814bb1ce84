#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/CRAL_MaxStepCount.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J test-cdd
#SBATCH -p Cascade
#SBATCH -o %x.%j.out
#SBATCH -e %x.%j.err
#SBATCH --ntasks=100
#SBATCH --mem-per-cpu=1000M
#SBATCH --cpus-per-task=8
#SBATCH --time=03:30:00

echo "running $SLURM_JOB_NAME"
