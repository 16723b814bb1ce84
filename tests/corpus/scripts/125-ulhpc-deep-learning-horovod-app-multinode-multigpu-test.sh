#!/bin/sh –l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/deep_learning/horovod/app/multinode-multigpu-test.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -c 2              # 2 CPU-core for each process
#SBATCH -N 2              # 2 nodes
#SBATCH -p gpu
#SBATCH --gpus-per-node 4 # Each process is associated to each GPU
#SBATCH -t 30
#SBATCH --export=ALL

echo "running $SLURM_JOB_NAME"
