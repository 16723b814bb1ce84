#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Training/Advanced_Cluster_Usage/Exercise2/R/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -p test
#SBATCH -J mp_mem_test
#SBATCH -o mp_mem_test.out
#SBATCH -e mp_mem_test.err
#SBATCH -N 1
#SBATCH -c 2
#SBATCH -t 30
#SBATCH --mem-per-cpu=9G

echo "running $SLURM_JOB_NAME"
