#!/bin/bash
# corpus: https://github.com/PrincetonUniversity/hpc_beginning_workshop/blob/87f85f6cecb1fe057935eb92813543a7a053a1e3/mpi4py/job.slurm
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=mpi4py-test      # create a name for your job
#SBATCH --nodes=1                   # node count
#SBATCH --ntasks=4                  # total number of tasks
#SBATCH --cpus-per-task=1           # cpu-cores per task
#SBATCH --mem-per-cpu=1G            # memory per cpu-core
#SBATCH --time=00:01:00             # total run time limit (HH:MM:SS)
#SBATCH --mail-type=begin,end,fail  # receive email notifications
#SBATCH --mail-user=<YourNetID>@princeton.edu

echo "running $SLURM_JOB_NAME"
