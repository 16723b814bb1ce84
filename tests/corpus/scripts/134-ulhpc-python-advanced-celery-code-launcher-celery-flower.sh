#!/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/python/advanced/celery/code/launcher_celery_flower.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -N1
#SBATCH -c1
#SBATCH -J flower

echo "running $SLURM_JOB_NAME"
