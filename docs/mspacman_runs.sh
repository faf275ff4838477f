#!/usr/bin/env bash
# Ms. Pacman (issue 20 part 4), at the scale this 2-core CPU reaches: a weak PPO blueprint on the
# real game (ALE/MsPacman-v5: sticky actions 0.25, the project's ALE preprocessing), then
# blueprint vs MCTS vs SPARTA vs policy fine-tuning at equal env steps per move B (horizon 10,
# width 12; policy-ft searches once per 10 moves with 10 B), every planner
# restoring its roots with fresh chance (the default), on episodes capped at MAX_MOVES moves
# (a capped episode counts its partial score). Runs land in runs/mspacman/; the search CSVs and
# the blueprint's eval.csv/config.json are copied to docs/runs/mspacman/ by STAGE=record.
# STICKY=0 plays the search stages on the deterministic game (qwr-search --sticky-action-prob
# 0, the real game and the simulators alike; the blueprint is the same, trained with sticky
# actions), their files named *_p0.csv; left unset, the v5 game (sticky actions 0.25).
# HORIZON=H (default 10; the paper's is 30) sets every planner's --horizon, policy-ft then
# searching once per H moves with H B env steps (H x the seconds); files named *_hH.csv.
# Usage: [STAGE=blueprint|search|wall|continued|record] [BP_STEPS=250000] [BLUEPRINT=CKPT]
#        [EPISODES=10] [BUDGET=128] [SECONDS_PER_MOVE=0.2] [MAX_MOVES=100] [STICKY=0] [HORIZON=10]
#        [PLANNERS="blueprint mcts sparta policy-ft"] bash docs/mspacman_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROOT=runs/mspacman
BP_STEPS=${BP_STEPS:-250000}
BP=$ROOT/ppo_${BP_STEPS}
BLUEPRINT=${BLUEPRINT:-$BP/ckpt_150528.pt}  # the search's blueprint: the run's 150K-step checkpoint
EPISODES=${EPISODES:-10}
BUDGET=${BUDGET:-128}
HORIZON=${HORIZON:-10}
MAX_MOVES=${MAX_MOVES:-100}
SECONDS_PER_MOVE=${SECONDS_PER_MOVE:-0.2}
GAME=(); SUF=""
if [ -n "${STICKY:-}" ]; then GAME=(--sticky-action-prob "$STICKY"); SUF="_p${STICKY}"; fi
[ "$HORIZON" != 10 ] && SUF="${SUF}_h${HORIZON}"
mkdir -p "$ROOT"
case "${STAGE:-blueprint}" in
blueprint)
  if [ -f "$BP/checkpoint.pt" ]; then resume=(--resume "$BP"); else resume=(--run-dir "$BP"); fi
  OMP_NUM_THREADS=1 "$PY" -m qwr_fast.cli ppo-train --env ALE/MsPacman-v5 --preset atari \
    --total-steps "$BP_STEPS" --eval-every 50000 --checkpoint-every 50000 --eval-episodes 4 \
    --eval-max-steps 5000 --seed 0 --no-progress "${resume[@]}"
  ;;
search)
  for planner in ${PLANNERS:-blueprint mcts sparta policy-ft}; do
    # policy-ft searches once per H moves (--horizon H): its budget per search is H B
    budget=$BUDGET; [ "$planner" = policy-ft ] && budget=$((HORIZON * BUDGET))
    OMP_NUM_THREADS=1 "$PY" -m qwr_fast.cli qwr-search --env ALE/MsPacman-v5 \
      --blueprint "$BLUEPRINT" --planner "$planner" --episodes "$EPISODES" --seed 0 \
      --budget-steps "$budget" --horizon "$HORIZON" --width 12 --max-moves "$MAX_MOVES" --no-progress \
      "${GAME[@]}" --out "$ROOT/search_${planner}_b${BUDGET}_m${MAX_MOVES}${SUF}.csv" \
      --episodes-out "$ROOT/episodes_${planner}_b${BUDGET}_m${MAX_MOVES}${SUF}.csv"
  done
  ;;
wall)  # equal wall time per move instead: SECONDS_PER_MOVE of search (policy-ft: H x per search)
  for planner in ${PLANNERS:-mcts sparta policy-ft}; do
    seconds=$SECONDS_PER_MOVE
    [ "$planner" = policy-ft ] && seconds=$("$PY" -c "print($HORIZON * $SECONDS_PER_MOVE)")
    OMP_NUM_THREADS=1 "$PY" -m qwr_fast.cli qwr-search --env ALE/MsPacman-v5 \
      --blueprint "$BLUEPRINT" --planner "$planner" --episodes "$EPISODES" --seed 0 \
      --budget-seconds "$seconds" --horizon "$HORIZON" --width 12 --max-moves "$MAX_MOVES" \
      --no-progress "${GAME[@]}" \
      --out "$ROOT/wall_${planner}_s${SECONDS_PER_MOVE}_m${MAX_MOVES}${SUF}.csv" \
      --episodes-out "$ROOT/wall_episodes_${planner}_s${SECONDS_PER_MOVE}_m${MAX_MOVES}${SUF}.csv"
  done
  ;;
continued)  # the blueprint run trained on to BP_STEPS (the paper's "continue PPO" row), played
  # as the blueprint row is (actions sampled from the policy), on the same capped episodes
  OMP_NUM_THREADS=1 "$PY" -m qwr_fast.cli qwr-search --env ALE/MsPacman-v5 \
    --blueprint "$BP/checkpoint.pt" --planner blueprint --episodes "$EPISODES" --seed 0 \
    --max-moves "$MAX_MOVES" --no-progress "${GAME[@]}" \
    --out "$ROOT/search_continued_m${MAX_MOVES}${SUF}.csv"
  ;;
record)
  mkdir -p docs/runs/mspacman/ppo_${BP_STEPS}
  cp "$BP/eval.csv" "$BP/config.json" docs/runs/mspacman/ppo_${BP_STEPS}/
  cp "$ROOT"/search_*.csv "$ROOT"/*episodes_*.csv docs/runs/mspacman/
  cp "$ROOT"/wall_*.csv docs/runs/mspacman/ 2>/dev/null || true
  ;;
esac
