"""The autoregressive proposal of Amortized Q-learning (Van de Wiele et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from qwr_fast.kernels import check_tensor, proposal_sample, value_checks_enabled

__all__ = ["AutoregressiveProposal"]


class AutoregressiveProposal(nn.Module):
    """A softmax per sub-action conditioned on the state and on the previous sub-actions.

    ``z0 = Linear(in_dim, width)(features)``; step d reads ``logits_d = heads_w[d] @ relu(z) +
    heads_b[d]`` (choices ``>= sizes[d]`` masked out) and then ``z += emb[d, a_d]``. Sampling
    goes through the fused op :func:`qwr_fast.kernels.proposal_sample` (no gradient);
    :meth:`log_prob` and :meth:`entropy` recompute the per-step distributions by teacher forcing
    on given actions, with autograd.

    Args:
        in_dim: width of the encoder output fed to the proposal.
        sizes: K_d, the number of choices of each of the D sub-actions; K = max K_d.
        width: E, the proposal's hidden width.
        factorised: ablation without conditioning on previous sub-actions: ``emb`` is a zero
            buffer (not trained), so the D softmaxes depend on the state only.

    Shapes: ``features [B, in_dim]``, ``actions [B, N, D]`` int64.
    """

    def __init__(
        self, in_dim: int, sizes: Sequence[int], width: int = 256, *, factorised: bool = False
    ) -> None:
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"sizes must be a non-empty sequence of ints >= 1, got {sizes}")
        if in_dim < 1 or width < 1:
            raise ValueError(f"in_dim and width must be >= 1, got {in_dim} and {width}")
        self.sizes = sizes
        self.factorised = factorised
        D, K = len(sizes), max(sizes)
        self.input = nn.Linear(in_dim, width)
        self.heads_w = nn.Parameter(torch.empty(D, K, width))
        self.heads_b = nn.Parameter(torch.zeros(D, K))
        if factorised:
            self.register_buffer("emb", torch.zeros(D, K, width))
        else:
            self.emb = nn.Parameter(torch.empty(D, K, width))
        self.register_buffer("sizes_tensor", torch.tensor(sizes), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Heads like ``nn.Linear`` (rows of masked choices zero), embeddings N(0, 1/width)."""
        width = self.heads_w.shape[-1]
        bound = 1.0 / math.sqrt(width)
        valid = self._valid_choices()
        with torch.no_grad():
            self.heads_w.uniform_(-bound, bound).mul_(valid[..., None])
            self.heads_b.zero_()
            if not self.factorised:
                self.emb.normal_(0.0, bound).mul_(valid[..., None])

    def _valid_choices(self) -> torch.Tensor:
        K = self.heads_w.shape[1]
        return torch.arange(K, device=self.heads_w.device) < self.sizes_tensor[:, None]  # [D, K]

    def _start(self, features: torch.Tensor) -> torch.Tensor:
        in_dim = self.input.in_features
        check_tensor(
            "features",
            features,
            kind="float",
            shape=(None, in_dim),
            device=self.heads_w.device,
            what=f"[B, in_dim={in_dim}]",
        )
        return self.input(features)  # [B, E]

    def sample(
        self,
        features: torch.Tensor,
        num_samples: int,
        *,
        temperature: float | torch.Tensor = 1.0,
        generator: torch.Generator | None = None,
        gumbel: torch.Tensor | None = None,
        backend: str = "auto",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``num_samples`` actions per state: ``(actions [B, N, D] int64, logp [B, N])``.

        ``logp`` is at temperature 1 and carries no gradient; ``gumbel [B, N, D, K]`` makes the
        draw deterministic (see :func:`qwr_fast.kernels.proposal_sample`).
        """
        with torch.no_grad():
            z0 = self._start(features)
            return proposal_sample(
                z0,
                self.heads_w,
                self.heads_b,
                self.emb,
                num_samples,
                sizes=self.sizes_tensor,
                gumbel=gumbel,
                temperature=temperature,
                generator=generator,
                backend=backend,
            )

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """The greedy action ``[B, D]``: the argmax sub-action at each step given the greedy
        prefix (not necessarily the joint argmax)."""
        with torch.no_grad():
            z0 = self._start(features)
            D, K = self.heads_w.shape[:2]
            zeros = z0.new_zeros(z0.shape[0], 1, D, K)
            actions, _ = proposal_sample(
                z0, self.heads_w, self.heads_b, self.emb, 1, sizes=self.sizes_tensor, gumbel=zeros
            )
        return actions[:, 0]

    def step_log_probs(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-step log-softmax ``[B, N, D, K]`` along the given action prefixes (teacher
        forcing), with autograd; masked choices hold -inf."""
        z = self._start(features)[:, None, :]  # [B, 1, E]
        B = z.shape[0]
        D, K = self.heads_w.shape[:2]
        check_tensor("actions", actions, kind="int", ndim=3, device=z.device, what=f"[B, N, D={D}]")
        if actions.shape[0] != B or actions.shape[2] != D:
            raise ValueError(
                f"actions must have shape [B={B}, N, D={D}], got {tuple(actions.shape)}"
            )
        if value_checks_enabled(actions.device) and not bool(
            ((actions >= 0) & (actions < self.sizes_tensor)).all()
        ):
            raise ValueError(f"actions[..., d] must lie in [0, sizes[d]) with sizes={self.sizes}")
        actions = actions.long()
        invalid = ~self._valid_choices()
        out = []
        for d in range(D):
            logits = torch.nn.functional.linear(torch.relu(z), self.heads_w[d], self.heads_b[d])
            logits = logits.masked_fill(invalid[d], float("-inf"))  # [B, N or 1, K]
            out.append(torch.log_softmax(logits, dim=-1).expand(B, actions.shape[1], K))
            z = z + self.emb[d][actions[..., d]]  # [B, N, E]
        return torch.stack(out, dim=2)

    def log_prob(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log mu(actions | s)`` ``[B, N]`` by teacher forcing, differentiable."""
        log_probs = self.step_log_probs(features, actions)
        return log_probs.gather(-1, actions.long()[..., None])[..., 0].sum(-1)

    def entropy(self, features: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Sum over steps of the per-step entropy conditioned on an action prefix.

        With ``actions [B, N, D]`` it returns ``[B, N]``: ``sum_d H(A_d | a_<d)``. By the chain
        rule the mean of this over actions sampled from the proposal itself is an unbiased
        estimate of the joint entropy H(A) (exact entropy needs enumerating prod K_d actions).
        Without ``actions`` it returns ``[B]`` along the greedy prefix :meth:`mode`, a
        deterministic, cheaper and biased surrogate. Differentiable in the parameters (the
        prefix itself is treated as fixed).
        """
        greedy = actions is None
        if greedy:
            actions = self.mode(features)[:, None, :]
        log_probs = self.step_log_probs(features, actions)
        log_probs = log_probs.masked_fill(~self._valid_choices(), 0.0)  # masked: p log p = 0
        entropy = -(log_probs.exp() * log_probs).sum(dim=(-1, -2))  # [B, N]
        return entropy[:, 0] if greedy else entropy
