#!/bin/bash
#SBATCH --job-name=train-resnet
#SBATCH --partition=gpu
#SBATCH --gres=gpu:A100:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --requeue
#SBATCH --signal=B:USR1@300

# Single-node GPU training that checkpoints when told it will be stopped.
module load cuda/12.1
module load python/3.11

mkdir -p checkpoints
trap 'echo "time limit near: checkpointing"; touch checkpoints/STOP' USR1

python train.py --epochs 90 --checkpoint-dir checkpoints &
wait
