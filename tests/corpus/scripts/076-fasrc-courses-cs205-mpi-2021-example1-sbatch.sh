#!/bin/bash -l
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Courses/CS205/MPI_2021/Example1/sbatch.run
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J mpi_hello
#SBATCH -o mpi_hello.out
#SBATCH -e mpi_hello.err
#SBATCH -t 0-00:10
#SBATCH -p test
#SBATCH -n 4
#SBATCH -N 1
#SBATCH --mem-per-cpu=1000

echo "running $SLURM_JOB_NAME"
