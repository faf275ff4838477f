"""Print the MinAtar tables of docs/results.md (issue 4 result 3, issue 20 part 3) from records.

    python docs/minatar_table.py [RECORDS]   (default docs/runs/minatar_100000)

RECORDS holds one folder per run, ``MinAtar_<Game>_<algo>_s<seed>/`` with the run's
``eval.csv`` (in-run greedy evaluations, 5 episodes each) and, where the final evaluation was
kept, ``final_eval.csv`` (``python docs/qwr_final_eval.py RUN_DIR --episodes 100 --record``:
one row per episode), plus ``random.csv`` (a uniformly random policy's episode returns,
``RANDOM_EPISODES=100`` of ``docs/qwr_minatar_runs.sh``).

Two tables:

1. Per run: the in-run greedy return at the last evaluation (mean over its 5 episodes), the
   mean of the in-run evaluations from 50K on (11 evaluations, 55 episodes), and the final
   evaluation over 100 episodes (mean +- s.e.m., s.e.m. = sample std / sqrt(episodes)), or
   "not kept" where the run's final evaluation has no record.
2. Per game and method, over seeds: the mean +- sample std (ddof 1) over seeds of the
   late-run mean (the per-seed figure every run has a record of), and the random policy.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from collections import defaultdict

import numpy as np

RUN = re.compile(r"MinAtar_(?P<game>\w+?)_(?P<algo>[a-z-]+)_s(?P<seed>\d+)$")
LATE = 50_000  # the late-run mean averages the in-run evaluations from this env step on


def _rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def runs(root: str) -> list[dict]:
    """One dict per finished run folder of ``root`` (its last evaluation at the run's end)."""
    out = []
    for name in sorted(os.listdir(root)):
        match = RUN.match(name)
        path = os.path.join(root, name, "eval.csv")
        if not match or not os.path.exists(path):
            continue
        evals = _rows(path)
        late = [float(r["return_mean"]) for r in evals if int(r["step"]) >= LATE]
        final_path = os.path.join(root, name, "final_eval.csv")
        final = None
        if os.path.exists(final_path):
            returns = np.array([float(r["return"]) for r in _rows(final_path)])
            final = (returns.mean(), returns.std(ddof=1) / np.sqrt(len(returns)), len(returns))
        out.append(
            dict(
                **match.groupdict(),
                step=int(evals[-1]["step"]),
                last=float(evals[-1]["return_mean"]),
                late=float(np.mean(late)) if late else float("nan"),
                late_n=len(late),
                final=final,
            )
        )
    return out


def random_baselines(root: str) -> dict[str, tuple[float, float, int]]:
    """Game -> (mean, s.e.m., episodes) of the uniformly random policy."""
    path = os.path.join(root, "random.csv")
    out = {}
    if os.path.exists(path):
        for r in _rows(path):
            x = np.array([float(v) for v in r["returns"].split()])
            out[r["env"].split("/")[-1]] = (x.mean(), x.std(ddof=1) / np.sqrt(len(x)), len(x))
    return out


def main(root: str = "docs/runs/minatar_100000") -> None:
    table = runs(root)
    print(
        "| game | method | seed | env steps | last in-run eval | in-run mean from 50K "
        "(evals) | final eval, 100 episodes, mean +- s.e.m. |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in sorted(table, key=lambda r: (r["game"], r["algo"], int(r["seed"]))):
        final = "not kept" if r["final"] is None else f"{r['final'][0]:.2f} +- {r['final'][1]:.2f}"
        print(
            f"| {r['game']} | {r['algo']} | {r['seed']} | {r['step']} | {r['last']:.1f} | "
            f"{r['late']:.2f} ({r['late_n']}) | {final} |"
        )
    print()
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in table:
        if r["step"] >= 100_000:
            groups[r["game"], r["algo"]].append(r["late"])
    rand = random_baselines(root)
    print(
        "| game | method | seeds | in-run mean from 50K, mean +- sample std over seeds | per seed |"
    )
    print("|---|---|---:|---:|---|")
    for (game, algo), late in sorted(groups.items()):
        spread = f" +- {np.std(late, ddof=1):.2f}" if len(late) > 1 else " (one seed)"
        print(
            f"| {game} | {algo} | {len(late)} | {np.mean(late):.2f}{spread} | "
            f"{' / '.join(f'{x:.2f}' for x in late)} |"
        )
    for game, (mean, sem, n) in sorted(rand.items()):
        print(f"| {game} | random | - | {mean:.2f} +- {sem:.2f} (s.e.m., {n} episodes) | - |")


if __name__ == "__main__":
    main(*sys.argv[1:])
