#!/usr/bin/env bash
# QWR-LSE on MuJoCo at the reference's ICLR-time config (../shared/REFERENCE.md, section 1): the
# `mujoco` preset with n = 8 sampled actions, 3000 critic + 3000 actor steps per 1000 env steps,
# a 50K-step replay, LSE temperature 1.0 and no Q normalisation. The paper's 100K table may come
# from this config rather than the final one the `mujoco` preset follows; these runs test whether
# it closes the gap on Hopper (issue 4, result 2). Same queue as docs/qwr_mujoco_runs.sh (one torch
# thread per run, pinned to core ${CORE:-0}, resumed from the latest checkpoint when re-run).
# Usage: [RUNS="Hopper-v5:qwr-lse:1 ..."] [CORE=0] bash docs/qwr_mujoco_iclr_runs.sh [TOTAL_STEPS]
set -euo pipefail
export PRESET=mujoco
export ROOT=${ROOT:-runs/mujoco_iclr_${1:-100000}}
export RUNS=${RUNS:-"Hopper-v5:qwr-lse:1 Hopper-v5:qwr-lse:2"}
export EXTRA_ARGS="--n-samples 8 --critic-steps 3000 --actor-steps 3000 --replay-size 50000 --tau 1.0 --no-normalize-q"
exec bash "$(dirname "$0")/qwr_100k_runs.sh" "$@"
