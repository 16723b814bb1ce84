#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/bigdata/scripts/launcher.Spark.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J Spark
#SBATCH --time=0-01:00:00   # 1 hour
#SBATCH --partition=batch
#SBATCH --qos normal
#SBATCH -N 3
#SBATCH --ntasks-per-node=1
#SBATCH -c 28
#SBATCH --exclusive

echo "running $SLURM_JOB_NAME"
