#!/usr/bin/env bash
# Reproduces the MuJoCo 100K rows of docs/results.md (issue 4, result 2): QWR-LSE on HalfCheetah,
# Hopper, Walker2d and Humanoid (v5), plus QWR-MAX, QWR-AVG and AWR on HalfCheetah, preset mujoco
# (the reference's final config), seed 0, through the queue of docs/qwr_100k_runs.sh (one torch
# thread per run, pinned to core ${CORE:-0}). Runs land in runs/mujoco_<steps>/; the table at the end.
# Usage: [RUNS="HalfCheetah-v5:qwr-lse:0 ..."] [CORE=0] bash docs/qwr_mujoco_runs.sh [TOTAL_STEPS]
set -euo pipefail
export PRESET=mujoco
export RUNS=${RUNS:-"HalfCheetah-v5:qwr-lse:0 Hopper-v5:qwr-lse:0 Walker2d-v5:qwr-lse:0 Humanoid-v5:qwr-lse:0 HalfCheetah-v5:qwr-max:0 HalfCheetah-v5:qwr-avg:0 HalfCheetah-v5:awr:0"}
exec bash "$(dirname "$0")/qwr_100k_runs.sh" "$@"
