#!/bin/bash
# corpus: https://github.com/brown-ccv/slurm/blob/fbf3c6a3a2d10848d8dd7ebe4a3115ba90f22039/job_arrays/job-array-variable.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --time=00:05:00
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH --mem-per-cpu=4G
#SBATCH --partition=batch
#SBATCH --array=0-4
#SBATCH -J arrayjob-variable
#SBATCH -o %x-%A_%a.out

echo "running $SLURM_JOB_NAME"
