"""``make demo`` / ``python -m qwr_fast.cli demo``: the QWR paper's point in a few minutes.

QWR-LSE and AWR train side by side on BitFlip-32 (``qwr-train --preset bitflip``, same seed,
budget, networks and schedule; one process per algorithm, one torch thread each, so the two
cores of a small machine run them at once). AWR regresses onto the one logged action per state
and stays far from the optimum; QWR backs Q up over actions sampled from the behaviour policy
and reaches it. The demo ends with ``RUN_ROOT/comparison.png`` (greedy eval return vs env
steps; the band and the summary's +- are the population std over the eval
episodes of one evaluation) and a two-line summary.

``--plot-only`` redraws the figure and the summary from existing runs (e.g. the committed
record ``docs/runs/demo``).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys

from qwr_fast.cli.common import error

__all__ = ["ALGOS", "main", "plot_comparison", "summary"]

ALGOS = ("qwr-lse", "awr")
OPTIMUM = 5.0  # BitFlip's 5-step episodes, one 0 -> 1 flip (+1) per step


def _eval_rows(run_dir: str) -> list[dict[str, float]]:
    path = os.path.join(run_dir, "eval.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: run the demo without --plot-only first")
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def summary(run_root: str) -> list[str]:
    """The two summary lines: final greedy eval return of each algorithm."""
    lines = []
    for algo in ALGOS:
        last = _eval_rows(os.path.join(run_root, algo))[-1]
        lines.append(
            f"{algo.upper():8s} on BitFlip-32 after {int(last['step'])} env steps: greedy eval "
            f"return {last['return_mean']:.2f} +- {last['return_std']:.2f} "
            f"({100 * last['return_mean'] / OPTIMUM:.0f} % of the optimum {OPTIMUM:g})"
        )
    return lines


def plot_comparison(run_root: str, out: str | None = None) -> str:
    """Write the comparison figure (default ``RUN_ROOT/comparison.png``); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = out or os.path.join(run_root, "comparison.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for algo in ALGOS:
        rows = _eval_rows(os.path.join(run_root, algo))
        step = np.array([r["step"] for r in rows])
        mean = np.array([r["return_mean"] for r in rows])
        std = np.array([r["return_std"] for r in rows])
        ax.plot(step, mean, label=algo.upper())
        ax.fill_between(step, mean - std, mean + std, alpha=0.2)
    ax.axhline(OPTIMUM, color="gray", ls="--", lw=1, label="optimum")
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy eval return (band: +- population std)")
    ax.set_title("BitFlip-32: QWR-LSE vs AWR (qwr-train --preset bitflip)")
    ax.legend(loc="center right")
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="qwr-demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-root", default="runs/demo", help="one run dir per algorithm below it")
    p.add_argument("--total-steps", type=int, default=8000, help="env steps per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot-only", action="store_true", help="redraw from existing runs")
    args = p.parse_args(argv)
    if args.total_steps < 1000:
        return error("qwr-demo", f"--total-steps must be >= 1000, got {args.total_steps}")
    if not args.plot_only:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs = {}
        for algo in ALGOS:
            cmd = [sys.executable, "-m", "qwr_fast.cli", "qwr-train", "--preset", "bitflip",
                   "--env", "BitFlip-32", "--algo", algo, "--total-steps", str(args.total_steps),
                   "--seed", str(args.seed), "--run-dir", os.path.join(args.run_root, algo),
                   "--overwrite", "--no-progress", "--threads", "1"]  # fmt: skip
            print("$", " ".join(cmd[3:]), flush=True)
            procs[algo] = subprocess.Popen(cmd, env=env)
        failed = [a for a, proc in procs.items() if proc.wait() != 0]
        if failed:
            return error("qwr-demo", f"the {', '.join(failed)} run failed (its output is above)")
    try:
        path = plot_comparison(args.run_root)
        lines = summary(args.run_root)
    except (FileNotFoundError, KeyError, ValueError) as e:
        return error("qwr-demo", str(e))
    print("\n".join(lines))
    print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
