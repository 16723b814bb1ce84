#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Training/Distributed_GPU_Computing/Exercise4/run_2.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J nccl_mpi_pi_mc
#SBATCH -N 1
#SBATCH --ntasks-per-node=2
#SBATCH --gpus-per-node=2
#SBATCH -t 30
#SBATCH -p gpu
#SBATCH -o output_2.out
#SBATCH -e error_2.err
#SBATCH --mem-per-cpu=4G

echo "running $SLURM_JOB_NAME"
