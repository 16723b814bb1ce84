#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/maths/Cplex-Gurobi/scripts/cplex_dist.slurm
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J Distrbuted_cplex
#SBATCH --nodes=2
#SBATCH --tasks=14
#SBATCH --cpus-per-task=2
#SBATCH --time=0-01:00:00
#SBATCH -p batch
#SBATCH --qos=normal

echo "running $SLURM_JOB_NAME"
