"""The network of Amortized Q-learning: a shared state encoder, an action-in Q head scored
through the fused op, and the autoregressive proposal (Van de Wiele et al., arXiv 2001.08116).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qwr_fast.actions import ActionAdapter
from qwr_fast.kernels import LN_EPS, QHeadParams, resolve_backend, sampled_q_head
from qwr_fast.nn.proposal import AutoregressiveProposal
from qwr_fast.nn.sampled_q import SampledQ

__all__ = ["AQLNet"]


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
        spec: ActionAdapter,
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
        (:meth:`ActionAdapter.code_rows`, ``embedding_bag``).
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
