"""Print a final-return-over-seeds table of docs/results.md from its run records.

    python docs/seeds_table.py RECORDS STEPS

RECORDS holds one folder per run, ``<name>_s<seed>/`` (``docs/runs/mujoco_100000``,
``docs/runs/bitflip32_20000_g05``, ``docs/runs/offline_hc``: what the summaries of
``docs/qwr_100k_runs.sh``, ``docs/qwr_runs.sh`` and ``docs/qwr_offline_runs.sh`` copy there).
One row per ``name`` over its runs that reached STEPS env steps: the seeds, each seed's final
greedy evaluation (the last row of its ``eval.csv``), their mean +- sample std (ddof 1) and
the wall seconds per run (min-max over the runs whose ``wall_s.txt`` is complete).
"""

from __future__ import annotations

import os
import sys

from records import final_returns, finished, spread, wall_s


def main(root: str, steps: str) -> None:
    print(
        f"| run | seeds | final greedy eval at {int(steps)} steps, mean +- sample std over seeds "
        "| per seed | wall s / run |"
    )
    print("|---|---|---:|---|---:|")
    for name, runs in sorted(finished(root, int(steps)).items()):
        seeds, x = final_returns(runs)
        walls = [w for s in seeds if (w := wall_s(os.path.join(root, f"{name}_s{s}")))]
        wall = f"{min(walls):.0f}-{max(walls):.0f}" if walls else "-"
        print(
            f"| {name} | {', '.join(map(str, seeds))} | {spread(x, 2)} | "
            f"{' / '.join(f'{v:.2f}' for v in x)} | {wall} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
