#!/usr/bin/env bash
# Reproduces the AQL section of docs/results.md: AQL vs UniformQL at equal N + M on BitFlipSubset-{8,16,32}
# (2^N actions) and exhaustive-max DQN on BitFlipSubset-8, 3 seeds each, preset bitflip, CPU.
# Three runs at a time, one torch thread each. Runs land in runs/aql_bitflip_<steps>/<env>_<algo>_s<seed>/;
# the summary table at the end.
# Usage: [SIZES="8 16 32"] [ALGOS="aql uniform-ql"] [EXTRA="--factorised" TAG=factorised] \
#        [PREFIX="flock /tmp/core0.lock taskset -c 0 env OMP_NUM_THREADS=1"] \
#        bash docs/aql_runs.sh [TOTAL_STEPS] [NUM_PROPOSAL] [NUM_UNIFORM]
#        (defaults 3000 25 75; exhaustive DQN runs when SIZES contains 8 and ALGOS is default;
#        EXTRA flags go to every run, TAG suffixes the runs directory, PREFIX is put before
#        every run's command: with a flock as above the three seeds run one after the other)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${1:-3000}
NP=${2:-25}
NU=${3:-75}
ROOT=runs/aql_bitflip_${STEPS}${TAG:+_$TAG}
EXTRA=${EXTRA:-}
PREFIX=${PREFIX:-}
JOBS=()
SIZES=${SIZES:-8 16 32}
for n in $SIZES; do
  for algo in ${ALGOS:-aql uniform-ql}; do JOBS+=("BitFlipSubset-$n $algo"); done
  if [ "$n" = 8 ] && [ -z "${ALGOS:-}" ]; then JOBS+=("BitFlipSubset-8 exhaustive-dqn"); fi
done
run() {
  local env=$1 algo=$2 seed=$3
  $PREFIX "$PY" -m qwr_fast.cli aql-train \
    --preset bitflip --env "$env" --algo "$algo" --total-steps "$STEPS" --seed "$seed" \
    --num-proposal "$NP" --num-uniform "$NU" --run-dir "$ROOT/${env}_${algo}_s${seed}" \
    --no-progress --no-tensorboard --overwrite $EXTRA
}
for job in "${JOBS[@]}"; do
  for seed in 0 1 2; do run $job "$seed" & done
  wait
done
"$PY" - "$ROOT" <<'PYEOF'
import csv
import os
import sys
from collections import defaultdict

import numpy as np

from qwr_fast.envs import make

root = sys.argv[1]
final, optimum, wall = defaultdict(list), defaultdict(list), defaultdict(list)
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "eval.csv")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        continue
    key, seed = name.rsplit("_s", 1)
    env_id = key.split("_", 1)[0]
    # The optimum of the final evaluation's starts: flip every 0 bit at the first step (the
    # trainer's eval seeding: eval env seed + 1, reset seed + 10000 + evaluation index).
    env = make(env_id, 32, seed=int(seed) + 1)
    obs, _ = env.reset(seed=int(seed) + 10_000 + len(rows) - 1)
    optimum[key].append(float((1.0 - obs).sum(1).mean()))
    final[key].append(float(rows[-1]["return_mean"]))
    with open(os.path.join(root, name, "train.csv")) as f:
        wall[key].append(float(list(csv.DictReader(f))[-1]["wall_s"]))
print("| env | algo | seeds | final eval return, mean +- std over seeds | optimum | % of optimum | per seed | wall s/run |")
print("|---|---|---|---|---|---|---|---|")
for key, v in final.items():
    env, algo = key.split("_", 1)
    opt = np.mean(optimum[key])
    pct = 100 * np.mean(np.array(v) / np.array(optimum[key]))
    per = " / ".join(f"{x:.2f}" for x in v)
    print(
        f"| {env} | {algo} | {len(v)} | {np.mean(v):.2f} +- {np.std(v):.2f} | {opt:.2f} | "
        f"{pct:.0f} % | {per} | {np.mean(wall[key]):.0f} |"
    )
PYEOF
