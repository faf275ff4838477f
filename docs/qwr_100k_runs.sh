#!/usr/bin/env bash
# A queue of qwr-train runs at one preset, one torch thread per run, each run pinned to core
# ${CORE:-0} under that core's lock (`flock /tmp/core$CORE.lock taskset -c $CORE`), so runs never
# share a core. The wall time of each run goes to RUN_DIR/wall_s.txt (one line per part when a
# run was resumed). Finished runs are skipped and an interrupted run continues from its latest
# checkpoint (--resume), so re-running the script resumes a queue. Used by docs/qwr_mujoco_runs.sh and
# docs/qwr_minatar_runs.sh (issue 4, results 2 and 3).
# Usage: PRESET=P RUNS="ENV:ALGO:SEED ..." [CORE=0] [ROOT=DIR] [EVAL_EVERY=5000] [RANDOM_EPISODES=K]
#        [EXTRA_ARGS="--n-samples 8 ..."] bash docs/qwr_100k_runs.sh [TOTAL_STEPS]   (default 100000)
# EXTRA_ARGS are qwr-train flags added to a fresh run's preset (a resumed run keeps its saved config).
# Runs land in ${ROOT:-runs/<preset>_<steps>}/<env>_<algo>_s<seed>/ (env without "-v5", "/" -> "_").
# SUMMARY_ONLY=1 only prints the table of finished runs; RANDOM_EPISODES=K adds a uniformly
# random policy's mean return over K episodes of each env in RUNS (seed 0), its returns kept in
# ROOT/random.csv (and the archive). The summary also
# copies each run's eval.csv, config.json, wall_s.txt and final_eval.csv (docs/qwr_final_eval.py
# --record) (finished or not) to
# ${ARCHIVE:-docs/runs}/<basename of ROOT>/<run>/, the record kept in git (runs/ is not);
# ROOT=docs/runs/<name> SUMMARY_ONLY=1 re-prints a table from that record.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${1:-100000}
CORE=${CORE:-0}
: "${PRESET:?set PRESET (mujoco, minatar, ...)}" "${RUNS:?set RUNS=\"ENV:ALGO:SEED ...\"}"
ROOT=${ROOT:-runs/${PRESET}_${STEPS}}
mkdir -p "$ROOT"
for spec in $RUNS; do
  [ -n "${SUMMARY_ONLY:-}" ] && break
  IFS=: read -r env algo seed <<<"$spec"
  name=${env%-v5}
  run="$ROOT/${name//\//_}_${algo}_s${seed}"
  [ -f "$run/eval.csv" ] && [ "$(tail -n1 "$run/eval.csv" | cut -d, -f1)" = "$STEPS" ] && continue
  mkdir -p "$run"
  if ls "$run"/ckpt_*.pt >/dev/null 2>&1; then  # interrupted: continue it
    args=(--resume "$run" --total-steps "$STEPS" --no-progress)
  else
    args=(--preset "$PRESET" --env "$env" --algo "$algo" --total-steps "$STEPS" --seed "$seed"
      --eval-every "${EVAL_EVERY:-5000}" --run-dir "$run" --no-progress --no-tensorboard
      ${EXTRA_ARGS:-})
  fi
  flock "/tmp/core${CORE}.lock" taskset -c "$CORE" env OMP_NUM_THREADS=1 \
    /usr/bin/time -a -f "%e" -o "$run/wall_s.txt" \
    "$PY" -m qwr_fast.cli qwr-train \
    "${args[@]}"
done
"$PY" - "$ROOT" "${RANDOM_EPISODES:-0}" "${ARCHIVE:-docs/runs}" $RUNS <<'PYEOF'
import csv
import os
import shutil
import sys
from collections import defaultdict

import numpy as np

