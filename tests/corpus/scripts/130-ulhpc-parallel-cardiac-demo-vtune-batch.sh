#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/parallel/Cardiac_demo/VTune-batch.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -N 2
#SBATCH --ntasks-per-node=3
#SBATCH --time=00:05:00
#SBATCH -p batch
#SBATCH --reservation=ulhpcschool

echo "running $SLURM_JOB_NAME"
