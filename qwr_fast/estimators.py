"""Return estimators as pure functions (rlax naming: ``r_t``, ``discount_t``, ``v_t``).

Every multi-step estimator here is one backward recursion, written once
(:func:`backward_recursion`)::

    G_t = r_t + discount_t * (base_t + mix_t * G_{t+1}),    G_T = 0

- :func:`td_lambda` (QWR's AWR baseline): the TD(lambda) return over a replay slice of ``T``
  steps, the reference implementation's multi-step ("margin") target (google/trax
  ``rl/advantages.py``), with ``base = (1 - lam) v``, ``mix = lam`` (``base = v``, ``mix = 0``
  where the slice stops).
- :func:`gae` (PPO): generalised advantages, ``r = delta``, ``discount = discount * lam``,
  ``base = 0``, ``mix = 1``.
- :func:`n_step_target` (AQL): the n-step Q-learning target, TD(1) up to the bootstrap step.

QWR's own critic target (:func:`qwr_margin_target`) runs the same recursion inside the fused op
:func:`qwr_fast.kernels.lse_backup` (its plain-PyTorch ground truth stays in ``kernels/``).
Kozakowski et al., "Q-Value Weighted Regression", arXiv 2102.06782; Schulman et al.,
"High-Dimensional Continuous Control Using Generalized Advantage Estimation", arXiv 1506.02438.
"""

from __future__ import annotations

import torch

from qwr_fast.kernels import lse_backup

__all__ = [
    "backward_recursion",
    "bootstrap_index",
    "discounts",
    "gae",
    "n_step_target",
    "q_scale",
    "qwr_margin_target",
    "td_lambda",
]

Q_SCALE_EPS = 1e-5


def discounts(terminal_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma * (1 - terminal_t)`` as float32 (truncation keeps its discount: bootstrap)."""
    return gamma * (~terminal_t).to(torch.float32)


def backward_recursion(
    r_t: torch.Tensor, discount_t: torch.Tensor, base_t: torch.Tensor, mix_t: torch.Tensor
) -> torch.Tensor:
    """``G_t = r_t + discount_t * (base_t + mix_t * G_{t+1})`` backwards from ``G_T = 0``.

    All inputs and the output are time-major ``[T, ...]`` (one shape). The estimators of this
    module are this recursion with their own ``base`` and ``mix``.
    """
    if not (r_t.shape == discount_t.shape == base_t.shape == mix_t.shape) or r_t.dim() < 1:
        raise ValueError(
            "r_t, discount_t, base_t and mix_t must share one time-major shape [T, ...], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(base_t.shape)}, "
            f"{tuple(mix_t.shape)}"
        )
    out = torch.empty_like(r_t)
    g = torch.zeros_like(r_t[0])
    for t in range(r_t.shape[0] - 1, -1, -1):
        g = r_t[t] + discount_t[t] * (base_t[t] + mix_t[t] * g)
        out[t] = g
    return out


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

    Over a slice of ``T`` steps the target of ``Q(s_t, a_t)`` is the TD(lambda) return whose
    ``V_i = F(Q_target(s_{t+i+1}, a'_j))`` backs up ``n`` sampled actions with F = ``mode``
    (lse / max / mean), computed by the fused op :func:`qwr_fast.kernels.lse_backup`.

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

    ``v_t[:, i]`` is the value of the bootstrap observation of step ``i`` (``d_i = gamma (1 -
    terminal_i)``)::

        G_{T-1} = r_{T-1} + d_{T-1} V_{T-1}
        G_i     = r_i + d_i * (V_i if stop_i else (1 - lam) V_i + lam G_{i+1})

    (equal to :func:`qwr_margin_target` with ``n = 1``, ``mode="mean"``). ``lam = 1`` with a
    long margin gives the Monte-Carlo return up to the bootstrap.
    """
    if r_t.shape != discount_t.shape or r_t.shape != v_t.shape or r_t.dim() != 2:
        raise ValueError(
            "r_t, discount_t and v_t must all be [B, T], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(v_t.shape)}"
        )
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    ends = torch.zeros_like(r_t, dtype=torch.bool)
    ends[:, -1] = True
    if stop is not None:
        ends |= stop
    base = torch.where(ends, v_t, (1.0 - lam) * v_t)
    mix = torch.where(ends, 0.0, torch.full_like(v_t, lam))
    return backward_recursion(r_t.T, discount_t.T, base.T, mix.T)[0]


def gae(
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    v_tm1: torch.Tensor,
    v_t: torch.Tensor,
    *,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates ``[T, B]`` (time-major).

    ``r_t[T, B]`` rewards, ``discount_t[T, B]`` = gamma * (1 - terminal), ``v_tm1[T, B]`` the
    value of the state each step started from, ``v_t[T, B]`` the value of the state it led to
    (the bootstrap; 0 or anything where ``discount_t`` is 0). ``delta_t = r_t + discount_t v_t
    - v_tm1`` and ``A_t = delta_t + discount_t * lam * A_{t+1}``; a step whose ``discount_t``
    is 0 cuts the recursion. Pass ``discount_t = 0`` at steps where an episode was truncated
    and bootstrap it through ``r_t`` if needed.
    """
    if not (r_t.shape == discount_t.shape == v_tm1.shape == v_t.shape) or r_t.dim() != 2:
        raise ValueError(
            "r_t, discount_t, v_tm1 and v_t must all be [T, B], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(v_tm1.shape)}, "
            f"{tuple(v_t.shape)}"
        )
    delta = r_t + discount_t * v_t - v_tm1
    zeros = torch.zeros_like(delta)
    return backward_recursion(delta, discount_t * lam, zeros, torch.ones_like(delta))


def bootstrap_index(stop: torch.Tensor) -> torch.Tensor:
    """``stop [B, T]`` bool -> ``[B]`` int64: the first stopped step, ``T - 1`` if none."""
    T = stop.shape[1]
    stop = stop.clone()
    stop[:, T - 1] = True
    return stop.to(torch.int8).argmax(dim=1)


def n_step_target(
    r_t: torch.Tensor, discount_t: torch.Tensor, v_boot: torch.Tensor, stop: torch.Tensor
) -> torch.Tensor:
    """n-step Q-learning target ``[B]`` over a replay slice of T steps.

    With ``k`` = :func:`bootstrap_index` (the slice ends at the first ``stop``)::

        G = sum_{i<=k} (prod_{j<i} discount_j) r_i + (prod_{j<=k} discount_j) v_boot

    ``r_t``, ``discount_t`` (gamma * (1 - terminal)) and ``stop`` are ``[B, T]``; ``v_boot``
    ``[B]`` is the value of the bootstrap observation of step k. This is :func:`td_lambda`
    with ``lam=1`` and every ``v_t`` equal to ``v_boot``.
    """
    if r_t.dim() != 2 or discount_t.shape != r_t.shape or stop.shape != r_t.shape:
        raise ValueError(
            "r_t, discount_t and stop must all be [B, T], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(stop.shape)}"
        )
    if v_boot.shape != r_t.shape[:1]:
        raise ValueError(f"v_boot must be [B={r_t.shape[0]}], got {tuple(v_boot.shape)}")
    return td_lambda(r_t, discount_t, v_boot[:, None].expand_as(r_t), lam=1.0, stop=stop)
