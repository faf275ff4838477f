"""Markdown tables of ``qwr-search`` CSVs: one row per (planner, blueprint, budget, horizon,
chance mode; a wall-time budget prints as ``<seconds> s``), with the mean over seeds of the
per-seed mean score +- the sample std over seeds (ddof=1), and the mean +- s.e.m. over all
episodes pooled (s.e.m. = sample std / sqrt(n)).

Usage: ``python docs/search_table.py FILE.csv [FILE.csv ...]`` (files are read in the given
order and their rows pooled by key)."""

from __future__ import annotations

import sys

import pandas as pd

HEADER = (
    "| planner | chance | budget | H | seeds | eps | score: mean of seeds +- std "
    "| score: all episodes, mean +- s.e.m. | env steps/move | grad steps/move | s/move "
    "| adopted |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def table(df: pd.DataFrame) -> str:
    df = df.copy()
    steps = df["budget_steps"].fillna(0).astype(int)
    seconds = df["budget_seconds"] if "budget_seconds" in df else pd.Series(float("nan"), df.index)
    # a step budget prints as its steps, a wall-time budget (no step budget) as "<s> s"
    pairs = zip(steps, seconds, strict=True)
    df["budget"] = [f"{s:g} s" if b == 0 and pd.notna(s) else str(b) for b, s in pairs]
    if "oracle_chance" not in df:
        df["oracle_chance"] = True  # CSVs written before the chance fix: exact restores
    df["chance"] = df["oracle_chance"].map(lambda o: "oracle" if o else "fresh")
    lines = [HEADER]
    for k, g in df.groupby(["planner", "chance", "budget", "horizon"], sort=False):
        n = g.episodes.sum()  # pooled over episodes from the per-run means and (ddof=0) stds
        m = (g.score_mean * g.episodes).sum() / n
        var = ((g.score_std**2 + g.score_mean**2) * g.episodes).sum() / n - m**2
        sem = (var * n / (n - 1)) ** 0.5 / n**0.5 if n > 1 else float("nan")
        sd = g.score_mean.std(ddof=1) if len(g) > 1 else float("nan")
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]} | {int(k[3])} | {len(g)} | {int(n)} | "
            f"{g.score_mean.mean():.2f} +- {sd:.2f} | {m:.2f} +- {sem:.2f} | "
            f"{g.env_steps_per_move.mean():.0f} | {g.grad_steps_per_move.mean():.1f} | "
            f"{g.seconds_per_move.mean():.3f} | {g.adopted_frac.mean():.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(pd.concat([pd.read_csv(p) for p in sys.argv[1:]], ignore_index=True)))
