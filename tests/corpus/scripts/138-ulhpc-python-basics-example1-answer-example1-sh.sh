#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/python/basics/example1/answer/example1.sh.answer
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=example1
#SBATCH --output=example1.out
#SBATCH --ntasks=1
#SBATCH --time=0-00:10:00
#SBATCH -p batch
#SBATCH --qos=normal

echo "running $SLURM_JOB_NAME"
