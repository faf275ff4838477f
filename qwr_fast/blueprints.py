"""Blueprints: the networks ``ppo-train`` and ``dqn-train`` save, loaded for the planners.

A blueprint checkpoint (:mod:`qwr_fast.checkpoint`) is a dict with ``kind`` (``"ppo"`` or
``"dqn"``), ``format`` (:data:`CHECKPOINT_FORMAT`), ``config`` (the training run's config),
``net`` (the constructor arguments: ``obs_shape``, ``num_actions``, ``hidden`` and, for PPO,
``action_mask``) and the weights (``agent`` / ``q``); a DQN checkpoint also holds its replay,
the global buffer of Q-value fine-tuning. A blueprint is read as data only
(:func:`qwr_fast.checkpoint.load_checkpoint`): a file that holds anything else, such as a
pickled object that would run code, is refused with :class:`CheckpointError` before unpickling.
"""

from __future__ import annotations

import os

import torch

from qwr_fast.checkpoint import CheckpointError, load_checkpoint
from qwr_fast.data.replay import Replay
from qwr_fast.nn.actor_critic import ActorCritic
from qwr_fast.nn.dueling_q import DuelingQ, QBlueprint

__all__ = ["CHECKPOINT_FORMAT", "load_blueprint", "load_q_blueprint"]

CHECKPOINT_FORMAT = 1


def load_blueprint(path: str | os.PathLike) -> tuple[ActorCritic | QBlueprint, dict]:
    """The :class:`ActorCritic` saved in a ``ppo-train`` checkpoint, in eval mode, and the
    run's config dict; a ``dqn-train`` checkpoint's Q-network as a :class:`QBlueprint` (greedy
    play; give it the env's ``action_mask_slice`` where there is one). :class:`CheckpointError`
    for any other file."""
    state = load_checkpoint(path)
    if state.get("kind") == "dqn" and state.get("format") == CHECKPOINT_FORMAT:
        return QBlueprint(_dueling_q(state)), state["config"]
    if state.get("kind") != "ppo" or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a ppo-train checkpoint (kind {state.get('kind')!r}, "
            f"format {state.get('format')!r}, expected 'ppo', {CHECKPOINT_FORMAT})"
        )
    net = state["net"]
    agent = ActorCritic(
        tuple(net["obs_shape"]),
        net["num_actions"],
        hidden=net["hidden"],
        action_mask=net.get("action_mask"),
    )
    agent.load_state_dict(state["agent"])
    agent.eval()
    return agent, state["config"]


def load_q_blueprint(path: str | os.PathLike) -> tuple[DuelingQ, dict, Replay]:
    """The :class:`DuelingQ` of a DQN checkpoint (eval mode), its config dict and its replay."""
    state = load_checkpoint(path)
    if state.get("kind") != "dqn" or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a DQN checkpoint (kind {state.get('kind')!r})")
    q, net = _dueling_q(state), state["net"]
    rs = state["replay"]
    replay = Replay(
        rs["length"] * rs["num_envs"],
        rs["num_envs"],
        tuple(net["obs_shape"]),
        1,
        action_dtype=torch.int64,
        obs_dtype=rs["obs"].dtype,
    )
    replay.load_state_dict(rs)
    return q, state["config"], replay


def _dueling_q(state: dict) -> DuelingQ:
    """The :class:`DuelingQ` of a DQN checkpoint's state, in eval mode."""
    net = state["net"]
    q = DuelingQ(tuple(net["obs_shape"]), net["num_actions"], hidden=net["hidden"])
    q.load_state_dict(state["q"])
    q.eval()
    return q
