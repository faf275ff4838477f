"""Re-evaluate finished ``qwr-train`` runs on many episodes (issue 4, results 2 and 3).

    python docs/qwr_final_eval.py RUN_DIR [RUN_DIR ...] [--episodes 100] [--temperature 0]

The in-run evaluations use ``eval_episodes`` (5 by default) episodes, so one evaluation moves by
a whole point on MinAtar. This loads the latest checkpoint of each run into a trainer built in a
temporary directory (the run directory is only read), with ``eval_episodes=--episodes``, and
runs ``QWRTrainer.evaluate`` once: one episode per eval env, seeded as the run's next
evaluation would be. Prints a markdown row per run: env steps, mean, std over episodes and the
standard error of the mean.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from qwr_fast.checkpoint import latest_checkpoint, load_checkpoint
from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer


def final_eval(run_dir: str, episodes: int, temperature: float) -> tuple[dict, np.ndarray, int]:
    """The saved config of ``run_dir``, the returns of ``episodes`` evaluation episodes of its
    latest checkpoint at ``temperature``, and that checkpoint's env step."""
    state = load_checkpoint(latest_checkpoint(run_dir))
    with tempfile.TemporaryDirectory(prefix="qwr_final_eval_") as tmp:
        overrides = dict(run_dir=tmp, resume=None, overwrite=True, eval_episodes=episodes)
        cfg = QWRConfig(**{**state["config"], **overrides, "progress": False, "tensorboard": False})
        trainer = QWRTrainer(cfg)
        trainer.load_state_dict(state)
        with torch.no_grad():
            returns = trainer.evaluate(temperature)
    return state["config"], returns, state["counters"]["global_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.0)
    args = parser.parse_args()
    print(
        f"| env | algo | env steps | return over {args.episodes} episodes (temperature "
        f"{args.temperature:g}), mean +- std | standard error |"
    )
    print("|---|---|---:|---:|---:|")
    for run_dir in args.run_dirs:
        cfg, returns, step = final_eval(run_dir, args.episodes, args.temperature)
        sem = returns.std(ddof=1) / np.sqrt(len(returns))
        print(
            f"| {cfg['env']} | {cfg['algo']} | {step} | {returns.mean():.2f} +- "
            f"{returns.std():.2f} | {sem:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
