#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/sequential/manytasks-manynodes/scripts/slurm_parallel_launcher.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --time=02:00:00
#SBATCH --partition=batch
#SBATCH --nodes=2
#SBATCH --exclusive
#SBATCH --mem=0
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=128

echo "running $SLURM_JOB_NAME"
