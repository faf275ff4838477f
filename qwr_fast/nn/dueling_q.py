"""Dueling Q-network (Wang et al., arXiv 1511.06581) of ``dqn-train`` and Q-value fine-tuning,
and its view as a planner blueprint."""

from __future__ import annotations

import torch
from torch import nn

from qwr_fast.actions import legal_actions
from qwr_fast.nn.torsos import make_body

__all__ = ["DuelingQ", "QBlueprint"]


class DuelingQ(nn.Module):
    """``Q(s, .) = V(s) + A(s, .) - mean_a A(s, a)`` over a shared body; ``[B, *O] -> [B, K]``.

    As a planner blueprint (``(logits, value)`` interface) use :meth:`as_blueprint`.
    """

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, *, hidden: int = 128):
        super().__init__()
        self.obs_shape, self.num_actions, self.hidden = tuple(obs_shape), num_actions, hidden
        self.body = make_body(self.obs_shape, hidden)
        self.value = nn.Linear(hidden, 1)
        self.adv = nn.Linear(hidden, num_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.body(obs)
        a = self.adv(h)
        return self.value(h) + a - a.mean(-1, keepdim=True)

    def as_blueprint(self) -> QBlueprint:
        return QBlueprint(self)


class QBlueprint(nn.Module):
    """A Q-network seen as a planner blueprint: ``(logits = Q, value = max_a Q)`` (greedy
    play by argmax of the logits). With ``mask_slice`` (envs whose observations carry a
    legal-action mask, ``env.action_mask_slice``) the illegal actions' logits are ``-inf`` and
    the value is the maximum over the legal ones."""

    def __init__(self, q: nn.Module, mask_slice: slice | None = None) -> None:
        super().__init__()
        self.q = q
        self.mask_slice = mask_slice

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q(obs)
        legal = legal_actions(obs, self.mask_slice)
        if legal is not None:
            q = q.masked_fill(~legal, -torch.inf)
        return q, q.max(-1).values
