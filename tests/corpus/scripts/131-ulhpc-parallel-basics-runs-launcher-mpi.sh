#! /bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/parallel/basics/runs/launcher.MPI.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J MPI
#SBATCH --time=0-01:00:00      # 1 hour
#SBATCH --partition=batch
#SBATCH -N 2
#SBATCH --ntasks-per-node 28   # (ideally) as many MPI process as cores available
#SBATCH -c 1                   # multithreading per task : -c --cpus-per-task <n> request
#SBATCH -o logs/%x-%j.out      # log goes into logs/<jobname>-<jobid>.out

echo "running $SLURM_JOB_NAME"
