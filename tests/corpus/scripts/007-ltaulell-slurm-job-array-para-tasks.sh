#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/job_array_para_tasks.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=array-para     # Nom du Job
#SBATCH --cpus-per-task=16        # 16 CPU per task (~ OMP_NUM_THREADS=16)
#SBATCH --array=1-5000%8          # 5000 Jobs, 8 max in parallel
#SBATCH --partition=Lake-short
#SBATCH --mem-per-cpu=4G            # 4GiB by CPU (64G per task)
#SBATCH --ntasks-per-node=1         # 1 task per node
#SBATCH --time=0-01:00:00           # one day max

echo "running $SLURM_JOB_NAME"
