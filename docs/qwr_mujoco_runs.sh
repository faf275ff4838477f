#!/usr/bin/env bash
# Reproduces the MuJoCo 100K rows of docs/results.md (issue 4, result 2): QWR-LSE on HalfCheetah,
# Hopper, Walker2d and Humanoid (v5), plus QWR-MAX, QWR-AVG and AWR on HalfCheetah, preset mujoco
# (the reference's final config), seed 0, through the queue of docs/qwr_100k_runs.sh (one torch
# thread per run, pinned to core ${CORE:-0}). Runs land in runs/mujoco_<steps>/; the table at the end.
# Probes of issue 20 part 2 at the same preset (same cost per env step), one cause each:
#   VARIANT=reference    the reference's policy parameterisation and init (a linear Gaussian mean
#                        with unclipped samples, output layers at U(-0.01, 0.01), Adam eps 1e-5, an
#                        unclipped normaliser with eps 1e-5 and at most 300K samples);
#                        runs land in runs/mujoco_ref_<steps>/
#   VARIANT=paper-backup the paper-time backup alone: LSE at tau 1.0 on the unscaled Q, no Q
#                        normalisation; runs land in runs/mujoco_lse1_<steps>/
#   VARIANT=update-ratio the paper-time update ratio alone: 3000 critic + 3000 actor gradient steps
#                        per 1000 env steps (the preset's 1000 + 1000; ~3x the cost);
#                        runs land in runs/mujoco_upd3_<steps>/
# Usage: [RUNS="HalfCheetah-v5:qwr-lse:0 ..."] [CORE=0] [VARIANT=reference|paper-backup|update-ratio]
#        bash docs/qwr_mujoco_runs.sh [TOTAL_STEPS]
set -euo pipefail
export PRESET=mujoco
export RUNS=${RUNS:-"HalfCheetah-v5:qwr-lse:0 Hopper-v5:qwr-lse:0 Walker2d-v5:qwr-lse:0 Humanoid-v5:qwr-lse:0 HalfCheetah-v5:qwr-max:0 HalfCheetah-v5:qwr-avg:0 HalfCheetah-v5:awr:0"}
case "${VARIANT:-}" in
  "") ;;
  reference)
    export EXTRA_ARGS="--policy-mean linear --init-scale 0.01 --adam-eps 1e-5 --norm-clip 0 --norm-eps 1e-5 --norm-max-count 300000"
    export ROOT=${ROOT:-runs/mujoco_ref_${1:-100000}} ;;
  paper-backup)
    export EXTRA_ARGS="--tau 1.0 --no-normalize-q"
    export ROOT=${ROOT:-runs/mujoco_lse1_${1:-100000}} ;;
  update-ratio)
    export EXTRA_ARGS="--critic-steps 3000 --actor-steps 3000"
    export ROOT=${ROOT:-runs/mujoco_upd3_${1:-100000}} ;;
  *) echo "VARIANT must be empty, reference, paper-backup or update-ratio, got '$VARIANT'" >&2; exit 2 ;;
esac
exec bash "$(dirname "$0")/qwr_100k_runs.sh" "$@"
