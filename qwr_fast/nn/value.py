"""The state-value network of the AWR baseline and of the PPO blueprint."""

from __future__ import annotations

import torch
from torch import nn

from qwr_fast.nn.torsos import full_precision, make_body

__all__ = ["StateValue"]


class StateValue(nn.Module):
    """State-value network ``V(s)`` of the AWR baseline: body then ``Linear(hidden, 1)``."""

    def __init__(self, obs_shape: tuple[int, ...], *, hidden: int = 256) -> None:
        super().__init__()
        self.body = make_body(tuple(obs_shape), hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, *O] -> [B]``."""
        return full_precision(self.out, self.body(obs)).squeeze(-1)
