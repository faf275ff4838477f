"""Losses of QWR and of its AWR baseline: each maps a replay batch to named scalar tensors.

Kozakowski et al., "Q-Value Weighted Regression" (arXiv 2102.06782), Algorithm 2, with the
choices of the reference implementation (google/trax ``rl/actor_critic.py``, ``SamplingAWR``):
actions for both critic and actor are sampled from the behaviour
distribution ``mu`` stored in the replay, target Q is evaluated by the fused
:func:`~qwr_fast.kernels.sampled_q_head` on the target network, the margin target by
:func:`~qwr_fast.kernels.lse_backup`, and the actor loss by :func:`~qwr_fast.kernels.awr_loss`.
Networks are positional, knobs keyword-only. Batches are :class:`qwr_fast.data.ReplayBatch`
with observations already normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qwr_fast.data.replay import ReplayBatch
from qwr_fast.estimators import discounts, qwr_margin_target, td_lambda
from qwr_fast.kernels import awr_loss
from qwr_fast.nn.policy import sample_from_mu

__all__ = [
    "qwr_critic_loss",
    "qwr_actor_loss",
    "awr_critic_loss",
    "awr_actor_loss",
    "bc_actor_loss",
]

ADV_EPS = 1e-5


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, ...] -> [B*T, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _regression(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The critic's L2 loss and its statistics: ``critic_loss``, ``q_mean``, ``target_mean``."""
    return {
        "critic_loss": F.mse_loss(pred, target),
        "q_mean": pred.detach().mean(),
        "target_mean": target.mean(),
    }


def _reward(batch: ReplayBatch, gamma: float, value_scale: bool) -> torch.Tensor:
    """Rewards, times ``(1 - gamma)`` when the network predicts ``(1 - gamma) Q``."""
    return batch.reward * (1.0 - gamma) if value_scale else batch.reward


