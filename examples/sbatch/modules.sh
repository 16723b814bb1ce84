#!/bin/bash -l
#SBATCH -J md-sim
#SBATCH -N 1
#SBATCH -n 4
#SBATCH -t 30:00
#SBATCH -A physics          # accounts are ignored with a warning
#SBATCH --qos=normal

# An HPC-style script with environment modules.
module purge
module load gcc/12.2 openmpi/4.1
ml python/3.11

srun hostname
echo "simulating with $SLURM_NTASKS tasks"
