#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/python/basics/example5/scoop_launcher.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=scoop
#SBATCH --output=scoop_%j.log
#SBATCH -N 2
#SBATCH -n 56
#SBATCH -c 1
#SBATCH --time=0-00:35:00
#SBATCH -p batch
#SBATCH --qos=normal
#SBATCH --exclusive
#SBATCH -d singleton
#SBATCH -m cyclic

echo "running $SLURM_JOB_NAME"
