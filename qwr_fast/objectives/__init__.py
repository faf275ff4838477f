"""Objectives: each maps a batch to named scalar tensors (networks positional, knobs
keyword-only), plus the target-network sync they share."""

from qwr_fast.objectives.aql import (
    aql_losses,
    argmax_candidates,
    candidate_actions,
    enumerate_actions,
    uniform_actions,
)
from qwr_fast.objectives.dqn import double_q_loss
from qwr_fast.objectives.ppo import ppo_loss, ppo_update
from qwr_fast.objectives.qwr import (
    awr_actor_loss,
    awr_critic_loss,
    bc_actor_loss,
    qwr_actor_loss,
    qwr_critic_loss,
)
from qwr_fast.objectives.target_sync import TargetSync

__all__ = [
    "TargetSync",
    "aql_losses",
    "argmax_candidates",
    "awr_actor_loss",
    "awr_critic_loss",
    "bc_actor_loss",
    "candidate_actions",
    "double_q_loss",
    "enumerate_actions",
    "ppo_loss",
    "ppo_update",
    "qwr_actor_loss",
    "qwr_critic_loss",
    "uniform_actions",
]
