#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/parallel/mpi/OSU_MicroBenchmarks/scripts/build.OSU
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --partition=batch
#SBATCH --time=00:20:00
#SBATCH --nodes 1
#SBATCH --ntasks-per-node=1

echo "running $SLURM_JOB_NAME"
