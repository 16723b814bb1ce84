#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/gaussian_simplified_example.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=gaussian_test
#SBATCH --partition=Lake
#SBATCH --cpus-per-task=32
#SBATCH --mem=180G                  # global to node, in GiB
#SBATCH --ntasks=1
#SBATCH --exclusive                 # exclusive mode
#SBATCH --nodes=1                   # eq: I want this node for myself alone
#SBATCH --time=7-23:50:00           # day-hours:minutes:seconds

echo "running $SLURM_JOB_NAME"
