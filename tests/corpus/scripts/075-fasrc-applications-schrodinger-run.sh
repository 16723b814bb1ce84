#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Applications/Schrodinger/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J test_water
#SBATCH -o test_water.out
#SBATCH -e test_water.err
#SBATCH -p serial_requeue
#SBATCH -N 1
#SBATCH -n 1
#SBATCH -t 30
#SBATCH --mem=40000

echo "running $SLURM_JOB_NAME"
