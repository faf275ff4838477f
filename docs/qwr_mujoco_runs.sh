#!/usr/bin/env bash
# Reproduces the MuJoCo 100K rows of docs/results.md (issue 4, result 2): QWR-LSE on HalfCheetah,
# Hopper, Walker2d and Humanoid (v5), plus QWR-MAX, QWR-AVG and AWR on HalfCheetah, preset mujoco
# (the reference's final config), one torch thread per run, each run pinned to core ${CORE:-0}
# under that core's lock so that runs never share a core. Wall time of each run goes to
# RUN_DIR/wall_s.txt. Finished runs are skipped, so the script can be re-run to resume a queue.
# Runs land in ${ROOT:-runs/mujoco_<steps>}/<env>_<algo>_s<seed>/; the table at the end.
# Usage: [RUNS="HalfCheetah-v5:qwr-lse:0 ..."] [CORE=0] bash docs/qwr_mujoco_runs.sh [TOTAL_STEPS]
#        (default 100000 env steps; RUNS defaults to the seven runs above, seed 0;
#        SUMMARY_ONLY=1 only prints the table of finished runs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${1:-100000}
CORE=${CORE:-0}
ROOT=${ROOT:-runs/mujoco_${STEPS}}
RUNS=${RUNS:-"HalfCheetah-v5:qwr-lse:0 Hopper-v5:qwr-lse:0 Walker2d-v5:qwr-lse:0 Humanoid-v5:qwr-lse:0 HalfCheetah-v5:qwr-max:0 HalfCheetah-v5:qwr-avg:0 HalfCheetah-v5:awr:0"}
mkdir -p "$ROOT"
for spec in $RUNS; do
  [ -n "${SUMMARY_ONLY:-}" ] && break
  IFS=: read -r env algo seed <<<"$spec"
  run="$ROOT/${env%-v5}_${algo}_s${seed}"
  [ -f "$run/eval.csv" ] && [ "$(tail -n1 "$run/eval.csv" | cut -d, -f1)" = "$STEPS" ] && continue
  mkdir -p "$run"
  flock "/tmp/core${CORE}.lock" taskset -c "$CORE" env OMP_NUM_THREADS=1 \
    /usr/bin/time -f "%e" -o "$run/wall_s.txt" \
    "$PY" -c 'import sys; from qwr_fast.cli import qwr_train_main; sys.exit(qwr_train_main())' \
    --preset mujoco --env "$env" --algo "$algo" --total-steps "$STEPS" --seed "$seed" \
    --eval-every 5000 --run-dir "$run" --no-progress --no-tensorboard
done
"$PY" - "$ROOT" <<'PYEOF'
import csv
import os
import sys
from collections import defaultdict

import numpy as np

root = sys.argv[1]
final = defaultdict(list)
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "eval.csv")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        continue
    wall_path = os.path.join(root, name, "wall_s.txt")
    wall = open(wall_path).read().split()[-1] if os.path.exists(wall_path) else "?"
    best = max(float(r["return_mean"]) for r in rows)
    print(f"{name}: final {float(rows[-1]['return_mean']):.1f} at step {rows[-1]['step']}, "
          f"best eval {best:.1f}, wall {wall} s")
    final[name.rsplit("_s", 1)[0]].append((int(rows[-1]["step"]), float(rows[-1]["return_mean"])))
print("| env_algo | seeds | env steps | final eval return (temp 0), mean +- std | per seed |")
print("|---|---|---|---|---|")
for key, v in final.items():
    r = np.array([x for _, x in v])
    print(f"| {key} | {len(v)} | {min(s for s, _ in v)} | {r.mean():.1f} +- {r.std():.1f} | "
          f"{' / '.join(f'{x:.1f}' for x in r)} |")
PYEOF
