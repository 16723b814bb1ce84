#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Training/Advanced_Cluster_Usage/Exercise4/run_speedup.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J speedup_figure
#SBATCH -o speedup_figure.out
#SBATCH -e speedup_figure.err
#SBATCH -p test
#SBATCH -t 30
#SBATCH -c 1
#SBATCH -n 1
#SBATCH --mem=4G

echo "running $SLURM_JOB_NAME"
