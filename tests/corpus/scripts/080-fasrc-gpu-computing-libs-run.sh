#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/GPU_Computing/Libs/run.sbtach
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -p gpu_test
#SBATCH -n 1
#SBATCH -c 1
#SBATCH --gres=gpu:1
#SBATCH --mem=12000
#SBATCH -J saxpy_example
#SBATCH -o saxpy_example.out
#SBATCH -e saxpy_example.err
#SBATCH -t 30

echo "running $SLURM_JOB_NAME"
