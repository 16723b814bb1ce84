#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Parallel_Computing/R/pbdMPI/run_Lapply.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=pbdMPI_Lapply
#SBATCH --output=Lapply_%j.out
#SBATCH --error=Lapply_%j.err
#SBATCH --partition=test
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=3
#SBATCH --mem-per-cpu=4000
#SBATCH -t 0-00:10               # Runtime in D-HH:MM, minimum of 10 minutes

echo "running $SLURM_JOB_NAME"
