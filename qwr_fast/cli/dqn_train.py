"""``dqn-train``: train a double-DQN blueprint (dueling head) for Q-value fine-tuning; every
field of :class:`qwr_fast.trainers.dqn.DQNConfig` is a flag (``dqn-train --help``). Exit code 0
on success, 2 on bad arguments with a one-line message."""

from __future__ import annotations

import sys

from qwr_fast.cli.common import train_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``dqn-train``: parse flags (preset first), train, print the final evaluation."""
    from qwr_fast.trainers.dqn import PRESETS, DQNConfig, DQNTrainer

    def summary(trainer, last: dict) -> str:
        return (
            f"DQN on {trainer.cfg.env}: step {last['step']}, greedy eval return "
            f"{last['return_mean_greedy']:.3f}; checkpoint: {trainer.cfg.run_dir}/checkpoint.pt"
        )

    return train_main("dqn-train", DQNConfig, DQNTrainer, PRESETS, argv, summary)


if __name__ == "__main__":
    sys.exit(main())
