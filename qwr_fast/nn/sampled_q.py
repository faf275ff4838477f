"""Action-in Q networks whose sampled-action evaluation runs through the fused op.

``SampledQ`` is the QWR critic (Kozakowski et al. 2021; trax ``rl.py``): a state body, a gate
``W_s h + b_s``, and a head ``gate * tanh(W_a a + b_a) -> LayerNorm -> ReLU layer -> scalar``.
``forward`` is the plain autograd path for the critic's own training; ``q_sampled`` evaluates
many actions per state through :func:`qwr_fast.kernels.sampled_q_head` (no gradient).
"""

from __future__ import annotations

import torch
from torch import nn

from qwr_fast.kernels import LN_EPS, QHeadParams, sampled_q_head
from qwr_fast.nn.torsos import full_precision

__all__ = ["SampledQ", "autocast_head_precision"]


def autocast_head_precision(device: torch.device) -> str:
    """The fused head's precision matching the autocast state on ``device``: ``"bf16"`` (CPU:
    AMX / AVX512-BF16 products) or ``"tf32"`` (CUDA: the Triton kernel's tensor cores) inside
    a bf16 ``torch.autocast`` region, ``"ieee"`` (exact fp32) otherwise."""
    if torch.is_autocast_enabled(device.type) and (
        torch.get_autocast_dtype(device.type) == torch.bfloat16
    ):
        return "tf32" if device.type == "cuda" else "bf16"
    return "ieee"


class SampledQ(nn.Module):
    """Q(s, a) with the action injected after the state body.

    Give exactly one of ``action_dim`` (float actions ``[.., A]``, ``W_a`` is an
    ``nn.Linear(A, H)``) or ``num_actions`` (int actions in ``[0, K)``, ``W_a`` is an
    ``nn.Embedding(K, H)`` plus a separate bias ``b_a[H]``, so both kinds compute
    ``gate * tanh(W_a a + b_a)``).

    Args:
        obs_dim: observation width O (used by the default body).
        action_dim: A, for continuous actions.
        num_actions: K, for discrete actions.
        hidden: head width H (and the default body's width).
        body: any module mapping obs to ``[B, body_dim]`` (e.g. a conv torso); default
            ``Linear(O, H) -> ReLU -> Linear(H, H) -> ReLU``.
        body_dim: width of the body output; defaults to ``hidden``.
    """

    def __init__(
        self,
        obs_dim: int,
        *,
        action_dim: int | None = None,
        num_actions: int | None = None,
        hidden: int = 256,
        body: nn.Module | None = None,
        body_dim: int | None = None,
    ) -> None:
        super().__init__()
        if (action_dim is None) == (num_actions is None):
            raise ValueError(
                "give exactly one of action_dim (float actions) or num_actions (int actions), "
                f"got action_dim={action_dim}, num_actions={num_actions}"
            )
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.discrete = num_actions is not None
        self.hidden = hidden
        if body is None:
            body = nn.Sequential(
                nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
            )
            body_dim = hidden
        self.body = body
        self.gate_linear = nn.Linear(hidden if body_dim is None else body_dim, hidden)
        if self.discrete:
            self.action_embed: nn.Module = nn.Embedding(num_actions, hidden)
            self.action_bias = nn.Parameter(torch.zeros(hidden))
        else:
            self.action_embed = nn.Linear(action_dim, hidden)
        self.norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.fc = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def gate(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, O] -> [B, H]``: the per-state gate ``W_s body(obs) + b_s``."""
        return self.gate_linear(self.body(obs))

    def head_params(self) -> QHeadParams:
        """The head's parameters (views, no copies) in the layout of ``sampled_q_head``."""
        if self.discrete:
            w_a, b_a = self.action_embed.weight, self.action_bias
        else:
            w_a, b_a = self.action_embed.weight, self.action_embed.bias
        return QHeadParams(
            w_a,
            b_a,
            self.norm.weight,
            self.norm.bias,
            self.fc.weight,
            self.fc.bias,
            self.out.weight.view(-1),
            self.out.bias.view(()),
        )

    def _sampled(self, actions: torch.Tensor) -> bool:
        """True for ``[B, n, ...]`` (n samples per state), False for one action per state."""
        return actions.dim() == (2 if self.discrete else 3)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q with autograd (unfused). ``actions`` ``[B, n, A]`` / int ``[B, n]`` -> ``[B, n]``;
        ``[B, A]`` / int ``[B]`` -> ``[B]``."""
        sampled = self._sampled(actions)
        if not sampled:
            actions = actions.unsqueeze(1)
        g = self.gate(obs)  # [B, H]
        emb = self.action_embed(actions)  # [B, n, H]
        if self.discrete:
            emb = emb + self.action_bias
        x = self.norm(g.unsqueeze(1) * torch.tanh(emb))
        q = full_precision(self.out, torch.relu(self.fc(x))).squeeze(-1)  # [B, n], fp32
        return q if sampled else q.squeeze(1)

    def q_sampled(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        *,
        backend: str = "auto",
        precision: str | None = None,
    ) -> torch.Tensor:
        """Q through the fused op, without gradient (targets, baselines, argmax); same shapes
        as :meth:`forward`, always fp32. ``precision`` of the head's hidden product (see
        :func:`~qwr_fast.kernels.sampled_q_head`); ``None`` follows an enclosing bf16
        ``torch.autocast`` region (``"bf16"`` on CPU, ``"tf32"`` on CUDA), else ``"ieee"``."""
        sampled = self._sampled(actions)
        if not sampled:
            actions = actions.unsqueeze(1)
        if precision is None:
            precision = autocast_head_precision(obs.device)
        with torch.no_grad():
            q = sampled_q_head(
                self.gate(obs).float(),
                actions,
                self.head_params(),
                backend=backend,
                precision=precision,
            )
        return q if sampled else q.squeeze(1)
