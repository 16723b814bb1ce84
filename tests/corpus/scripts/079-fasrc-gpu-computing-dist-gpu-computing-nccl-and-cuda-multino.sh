#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/GPU_Computing/Dist_GPU_Computing/NCCL_and_CUDA/MultiNode/run_allgather_mpi.sbatch
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J nccl_allgather_mpi
#SBATCH -N 2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH -t 30
#SBATCH -p gpu
#SBATCH -o nccl_allgather_mpi.out
#SBATCH -e nccl_allgather_mpi.err
#SBATCH --mem-per-cpu=4G

echo "running $SLURM_JOB_NAME"
