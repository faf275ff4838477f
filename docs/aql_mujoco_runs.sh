#!/usr/bin/env bash
# Reproduces the "Discretised MuJoCo" rows of the AQL section of docs/results.md: AQL (N = 100
# proposal + M = 400 uniform candidates, the paper's sizes) vs UniformQL (500 uniform candidates)
# on Hopper-v5 (3 dims, 1331 actions), HalfCheetah-v5 (6 dims, 1.8e6) and Humanoid-v5 (17 dims,
# 5.1e17), 11 bins per dimension, 3 seeds each, a CPU-sized network and budget (preset mujoco
# with width 128, batch 64, 1000 random steps first). One run at a time, one torch thread,
# pinned to core ${CORE:-1}. Runs land in runs/aql_mujoco_<steps>/<env>_<algo>_s<seed>/; the
# summary table at the end (mean +- std over seeds of the last evaluation, 5 episodes each).
# Usage: [ENVS="Hopper-v5 HalfCheetah-v5 Humanoid-v5"] [SEEDS="0 1 2"] [CORE=1] [EVAL_EVERY=2000] \
#        bash docs/aql_mujoco_runs.sh [TOTAL_STEPS]      (default 6000)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${1:-6000}
ROOT=runs/aql_mujoco_${STEPS}
for env in ${ENVS:-Hopper-v5 HalfCheetah-v5 Humanoid-v5}; do
  for seed in ${SEEDS:-0 1 2}; do
    for algo in aql uniform-ql; do
      dir="$ROOT/${env}_${algo}_s${seed}"
      if [ -f "$dir/eval.csv" ] && [ "$(tail -n1 "$dir/eval.csv" | cut -d, -f1)" = "$STEPS" ]; then
        continue  # finished earlier
      fi
      flock "/tmp/core${CORE:-1}.lock" taskset -c "${CORE:-1}" env OMP_NUM_THREADS=1 \
        "$PY" -m qwr_fast.cli aql-train \
        --preset mujoco --env "$env" --algo "$algo" --total-steps "$STEPS" --seed "$seed" \
        --learning-starts 1000 --hidden 128 --proposal-width 128 --batch-size 64 \
        --eval-every "${EVAL_EVERY:-2000}" --run-dir "$dir" --no-progress --no-tensorboard --overwrite
    done
  done
done
"$PY" - "$ROOT" <<'PYEOF'
import csv
import os
import sys
from collections import defaultdict

import numpy as np

root = sys.argv[1]
final, curve, wall = defaultdict(list), defaultdict(list), defaultdict(list)
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "eval.csv")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        rows = list(csv.DictReader(f))
    key = name.rsplit("_s", 1)[0]
    final[key].append(float(rows[-1]["return_mean"]))
    curve[key].append([float(r["return_mean"]) for r in rows])
    with open(os.path.join(root, name, "train.csv")) as f:
        wall[key].append(float(list(csv.DictReader(f))[-1]["wall_s"]))
print("| env | algo | seeds | final eval return, mean +- std | per seed | seed-mean curve | wall s/run |")
print("|---|---|---|---|---|---|---|")
for key, v in final.items():
    env, algo = key.split("_", 1)
    n = min(len(c) for c in curve[key])
    mean_curve = " / ".join(f"{x:.0f}" for x in np.mean([c[:n] for c in curve[key]], axis=0))
    per = " / ".join(f"{x:.1f}" for x in v)
    print(
        f"| {env} | {algo} | {len(v)} | {np.mean(v):.1f} +- {np.std(v):.1f} | {per} | "
        f"{mean_curve} | {np.mean(wall[key]):.0f} |"
    )
PYEOF
