"""The PPO objective (Schulman et al., arXiv 1707.06347, CleanRL ``ppo.py``): the clipped-surrogate
loss of one minibatch and the epochs of minibatch updates that ``ppo-train`` and policy
fine-tuning (:mod:`qwr_fast.planners.policy_ft`) both run."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ppo_loss", "ppo_update"]


def ppo_loss(
    agent: nn.Module,
    obs: torch.Tensor,
    actions: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    returns: torch.Tensor,
    v_old: torch.Tensor,
    *,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    weight: torch.Tensor | None = None,
    policy_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Clipped-surrogate PPO loss on one minibatch (CleanRL ``ppo.py``), named scalars.

    ``adv`` is normalised over the minibatch (over the rows with ``weight`` > 0 when given).
    ``weight[B]`` (0/1) drops rows from every mean (policy fine-tuning masks the steps after an
    episode ended inside a rollout). ``policy_weight[B]`` (0/1) further drops rows from the
    policy and entropy terms only (single-agent search: the partner's moves, played by the
    frozen blueprint, train the value but not the policy).
    """
    logits, value = agent(obs)
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, actions[:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    w = torch.ones_like(adv) if weight is None else weight
    n = w.sum().clamp(min=1.0)
    pw = w if policy_weight is None else w * policy_weight
    pn = pw.sum().clamp(min=1.0)
    mean = (adv * pw).sum() / pn
    std = (((adv - mean) ** 2 * pw).sum() / pn).sqrt()
    adv = (adv - mean) / (std + 1e-8)
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - clip_coef, 1 + clip_coef))
    v_clipped = v_old + (value - v_old).clamp(-clip_coef, clip_coef)
    v_loss = 0.5 * torch.maximum((value - returns) ** 2, (v_clipped - returns) ** 2)
    policy_loss = (pg * pw).sum() / pn
    value_loss = (v_loss * w).sum() / n
    ent = (entropy * pw).sum() / pn
    with torch.no_grad():
        approx_kl = (((ratio - 1) - log_ratio) * pw).sum() / pn
        clip_frac = (((ratio - 1).abs() > clip_coef).float() * pw).sum() / pn
    return {
        "loss": policy_loss - ent_coef * ent + vf_coef * value_loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": ent,
        "approx_kl": approx_kl,
        "clip_frac": clip_frac,
    }


def ppo_update(
    agent: nn.Module,
    opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    *,
    epochs: int,
    num_minibatches: int,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    max_grad_norm: float,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, float], int]:
    """``epochs`` passes of shuffled minibatches over a flat batch; returns the last minibatch's
    losses and the number of gradient steps taken.

    ``batch`` holds flat ``[N, ...]`` tensors ``obs, actions, logp, adv, returns, values`` and
    optionally ``weight`` (0/1 row mask) and ``policy_weight`` (0/1 mask of the policy terms).
    """
    N = batch["actions"].shape[0]
    if N % num_minibatches:
        raise ValueError(f"num_minibatches ({num_minibatches}) must divide the batch size {N}")
    mb = N // num_minibatches
    stats: dict[str, torch.Tensor] = {}
    steps = 0
    for _ in range(epochs):
        perm = torch.randperm(N, generator=generator)
        for k in range(num_minibatches):
            idx = perm[k * mb : (k + 1) * mb]
            out = ppo_loss(
                agent,
                batch["obs"][idx],
                batch["actions"][idx],
                batch["logp"][idx],
                batch["adv"][idx],
                batch["returns"][idx],
                batch["values"][idx],
                clip_coef=clip_coef,
                ent_coef=ent_coef,
                vf_coef=vf_coef,
                weight=batch["weight"][idx] if "weight" in batch else None,
                policy_weight=batch["policy_weight"][idx] if "policy_weight" in batch else None,
            )
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            if max_grad_norm > 0:
                nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
            opt.step()
            steps += 1
            stats = out
    return {k: float(v.detach()) for k, v in stats.items()}, steps
