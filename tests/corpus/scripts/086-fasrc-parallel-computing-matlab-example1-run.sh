#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Parallel_Computing/MATLAB/Example1/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J parallel_monte_carlo        # job name
#SBATCH -o parallel_monte_carlo.out    # standard output file
#SBATCH -e parallel_monte_carlo.err    # standard error file
#SBATCH -c 8                           # number of cores (SLURM_CPUS_PER_TASK)
#SBATCH -t 00:30:00                    # time in HH:MM:SS
#SBATCH -p serial_requeue              # partition
#SBATCH --mem=14GB                     # memory in GB

echo "running $SLURM_JOB_NAME"
