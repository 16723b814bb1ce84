#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/deep_learning/basics/tfcpu.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name="CPU imdb"
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --time=0-00:10:00
#SBATCH --partition=batch
#SBATCH --qos=normal

echo "running $SLURM_JOB_NAME"
