#!/usr/bin/env bash
# Policy fine-tuning on a small deterministic task with a weak blueprint (issue 20, part 6):
# BitFlip-12 (horizon 5, +1 per bit flipped 0 -> 1, -1 per 1 -> 0; deterministic moves), a PPO
# blueprint stopped early (2048 env steps), then blueprint vs MCTS vs policy fine-tuning at
# matched sim env steps per move (every planner searches every move), greedy play (argmax of
# the blueprint / fine-tuned policy), 20 episodes, seed 0. Budgets per move 250 / 1000 / 4000;
# policy fine-tuning with the old defaults (lr 1e-4, z 0) and the new (lr 3e-3, z 1).
# Records: docs/runs/pft_bitflip/ (the blueprint's config.json and eval.csv; one search CSV per
# planner setting: blueprint.csv, mcts.csv, policy-ft_<setting>.csv, a row per budget);
# table: python docs/pft_table.py.
# Usage: bash docs/pft_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
mkdir -p runs/pft
BP_RUN=runs/pft/bp12
if [[ ! -f $BP_RUN/ckpt_2048.pt ]]; then
  $PY -m qwr_fast.cli ppo-train --env BitFlip-12 --preset bitflip --total-steps 8192 \
    --eval-every 2048 --checkpoint-every 2048 --no-progress --no-tensorboard --seed 0 \
    --run-dir $BP_RUN --overwrite > runs/pft/bp12.log 2>&1
fi
OUT=runs/pft/search
rm -rf $OUT && mkdir -p $OUT
COMMON=(--env BitFlip-12 --blueprint $BP_RUN/ckpt_2048.pt --episodes 20 --seed 0 --width 16
  --horizon 5 --greedy --no-progress)
$PY -m qwr_fast.cli qwr-search "${COMMON[@]}" --planner blueprint --out $OUT/blueprint.csv
for budget in 250 1000 4000; do
  $PY -m qwr_fast.cli qwr-search "${COMMON[@]}" --planner mcts --budget-steps $budget \
    --out $OUT/mcts.csv
  PFT=("${COMMON[@]}" --planner policy-ft --budget-steps $budget --replan-every 1)
  $PY -m qwr_fast.cli qwr-search "${PFT[@]}" --lr 1e-4 --z 0 --out $OUT/policy-ft_old.csv
  $PY -m qwr_fast.cli qwr-search "${PFT[@]}" --out $OUT/policy-ft_new.csv
done
rm -rf docs/runs/pft_bitflip && mkdir -p docs/runs/pft_bitflip/bp12
cp $BP_RUN/config.json $BP_RUN/eval.csv docs/runs/pft_bitflip/bp12/
cp $OUT/*.csv docs/runs/pft_bitflip/
