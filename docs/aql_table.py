"""Print an AQL table of docs/results.md (issue 5) from its run records.

    python docs/aql_table.py RECORDS   (docs/runs/aql_bitflip_<steps>[_<tag>]: docs/aql_runs.sh)

One row per env and algo over its seeds: the final greedy evaluation (last row of each run's
``eval.csv``, 32 episodes) as mean +- sample std (ddof 1) over seeds, the optimum of that
evaluation's starts (flip every 0 bit at the first step: recomputed from the trainer's eval
seeding, eval env seed = run seed + 1, reset seed = run seed + 10000 + evaluation index), the
per-seed % of the optimum averaged, the per-seed returns and the wall seconds per run (the last
``wall_s`` of its ``train.csv``).
"""

from __future__ import annotations

import csv
import os
import sys
from collections import defaultdict

import numpy as np
from records import eval_rows, spread

from qwr_fast.envs import make


def main(root: str) -> None:
    final, optimum, wall = defaultdict(list), defaultdict(list), defaultdict(list)
    for name in sorted(os.listdir(root)):
        rows = eval_rows(os.path.join(root, name))
        if not rows:
            continue
        key, seed = name.rsplit("_s", 1)
        env = make(key.split("_", 1)[0], 32, seed=int(seed) + 1)
        obs, _ = env.reset(seed=int(seed) + 10_000 + len(rows) - 1)
        optimum[key].append(float((1.0 - obs).sum(1).mean()))
        final[key].append(float(rows[-1]["return_mean"]))
        with open(os.path.join(root, name, "train.csv"), newline="") as f:
            wall[key].append(float(list(csv.DictReader(f))[-1]["wall_s"]))
    print(
        "| env | algo | seeds | final eval return, mean +- sample std over seeds | optimum | "
        "% of optimum | per seed | wall s / run |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, v in final.items():
        env, algo = key.split("_", 1)
        pct = 100 * np.mean(np.array(v) / np.array(optimum[key]))
        print(
            f"| {env} | {algo} | {len(v)} | {spread(np.array(v), 2)} | "
            f"{np.mean(optimum[key]):.2f} | {pct:.0f} % | {' / '.join(f'{x:.2f}' for x in v)} | "
            f"{np.mean(wall[key]):.0f} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
