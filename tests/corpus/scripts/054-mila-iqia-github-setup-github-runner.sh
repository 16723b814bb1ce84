#!/bin/bash
# corpus: https://github.com/mila-iqia/mila-docs/blob/12229ef44970bc65d1f878217e1953bcb946af6e/.github/setup_github_runner.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=2
#SBATCH --gpus-per-task=0
#SBATCH --mem=16G
#SBATCH --partition=unkillable-cpu
#SBATCH --time=2-00:00:00
#SBATCH --output=logs/runner-%j.out

echo "running $SLURM_JOB_NAME"
