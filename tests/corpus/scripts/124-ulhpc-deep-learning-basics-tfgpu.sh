#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/deep_learning/basics/tfgpu.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name="GPU imdb"
#SBATCH --ntasks=1
#SBATCH --ntasks-per-core=1
#SBATCH --time=0-00:10:00
#SBATCH --partition=gpu
#SBATCH --gres=gpu:1
#SBATCH --qos=normal

echo "running $SLURM_JOB_NAME"
