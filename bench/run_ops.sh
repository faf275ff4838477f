#!/usr/bin/env bash
# Runs the four op benchmarks RUNS times (default 3) and prints the table of docs/results.md.
# Usage: bash bench/run_ops.sh [RUNS] [OUT_DIR]   (JSON files land in OUT_DIR, default docs/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${1:-3}
OUT=${2:-docs/bench}
mkdir -p "$OUT"
export TORCHINDUCTOR_COMPILE_THREADS=1  # no background compile workers next to the timed code
files=()
for i in $(seq 1 "$RUNS"); do
  "$PY" -m pytest bench/test_bench_lse_backup.py bench/test_bench_awr_loss.py \
    bench/test_bench_sampled_q_head.py bench/test_bench_proposal_sample.py -q \
    --benchmark-min-rounds=20 --benchmark-warmup=on --benchmark-json="$OUT/ops_cpu_run$i.json"
  "$PY" - "$OUT/ops_cpu_run$i.json" <<'PYEOF'
import json, sys
path = sys.argv[1]
data = json.load(open(path))
for bench in data["benchmarks"]:
    bench["stats"].pop("data", None)  # keep the statistics, drop per-round samples
json.dump(data, open(path, "w"), indent=1)
PYEOF
  files+=("$OUT/ops_cpu_run$i.json")
done
"$PY" bench/summarize.py "${files[@]}"
