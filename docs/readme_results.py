"""Print the README's QWR result bullets from the committed run records (issue 20, part 3).

    python docs/readme_results.py

The README holds exactly what this prints, between ``<!-- results:begin -->`` and
``<!-- results:end -->`` (``python docs/results_tables.py --write-readme`` puts it there,
``--check`` checks it). Every figure comes from a record under ``docs/runs/``: a run's final
greedy evaluation is the last row of its ``eval.csv``; "a +- b" is the mean and the sample
standard deviation (ddof 1) over seeds. Figures whose records were not kept are not printed;
docs/results.md reports them, marked as such.
"""

from __future__ import annotations

import os

import numpy as np
from minatar_table import random_baselines
from minatar_table import runs as minatar_runs
from records import eval_rows, final_returns, finished, spread

RUNS = "docs/runs"
# the paper's QWR figures at 100K env steps (Kozakowski et al., "Q-Value Weighted
# Regression", its Table 2)
PAPER = {
    ("HalfCheetah", "qwr-lse"): 2323,
    ("Hopper", "qwr-lse"): 1758,
    ("Walker2d", "qwr-lse"): 1301,
    ("Humanoid", "qwr-lse"): 511,
    ("HalfCheetah", "qwr-max"): 2250,
    ("HalfCheetah", "qwr-avg"): 1691,
    ("HalfCheetah", "awr"): -0.4,
}
NAMES = {"qwr-lse": "QWR-LSE", "qwr-max": "QWR-MAX", "qwr-avg": "QWR-AVG", "awr": "AWR", "bc": "BC"}


def _seeds(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"


def bitflip() -> str:
    runs = finished(os.path.join(RUNS, "bitflip32_20000_g05"), 20000)
    if not runs:
        return "- BitFlip-32: record not kept (docs/results.md)."
    parts = []
    for algo in ("qwr-lse", "awr"):
        seeds, x = final_returns(runs[algo])
        parts.append(f"{NAMES[algo]} {spread(x, 2)} ({x.mean() / 5:.0%} of the optimum 5)")
    return (
        f"- BitFlip-32 (horizon 5, random starts), 20K env steps, {_seeds(seeds)}: "
        f"{' vs '.join(parts)} ([curves](docs/figures/bitflip32_qwr_vs_awr_rerun.png))."
    )


def mujoco() -> str:
    runs = finished(os.path.join(RUNS, "mujoco_100000"), 100000)
    lse, lse_lost, other_lost = [], [], []  # *_lost: seed 0 ran before records were kept
    for env in ("HalfCheetah", "Humanoid", "Walker2d", "Hopper"):
        seeds, x = final_returns(runs[f"{env}_qwr-lse"])
        lse.append(f"{env} {spread(x, 0)} ({PAPER[env, 'qwr-lse']}; {_seeds(seeds)})")
        lse_lost += [env] if 0 not in seeds else []
    other = []
    for algo in ("qwr-max", "qwr-avg", "awr"):
        seeds, x = final_returns(runs[f"HalfCheetah_{algo}"])
        other.append(
            f"{NAMES[algo]} {spread(x, 0)} ({PAPER['HalfCheetah', algo]:g}; {_seeds(seeds)})"
        )
        other_lost += [NAMES[algo]] if 0 not in seeds else []
    lost = [f"QWR-LSE on {_and(lse_lost)}"] if lse_lost else []
    lost += [f"{_and(other_lost)} on HalfCheetah"] if other_lost else []
    lost_note = (
        f"Seed 0 of {' and of '.join(lost)} ran before records were kept (docs/results.md has "
        "it, with the 3-seed figures) "
        if lost
        else ""
    )
    return (
        "- MuJoCo at 100K env steps, QWR-LSE (paper in brackets; ours on gymnasium's `-v5` envs, "
        "the paper's on the v2-era ones, whose dynamics differ, Walker2d's most): "
        f"{', '.join(lse)}; on HalfCheetah {', '.join(other)}. {lost_note}"
        "([curves, seed 0](docs/figures/mujoco_100k.png), "
        "[curves, seeds 1-2 and QWR-MAX/AVG](docs/figures/mujoco_100k_rerun.png))."
    )


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def offline() -> str:
    runs = finished(os.path.join(RUNS, "offline_hc"), 10000)
    if not runs:
        return "- Offline HalfCheetah: record not kept (docs/results.md)."
    parts = []
    for algo in ("qwr-lse", "awr", "bc"):
        seeds, x = final_returns(runs[algo])
        parts.append(f"{NAMES[algo]} {spread(x, 0)}")
    behaviour = float(eval_rows(os.path.join(RUNS, "offline_hc", "behaviour"))[-1]["return_mean"])
    return (
        f"- Offline HalfCheetah, one dataset (20K steps of a QWR-LSE agent whose greedy return "
        f"is {behaviour:.0f}), {_seeds(seeds)}: {', '.join(parts)}."
    )


GAME_ORDER = ["Breakout", "Freeway", "Seaquest", "Asterix", "SpaceInvaders"]
"""the README's order of the MinAtar games (the first three ran first); every game with a
finished QWR-LSE or AWR run gets its bullet part"""


def minatar() -> str:
    root = os.path.join(RUNS, "minatar_100000")
    table = [r for r in minatar_runs(root) if r["step"] >= 100_000]
    rand = random_baselines(root)
    games = []
    for game in sorted({r["game"] for r in table}, key=GAME_ORDER.index):
        parts = []
        for algo in ("qwr-lse", "awr"):
            rows = sorted((r for r in table if (r["game"], r["algo"]) == (game, algo)),
                          key=lambda r: int(r["seed"]))  # fmt: skip
            x = np.array([r["late"] for r in rows])
            parts.append(f"{NAMES[algo]} {spread(x, 2)}")
        seeds = [int(r["seed"]) for r in rows]
        games.append(f"{game} {' vs '.join(parts)} vs random {rand[game][0]:.2f} ({_seeds(seeds)})")
    return (
        "- MinAtar at 100K env steps, the mean of the in-run greedy evaluations from 50K to 100K "
        f"(11 x 5 episodes): {'; '.join(games)} "
        "([curves, seed 0](docs/figures/minatar_100k.png))."
    )


def main() -> None:
    print(
        "QWR results on this CPU so far (all commands and caveats in docs/results.md; printed by "
        '`python docs/readme_results.py` from the records in docs/runs/; "a +- b" is the mean '
        "and the sample standard deviation, ddof 1, over seeds of the final greedy evaluation):"
    )
    for line in (bitflip(), mujoco(), offline(), minatar()):
        print(line)


if __name__ == "__main__":
    main()
