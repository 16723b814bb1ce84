#!/bin/bash
# Submits a three-stage pipeline: each stage starts only if the one before succeeded.
# Run it as a plain script (./chain.sh); it calls sbatch three times.
set -euo pipefail
prep=$(sbatch --parsable --job-name=prep --wrap 'echo preparing; sleep 1')
train=$(sbatch --parsable --job-name=train --dependency=afterok:$prep --wrap 'echo training')
sbatch --job-name=report --dependency=afterok:$train --kill-on-invalid-dep=yes \
    --wrap 'echo report ready'
