#!/usr/bin/env python3
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/pyrun_test.py
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=pytest
#SBATCH --partition=Lake
#SBATCH --cpus-per-task=1
#SBATCH --ntasks=8            # Lake has 32 cores/node
#SBATCH --nodes=1
#SBATCH --exclusive           # exclusive mode, ie: this node will be mine

echo "running $SLURM_JOB_NAME"
