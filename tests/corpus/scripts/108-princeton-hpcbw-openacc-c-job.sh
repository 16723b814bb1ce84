#!/bin/bash
# corpus: https://github.com/PrincetonUniversity/hpc_beginning_workshop/blob/87f85f6cecb1fe057935eb92813543a7a053a1e3/openacc/c/job.slurm
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=openacc       # create a short name for your job
#SBATCH --nodes=1                # node count
#SBATCH --ntasks=1               # total number of tasks across all nodes
#SBATCH --cpus-per-task=1        # cpu-cores per task (>1 if multi-threaded tasks)
#SBATCH --mem=4G                 # total memory per node (4 GB per cpu-core is default)
#SBATCH --gres=gpu:1             # number of gpus per node
#SBATCH --time=00:05:00          # total run time limit (HH:MM:SS)
#SBATCH --mail-type=begin        # send mail when job begins
#SBATCH --mail-type=end          # send mail when job ends
#SBATCH --mail-type=fail         # send mail when job fails
#SBATCH --mail-user=<YourNetID>@princeton.edu

echo "running $SLURM_JOB_NAME"
