#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Languages/MATLAB/Example4/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J array_test           # job name
#SBATCH -o array_test_%a.out    # standard output file
#SBATCH -e array_test_%a.err    # standard error file
#SBATCH -p shared               # partition
#SBATCH -c 1                    # number of cores
#SBATCH -t 0-00:30              # time in D-HH:MM
#SBATCH --mem=4000              # memory in MB
#SBATCH --array=17-32           # array indices

echo "running $SLURM_JOB_NAME"
