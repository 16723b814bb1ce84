#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Example_Recipes/Job_Arrays/job_arrays_2/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J job_array_test
#SBATCH -o output_%a.out
#SBATCH -e error_%a.err
#SBATCH -p serial_requeue
#SBATCH -N 1
#SBATCH -c 1
#SBATCH -t 30
#SBATCH --mem=4000
#SBATCH --array=100,200,300

echo "running $SLURM_JOB_NAME"
