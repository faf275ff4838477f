"""``aql-train``: train Amortized Q-learning (or the UniformQL / exhaustive-DQN baselines).

``aql-train --env ENV_ID --algo {aql,uniform-ql,exhaustive-dqn} --total-steps N --seed S
--run-dir DIR [--bins B] [--num-proposal N] [--num-uniform M] [--preset P] [--resume DIR]``;
every field of :class:`qwr_fast.trainers.aql.AQLConfig` is a flag (``aql-train --help``).
"""

from __future__ import annotations

import sys

from qwr_fast.cli.common import train_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``aql-train``: parse flags (preset first), train, print the final evaluation."""
    from qwr_fast.trainers.aql import PRESETS, AQLConfig, AQLTrainer

    def summary(trainer, last: dict) -> str:
        return (
            f"{trainer.cfg.algo} on {trainer.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f}; "
            f"curve: {trainer.cfg.run_dir}/curve.png"
        )

    return train_main("aql-train", AQLConfig, AQLTrainer, PRESETS, argv, summary)


if __name__ == "__main__":
    sys.exit(main())
