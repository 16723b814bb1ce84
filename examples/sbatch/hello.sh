#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --time=00:05:00
#SBATCH --ntasks=1
#SBATCH --mem=100M

echo "Hello from job $SLURM_JOB_ID ($SLURM_JOB_NAME) on $SLURM_JOB_NODELIST"
echo "submitted from $SLURM_SUBMIT_DIR, running in $(pwd)"
