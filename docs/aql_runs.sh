#!/usr/bin/env bash
# Reproduces the AQL section of docs/results.md: AQL vs UniformQL at equal N + M on BitFlipSubset-{8,16,32}
# (2^N actions) and exhaustive-max DQN on BitFlipSubset-8, 3 seeds each, preset bitflip, CPU.
# Three runs at a time, one torch thread each. Runs land in runs/aql_bitflip_<steps>/<env>_<algo>_s<seed>/;
# their records are copied to docs/runs/aql_bitflip_<steps>[_<tag>]/ and docs/aql_table.py prints the
# table from them at the end.
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
# the record kept in git: each run's eval.csv, config.json and train.csv (its last row holds the
# run's wall seconds) in ${ARCHIVE:-docs/runs}/<basename of ROOT>/<run>/; the table from it
ARCHIVE=${ARCHIVE:-docs/runs}/$(basename "$ROOT")
for run in "$ROOT"/*/; do
  name=$(basename "$run")
  mkdir -p "$ARCHIVE/$name"
  for kept in eval.csv config.json train.csv; do
    [ -f "$run/$kept" ] && cp "$run/$kept" "$ARCHIVE/$name/$kept.tmp" && mv "$ARCHIVE/$name/$kept.tmp" "$ARCHIVE/$name/$kept"
  done
done
echo "run records copied to $ARCHIVE/"
"$PY" docs/aql_table.py "$ARCHIVE"
