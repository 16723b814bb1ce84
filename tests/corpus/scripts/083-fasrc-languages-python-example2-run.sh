#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Languages/Python/Example2/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J np_pandas        # job name
#SBATCH -o np_pandas.out    # standard output file
#SBATCH -e np_pandas.err    # standard error file
#SBATCH --cpus-per-task=1   # number of cores
#SBATCH --partition=test    # partition
#SBATCH --time=0-01:00      # time in D-HH:MM
#SBATCH --mem=10G           # memory in GB

echo "running $SLURM_JOB_NAME"
