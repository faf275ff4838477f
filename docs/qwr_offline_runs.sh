#!/usr/bin/env bash
# Reproduces the offline HalfCheetah rows of docs/results.md (issue 4, result 4): a dataset
# collected by a partly trained QWR-LSE agent, then QWR-LSE offline vs AWR offline vs behaviour
# cloning on it, preset mujoco, one torch thread, each job pinned to core ${CORE:-0} under its
# lock. Runs land in runs/offline_hc/: behaviour/, data.npz, <algo>_s<seed>/; the table at the end.
# The summary copies the record kept in git to ${ARCHIVE:-docs/runs}/offline_hc/: each run's
# eval.csv, config.json and wall_s.txt, and dataset.json (the dataset's size and mean reward; the
# data.npz itself stays out of git), from which docs/offline_table.py prints the table.
# Usage: [SEEDS="0 1 2"] [CORE=0] bash docs/qwr_offline_runs.sh [BEHAVIOUR_STEPS] [DATA_STEPS] [OFFLINE_STEPS]
#        (defaults 10000 20000 10000; OFFLINE_STEPS counts pseudo env steps: 1000 critic and
#        1000 actor steps per 1000, as online)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BEHAVIOUR_STEPS=${1:-10000}
DATA_STEPS=${2:-20000}
OFFLINE_STEPS=${3:-10000}
ROOT=runs/offline_hc
CORE=${CORE:-0}
pinned() { flock "/tmp/core${CORE}.lock" taskset -c "$CORE" env OMP_NUM_THREADS=1 "$@"; }
# train RUN_DIR FLAGS...: one run, its wall time appended to RUN_DIR/wall_s.txt
train() {
  mkdir -p "$1"
  pinned /usr/bin/time -a -f "%e" -o "$1/wall_s.txt" "$PY" -m qwr_fast.cli qwr-train \
    --run-dir "$1" "${@:2}"
}
mkdir -p "$ROOT"
if [ ! -f "$ROOT/behaviour/eval.csv" ]; then
  train "$ROOT/behaviour" --preset mujoco --env HalfCheetah-v5 --algo qwr-lse \
    --total-steps "$BEHAVIOUR_STEPS" --seed 0 --eval-every 5000 --no-progress --no-tensorboard
fi
if [ ! -f "$ROOT/data.npz" ]; then
  pinned "$PY" -m qwr_fast.cli qwr-collect \
    --env HalfCheetah-v5 --policy checkpoint --checkpoint "$ROOT/behaviour" --steps "$DATA_STEPS" \
    --out "$ROOT/data.npz" --seed 1
fi
for seed in ${SEEDS:-0 1 2}; do
  for algo in qwr-lse awr bc; do
    dir="$ROOT/${algo}_s${seed}"
    [ -f "$dir/eval.csv" ] && [ "$(tail -n1 "$dir/eval.csv" | cut -d, -f1)" = "$OFFLINE_STEPS" ] && continue
    train "$dir" --preset mujoco --env HalfCheetah-v5 --algo "$algo" --dataset "$ROOT/data.npz" \
      --total-steps "$OFFLINE_STEPS" --seed "$seed" --eval-every 5000 --no-progress --no-tensorboard
  done
done
"$PY" - "$ROOT" "${ARCHIVE:-docs/runs}" <<'PYEOF'
import csv
import json
import os
import shutil
import sys
from collections import defaultdict

import numpy as np

root = sys.argv[1]
data = np.load(os.path.join(root, "data.npz"))
archive = os.path.join(sys.argv[2], os.path.basename(os.path.normpath(root)))
os.makedirs(archive, exist_ok=True)
with open(os.path.join(archive, "dataset.json.tmp"), "w") as f:
    json.dump({"steps": len(data["reward"]), "mean_reward": float(data["reward"].mean())}, f)
os.replace(os.path.join(archive, "dataset.json.tmp"), os.path.join(archive, "dataset.json"))
for name in sorted(os.listdir(root)):
    for kept in ("eval.csv", "config.json", "wall_s.txt"):
        src = os.path.join(root, name, kept)
        if os.path.exists(src):
            os.makedirs(os.path.join(archive, name), exist_ok=True)
            dst = os.path.join(archive, name, kept)
            shutil.copyfile(src, dst + ".tmp")
            os.replace(dst + ".tmp", dst)
print(f"run records copied to {archive}/")
print(f"dataset: {len(data['reward'])} steps; mean reward per step {data['reward'].mean():.3f} "
      f"(x 1000 = {1000 * data['reward'].mean():.0f} per 1000-step episode)")
with open(os.path.join(root, "behaviour", "eval.csv")) as f:
    last = list(csv.DictReader(f))[-1]
print(f"behaviour agent (online QWR-LSE, {last['step']} steps): eval return {float(last['return_mean']):.1f}")
final = defaultdict(list)
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "eval.csv")
    if name == "behaviour" or not os.path.exists(path):
        continue
    with open(path) as f:
        final[name.rsplit("_s", 1)[0]].append(float(list(csv.DictReader(f))[-1]["return_mean"]))
print("| algo (offline) | seeds | final eval return, mean +- std | per seed |")
print("|---|---|---|---|")
for algo, v in final.items():
    print(f"| {algo} | {len(v)} | {np.mean(v):.1f} +- {np.std(v):.1f} | {' / '.join(f'{x:.1f}' for x in v)} |")
PYEOF
