#!/usr/bin/env bash
# The planner comparison on MinAtar Breakout (docs/results.md, "Decision-time RL search",
# section 1) with the planners' chance fixed: every restore of a search draws fresh chance
# (the default since the fix), next to --oracle-chance (exact restores: the old behaviour,
# in which every simulator replayed the real game's next sticky actions and spawns).
# Usage: bash docs/search_chance_runs.sh [fresh|oracle] [SEEDS...]   (default: fresh 0 1 2)
# Records: docs/runs/search_chance/breakout_<mode>_s<seed>.csv; table: python docs/search_table.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODE=${1:-fresh}
shift || true
SEEDS=${*:-0 1 2}
mkdir -p runs/search docs/runs/search_chance

# The weak blueprint of the section: 300k PPO steps, seed 0 (the command of docs/search_runs.sh).
BP=runs/search/ppo_breakout_s0/ckpt_300032.pt
if [ ! -f "$BP" ]; then
  $PY -m qwr_fast.cli ppo-train --env MinAtar/Breakout --preset minatar --total-steps 300000 \
    --seed 0 --run-dir runs/search/ppo_breakout_s0 --eval-every 50000 --checkpoint-every 50000 \
    --no-progress --overwrite > runs/search/ppo_breakout_s0.log 2>&1
fi

FLAG=""
[ "$MODE" = oracle ] && FLAG="--oracle-chance"
for seed in $SEEDS; do
  OUT=docs/runs/search_chance/breakout_${MODE}_s${seed}.csv
  rm -f "$OUT"
  COMMON="--env MinAtar/Breakout --blueprint $BP --episodes 3 --horizon 10 --width 12 --out $OUT --no-progress --seed $seed $FLAG"
  $PY -m qwr_fast.cli qwr-search $COMMON --planner blueprint
  for B in 120 480; do
    $PY -m qwr_fast.cli qwr-search $COMMON --planner sparta --budget-steps $B
    $PY -m qwr_fast.cli qwr-search $COMMON --planner policy-ft --budget-steps $((10 * B))
    $PY -m qwr_fast.cli qwr-search $COMMON --planner mcts --budget-steps $B
  done
done
