#!/usr/bin/env bash
# The scale-out figures of docs/results.md ("Scaling out", issue 19), on this 2-core machine:
#   speed:  qwr-train --preset mujoco --env HalfCheetah-v5 --num-envs 2, the same STEPS (default
#           10000) in 1 process and in 2 data-parallel ranks (torchrun), one torch thread per
#           process, run one after the other; whole-process wall time (/usr/bin/time).
#   returns: the same preset to 100K env steps with 2 ranks, seeds $SEEDS (default "0 1 2").
# Each run's config.json, eval.csv and wall_s.txt are copied to docs/runs/scale_out_speed[_ROUND]/<mode>/
# and docs/runs/scale_out_100000/<run>/ (the records kept in git; runs/ is not);
# `python docs/scale_table.py` prints the tables from those records.
#   actors: mode 2 on MinAtar Breakout, 1 process vs 1 learner + 1 actor (see the case below).
#   farm: the search farm, qwr-search in 1 process vs 2 ranks (see the case below).
# Usage: [ROUND=2] bash docs/scale_out_runs.sh speed [STEPS] | actors [STEPS] | farm [EPISODES] |
#        [SEEDS="0 1 2"] bash docs/scale_out_runs.sh returns
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
COMMON=(--preset mujoco --env HalfCheetah-v5 --num-envs 2 --threads 1 --no-progress --no-tensorboard)

one_run() {  # one_run PROCS RUN_DIR ARGS...: a fresh run (or the rest of an interrupted one)
  local procs=$1 run=$2
  shift 2
  local args=("${COMMON[@]}" "$@" --run-dir "$run")
  if ls "$run"/ckpt_*.pt >/dev/null 2>&1; then  # interrupted: continue it (same world size)
    args=(--resume "$run" --no-progress)
  fi
  mkdir -p "$run"
  if [ "$procs" = 1 ]; then
    env OMP_NUM_THREADS=1 /usr/bin/time -a -f "%e" -o "$run/wall_s.txt" \
      "$PY" -m qwr_fast.cli qwr-train "${args[@]}"
  else
    env OMP_NUM_THREADS=1 /usr/bin/time -a -f "%e" -o "$run/wall_s.txt" \
      "$PY" -m torch.distributed.run --standalone --nproc-per-node="$procs" \
      -m qwr_fast.cli qwr-train "${args[@]}"
  fi
}

keep() {  # keep RUN_DIR RECORD_DIR: the small record, never checkpoints
  mkdir -p "$2"
  cp "$1/config.json" "$1/eval.csv" "$1/wall_s.txt" "$2/"
}

case "${1:-}" in
  speed)
    STEPS=${2:-10000}
    for procs in 1 2; do
      run=runs/scale_out_speed/p${procs}
      rm -rf "$run"
      one_run "$procs" "$run" --total-steps "$STEPS" --seed 0 --eval-every 5000
      keep "$run" "docs/runs/scale_out_speed${ROUND:+_$ROUND}/p${procs}"
    done
    ;;
  actors)
    # mode 2 on MinAtar Breakout (preset minatar): 1 process vs 1 learner + 1 actor, the same
    # STEPS (default 5000), at the preset's 1000 + 1000 updates per 1000 env steps and at a
    # quarter of them (collection a larger share of the work)
    STEPS=${2:-5000}
    MINATAR=(--preset minatar --env MinAtar/Breakout --threads 1 --no-progress --no-tensorboard
      --total-steps "$STEPS" --eval-every "$STEPS" --seed 0)
    for updates in 1000 250; do
      for procs in 1 2; do
        run=runs/scale_out_actors/u${updates}_p${procs}
        rm -rf "$run"
        mkdir -p "$run"
        flags=("${MINATAR[@]}" --critic-steps "$updates" --actor-steps "$updates" --run-dir "$run")
        if [ "$procs" = 1 ]; then
          env OMP_NUM_THREADS=1 /usr/bin/time -a -f "%e" -o "$run/wall_s.txt" \
            "$PY" -m qwr_fast.cli qwr-train "${flags[@]}"
        else
          env OMP_NUM_THREADS=1 /usr/bin/time -a -f "%e" -o "$run/wall_s.txt" \
            "$PY" -m torch.distributed.run --standalone --nproc-per-node=2 \
            -m qwr_fast.cli qwr-train "${flags[@]}" --actors 1
        fi
        keep "$run" "docs/runs/scale_out_actors/$(basename "$run")"
        cp "$run/train.csv" "docs/runs/scale_out_actors/$(basename "$run")/"  # its loop wall_s
      done
    done
    ;;
  farm)
    # the search farm: qwr-search (sparta on MinAtar Breakout, the blueprint of
    # docs/search_runs.sh) in 1 process vs 2 ranks, the same EPISODES (default 16)
    BP=${BP:-runs/search/ppo_breakout_s0/ckpt_300032.pt}
    SEARCH=(--env MinAtar/Breakout --blueprint "$BP" --planner sparta --budget-steps 120
      --horizon 10 --width 8 --episodes "${2:-16}" --seed 0 --no-progress)
    for procs in 1 2; do
      out=docs/runs/scale_out_farm/p${procs}
      rm -rf "$out"
      mkdir -p "$out"
      if [ "$procs" = 1 ]; then
        env OMP_NUM_THREADS=1 /usr/bin/time -a -f "%e" -o "$out/wall_s.txt" \
          "$PY" -m qwr_fast.cli qwr-search "${SEARCH[@]}" --out "$out/search.csv" \
          --episodes-out "$out/episodes.csv"
      else
        env OMP_NUM_THREADS=1 /usr/bin/time -a -f "%e" -o "$out/wall_s.txt" \
          "$PY" -m torch.distributed.run --standalone --nproc-per-node=2 \
          -m qwr_fast.cli qwr-search "${SEARCH[@]}" --out "$out/search.csv" \
          --episodes-out "$out/episodes.csv"
      fi
    done
    ;;
  returns)
    for seed in ${SEEDS:-0 1 2}; do
      run=runs/scale_out_100000/HalfCheetah_qwr-lse_s${seed}_2ranks
      [ -f "$run/eval.csv" ] && [ "$(tail -n1 "$run/eval.csv" | cut -d, -f1)" = 100000 ] \
        && { keep "$run" "docs/runs/scale_out_100000/$(basename "$run")"; continue; }
      one_run 2 "$run" --total-steps 100000 --seed "$seed" --eval-every 5000
      keep "$run" "docs/runs/scale_out_100000/$(basename "$run")"
    done
    ;;
  *)
    echo "usage: bash docs/scale_out_runs.sh speed [STEPS] | actors [STEPS] | farm [EPISODES] | returns" >&2
    exit 2
    ;;
esac
"$PY" docs/scale_table.py
