#!/usr/bin/env bash
# Reproduces the BitFlip table of docs/results.md: QWR-LSE vs AWR on BitFlip-32 (horizon 5, random starts),
# 3 seeds each, the bitflip preset, on CPU. Each run is its own job, pinned to one core under that
# core's lock (CORE=0 by default: `flock /tmp/core$CORE.lock taskset -c $CORE`, one torch thread),
# so runs never share a core; its wall time (the run alone, not the wait for the lock) goes to
# RUN_DIR/wall_s.txt.
# Runs land in runs/bitflip32_<steps>/<algo>_s<seed>/; the summary table and curves.png at the end.
# The summary copies each run's eval.csv, config.json and wall_s.txt to
# ${ARCHIVE:-docs/runs}/<basename of ROOT>/<run>/, the record kept in git (runs/ is not), from
# which docs/bitflip_table.py prints the table of docs/results.md.
# Usage: bash docs/qwr_runs.sh [TOTAL_STEPS [FLAG...]]   (default 8000 env steps per run)
#   FLAGs go to every run (e.g. --beta 0.5); ROOT=DIR writes elsewhere; CORE=1 uses core 1 and
#   its lock; SUMMARY_ONLY=1 only prints the table and draws the plot of finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${1:-8000}
shift || true
CORE=${CORE:-0}
ROOT=${ROOT:-runs/bitflip32_${STEPS}}
for seed in 0 1 2; do
  for algo in qwr-lse awr; do
    [ -n "${SUMMARY_ONLY:-}" ] && continue
    run="$ROOT/${algo}_s${seed}"
    mkdir -p "$run"
    flock "/tmp/core${CORE}.lock" taskset -c "$CORE" env OMP_NUM_THREADS=1 \
      /usr/bin/time -f "%e" -o "$run/wall_s.txt" \
      "$PY" -m qwr_fast.cli qwr-train \
      --preset bitflip --env BitFlip-32 --algo "$algo" --total-steps "$STEPS" --seed "$seed" \
      --run-dir "$run" --no-progress "$@"
  done
done
"$PY" - "$ROOT" "${ARCHIVE:-docs/runs}" <<'PYEOF'
import csv
import os
import shutil
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

root = sys.argv[1]
archive = os.path.join(sys.argv[2], os.path.basename(os.path.normpath(root)))
if os.path.abspath(archive) != os.path.abspath(root):
    for name in sorted(os.listdir(root)):
        for kept in ("eval.csv", "config.json", "wall_s.txt"):
            src = os.path.join(root, name, kept)
            if os.path.exists(src):
                os.makedirs(os.path.join(archive, name), exist_ok=True)
                dst = os.path.join(archive, name, kept)
                shutil.copyfile(src, dst + ".tmp")
                os.replace(dst + ".tmp", dst)
    print(f"run records copied to {archive}/")
curves = defaultdict(list)
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "eval.csv")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        rows = list(csv.DictReader(f))
    algo = name.rsplit("_s", 1)[0]
    curves[algo].append(([int(r["step"]) for r in rows], [float(r["return_mean"]) for r in rows]))
    wall_path = os.path.join(root, name, "wall_s.txt")
    wall = open(wall_path).read().split()[-1] if os.path.exists(wall_path) else "?"
    print(f"{name}: final {float(rows[-1]['return_mean']):.3f} at step {rows[-1]['step']}, wall {wall} s")
fig, ax = plt.subplots(figsize=(6, 4))
print("| algo | seeds | env steps | final eval return (temp 0), mean +- std over seeds |")
print("|---|---|---|---|")
for algo, runs in curves.items():
    n = min(len(s) for s, _ in runs)
    steps = np.array(runs[0][0][:n])
    ret = np.array([r[:n] for _, r in runs])
    final = ret[:, -1]
    print(f"| {algo} | {len(runs)} | {steps[-1]} | {final.mean():.2f} +- {final.std():.2f} |")
    ax.plot(steps, ret.mean(0), label=algo)
    ax.fill_between(steps, ret.mean(0) - ret.std(0), ret.mean(0) + ret.std(0), alpha=0.2)
ax.set_xlabel("env steps")
ax.set_ylabel("eval return (temperature 0)")
ax.set_title(os.path.basename(root.rstrip("/")))
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(root, "curves.png"), dpi=100)
print(f"plot: {os.path.join(root, 'curves.png')}")
PYEOF
