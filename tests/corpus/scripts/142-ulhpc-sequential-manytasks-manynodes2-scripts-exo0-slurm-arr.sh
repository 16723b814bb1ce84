#!/bin/sh -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/sequential/manytasks-manynodes2/scripts/exo0_slurm_array/my_job_script.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -c 60
#SBATCH -N 2
#SBATCH -t 5
#SBATCH --export=ALL

echo "running $SLURM_JOB_NAME"
