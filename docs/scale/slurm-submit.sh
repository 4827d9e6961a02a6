#!/bin/bash
# Queue the shard array, then the merge once all of its tasks succeeded.
set -euo pipefail
mkdir -p logs
array=$(sbatch --parsable docs/scale/slurm-array.sbatch)
sbatch --dependency="afterok:${array}" docs/scale/slurm-merge.sbatch
