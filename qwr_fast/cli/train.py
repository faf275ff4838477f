"""The training entry points: ``qwr-train``, ``aql-train``, ``ppo-train`` and ``dqn-train``.

Each parses its trainer's config (every field is a flag, ``--help`` documents them; a
``--preset`` sets the defaults of its family, flags given explicitly win; ``--resume RUN_DIR``
continues a run), trains, and prints the trainer's one-line summary of the final evaluation.
Exit code 0 on success, 2 on bad arguments with a one-line message.

- ``qwr-train --env ENV_ID --algo {qwr-lse,qwr-max,qwr-avg,awr,bc} --total-steps N --seed S
  --run-dir DIR [--preset P] [--dataset FILE] [--resume DIR]``
  (:class:`qwr_fast.trainers.qwr.QWRConfig`)
- ``aql-train --env ENV_ID --algo {aql,uniform-ql,exhaustive-dqn} [--bins B] [--num-proposal N]
  [--num-uniform M] ...`` (:class:`qwr_fast.trainers.aql.AQLConfig`)
- ``ppo-train`` (:class:`qwr_fast.trainers.ppo.PPOConfig`) and ``dqn-train``
  (:class:`qwr_fast.trainers.dqn.DQNConfig`): the planners' blueprints.
"""

from __future__ import annotations

from qwr_fast.cli.common import train_main

__all__ = ["aql_train", "dqn_train", "ppo_train", "qwr_train"]


def qwr_train(argv: list[str] | None = None) -> int:
    """``qwr-train``: QWR (LSE / MAX / AVG backup), the AWR baseline or behaviour cloning."""
    from qwr_fast.trainers import qwr

    return train_main("qwr-train", qwr.QWRConfig, qwr.QWRTrainer, qwr.PRESETS, argv)


def aql_train(argv: list[str] | None = None) -> int:
    """``aql-train``: Amortized Q-learning, or the UniformQL / exhaustive-DQN baselines."""
    from qwr_fast.trainers import aql

    return train_main("aql-train", aql.AQLConfig, aql.AQLTrainer, aql.PRESETS, argv)


def ppo_train(argv: list[str] | None = None) -> int:
    """``ppo-train``: a PPO blueprint for the planners."""
    from qwr_fast.trainers import ppo

    return train_main("ppo-train", ppo.PPOConfig, ppo.PPOTrainer, ppo.PRESETS, argv)


def dqn_train(argv: list[str] | None = None) -> int:
    """``dqn-train``: a double-DQN blueprint (dueling head) for Q-value fine-tuning."""
    from qwr_fast.trainers import dqn

    return train_main("dqn-train", dqn.DQNConfig, dqn.DQNTrainer, dqn.PRESETS, argv)
