#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Example_Recipes/parallel_job_arrays/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J parallel_sum
#SBATCH -o output_%a.out
#SBATCH -e error_%a.err
#SBATCH -p shared
#SBATCH -N 1
#SBATCH -c 4
#SBATCH -t 30
#SBATCH --mem=4000
#SBATCH --array=1-3

echo "running $SLURM_JOB_NAME"
