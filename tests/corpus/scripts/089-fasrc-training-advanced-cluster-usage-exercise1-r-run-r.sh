#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Training/Advanced_Cluster_Usage/Exercise1/R/run_r.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -p test
#SBATCH -J mem_test
#SBATCH -o mem_test.out
#SBATCH -e mem_test.err
#SBATCH -n 1
#SBATCH -c 1
#SBATCH -t 30
#SBATCH --mem=3G

echo "running $SLURM_JOB_NAME"
