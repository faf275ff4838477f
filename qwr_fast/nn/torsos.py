"""State torsos and the running observation normaliser shared by every network.

:func:`make_body` picks the torso for an observation shape (an MLP for vectors, the MinAtar conv
torso for ``[10, 10, C]`` grids, the Nature-DQN torso for ``[C, 84, 84]`` frames);
:func:`share_first_layer` ties two bodies' first layers; :func:`full_precision` runs an output
layer in float32 inside a bf16 autocast region.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["full_precision", "obs_tensor", "RunningNorm", "make_body", "share_first_layer"]


def obs_tensor(obs: np.ndarray) -> torch.Tensor:
    """Env observations as the float32 tensor the networks take (bool/uint8 grids included)."""
    return torch.as_tensor(np.asarray(obs)).to(torch.float32)


def full_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` in float32 even inside a ``torch.autocast`` region.

    The output layers (Q values, V, policy means and logits) run through this, so under
    bf16 autocast only the bodies' and heads' hidden products are rounded, while what the
    losses, the replay's ``mu`` and the actions see keeps fp32 precision (a bf16 Q of ~100
    has a resolution of 0.5). Outside autocast it is just ``layer(x)``."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


class RunningNorm(nn.Module):
    """Running mean/variance of observations (parallel Welford), ``(x - mean) / std`` clipped
    to ``[-clip, clip]`` (``clip=0``: not clipped), ``std = sqrt(var + eps)``.

    Updated only while collecting (:meth:`update`), frozen in the forward pass; its buffers go
    into ``state_dict`` and therefore into checkpoints. ``max_count > 0`` freezes the
    statistics once they hold that many samples (the reference: 300K); the batch that crosses
    it still counts whole.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        eps: float = 1e-8,
        clip: float = 10.0,
        max_count: int = 0,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(0.0, dtype=torch.float64))
        self.eps = eps
        self.clip = clip
        self.max_count = max_count

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[N, *shape]`` into the statistics."""
        x = x.to(torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        b_mean = x.mean(0)
        b_var = x.var(0, unbiased=False)
        if self.max_count > 0:  # a batch of weight 0 once full (no host read of the count)
            n = n * (self.count < self.max_count).to(torch.float64)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / total
        self.var.copy_(
            (self.var * self.count + b_var * n + delta**2 * self.count * n / total) / total
        )
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (returned as float32)."""
        mean = self.mean.to(torch.float32)
        std = torch.sqrt(self.var.to(torch.float32) + self.eps)
        z = (x.to(torch.float32) - mean) / std
        return z.clamp(-self.clip, self.clip) if self.clip > 0 else z


class _MinAtarTorso(nn.Module):
    """Small conv torso for MinAtar ``[B, 10, 10, C]`` observations (channels last)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * 8 * 8, hidden),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.float32).permute(0, 3, 1, 2))


class _NatureTorso(nn.Module):
    """Nature-DQN torso for ``[B, 4, 84, 84]`` uint8 frames (scaled to [0, 1])."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, hidden),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.float32) / 255.0)


def make_body(obs_shape: tuple[int, ...], hidden: int, layers: int = 2) -> nn.Module:
    """State body for an observation shape: an MLP (``layers`` x ``hidden`` ReLU) for vectors,
    the MinAtar torso for ``[10, 10, C]``, the Nature-DQN torso (FC ``hidden``) for
    ``[C, 84, 84]``. Output width is ``hidden``."""
    if len(obs_shape) == 1:
        mods: list[nn.Module] = []
        width = obs_shape[0]
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        return nn.Sequential(*mods)
    if len(obs_shape) == 3 and obs_shape[:2] == (10, 10):
        return _MinAtarTorso(obs_shape[2], hidden)
    if len(obs_shape) == 3 and obs_shape[1:] == (84, 84):
        return _NatureTorso(obs_shape[0], hidden)
    raise ValueError(
        f"obs_shape must be [O], [10, 10, C] (MinAtar) or [C, 84, 84] (Atari), got {obs_shape}"
    )


def _layers(body: nn.Module) -> nn.Sequential:
    seq = body.net if isinstance(getattr(body, "net", None), nn.Sequential) else body
    if not isinstance(seq, nn.Sequential) or len(seq) == 0:
        raise TypeError(f"expected a body made by make_body, got {type(body).__name__}")
    return seq


def share_first_layer(source: nn.Module, target: nn.Module) -> None:
    """Make ``target``'s first layer the very module of ``source``'s (both bodies from
    :func:`make_body` for the same observation shape): the two networks then share its
    parameters, and each one's optimiser and gradients update them."""
    src, dst = _layers(source), _layers(target)
    a, b = src[0], dst[0]
    if type(a) is not type(b) or a.weight.shape != b.weight.shape:
        raise ValueError(f"first layers differ: {a} vs {b}; bodies must match")
    dst[0] = a
