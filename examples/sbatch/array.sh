#!/bin/bash
#SBATCH --job-name=sweep
#SBATCH --array=0-9%4
#SBATCH --cpus-per-task=1
#SBATCH --mem-per-cpu=500M
#SBATCH --time=10
#SBATCH --output=sweep-%A_%a.out
#SBATCH --error=sweep-%A_%a.err

# A parameter sweep: element N of the array takes the N-th learning rate.
rates=(0.1 0.05 0.02 0.01 0.005 0.002 0.001 0.0005 0.0002 0.0001)
lr=${rates[$SLURM_ARRAY_TASK_ID]}
echo "element $SLURM_ARRAY_TASK_ID of array $SLURM_ARRAY_JOB_ID (job $SLURM_JOB_ID): lr=$lr"
