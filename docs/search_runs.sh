#!/usr/bin/env bash
# Decision-time search runs on MinAtar Breakout (CPU scale); results in the RL search section of docs/results.md.
# At most two heavy processes at once on the shared 2-core machine; one torch thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p runs/search

# 1. PPO blueprint: 300k env steps, a snapshot every 50k (ckpt_<step>.pt; early ones are weak).
nohup $PY -m qwr_fast.cli ppo-train --env MinAtar/Breakout --preset minatar --total-steps 300000 \
  --seed 0 --run-dir runs/search/ppo_breakout_s0 --eval-every 50000 --checkpoint-every 50000 \
  --no-progress --overwrite > runs/search/ppo_breakout_s0.log 2>&1

# 2. Continued PPO training of the same run (the "continue training" baseline of the paper's
#    Tables 2-3): resume a copy to 1M steps (lr annealing re-spread over the new total).
cp -r runs/search/ppo_breakout_s0 runs/search/ppo_breakout_s0_long
nohup $PY -m qwr_fast.cli ppo-train --resume runs/search/ppo_breakout_s0_long \
  --total-steps 1000000 --no-progress > runs/search/ppo_breakout_s0_long.log 2>&1 &

# 3. Planners on the weak blueprint (300k steps), equal env-step budgets per move B (policy-ft
#    searches every H=10 moves with 10*B steps, acceptance test included), 3 seeds x 3 episodes.
BP=runs/search/ppo_breakout_s0/ckpt_300032.pt
OUT=runs/search/breakout_search.csv
COMMON="--env MinAtar/Breakout --blueprint $BP --episodes 3 --horizon 10 --width 12 --out $OUT --no-progress"
for seed in 0 1 2; do
  $PY -m qwr_fast.cli qwr-search $COMMON --planner blueprint --seed $seed
  for B in 120 480; do
    $PY -m qwr_fast.cli qwr-search $COMMON --planner sparta --budget-steps $B --seed $seed
    $PY -m qwr_fast.cli qwr-search $COMMON --planner policy-ft --budget-steps $((10 * B)) --seed $seed
    $PY -m qwr_fast.cli qwr-search $COMMON --planner mcts --budget-steps $B --seed $seed
  done
done > runs/search/breakout_search.log 2>&1

# 4. "Continue PPO training" baseline: the continued run's snapshots, played without search.
for ck in 300032 350208 400384 500736; do
  [ -f runs/search/ppo_breakout_s0_long/ckpt_$ck.pt ] || continue
  for seed in 0 1 2; do
    $PY -m qwr_fast.cli qwr-search --env MinAtar/Breakout --planner blueprint --episodes 10 \
      --blueprint runs/search/ppo_breakout_s0_long/ckpt_$ck.pt --seed $seed --no-progress \
      --out runs/search/breakout_continue_ppo.csv
  done
done > runs/search/breakout_continue_ppo.log 2>&1

# 5. Search time per move vs the horizon H at a fixed number of rollouts per search (one SPARTA
#    round of 12 rollouts; 4 policy-ft updates of 12 rollouts + a 2 x 12-rollout acceptance test,
#    replanning every move), 20 moves of one episode.
for H in 5 10 20 40; do
  $PY -m qwr_fast.cli qwr-search --env MinAtar/Breakout --blueprint $BP --planner sparta \
    --episodes 1 --max-moves 20 --width 12 --horizon $H --budget-steps $((12 * H)) \
    --no-progress --out runs/search/breakout_horizon.csv
  $PY -m qwr_fast.cli qwr-search --env MinAtar/Breakout --blueprint $BP --planner policy-ft \
    --episodes 1 --max-moves 20 --width 12 --horizon $H --replan-every 1 \
    --budget-steps $((6 * 12 * H)) --no-progress --out runs/search/breakout_horizon.csv
done > runs/search/breakout_horizon.log 2>&1

# 6. Tables for the RL search section of docs/results.md (docs/search_table.py: per planner,
#    budget and H, the mean over seeds of the per-seed mean score +- the std over seeds, and the
#    mean +- s.e.m. over all episodes).
for f in runs/search/breakout_search.csv runs/search/breakout_continue_ppo.csv \
  runs/search/breakout_horizon.csv; do
  echo "$f"; $PY docs/search_table.py "$f"
done
