"""Amortized Q-learning (Van de Wiele, Warde-Farley, Mnih, Mnih; arXiv 2001.08116): candidate
sets and the losses.

Every action space is one representation: D sub-actions, sub-action d with K_d choices
(:class:`qwr_fast.actions.ActionAdapter`). The max over ``prod K_d`` actions is replaced by a
max over a candidate set: N samples of a learned autoregressive proposal mu(a|s) and M uniform
samples (:func:`candidate_actions`), scored in one fused evaluation of the action-in Q network
(:class:`qwr_fast.nn.aql_net.AQLNet`).

Losses (:func:`aql_losses`): the critic regresses ``Q(s_t, a_t)`` on the n-step target
``sum_{i<=k} (prod_{j<i} d_j) r_i + (prod_{j<=k} d_j) Q_target(s_{t+k+1}, a*)``
(:func:`qwr_fast.estimators.n_step_target`), with ``a*`` the argmax over a fresh candidate set
at the bootstrap state (chosen by the online Q with ``double_q``, else by the target Q); the
proposal minimises ``-log mu(a*_s | s) - c * H(mu(.|s))`` with ``a*_s`` the argmax of the
candidate union at ``s`` (teacher forced). The proposal reads the shared encoder's features with
the gradient stopped: the encoder is trained by the TD loss only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qwr_fast.estimators import n_step_target
from qwr_fast.nn.aql_net import AQLNet

__all__ = [
    "uniform_actions",
    "enumerate_actions",
    "candidate_actions",
    "argmax_candidates",
    "aql_losses",
]


def uniform_actions(
    sizes: torch.Tensor, batch: int, num: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[batch, num, D]`` int64 actions uniform over ``prod sizes`` (each sub-action uniform
    and independent): ``floor(u * K_d)``."""
    u = torch.rand(batch, num, sizes.numel(), generator=generator, device=sizes.device)
    return (u * sizes).long().minimum(sizes - 1)


def enumerate_actions(sizes: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """Every action, ``[prod sizes, D]`` int64 in lexicographic order."""
    grids = torch.meshgrid(*(torch.arange(k, device=device) for k in sizes), indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=-1)


def candidate_actions(
    net: AQLNet,
    features: torch.Tensor,
    num_proposal: int,
    num_uniform: int,
    *,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """``[B, N + M, D]``: N proposal samples then M uniform samples per state."""
    parts = []
    sizes = net.spec.sizes_tensor(features.device)
    if num_proposal > 0:
        if net.proposal is None:
            raise ValueError("num_proposal > 0 needs a net with a proposal")
        a, _ = net.proposal.sample(features, num_proposal, generator=generator, backend=backend)
        parts.append(a)
    if num_uniform > 0:
        parts.append(uniform_actions(sizes, features.shape[0], num_uniform, generator=generator))
    if not parts:
        raise ValueError("the candidate set is empty: num_proposal + num_uniform must be >= 1")
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def argmax_candidates(
    q: torch.Tensor, candidates: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q [B, n]``, ``candidates [B, n, D]`` -> ``(best action [B, D], its q [B])``."""
    best_q, idx = q.max(dim=1)
    best = candidates.gather(1, idx[:, None, None].expand(-1, 1, candidates.shape[2]))[:, 0]
    return best, best_q


def aql_losses(
    net: AQLNet,
    target: AQLNet,
    obs: torch.Tensor,
    action: torch.Tensor,
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    stop: torch.Tensor,
    boot_obs: torch.Tensor,
    *,
    num_proposal: int,
    num_uniform: int,
    enumerate_all: bool = False,
    double_q: bool = True,
    entropy_coef: float = 0.01,
    entropy_samples: int = 8,
    huber: bool = True,
    boot_action: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Critic and proposal losses of one batch (named scalars).

    Args:
        net: the online :class:`AQLNet`.
        target: the target :class:`AQLNet` (no gradient reaches it).
        obs: ``[B, O]`` s_t (network input).
        action: ``[B, D]`` a_t.
        r_t: ``[B, T]`` rewards of the slice (:func:`n_step_target`).
        discount_t: ``[B, T]`` discounts of the slice.
        stop: ``[B, T]`` stops of the slice.
        boot_obs: ``[B, O]`` the bootstrap observation of step k.
        num_proposal: N, proposal samples per candidate set (fresh at s_t and at boot_obs).
        num_uniform: M, uniform samples per candidate set.
        enumerate_all: candidates = every action (exhaustive-max DQN; N, M ignored).
        double_q: choose ``a*`` at the bootstrap state with the online Q, value it with the
            target Q (else both with the target Q).
        entropy_coef: c, the weight of the proposal's entropy bonus.
        entropy_samples: proposal samples (the first of the candidate set at s_t) whose
            chain-rule entropy estimates H(mu(.|s)) (unbiased; see
            ``AutoregressiveProposal.entropy``).
        huber: Huber (smooth L1) TD loss, else half the squared error.
        boot_action: ``[B, D]`` use this stored argmax at the bootstrap state instead of a
            fresh candidate set.
        weight: ``[B]`` importance weights of the TD loss (prioritised replay): the critic
            loss is ``mean(weight * loss_i)``; None is the plain mean.
        generator: RNG of the candidate sets.
    Returns ``critic_loss``, ``proposal_loss`` (0 without a proposal), ``q_mean``,
    ``target_mean``, ``proposal_entropy`` (scalars) and ``td_abs`` ``[B]``, the detached
    ``|y - Q(s_t, a_t)|`` (new priorities).
    """
    spec = net.spec

    def candidates(features):
        if enumerate_all:
            all_actions = enumerate_actions(spec.sizes, features.device)
            return all_actions[None].expand(features.shape[0], -1, -1)
        return candidate_actions(net, features, num_proposal, num_uniform, generator=generator)

    with torch.no_grad():
        t_feat = target.features(boot_obs)
        if boot_action is None:
            on_feat = net.features(boot_obs)
            cand = candidates(on_feat)
            chooser = on_feat if double_q else t_feat
            q_choose = (net if double_q else target).q_candidates(chooser, cand)
            boot_action, _ = argmax_candidates(q_choose, cand)
        v_boot = target.q_candidates(t_feat, boot_action[:, None])[:, 0]
        y = n_step_target(r_t, discount_t, v_boot, stop)
    q = net.q_values(obs, action)
    if weight is None:
        err = F.smooth_l1_loss(q, y) if huber else 0.5 * F.mse_loss(q, y)
    else:
        if weight.shape != q.shape:
            raise ValueError(f"weight must be [B={q.shape[0]}], got {tuple(weight.shape)}")
        per = F.smooth_l1_loss(q, y, reduction="none") if huber else 0.5 * (q - y) ** 2
        err = (weight * per).mean()
    out = {
        "critic_loss": err,
        "q_mean": q.detach().mean(),
        "target_mean": y.mean(),
        "td_abs": (y - q.detach()).abs(),
    }
    if net.proposal is None or num_proposal == 0 or enumerate_all:
        out["proposal_loss"] = torch.zeros((), device=obs.device)
        out["proposal_entropy"] = torch.zeros((), device=obs.device)
        return out
    feat = net.features(obs).detach()
    with torch.no_grad():
        cand = candidates(feat)
        best, _ = argmax_candidates(net.q_candidates(feat, cand), cand)
    nll = -net.proposal.log_prob(feat, best[:, None]).mean()
    entropy = net.proposal.entropy(feat, cand[:, : min(entropy_samples, num_proposal)]).mean()
    out["proposal_loss"] = nll - entropy_coef * entropy
    out["proposal_entropy"] = entropy.detach()
    return out
