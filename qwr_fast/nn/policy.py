"""Policies of QWR/AWR (Gaussian with fixed or learned std, categorical), their bodies, and the
running observation normaliser.

The behaviour distribution stored in the replay (``mu``) is a flat float tensor ``[B, P]``:
``cat(mean, log_std)`` (``P = 2A``) for a Gaussian, the logits (``P = K``) for a categorical.
:func:`sample_from_mu` draws the critic's and the actor's action samples from it.
Continuous actions live in ``[-1, 1]^A``; the trainer rescales them to the env's bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "full_precision",
    "RunningNorm",
    "make_body",
    "share_first_layer",
    "GaussianPolicy",
    "CategoricalPolicy",
    "StateValue",
    "sample_from_mu",
    "mode_from_mu",
]


def full_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` in float32 even inside a ``torch.autocast`` region.

    The output layers (Q values, V, policy means and logits) run through this, so under
    bf16 autocast only the bodies' and heads' hidden products are rounded, while what the
    losses, the replay's ``mu`` and the actions see keeps fp32 precision (a bf16 Q of ~100
    has a resolution of 0.5). Outside autocast it is just ``layer(x)``."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


class RunningNorm(nn.Module):
    """Running mean/variance of observations (parallel Welford), ``(x - mean) / std`` clipped.

    Updated only while collecting (:meth:`update`), frozen in the forward pass; its buffers go
    into ``state_dict`` and therefore into checkpoints.
    """

    def __init__(self, shape: tuple[int, ...], *, eps: float = 1e-8, clip: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(0.0, dtype=torch.float64))
        self.eps = eps
        self.clip = clip

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[N, *shape]`` into the statistics."""
        x = x.to(torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        b_mean = x.mean(0)
        b_var = x.var(0, unbiased=False)
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
        return ((x.to(torch.float32) - mean) / std).clamp(-self.clip, self.clip)


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


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian over ``[-1, 1]^A`` with mean ``tanh(linear(body(obs)))``.

    The std is fixed at ``std`` (0.4 in the reference) unless ``learn_std``, then a learned
    state-independent ``log_std[A]`` initialised at ``log(std)``.
    """

    kind = "gaussian"

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        action_dim: int,
        *,
        hidden: int = 256,
        std: float = 0.4,
        learn_std: bool = False,
        body: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.action_dim = action_dim
        self.body = make_body(tuple(obs_shape), hidden) if body is None else body
        self.head = nn.Linear(hidden, action_dim)
        log_std = torch.full((action_dim,), math.log(std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    @property
    def mu_dim(self) -> int:
        return 2 * self.action_dim

    def dist(self, obs: torch.Tensor) -> tuple[str, torch.Tensor, torch.Tensor]:
        """The ``awr_loss`` distribution tuple ``("gaussian", mean[B, A], log_std[A])``."""
        mean = torch.tanh(full_precision(self.head, self.body(obs)))
        return ("gaussian", mean, self.log_std)

    def mu(self, obs: torch.Tensor) -> torch.Tensor:
        """Behaviour parameters ``[B, 2A]`` = ``cat(mean, log_std)`` to store in the replay."""
        _, mean, log_std = self.dist(obs)
        return torch.cat([mean, log_std.expand_as(mean)], dim=-1)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log pi(a|s)`` ``[B]`` of actions ``[B, A]``."""
        _, mean, log_std = self.dist(obs)
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


class CategoricalPolicy(nn.Module):
    """Softmax policy over ``K`` actions; ``mu`` is the logits."""

    kind = "categorical"

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden: int = 256,
        body: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.num_actions = num_actions
        self.body = make_body(tuple(obs_shape), hidden) if body is None else body
        self.head = nn.Linear(hidden, num_actions)

    @property
    def mu_dim(self) -> int:
        return self.num_actions

    def dist(self, obs: torch.Tensor) -> tuple[str, torch.Tensor]:
        """The ``awr_loss`` distribution tuple ``("categorical", logits[B, K])``."""
        return ("categorical", full_precision(self.head, self.body(obs)))

    def mu(self, obs: torch.Tensor) -> torch.Tensor:
        """Behaviour parameters ``[B, K]`` (logits)."""
        return self.dist(obs)[1]

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log pi(a|s)`` ``[B]`` of int actions ``[B]``."""
        logp = torch.log_softmax(self.dist(obs)[1], dim=-1)
        return logp.gather(-1, actions[:, None]).squeeze(-1)


class StateValue(nn.Module):
    """State-value network ``V(s)`` of the AWR baseline: body then ``Linear(hidden, 1)``."""

    def __init__(self, obs_shape: tuple[int, ...], *, hidden: int = 256) -> None:
        super().__init__()
        self.body = make_body(tuple(obs_shape), hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, *O] -> [B]``."""
        return full_precision(self.out, self.body(obs)).squeeze(-1)


def sample_from_mu(
    kind: str,
    mu: torch.Tensor,
    n: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` actions per row of ``mu[..., P]``: float ``[..., n, A]`` clipped to ``[-1, 1]``
    (Gaussian) or int64 ``[..., n]`` (categorical, Gumbel-max). ``temperature`` scales the std /
    divides the logits; 0 gives the mode."""
    if kind == "gaussian":
        A = mu.shape[-1] // 2
        mean, log_std = mu[..., None, :A], mu[..., None, A:]
        shape = (*mu.shape[:-1], n, A)
        if temperature == 0:
            return mean.expand(shape).clone()
        noise = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return (mean + temperature * torch.exp(log_std) * noise).clamp(-1.0, 1.0)
    if kind == "categorical":
        logits = mu[..., None, :].expand(*mu.shape[:-1], n, mu.shape[-1])
        if temperature == 0:
            return logits.argmax(-1)
        expo = torch.empty(logits.shape, device=mu.device, dtype=mu.dtype)
        gumbel = -expo.exponential_(generator=generator).log()  # Gumbel(0, 1)
        return (logits / temperature + gumbel).argmax(-1)
    raise ValueError(f"kind must be 'gaussian' or 'categorical', got {kind!r}")


def mode_from_mu(kind: str, mu: torch.Tensor) -> torch.Tensor:
    """The distribution's mode, ``[..., A]`` or int ``[...]``."""
    return sample_from_mu(kind, mu, 1, temperature=0.0).squeeze(-2 if kind == "gaussian" else -1)
