#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/IQSS-slurm-examples/multicore.slurm
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -n 1 # Number of job tasks (processes)
#SBATCH -N 1 # Ensure that all tasks run on one node
#SBATCH -c 4 # Number of cores per job task
#SBATCH -t 10 # Runtime in minutes
#SBATCH -p serial_requeue # Partition to submit to
#SBATCH --mem=100 # Memory per node in MB (see also --mem-per-cpu)
#SBATCH --open-mode=append
#SBATCH -o %x_%j.out # Standard out goes to this file
#SBATCH -e %x_%j.err # Standard err goes to this file

echo "running $SLURM_JOB_NAME"
