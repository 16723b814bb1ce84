#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/python/advanced/dask-ml/scripts/cluster_jobs_workers.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -p batch
#SBATCH -J DASK_jobs_workers
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH -t 00:30:00

echo "running $SLURM_JOB_NAME"
