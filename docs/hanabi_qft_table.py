"""Print the results.md table of Hanabi-Hard with Q-value fine-tuning (issue 20, part 5) from its
records (``docs/runs/hanabi_qft/``: the search CSV of ``bash docs/hanabi_runs.sh qft`` and the
blueprint's config.json).

    python docs/hanabi_qft_table.py [docs/runs/hanabi_qft]
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys

PLANNERS = {"blueprint": "blueprint (greedy)", "q-ft": "Q-value fine-tuning (single-agent)"}


def _seconds(x: float) -> str:
    return f"{x:.4f}" if x < 0.01 else f"{x:.3f}"


def main(root: str = "docs/runs/hanabi_qft") -> None:
    with open(os.path.join(root, "dqn_hard_s0", "config.json")) as f:
        steps = json.load(f)["total_steps"]
    blueprint = f"DQN, {steps // 1000}K steps"
    print(
        "| variant | planner | blueprint | budget / move | episodes | score, mean +- s.e.m. "
        "| moves / game | env steps / move | s / move | searched choice adopted |"
    )
    print("|---|---|---|---|---|---|---:|---:|---:|---:|")
    with open(os.path.join(root, "search_hard_qft.csv"), newline="") as f:
        for r in csv.DictReader(f):
            adopted = float(r["adopted_frac"])
            score = f"{float(r['score_mean']):.2f} +- {float(r['score_sem']):.2f}"
            cells = [
                r["env"].removeprefix("Hanabi-"),
                PLANNERS[r["planner"]],
                blueprint,
                r["budget_steps"] or "0",
                r["episodes"],
                score,
                f"{float(r['moves_per_episode']):.1f}",
                f"{float(r['env_steps_per_move']):.0f}",
                _seconds(float(r["seconds_per_move"])),
                "-" if math.isnan(adopted) else f"{100 * adopted:.0f} %",
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
