"""Target networks: one small object keeps a target network in step with its online one."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TargetSync"]


class TargetSync:
    """Keeps ``target`` in step with ``online``: a hard copy every ``every`` calls of
    :meth:`step` (``polyak=1``), or ``target.lerp_(online, polyak)`` every call otherwise."""

    def __init__(
        self, online: nn.Module, target: nn.Module, *, every: int = 50, polyak: float = 1.0
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if not 0.0 < polyak <= 1.0:
            raise ValueError(f"polyak must be in (0, 1], got {polyak}")
        self.online, self.target = online, target
        self.every, self.polyak = every, polyak
        self.count = 0
        target.load_state_dict(online.state_dict())
        target.requires_grad_(False)

    @torch.no_grad()
    def step(self) -> None:
        self.count += 1
        if self.polyak < 1.0:
            for t, o in zip(self.target.parameters(), self.online.parameters(), strict=True):
                t.lerp_(o, self.polyak)
        elif self.count % self.every == 0:
            for t, o in zip(self.target.parameters(), self.online.parameters(), strict=True):
                t.copy_(o)
