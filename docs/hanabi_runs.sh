#!/usr/bin/env bash
# Hanabi decision-time search (issue 6, results in the "Hanabi" part of the RL search section of
# docs/results.md). CPU scale: one torch thread per process, blueprints trained by PPO self-play
# (one shared policy for both seats, legal-action masks in the observation).
# Usage: bash docs/hanabi_runs.sh blueprints | search | sparta_full | sparta_paired | ablation | qft
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p runs/hanabi
STAGE=${1:-all}

if [[ $STAGE == blueprints || $STAGE == all ]]; then
  # Small blueprints: Hanabi-Small (2 colours x 5 ranks, hand 2, 3 hints, 1 life; max 10) and
  # Hanabi-Hard (the full 5 x 5 game with 2 hint tokens; max 25).
  $PY -m qwr_fast.cli ppo-train --env Hanabi-Small --preset hanabi --total-steps 1500000 \
    --seed 0 --run-dir runs/hanabi/ppo_small_s0 --eval-every 100000 --checkpoint-every 250000 \
    --no-progress --no-tensorboard --overwrite > runs/hanabi/ppo_small_s0.log 2>&1
  $PY -m qwr_fast.cli ppo-train --env Hanabi-Hard --preset hanabi --total-steps 1500000 \
    --seed 0 --run-dir runs/hanabi/ppo_hard_s0 --eval-every 100000 --checkpoint-every 250000 \
    --no-progress --no-tensorboard --overwrite > runs/hanabi/ppo_hard_s0.log 2>&1
fi

if [[ $STAGE == search || $STAGE == all ]]; then
  # Blueprint vs SPARTA vs single-agent RL search vs multi-agent joint RL search, at an equal
  # average budget of B = 1000 sim env steps per move: SPARTA and single-agent policy
  # fine-tuning search every move (B each; 20 belief samples of the acting player's private
  # belief, H = 10), joint search every H = 10 moves with 10 B on 20 public-belief samples, both
  # seats playing its policy for those 10 moves. Beliefs: 160 samples of the chance posterior
  # reweighted by the blueprint's likelihood of the past moves, 20 resampled. Deviations and
  # adoptions need z = 2 standard errors on top of epsilon = 0. Greedy play everywhere (argmax
  # of the blueprint / fine-tuned policy), as SPARTA does. One process per variant, run together.
  for variant in small hard; do
    env=Hanabi-${variant^}
    EPISODES=50; [[ $variant == hard ]] && EPISODES=30
    BP=runs/hanabi/ppo_${variant}_s0/checkpoint.pt
    OUT=runs/hanabi/search_${variant}.csv
    COMMON="--env $env --blueprint $BP --episodes $EPISODES --seed 0 --width 20 --horizon 10 --greedy --z 2 --belief-candidates 160 --out $OUT"
    ( $PY -m qwr_fast.cli qwr-search $COMMON --planner blueprint
      $PY -m qwr_fast.cli qwr-search $COMMON --planner sparta --budget-steps 1000 --no-sparta-paired
      $PY -m qwr_fast.cli qwr-search $COMMON --planner policy-ft --budget-steps 1000 --replan-every 1
      $PY -m qwr_fast.cli qwr-search $COMMON --planner policy-ft --joint --budget-steps 10000 --replan-every 10
    ) > runs/hanabi/search_${variant}.log 2>&1 &
  done
  wait
fi

if [[ $STAGE == sparta_full || $STAGE == all ]]; then
  # SPARTA with rollouts to the end of the game (H = 100 > any game's remaining moves, so the
  # blueprint value never bootstraps) at 4000 sim env steps per move (2 rounds of 20 rollouts).
  for variant in small hard; do
    env=Hanabi-${variant^}
    EPISODES=50; [[ $variant == hard ]] && EPISODES=30
    $PY -m qwr_fast.cli qwr-search --env $env --blueprint runs/hanabi/ppo_${variant}_s0/checkpoint.pt \
      --episodes $EPISODES --seed 0 --width 20 --horizon 100 --greedy --z 2 --belief-candidates 160 \
      --planner sparta --budget-steps 4000 --no-sparta-paired --out runs/hanabi/search_${variant}.csv
  done > runs/hanabi/search_sparta_full.log 2>&1
