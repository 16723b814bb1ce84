#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/deep_learning/scalable/scripts/cifar_resnet.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J cifar-resnet
#SBATCH -o logs/%x-%j.out
#SBATCH -N 1
#SBATCH -n 28
#SBATCH -t 1:0:0
#SBATCH -p batch
#SBATCH --reservation=hpcschool

echo "running $SLURM_JOB_NAME"
