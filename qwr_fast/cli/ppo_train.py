"""``ppo-train``: train a PPO blueprint for the planners; every field of
:class:`qwr_fast.trainers.ppo.PPOConfig` is a flag (``ppo-train --help``). Exit code 0 on
success, 2 on bad arguments with a one-line message."""

from __future__ import annotations

import sys

from qwr_fast.cli.common import train_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``ppo-train``: parse flags (preset first), train, print the final evaluation."""
    from qwr_fast.trainers.ppo import PRESETS, PPOConfig, PPOTrainer

    def summary(trainer, last: dict) -> str:
        return (
            f"PPO on {trainer.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f} (sampled), "
            f"{last['return_mean_greedy']:.3f} (greedy); checkpoint: "
            f"{trainer.cfg.run_dir}/checkpoint.pt"
        )

    return train_main("ppo-train", PPOConfig, PPOTrainer, PRESETS, argv, summary)


if __name__ == "__main__":
    sys.exit(main())
