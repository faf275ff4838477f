"""Target networks: one small object keeps a target network in step with its online one."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TargetSync"]


class TargetSync:
    """Keeps ``target`` in step with ``online``: a hard copy every ``every`` calls of
    :meth:`step` (``polyak=1``), or ``target.lerp_(online, polyak)`` every call otherwise.

    :meth:`step` reads nothing on the host and has no Python branch on its count, so it can run
    inside a compiled or CUDA-graph-captured update: the call count is a device tensor and
    every call is one ``torch._foreach_lerp_`` over the parameters, with weight ``polyak``, or
    1 (an exact copy: ``lerp`` with weight 1 returns ``end``) on every ``every``-th call and 0
    (an exact no-op) otherwise.
    """

    def __init__(
        self, online: nn.Module, target: nn.Module, *, every: int = 50, polyak: float = 1.0
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if not 0.0 < polyak <= 1.0:
            raise ValueError(f"polyak must be in (0, 1], got {polyak}")
        self.online, self.target = online, target
        self.every, self.polyak = every, polyak
        target.load_state_dict(online.state_dict())
        target.requires_grad_(False)
        self.online_params = list(online.parameters())
        self.target_params = list(target.parameters())
        device = self.online_params[0].device if self.online_params else torch.device("cpu")
        self._count = torch.zeros((), dtype=torch.int64, device=device)

    @property
    def count(self) -> int:
        """Calls of :meth:`step` so far (a host read: for checkpoints, not for the loop)."""
        return int(self._count)

    @count.setter
    def count(self, value: int) -> None:
        self._count.fill_(int(value))

    @torch.no_grad()
    def step(self) -> None:
        self._count.add_(1)
        if self.polyak < 1.0:
            torch._foreach_lerp_(self.target_params, self.online_params, self.polyak)
        else:
            weight = (self._count % self.every == 0).to(self.target_params[0].dtype)
            # one weight tensor per pair (the List overload): a lone tensor would be taken as
            # a Scalar, read on the host
            weights = [weight] * len(self.target_params)
            torch._foreach_lerp_(self.target_params, self.online_params, weights)