root, random_episodes, archive, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
archive = os.path.join(archive, os.path.basename(os.path.normpath(root)))
if os.path.abspath(archive) != os.path.abspath(root):
    for name in sorted(os.listdir(root)):
        for kept in ("eval.csv", "config.json", "wall_s.txt", "final_eval.csv"):
            src = os.path.join(root, name, kept)
            if os.path.exists(src):
                os.makedirs(os.path.join(archive, name), exist_ok=True)
                dst = os.path.join(archive, name, kept)
                shutil.copyfile(src, dst + ".tmp")
                os.replace(dst + ".tmp", dst)
    print(f"run records copied to {archive}/")
final = defaultdict(list)
curves = defaultdict(list)  # env -> [(label, steps, returns)]
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "eval.csv")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        continue
    wall_path = os.path.join(root, name, "wall_s.txt")
    # one line per part; /usr/bin/time adds "Command exited with non-zero status N" before the
    # time of a part that was stopped (SIGTERM: 143), which is skipped
    parts = (
        [w for w in open(wall_path).read().split("\n") if w.strip().replace(".", "", 1).isdigit()]
        if os.path.exists(wall_path)
        else ["?"]
    )
    wall = f"{sum(float(x) for x in parts):.0f}" if parts and "?" not in parts else "running/?"
    best = max(float(r["return_mean"]) for r in rows)
    print(f"{name}: final {float(rows[-1]['return_mean']):.1f} at step {rows[-1]['step']}, "
          f"best eval {best:.1f}, wall {wall} s")
    final[name.rsplit("_s", 1)[0]].append((int(rows[-1]["step"]), float(rows[-1]["return_mean"])))
    env_name, label = name.rsplit("_", 2)[0], "_".join(name.rsplit("_", 2)[1:])
    curves[env_name].append(
        (label, [int(r["step"]) for r in rows], [float(r["return_mean"]) for r in rows])
    )
print("| env_algo | seeds | env steps | final eval return (temp 0), mean +- std | per seed |")
print("|---|---|---|---|---|")
for key, v in final.items():
    r = np.array([x for _, x in v])
    print(f"| {key} | {len(v)} | {min(s for s, _ in v)} | {r.mean():.1f} +- {r.std():.1f} | "
          f"{' / '.join(f'{x:.1f}' for x in r)} |")
if curves:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.5), squeeze=False)
    for ax, (env_name, runs) in zip(axes[0], sorted(curves.items())):
        for label, steps, ret in runs:
            ax.plot(steps, ret, label=label)
        ax.set_title(env_name)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (temperature 0)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(root, "curves.png"), dpi=100)
    print(f"plot: {os.path.join(root, 'curves.png')}")
if random_episodes > 0:
    from qwr_fast.envs import make

    for env_id in sorted({spec.split(":")[0] for spec in specs}):
        env = make(env_id, random_episodes, seed=0)
        env.action_space.seed(0)
        env.reset(seed=0)
        ret, done = np.zeros(random_episodes), np.zeros(random_episodes, dtype=bool)
        while not done.all():
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            ret += np.where(done, 0.0, r)
            done |= np.logical_or(term, trunc)
        print(f"| {env_id} random (uniform actions, {random_episodes} episodes) | - | - | "
              f"{ret.mean():.2f} +- {ret.std():.2f} (over episodes) | - |")
        # the record: ROOT/random.csv, one row per env (a rerun replaces that env's row)
        path = os.path.join(root, "random.csv")
        kept = {}
        if os.path.exists(path):
            with open(path, newline="") as f:
                kept = {r["env"]: r for r in csv.DictReader(f)}
        kept[env_id] = {"env": env_id, "episodes": random_episodes, "seed": 0,
                        "returns": " ".join(repr(float(x)) for x in ret)}
        with open(path + ".tmp", "w", newline="") as f:
            out = csv.DictWriter(f, ["env", "episodes", "seed", "returns"])
            out.writeheader()
            out.writerows(kept[k] for k in sorted(kept))
        os.replace(path + ".tmp", path)
        if os.path.abspath(archive) != os.path.abspath(root):
            os.makedirs(archive, exist_ok=True)
            shutil.copyfile(path, os.path.join(archive, "random.csv.tmp"))
            os.replace(os.path.join(archive, "random.csv.tmp"), os.path.join(archive, "random.csv"))
PYEOF
