#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Applications/Knitro/Matlab/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J knitro_test
#SBATCH -o knitro_test.out
#SBATCH -e knitro_test.err
#SBATCH -p test
#SBATCH -N 1
#SBATCH -n 1
#SBATCH -c 1
#SBATCH -t 30
#SBATCH --mem=40000

echo "running $SLURM_JOB_NAME"
