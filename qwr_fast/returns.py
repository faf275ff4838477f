"""Return estimators of QWR and AWR as pure functions (rlax naming: ``r_t``, ``discount_t``).

Kozakowski et al., "Q-Value Weighted Regression", arXiv 2102.06782, and the reference
implementation's multi-step ("margin") target (google/trax ``rl/advantages.py``): over a slice of
``T`` steps the target of ``Q(s_t, a_t)`` is the TD(lambda) return

    G_{T-1} = r_{T-1} + d_{T-1} V_{T-1}
    G_i     = r_i + d_i * (V_i if stop_i else (1 - lam) V_i + lam G_{i+1})

with ``V_i`` the value of the bootstrap observation of step ``t+i`` and ``d_i = gamma (1 -
terminal_i)``. QWR gets ``V_i = F(Q_target(s_{t+i+1}, a'_j))`` over ``n`` sampled actions from
the fused op :func:`qwr_fast.kernels.lse_backup`; AWR gets ``V_i`` from a state-value network
(:func:`td_lambda`).
"""

from __future__ import annotations

import torch

from qwr_fast.kernels import lse_backup

__all__ = ["q_scale", "qwr_margin_target", "td_lambda", "discounts"]

Q_SCALE_EPS = 1e-5


def discounts(terminal_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma * (1 - terminal_t)`` as float32 (truncation keeps its discount: bootstrap)."""
    return gamma * (~terminal_t).to(torch.float32)


def q_scale(q: torch.Tensor) -> torch.Tensor:
    """Batch scale of Q for the normalised LSE: ``mean|q - mean(q)| + 1e-5`` (0-dim, no grad).

    Finite entries only (``-inf`` marks excluded samples).
    """
    with torch.no_grad():
        finite = torch.isfinite(q)
        count = finite.sum().clamp(min=1)
        qf = torch.where(finite, q, 0.0)
        mean = qf.sum() / count
        dev = torch.where(finite, (q - mean).abs(), 0.0).sum() / count
        return dev + Q_SCALE_EPS


def qwr_margin_target(
    q_next: torch.Tensor,
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    *,
    stop: torch.Tensor | None = None,
    mode: str = "lse",
    tau: float = 0.3,
    lam: float = 0.95,
    normalize_q: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """QWR critic target ``[B]`` from target-network Q samples ``q_next[B, T, n]``.

    With ``normalize_q`` the LSE is taken over ``q / s`` and multiplied back by ``s``, where
    ``s = q_scale(q_next)`` (the reference's normalisation, tau then acts on a scale-free Q).
    Since ``s * tau * lse(q / (s tau)) = (s tau) * lse(q / (s tau))``, this is exactly the LSE at
    temperature ``tau * s``, passed to the op as a 0-dim tensor (no host synchronisation). For
    ``max`` and ``mean`` the normalisation is the identity.
    """
    if normalize_q and mode == "lse":
        tau = q_scale(q_next) * tau
    return lse_backup(
        q_next, r_t, discount_t, mode=mode, tau=tau, lam=lam, stop=stop, backend=backend
    )


def td_lambda(
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    v_t: torch.Tensor,
    *,
    lam: float = 0.95,
    stop: torch.Tensor | None = None,
) -> torch.Tensor:
    """TD(lambda) return ``G_0`` ``[B]`` over a margin slice, from state values ``v_t[B, T]``.

    ``v_t[:, i]`` is the value of the bootstrap observation of step ``i``; the recursion and
    ``stop`` are those of :func:`qwr_margin_target` (equal to it with ``n = 1``, ``mode="mean"``).
    ``lam = 1`` with a long margin gives the Monte-Carlo return up to the bootstrap.
    """
    if r_t.shape != discount_t.shape or r_t.shape != v_t.shape or r_t.dim() != 2:
        raise ValueError(
            "r_t, discount_t and v_t must all be [B, T], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(v_t.shape)}"
        )
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    T = r_t.shape[1]
    g = r_t[:, T - 1] + discount_t[:, T - 1] * v_t[:, T - 1]
    for i in range(T - 2, -1, -1):
        boot = (1.0 - lam) * v_t[:, i] + lam * g
        if stop is not None:
            boot = torch.where(stop[:, i], v_t[:, i], boot)
        g = r_t[:, i] + discount_t[:, i] * boot
    return g
