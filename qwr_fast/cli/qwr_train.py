"""``qwr-train``: train QWR (LSE / MAX / AVG backup), the AWR baseline or behaviour cloning.

``qwr-train --env ENV_ID --algo {qwr-lse,qwr-max,qwr-avg,awr,bc} --total-steps N --seed S
--run-dir DIR [--preset P] [--dataset FILE] [--resume DIR]``; every field of
:class:`qwr_fast.trainers.qwr.QWRConfig` is a flag (``qwr-train --help``). A preset sets the
defaults of its family; flags given explicitly win. Exit code 0 on success, 2 on bad arguments
with a one-line message.
"""

from __future__ import annotations

import sys

from qwr_fast.cli.common import train_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``qwr-train``: parse flags (preset first), train, print the final evaluation."""
    from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

    def summary(trainer, last: dict) -> str:
        return (
            f"{trainer.cfg.algo} on {trainer.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f} (temperature 0); "
            f"curve: {trainer.cfg.run_dir}/curve.png"
        )

    return train_main("qwr-train", QWRConfig, QWRTrainer, PRESETS, argv, summary)


if __name__ == "__main__":
    sys.exit(main())