def target_q_samples(target_q: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Target-network Q ``[B, n]`` (fp32) of sampled actions through the fused head (no
    gradient); inside a bf16 autocast region the head follows it (``SampledQ.q_sampled``)."""
    return target_q.q_sampled(obs, actions)


def qwr_critic_loss(
    q_net: nn.Module,
    target_q: nn.Module,
    batch: ReplayBatch,
    *,
    kind: str,
    n: int = 4,
    gamma: float = 0.99,
    mode: str = "lse",
    tau: float = 0.3,
    lam: float = 0.95,
    normalize_q: bool = True,
    value_scale: bool = True,
    clip_samples: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """L2 loss of ``Q(s_t, a_t)`` against the margin target.

    ``n`` actions are sampled from the stored ``next_mu`` at each of ``s_{t+1..t+T}``, scored by
    ``target_q`` and backed up with F = ``mode`` (lse / max / mean) and TD(``lam``) over the
    margin; ``value_scale`` makes the network predict ``(1 - gamma) Q``. ``clip_samples``:
    Gaussian samples clipped to ``[-1, 1]`` (False for a linear-mean policy, whose replay holds
    unclipped actions).
    ``tau`` is in the units of the unscaled Q (the paper's, and the reference's, which scales
    its values back before the backup): over ``(1 - gamma) Q`` the LSE runs at temperature
    ``(1 - gamma) tau``. With ``normalize_q`` the LSE is over a scale-free Q and the scale
    cancels.
    Returns ``critic_loss`` (with gradient into ``q_net`` only), ``q_mean``, ``target_mean``.
    """
    B, T = batch.reward.shape
    if value_scale and not normalize_q:
        tau = (1.0 - gamma) * tau
    next_actions = sample_from_mu(
        kind, _flat(batch.next_mu), n, generator=generator, clip=clip_samples
    )
    q_next = target_q_samples(target_q, _flat(batch.next_obs), next_actions).view(B, T, n)
    target = qwr_margin_target(
        q_next,
        _reward(batch, gamma, value_scale),
        discounts(batch.terminal, gamma),
        stop=batch.stop,
        mode=mode,
        tau=tau,
        lam=lam,
        normalize_q=normalize_q,
    )
    return _regression(q_net(batch.obs, batch.action), target)


def qwr_actor_loss(
    policy: nn.Module,
    target_q: nn.Module,
    batch: ReplayBatch,
    *,
    n: int = 4,
    beta: float = 1.0,
    max_weight: float = 20.0,
    normalize: bool = True,
    enumerate_actions: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Advantage-weighted regression on ``n`` actions sampled from the stored ``mu`` at ``s_t``.

    Q comes from ``target_q`` (no gradient), the baseline is the mean over the samples, the
    advantages are normalised over the batch and the weights are ``min(exp(A / beta),
    max_weight)``. With ``enumerate_actions`` (categorical policies) every action is scored
    once and weighted by ``mu(a|s)`` (baseline ``sum_a mu(a|s) Q(s, a)``), as in the reference
    when ``n`` equals the number of actions. Returns ``actor_loss`` (gradient into ``policy``
    only).
    """
    if enumerate_actions:
        if policy.kind != "categorical":
            raise ValueError("enumerate_actions needs a categorical policy")
        B, K = batch.mu.shape
        actions = torch.arange(K, device=batch.mu.device).expand(B, K)
        sample_weight = torch.softmax(batch.mu, dim=-1)
    else:
        clip = getattr(policy, "clip_samples", True)
        actions = sample_from_mu(policy.kind, batch.mu, n, generator=generator, clip=clip)
        sample_weight = None
    q = target_q_samples(target_q, batch.obs, actions)
    loss = awr_loss(
        policy.dist(batch.obs),
        actions,
        q,
        beta=beta,
        max_weight=max_weight,
        normalize=normalize,
        sample_weight=sample_weight,
    )
    return {"actor_loss": loss, "actor_q_mean": q.mean()}


def _awr_returns(
    v_target: nn.Module, batch: ReplayBatch, gamma: float, lam: float, value_scale: bool
) -> torch.Tensor:
    B, T = batch.reward.shape
    with torch.no_grad():
        v_next = v_target(_flat(batch.next_obs)).view(B, T)
        return td_lambda(
            _reward(batch, gamma, value_scale),
            discounts(batch.terminal, gamma),
            v_next,
            lam=lam,
            stop=batch.stop,
        )


def awr_critic_loss(
    v_net: nn.Module,
    v_target: nn.Module,
    batch: ReplayBatch,
    *,
    gamma: float = 0.99,
    lam: float = 0.95,
    value_scale: bool = True,
) -> dict[str, torch.Tensor]:
    """AWR baseline critic: L2 of ``V(s_t)`` against the TD(``lam``) return of the stored
    slice, bootstrapped by ``v_target``. Returns ``critic_loss``, ``q_mean``, ``target_mean``."""
    target = _awr_returns(v_target, batch, gamma, lam, value_scale)
    return _regression(v_net(batch.obs), target)


def awr_actor_loss(
    policy: nn.Module,
    v_target: nn.Module,
    batch: ReplayBatch,
    *,
    gamma: float = 0.99,
    lam: float = 0.95,
    value_scale: bool = True,
    beta: float = 1.0,
    max_weight: float = 20.0,
    normalize: bool = True,
) -> dict[str, torch.Tensor]:
    """AWR baseline actor (Peng et al. 2019): one action per state, the stored ``a_t``, weighted
    by ``min(exp(A / beta), max_weight)`` with ``A = G_t - V(s_t)`` (TD(``lam``) return, same
    normalisation as QWR). Returns ``actor_loss`` (gradient into ``policy`` only)."""
    with torch.no_grad():
        adv = _awr_returns(v_target, batch, gamma, lam, value_scale) - v_target(batch.obs)
        if normalize:
            adv = (adv - adv.mean()) / (adv.std(unbiased=False) + ADV_EPS)
        weight = torch.exp(adv / beta).clamp(max=max_weight)
    logp = policy.log_prob(batch.obs, batch.action)
    return {"actor_loss": -(weight * logp).mean(), "actor_q_mean": adv.mean()}


def bc_actor_loss(policy: nn.Module, batch: ReplayBatch) -> dict[str, torch.Tensor]:
    """Behaviour cloning: the negative log-likelihood of the stored ``a_t`` at ``s_t`` (AWR
    with every weight 1). Returns ``actor_loss``."""
    return {"actor_loss": -policy.log_prob(batch.obs, batch.action).mean()}
