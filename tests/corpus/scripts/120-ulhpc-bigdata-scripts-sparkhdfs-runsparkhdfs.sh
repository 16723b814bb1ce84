#!/usr/bin/bash -l
# corpus: https://github.com/ULHPC/tutorials/blob/96ee741453f703a0abadcc954bcf2dfb454f629a/bigdata/scripts/sparkhdfs/runSparkHDFS.sh
# The shebang and the #SBATCH lines of its header as written there; the body is ours.
#SBATCH --job-name=SparkHDFS
#SBATCH --nodes=3
#SBATCH --ntasks=3
#SBATCH --ntasks-per-node=1
#SBATCH --mem-per-cpu=2GB
#SBATCH --cpus-per-task=4
#SBATCH --time=0-00:59:00
#SBATCH --partition=batch
#SBATCH --qos=normal
#SBATCH --mail-user=first.lastname@uni.lu
#SBATCH --mail-type=BEGIN,END

echo "running $SLURM_JOB_NAME"
