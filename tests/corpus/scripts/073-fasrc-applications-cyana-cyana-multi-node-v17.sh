#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Applications/CYANA/cyana_multi_node_v17.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J cyana_multi_node    # job name
#SBATCH -n 64                  # MPI tasks (start small for testing; CYANA = 1 master + N-1 workers)
#SBATCH -p dsouza              # partition (use one that provides the cores you need)
#SBATCH -o %J.out
#SBATCH -e %J.err
#SBATCH -t 0:30:00
#SBATCH --mem-per-cpu=3G

echo "running $SLURM_JOB_NAME"
