"""Amortized Q-learning (Van de Wiele, Warde-Farley, Mnih, Mnih; arXiv 2001.08116): the pieces.

Every action space is one representation: D sub-actions, sub-action d with K_d choices
(:class:`ActionSpec`; ``Discrete(n)`` is D=1, ``MultiBinary(N)`` is D=N with K_d=2,
``MultiDiscrete`` and the Box discretisation wrapper give their ``nvec``). The max over
``prod K_d`` actions is replaced by a max over a candidate set: N samples of a learned
autoregressive proposal mu(a|s) and M uniform samples (:func:`candidate_actions`), scored in one
fused evaluation of the action-in Q network (:func:`qwr_fast.kernels.sampled_q_head`).

Q takes the action as the sum of one embedding per sub-action: ``W_a a`` with ``a`` the
concatenation of the D one-hot codes, choice 0 of every sub-action dropped (its embedding is
absorbed in ``b_a``), so ``A = sum_d (K_d - 1)`` float inputs (:meth:`ActionSpec.encode`; for
``MultiBinary`` the code is the bit vector itself). That is the float-action path of the fused
op, unchanged. For the ordered bins of a discretised Box an ``ordinal`` code (one number per
sub-action, A = D) is an option: 10x narrower at 11 bins, so the ``[B*n, A] x [A, H]`` product
of the op shrinks from 170 to 17 columns on Humanoid.

Losses (:func:`aql_losses`): the critic regresses ``Q(s_t, a_t)`` on the n-step target
``sum_{i<=k} (prod_{j<i} d_j) r_i + (prod_{j<=k} d_j) Q_target(s_{t+k+1}, a*)``
(:func:`n_step_target`), with ``a*`` the argmax over a fresh candidate set at the bootstrap
state (chosen by the online Q with ``double_q``, else by the target Q); the proposal minimises
``-log mu(a*_s | s) - c * H(mu(.|s))`` with ``a*_s`` the argmax of the candidate union at
``s`` (teacher forced). The proposal reads the shared encoder's features with the gradient
stopped: the encoder is trained by the TD loss only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qwr_fast.kernels import QHeadParams, sampled_q_head
from qwr_fast.kernels._common import resolve_backend
from qwr_fast.kernels.sampled_q_head import LN_EPS
from qwr_fast.nn.proposal import AutoregressiveProposal
from qwr_fast.nn.sampled_q import SampledQ

__all__ = [
    "ActionSpec",
    "AQLNet",
    "uniform_actions",
    "enumerate_actions",
    "candidate_actions",
    "argmax_candidates",
    "bootstrap_index",
    "n_step_target",
    "aql_losses",
]


@dataclass(frozen=True)
class ActionSpec:
    """An action space as D sub-actions with ``sizes[d]`` choices each (``starts[d]`` is the
    env's value of choice 0)."""

    sizes: tuple[int, ...]
    starts: tuple[int, ...]
    kind: str
    """``discrete`` (env action is a scalar), ``multi_discrete`` or ``multi_binary``"""
    code: str = "onehot"
    """Q's action input (:meth:`encode`): ``onehot`` (one embedding per sub-action choice) or
    ``ordinal`` (one number per sub-action, for the ordered bins of a discretised Box)"""

    def __post_init__(self) -> None:
        if self.code not in ("onehot", "ordinal"):
            raise ValueError(f"code must be 'onehot' or 'ordinal', got {self.code!r}")

    @classmethod
    def from_space(cls, space: gym.Space, code: str = "onehot") -> ActionSpec:
        """The spec of a ``Discrete``, ``MultiDiscrete`` (1-d) or ``MultiBinary`` (1-d) space."""
        if isinstance(space, gym.spaces.Discrete):
            return cls((int(space.n),), (int(space.start),), "discrete", code)
        if isinstance(space, gym.spaces.MultiDiscrete) and len(space.nvec.shape) == 1:
            return cls(
                tuple(int(k) for k in space.nvec),
                tuple(int(s) for s in space.start),
                "multi_discrete",
                code,
            )
        if isinstance(space, gym.spaces.MultiBinary) and np.ndim(space.n) == 0:
            return cls((2,) * int(space.n), (0,) * int(space.n), "multi_binary", code)
        raise ValueError(
            "action space must be Discrete, 1-d MultiDiscrete or 1-d MultiBinary (wrap a Box "
            f"with qwr_fast.envs.discretize, or pass --bins), got {space}"
        )

    @property
    def num_sub(self) -> int:
        """D."""
        return len(self.sizes)

    @property
    def num_actions(self) -> int:
        """``prod K_d`` (a Python int: may exceed 2**63)."""
        return math.prod(self.sizes)

    @property
    def code_dim(self) -> int:
        """A, the width of :meth:`encode`: ``sum_d (K_d - 1)`` (onehot) or D (ordinal)."""
        return self.num_sub if self.code == "ordinal" else sum(self.sizes) - self.num_sub

    def sizes_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.tensor(self.sizes, dtype=torch.int64, device=device)

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` int -> ``[..., A]`` float. ``onehot``: the one-hot code of each
        sub-action without its choice-0 column, concatenated over d. ``ordinal``: choice k of
        K_d as ``2 k / (K_d - 1) - 1`` (the bin's position in [-1, 1]; 0 when K_d = 1)."""
        if self.code == "ordinal":
            sizes = torch.tensor(self.sizes, device=actions.device, dtype=torch.float32)
            return (
                actions.to(torch.float32) * (2.0 / (sizes - 1).clamp(min=1)) - (sizes > 1).float()
            )
        if all(k == 2 for k in self.sizes):  # MultiBinary: the code is the bit vector
            return actions.to(torch.float32)
        rows = self.code_rows(actions)
        code = actions.new_zeros((*actions.shape[:-1], self.code_dim + 1), dtype=torch.float32)
        code.scatter_(-1, rows, 1.0)
        return code[..., : self.code_dim]

    def code_rows(self, actions: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` int -> ``[..., D]`` int64: the column of the ``onehot`` code that each
        sub-action sets, A (one past the last column) for choice 0, which sets none. ``W_a``'s
        columns at these rows, summed, are ``W_a @ encode(actions)`` without the GEMM."""
        offsets = torch.tensor(
            np.concatenate([[0], np.cumsum([k - 1 for k in self.sizes])[:-1]]) - 1,
            dtype=torch.int64,
            device=actions.device,
        )
        return torch.where(actions > 0, actions + offsets, self.code_dim)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """``[B, D]`` int64 -> the env's batched actions."""
        a = actions.cpu().numpy() + np.asarray(self.starts)
        if self.kind == "discrete":
            return a[:, 0]
        return a.astype(np.int8 if self.kind == "multi_binary" else np.int64)

    def from_env(self, actions: np.ndarray) -> torch.Tensor:
        """The env's batched actions -> ``[B, D]`` int64."""
        a = np.asarray(actions, dtype=np.int64)
        if self.kind == "discrete":
            a = a[:, None]
        return torch.as_tensor(a - np.asarray(self.starts))


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


class AQLNet(nn.Module):
    """Shared state encoder, action-in Q head and autoregressive proposal.

    ``q`` is a :class:`SampledQ` on the encoder (``action_dim = spec.code_dim``); ``proposal``
    (an :class:`AutoregressiveProposal`) reads the encoder's features. ``with_proposal=False``
    (the UniformQL and exhaustive baselines) leaves ``proposal`` None.
    """

    def __init__(
        self,
        body: nn.Module,
        obs_dim: int,
        spec: ActionSpec,
        *,
        hidden: int = 256,
        proposal_width: int = 256,
        factorised: bool = False,
        with_proposal: bool = True,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.q = SampledQ(obs_dim, action_dim=spec.code_dim, hidden=hidden, body=body)
        self.proposal = (
            AutoregressiveProposal(hidden, spec.sizes, proposal_width, factorised=factorised)
            if with_proposal
            else None
        )

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Encoder output ``[B, hidden]``."""
        return self.q.body(obs)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q with autograd: ``actions [B, D]`` -> ``[B]``, ``[B, n, D]`` -> ``[B, n]``."""
        return self.q(obs, self.spec.encode(actions))

    @torch.no_grad()
    def q_candidates(
        self, features: torch.Tensor, actions: torch.Tensor, *, backend: str = "auto"
    ) -> torch.Tensor:
        """Q of ``actions [B, n, D]`` through the fused op, from encoder features (no grad).

        On the CPU the candidates are scored in chunks of about ``_CPU_CHUNK_ROWS`` rows by
        :func:`_q_head_cpu` (the op's torch path, leaner), and the ``onehot`` code skips the
        ``[B*n, A] x [A, H]`` GEMM: ``W_a a`` is the sum of D columns of ``W_a``
        (:meth:`ActionSpec.code_rows`, ``embedding_bag``).
        """
        gate = self.q.gate_linear(features)
        params = self.q.head_params()
        if resolve_backend(backend, features.device) != "torch":
            return sampled_q_head(gate, self.spec.encode(actions), params, backend=backend)
        if actions.dim() != 3 or actions.shape[0] != gate.shape[0]:
            raise ValueError(
                f"actions must be [B={gate.shape[0]}, n, D={self.spec.num_sub}], "
                f"got {tuple(actions.shape)}"
            )
        B, n, D = actions.shape
        if B == 0 or n == 0:
            return gate.new_empty(B, n)
        w_a = params.w_a  # [H, A]
        if self.spec.code == "onehot":  # [A + 1, H]: the columns of W_a, then a zero row
            table = torch.cat([w_a.T, w_a.new_zeros(1, w_a.shape[0])])
        step = max(1, _CPU_CHUNK_ROWS // B)
        out = gate.new_empty(B, n)
        hidden = gate.new_empty(B * min(step, n), gate.shape[1])  # reused by every chunk
        for i in range(0, n, step):
            chunk = actions[:, i : i + step]
            rows = chunk.shape[0] * chunk.shape[1]
            if self.spec.code == "onehot":
                pre = F.embedding_bag(self.spec.code_rows(chunk).view(rows, D), table, mode="sum")
            else:
                pre = torch.mm(self.spec.encode(chunk).view(rows, -1), w_a.T)
            out[:, i : i + step] = _q_head_cpu(gate, pre, params, hidden)
        return out


# Candidates scored per pass on the CPU path: the [rows, H] activations stay in cache. On the
# 2-core Xeon of docs/results.md (1 thread, H=256) 2048 rows scored 16000 candidates ~1.5x
# faster than one pass.
_CPU_CHUNK_ROWS = 2048


def _q_head_cpu(
    gate: torch.Tensor, pre: torch.Tensor, params: QHeadParams, hidden: torch.Tensor
) -> torch.Tensor:
    """The head of :func:`sampled_q_head` (``gate * tanh(W_a a + b_a)``, LayerNorm, ReLU layer,
    scalar) from ``pre = W_a a`` ``[B * n, H]`` (without ``b_a``); ``[B, n]``. ``hidden`` (at
    least ``[B * n, H]``) receives the ReLU layer's output."""
    B, H = gate.shape
    R = pre.shape[0]
    x = pre.add_(params.b_a).tanh_().view(B, R // B, H).mul_(gate[:, None, :]).view(R, H)
    x = F.layer_norm(x, (H,), params.ln_w, params.ln_b, LN_EPS)
    # mm then add_: addmm's broadcast of the bias into a fresh [R, H] output cost ~0.9 ms of
    # ~3 ms per 2048 rows on the 2-core Xeon of docs/results.md (1 thread)
    y = torch.mm(x, params.w_1.T, out=hidden[:R]).add_(params.b_1).relu_()
    return torch.mv(y, params.w_o).add_(params.b_o).view(B, R // B)


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
    ``[B]`` is the value of the bootstrap observation of step k. Equals
    :func:`qwr_fast.returns.td_lambda` with ``lam=1`` when every ``v_t`` is ``v_boot``.
    """
    if r_t.dim() != 2 or discount_t.shape != r_t.shape or stop.shape != r_t.shape:
        raise ValueError(
            "r_t, discount_t and stop must all be [B, T], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(stop.shape)}"
        )
    if v_boot.shape != r_t.shape[:1]:
        raise ValueError(f"v_boot must be [B={r_t.shape[0]}], got {tuple(v_boot.shape)}")
    T = r_t.shape[1]
    k = bootstrap_index(stop)
    live = torch.arange(T, device=r_t.device) <= k[:, None]  # [B, T]
    d = torch.where(live, discount_t, 1.0)
    before = torch.cumprod(torch.cat([torch.ones_like(d[:, :1]), d[:, :-1]], dim=1), dim=1)
    ret = (torch.where(live, r_t, 0.0) * before).sum(dim=1)
    return ret + before[:, -1] * d[:, -1] * v_boot


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
        net, target: online and target :class:`AQLNet` (no gradient reaches ``target``).
        obs: ``[B, O]`` s_t (network input); action: ``[B, D]`` a_t.
        r_t, discount_t, stop: ``[B, T]`` the slice (:func:`n_step_target`).
        boot_obs: ``[B, O]`` the bootstrap observation of step k.
        num_proposal, num_uniform: N and M of the candidate sets (fresh at s_t and at boot_obs).
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
