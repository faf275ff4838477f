"""The double-DQN objective (van Hasselt et al., arXiv 1509.06461) of ``dqn-train`` and
Q-value fine-tuning (:mod:`qwr_fast.planners.q_ft`)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["double_q_loss"]


def double_q_loss(
    q: nn.Module,
    target: nn.Module,
    obs: torch.Tensor,
    action: torch.Tensor,
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    next_obs: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    next_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Huber loss of ``Q(s, a)`` against ``r + discount * Q_target(s', argmax_a Q(s', a))``.

    ``discount_t[B]`` is 0 where the transition terminated; no gradient reaches ``target``.
    ``weight[B]`` (importance weights of prioritised replay) makes the loss
    ``mean(weight * huber_i)``. ``next_mask[B, K]`` (bool, True = legal) restricts the argmax
    at ``s'`` to legal actions. Returns ``loss``, ``q_mean`` and ``td_abs[B]`` (detached).
    """
    q_sa = q(obs).gather(-1, action[:, None]).squeeze(-1)
    with torch.no_grad():
        q_next = q(next_obs)
        if next_mask is not None:
            q_next = q_next.masked_fill(~next_mask, float("-inf"))
        a_next = q_next.argmax(-1, keepdim=True)
        y = r_t + discount_t * target(next_obs).gather(-1, a_next).squeeze(-1)
    if weight is None:
        loss = nn.functional.smooth_l1_loss(q_sa, y)
    else:
        if weight.shape != q_sa.shape:
            raise ValueError(f"weight must be [B={q_sa.shape[0]}], got {tuple(weight.shape)}")
        loss = (weight * nn.functional.smooth_l1_loss(q_sa, y, reduction="none")).mean()
    return {"loss": loss, "q_mean": q_sa.detach().mean(), "td_abs": (y - q_sa.detach()).abs()}