fi

if [[ $STAGE == sparta_paired || $STAGE == all ]]; then
  # SPARTA as finally kept: every legal action rolled out on the same belief sample per round
  # (paired comparison), H = 10 with the blueprint value, 4000 sim env steps per move (20 rounds).
  for variant in small hard; do
    env=Hanabi-${variant^}
    EPISODES=50; [[ $variant == hard ]] && EPISODES=30
    $PY -m qwr_fast.cli qwr-search --env $env --blueprint runs/hanabi/ppo_${variant}_s0/checkpoint.pt \
      --episodes $EPISODES --seed 0 --width 20 --horizon 10 --greedy --z 2 --belief-candidates 160 \
      --planner sparta --budget-steps 4000 --out runs/hanabi/search_${variant}_paired.csv \
      > runs/hanabi/search_${variant}_paired.log 2>&1 &
  done
  wait
fi

if [[ $STAGE == ablation ]]; then
  # The first SPARTA run on Hanabi-Hard: beliefs from the chance posterior alone (no blueprint
  # likelihood) and no z margin (epsilon = 0 on 5 rollouts per action).
  $PY -m qwr_fast.cli qwr-search --env Hanabi-Hard --blueprint runs/hanabi/ppo_hard_s0/checkpoint.pt \
    --episodes 50 --seed 0 --width 20 --horizon 10 --greedy --planner sparta --budget-steps 1000 \
    --no-sparta-paired --out runs/hanabi/search_hard_ablation.csv > runs/hanabi/search_hard_ablation.log 2>&1
fi

if [[ $STAGE == qft ]]; then
  # Q-value fine-tuning (the paper's own Hanabi search method, Algorithm 2) from a DQN
  # blueprint on Hanabi-Hard, next to the rows above at the same budget: B = 1000 sim env steps
  # per move, every move searched, 20 belief samples, H = 10, 30 games, seed 0. Beliefs from
  # the chance posterior alone (--belief-candidates 0: the likelihood weighting needs a policy,
  # and a Q-network is none). The DQN blueprint's own greedy play is the baseline row. Both
  # searches run as a 2-rank search farm (the same CSV as one process; --episodes-out resumes).
  # Records: docs/runs/hanabi_qft/.
  if [[ ! -f runs/hanabi/dqn_hard_s0/checkpoint.pt ]]; then
    $PY -m qwr_fast.cli dqn-train --env Hanabi-Hard --total-steps 500000 --learning-starts 10000 \
      --hidden 256 --eval-every 100000 --eval-episodes 8 --checkpoint-every 100000 --no-progress \
      --seed 0 --run-dir runs/hanabi/dqn_hard_s0 > runs/hanabi/dqn_hard_s0.log 2>&1
  fi
  COMMON=(--env Hanabi-Hard --blueprint runs/hanabi/dqn_hard_s0/checkpoint.pt --episodes 30
    --seed 0 --width 20 --horizon 10 --out runs/hanabi/search_hard_qft.csv --no-progress)
  for planner in blueprint q-ft; do
    budget=(); [[ $planner == q-ft ]] && budget=(--budget-steps 1000 --replan-every 1)
    OMP_NUM_THREADS=1 $PY -m torch.distributed.run --standalone --nproc-per-node=2 \
      -m qwr_fast.cli qwr-search "${COMMON[@]}" --planner $planner "${budget[@]}" \
      --episodes-out runs/hanabi/episodes_hard_${planner}.csv >> runs/hanabi/search_hard_qft.log 2>&1
  done
  mkdir -p docs/runs/hanabi_qft/dqn_hard_s0
  cp runs/hanabi/dqn_hard_s0/config.json runs/hanabi/dqn_hard_s0/eval.csv \
    runs/hanabi/dqn_hard_s0/train.csv docs/runs/hanabi_qft/dqn_hard_s0/
  cp runs/hanabi/search_hard_qft.csv runs/hanabi/episodes_hard_blueprint.csv \
    runs/hanabi/episodes_hard_q-ft.csv docs/runs/hanabi_qft/
fi
