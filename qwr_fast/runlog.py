"""Run-directory logs shared by the trainers: resumable CSV files and the learning-curve PNG."""

from __future__ import annotations

import csv
import os

import numpy as np

__all__ = ["open_csv", "plot_eval_curve"]


def open_csv(run_dir: str, name: str, columns: list[str], resume_step: int | None):
    """Open ``run_dir/name`` for writing rows of ``columns``; on a resume, the rows with
    ``step <= resume_step`` are kept (those after the checkpoint are dropped, so a resumed run's
    file equals an uninterrupted one's). Returns ``(file, csv.DictWriter)``."""
    path = os.path.join(run_dir, name)
    rows = []
    if resume_step is not None and os.path.exists(path):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
    f = open(path, "w", newline="")  # noqa: SIM115 (kept open for the run)
    w = csv.DictWriter(f, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
    f.flush()
    return f, w


def plot_eval_curve(run_dir: str, series: list[tuple[str, str]], *, title: str = "") -> str | None:
    """Write ``curve.png`` (eval return vs env steps) from ``eval.csv``: one line per
    ``(column, label)`` of ``series`` with a ``+- std`` band when the ``*_std`` column exists
    (``return_mean`` -> ``return_std``); all-NaN columns are skipped. Returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(run_dir, "eval.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    step = np.array([float(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in series:
        mean = np.array([float(r[key]) for r in rows])
        if np.isnan(mean).all():
            continue
        ax.plot(step, mean, label=label)
        std_key = key.replace("mean", "std")
        if std_key != key and std_key in rows[0]:
            std = np.array([float(r[std_key]) for r in rows])
            ax.fill_between(step, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    out = os.path.join(run_dir, "curve.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
