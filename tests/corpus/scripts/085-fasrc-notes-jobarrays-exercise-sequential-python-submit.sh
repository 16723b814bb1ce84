#!/bin/bash
# corpus: https://github.com/fasrc/User_Codes/blob/7331c0ad576bf93886615d689cb0f6bb6526984c/Notes/JobArrays/Exercise_sequential_python/submit.bash
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH -J getMax 		##set job name
#SBATCH --partition=test # Change partition name based on Cannon or FASSE and resources require
#SBATCH --nodes=1		#set node number to 1
#SBATCH --ntasks=1		#set number of tasks (CPUs) to 1
#SBATCH --array=1-4%4 		#create 4 array jobs, run all 4 at a time.
#SBATCH --output=%A-%a.out	#set output filename with main job ID and task array ID
#SBATCH --error=%A-%a.err	#set error filename with main job ID and task array ID

echo "running $SLURM_JOB_NAME"
