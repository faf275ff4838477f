"""Print the policy fine-tuning table of docs/results.md (issue 20, part 6) from its records.

    python docs/pft_table.py [RECORDS]   (default docs/runs/pft_bitflip, from bash docs/pft_runs.sh)

One row per planner setting and budget (sim env steps per move): score mean +- s.e.m. (sample
std over the episodes / sqrt(episodes)), the gain over the blueprint's score, env steps and
seconds per move, and the share of searches whose searched choice was adopted.
"""

from __future__ import annotations

import csv
import glob
import os
import sys


def main(root: str = "docs/runs/pft_bitflip") -> None:
    with open(os.path.join(root, "blueprint.csv"), newline="") as f:
        (bp,) = list(csv.DictReader(f))
    base = float(bp["score_mean"])
    print(
        "| planner | budget / move | episodes | score, mean +- s.e.m. | gain over the blueprint "
        "| env steps / move | s / move | adopted |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| blueprint | 0 | {bp['episodes']} | {base:.2f} +- {float(bp['score_sem']):.2f} | - | "
        "0 | - | - |"
    )
    files = [os.path.join(root, "mcts.csv"), *sorted(glob.glob(os.path.join(root, "policy-ft_*")))]
    for path in files:
        name = os.path.basename(path)[: -len(".csv")]
        name = {"policy-ft_old": "policy-ft, lr 1e-4, z 0 (old)"}.get(name, name)
        name = {"policy-ft_new": "policy-ft, lr 3e-3, z 1 (new)"}.get(name, name)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            score, adopted = float(r["score_mean"]), float(r["adopted_frac"])
            print(
                f"| {name} | {int(float(r['budget_steps']))} | {r['episodes']} | {score:.2f} +- "
                f"{float(r['score_sem']):.2f} | {score - base:+.2f} | "
                f"{float(r['env_steps_per_move']):.0f} | {float(r['seconds_per_move']):.3f} | "
                f"{adopted:.0%} |"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
