#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/sequential/basics/scripts/slurm_parallel_launcher_single_node.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --time=02:00:00
#SBATCH --partition=batch
#SBATCH --nodes=1
#SBATCH --exclusive
#SBATCH --mem=0
#SBATCH --ntasks-per-node=128
#SBATCH --cpus-per-task=1

echo "running $SLURM_JOB_NAME"
