#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/python/advanced/celery/code/launcher_celery_workers.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -N1
#SBATCH -c28
#SBATCH -J celery_workers

echo "running $SLURM_JOB_NAME"
