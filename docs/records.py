"""Read the run records under ``docs/runs/`` (issue 20, part 3): what the table generators of
docs/ share. A record is a run folder ``<name>_s<seed>/`` holding the run's ``eval.csv`` (the
in-run greedy evaluations), ``config.json`` and ``wall_s.txt`` (one line per part of the run,
as ``/usr/bin/time -a`` appends them); never a checkpoint."""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict

import numpy as np

SEEDED = re.compile(r"(?P<name>.+)_s(?P<seed>\d+)$")


def eval_rows(run_dir: str) -> list[dict]:
    """The rows of ``run_dir/eval.csv`` (empty when it has none)."""
    path = os.path.join(run_dir, "eval.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wall_s(run_dir: str) -> float | None:
    """The run's wall seconds, all parts added (None without a complete ``wall_s.txt``:
    ``/usr/bin/time`` writes "Command exited with non-zero status N" before the time of a part
    that was stopped, which is skipped)."""
    path = os.path.join(run_dir, "wall_s.txt")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        parts = [w for w in f.read().split("\n") if w.strip().replace(".", "", 1).isdigit()]
    return sum(float(x) for x in parts) if parts else None


def finished(root: str, steps: int) -> dict[str, dict[int, list[dict]]]:
    """``name -> seed -> eval rows`` of the runs ``root/<name>_s<seed>/`` whose last evaluation
    is at ``steps`` env steps (unfinished runs are left out; no ``root``: none)."""
    out: dict[str, dict[int, list[dict]]] = defaultdict(dict)
    for entry in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        match = SEEDED.match(entry)
        rows = eval_rows(os.path.join(root, entry))
        if match and rows and int(rows[-1]["step"]) == steps:
            out[match["name"]][int(match["seed"])] = rows
    return dict(out)


def final_returns(runs: dict[int, list[dict]]) -> tuple[list[int], np.ndarray]:
    """Seeds (sorted) and each one's last in-run greedy evaluation return."""
    seeds = sorted(runs)
    return seeds, np.array([float(runs[s][-1]["return_mean"]) for s in seeds])


def spread(x: np.ndarray, digits: int = 1) -> str:
    """``mean +- std`` over seeds, the std the sample std (ddof 1); one seed: the value alone."""
    if len(x) == 1:
        return f"{x[0]:.{digits}f}"
    return f"{x.mean():.{digits}f} +- {x.std(ddof=1):.{digits}f}"
