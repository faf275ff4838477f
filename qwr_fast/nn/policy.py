"""Policies of QWR/AWR: Gaussian with fixed or learned std, and categorical.

The behaviour distribution stored in the replay (``mu``) is a flat float tensor ``[B, P]``:
``cat(mean, log_std)`` (``P = 2A``) for a Gaussian, the logits (``P = K``) for a categorical.
:func:`sample_from_mu` draws the critic's and the actor's action samples from it.
Continuous actions live in ``[-1, 1]^A``; :class:`qwr_fast.actions.ActionAdapter` rescales them
to the env's bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qwr_fast.nn.torsos import full_precision, make_body

__all__ = ["GaussianPolicy", "CategoricalPolicy", "init_uniform", "sample_from_mu"]


def init_uniform(layer: nn.Linear, scale: float) -> None:
    """Draw ``layer``'s weight and bias from U(-scale, scale) (the reference's near-zero init
    of the policy and Q output layers)."""
    with torch.no_grad():
        layer.weight.uniform_(-scale, scale)
        layer.bias.uniform_(-scale, scale)


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian with mean ``tanh(linear(body(obs)))`` (``mean="tanh"``: the mean lies
    in ``[-1, 1]^A`` and samples are clipped to it) or ``linear(body(obs))`` (``mean="linear"``,
    the reference's parameterisation: samples are not clipped; ``ActionAdapter.to_env`` clips
    what reaches the env, and the replay keeps the unclipped action).

    The std is fixed at ``std`` (0.4 in the reference) unless ``learn_std``, then a learned
    state-independent ``log_std[A]`` initialised at ``log(std)``. ``init_scale > 0`` draws the
    output layer's weights and bias from U(-init_scale, init_scale) (the reference: 0.01).
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
        mean: str = "tanh",
        init_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        if mean not in ("tanh", "linear"):
            raise ValueError(f"mean must be 'tanh' or 'linear', got {mean!r}")
        self.action_dim = action_dim
        self.linear_mean = mean == "linear"
        self.clip_samples = not self.linear_mean
        self.body = make_body(tuple(obs_shape), hidden) if body is None else body
        self.head = nn.Linear(hidden, action_dim)
        if init_scale > 0:
            init_uniform(self.head, init_scale)
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
        mean = full_precision(self.head, self.body(obs))
        return ("gaussian", mean if self.linear_mean else torch.tanh(mean), self.log_std)

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


def sample_from_mu(
    kind: str,
    mu: torch.Tensor,
    n: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """``n`` actions per row of ``mu[..., P]``: float ``[..., n, A]`` clipped to ``[-1, 1]``
    unless ``clip=False`` (Gaussian) or int64 ``[..., n]`` (categorical, Gumbel-max).
    ``temperature`` scales the std / divides the logits; 0 gives the mode."""
    if kind == "gaussian":
        A = mu.shape[-1] // 2
        mean, log_std = mu[..., None, :A], mu[..., None, A:]
        shape = (*mu.shape[:-1], n, A)
        if temperature == 0:
            return mean.expand(shape).clone()
        noise = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
        sample = mean + temperature * torch.exp(log_std) * noise
        return sample.clamp(-1.0, 1.0) if clip else sample
    if kind == "categorical":
        logits = mu[..., None, :].expand(*mu.shape[:-1], n, mu.shape[-1])
        if temperature == 0:
            return logits.argmax(-1)
        expo = torch.empty(logits.shape, device=mu.device, dtype=mu.dtype)
        gumbel = -expo.exponential_(generator=generator).log()  # Gumbel(0, 1)
        return (logits / temperature + gumbel).argmax(-1)
    raise ValueError(f"kind must be 'gaussian' or 'categorical', got {kind!r}")
