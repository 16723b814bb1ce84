#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Parallel_Computing/Parallel_HDF5/Example1/run.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J parallel_hdf5           # job name
#SBATCH -o parallel_hdf5.out       # name of standard output file
#SBATCH -e parallel_hdf5.err       # name of standard error file
#SBATCH -p test                    # partition
#SBATCH -t 00:10:00                # time in HH:MM:SS
#SBATCH --nodes=2                  # number of nodes
#SBATCH --ntasks=8                 # number of total tasks
#SBATCH --mem=4000                 # memory

echo "running $SLURM_JOB_NAME"
