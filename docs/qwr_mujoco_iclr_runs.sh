#!/usr/bin/env bash
# QWR-LSE on MuJoCo at the reference's ICLR-time config (issue 20, part 2): the `mujoco` preset
# with n = 8 sampled actions, 3000 critic + 3000 actor steps per 1000 env steps, a 50K-step
# replay, value lr 5e-4, a target sync every 100 critic steps, and LSE temperature 1.0 on the
# unscaled Q without Q normalisation. Same queue as docs/qwr_mujoco_runs.sh (one torch thread
# per run, pinned to core ${CORE:-0}, resumed from the latest checkpoint when re-run); runs land
# in runs/mujoco_paper_<steps>/, records in docs/runs/mujoco_paper_<steps>/.
# (The ninth-eleventh sessions' probe, docs/runs/mujoco_iclr_100000/, ran this script's older
# form: without --q-lr 5e-4 --target-every 100, and before --tau meant the unscaled Q's units, so
# its tau 1.0 acted on the (1 - gamma)-scaled Q: 100 times softer.)
# VARIANT=reference adds the reference's policy parameterisation and init (issue 20, part 2: a
# linear Gaussian mean with unclipped samples, output layers at U(-0.01, 0.01), Adam eps 1e-5,
# an unclipped observation normaliser with eps 1e-5 and at most 300K samples; the probes of
# 2026-12-07 ran without the cap, which their 100K steps never reach); its runs land in
# runs/mujoco_paper_ref_<steps>/.
# Usage: [RUNS="Hopper-v5:qwr-lse:1 ..."] [CORE=0] [VARIANT=reference]
#        bash docs/qwr_mujoco_iclr_runs.sh [TOTAL_STEPS]
set -euo pipefail
export PRESET=mujoco
export RUNS=${RUNS:-"Hopper-v5:qwr-lse:1 Hopper-v5:qwr-lse:2"}
export EXTRA_ARGS="--n-samples 8 --critic-steps 3000 --actor-steps 3000 --replay-size 50000 --q-lr 5e-4 --target-every 100 --tau 1.0 --no-normalize-q"
if [ "${VARIANT:-}" = reference ]; then
  EXTRA_ARGS="$EXTRA_ARGS --policy-mean linear --init-scale 0.01 --adam-eps 1e-5 --norm-clip 0 --norm-eps 1e-5 --norm-max-count 300000"
  export ROOT=${ROOT:-runs/mujoco_paper_ref_${1:-100000}}
else
  export ROOT=${ROOT:-runs/mujoco_paper_${1:-100000}}
fi
exec bash "$(dirname "$0")/qwr_100k_runs.sh" "$@"
