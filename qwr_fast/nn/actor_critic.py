"""The blueprint network of the decision-time planners: a categorical policy and a state value
(trained by ``ppo-train``, fine-tuned by :mod:`qwr_fast.planners.policy_ft`)."""

from __future__ import annotations

import torch
from torch import nn

from qwr_fast.nn.policy import CategoricalPolicy
from qwr_fast.nn.value import StateValue

__all__ = ["ILLEGAL_LOGIT", "ActorCritic"]

ILLEGAL_LOGIT = -1e9
"""The logit :class:`ActorCritic` gives an illegal action (probability exactly 0 in float32)."""


class ActorCritic(nn.Module):
    """Blueprint network: a categorical policy and a state value with separate bodies.

    ``forward(obs[B, *O]) -> (logits[B, K], value[B])``; this is the interface every planner
    in :mod:`qwr_fast.planners` takes.

    ``action_mask = (start, stop)``: for envs that carry a legal-action mask in their flat
    observation (``env.action_mask_slice``, e.g. Hanabi), the logits of the actions whose
    ``obs[..., start:stop]`` entry is 0 are set to ``ILLEGAL_LOGIT`` (a finite value, so that
    entropies and log-ratios stay finite), so every sampler and argmax keeps to legal actions.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden: int = 128,
        action_mask: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.num_actions = int(num_actions)
        self.hidden = int(hidden)
        if action_mask is not None:
            start, stop = (int(v) for v in action_mask)
            if len(self.obs_shape) != 1 or stop - start != self.num_actions or start < 0:
                raise ValueError(
                    f"action_mask must be (start, stop) with stop - start = num_actions "
                    f"({self.num_actions}) inside a flat observation {self.obs_shape}, "
                    f"got {action_mask}"
                )
            action_mask = (start, stop)
        self.action_mask = action_mask
        self.policy = CategoricalPolicy(self.obs_shape, self.num_actions, hidden=hidden)
        self.critic = StateValue(self.obs_shape, hidden=hidden)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy.mu(obs)
        if self.action_mask is not None:
            start, stop = self.action_mask
            logits = logits.masked_fill(obs[..., start:stop] < 0.5, ILLEGAL_LOGIT)
        return logits, self.critic(obs)
