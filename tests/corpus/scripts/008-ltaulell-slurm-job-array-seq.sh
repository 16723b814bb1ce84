#!/bin/bash
# corpus: https://github.com/ltaulell/submission_scripts/blob/47a881842e6b6220a01b179c16a0e5930276fd85/Slurm/job_array_seq.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=array-para       # job name
#SBATCH --partition=Lake
#SBATCH --cpus-per-task=1           # 1 CPU per task
#SBATCH --mem-per-cpu=1G            # 1GiB by CPU
#SBATCH --ntasks-per-node=32        # 32 tasks per node
#SBATCH --array=1-10000%32          # 10 000 jobs, 32 jobs max in //
#SBATCH --time=0-01:00:00           # one day max

echo "running $SLURM_JOB_NAME"
