"""An advantage-weighted actor step (QWR / AWR) in your own PyTorch code, with ``awr_loss``.

For every state, n actions sampled from the behaviour policy stored in your replay and their
Q values (from any critic) weight the log-likelihood of those actions under your policy:

    loss = -mean_ij  min(exp(A_ij / beta), max_weight) * log pi(a_ij | s_i),
    A_ij = Q(s_i, a_ij) - mean_j Q(s_i, a_ij)

``awr_loss`` fuses the advantages, their normalisation, the clipped exponential weights and
the Gaussian (or categorical) log-likelihood into one op with its own backward. Run it:
``python examples/awr_actor_step.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from qwr_fast.kernels import awr_loss, awr_loss_reference

B, OBS, A, N = 128, 8, 2, 8  # states, obs dim, action dim, sampled actions per state


def main() -> None:
    torch.manual_seed(0)
    policy = nn.Sequential(nn.Linear(OBS, 64), nn.ReLU(), nn.Linear(64, A))
    log_std = nn.Parameter(torch.full((A,), -0.5))
    opt = torch.optim.Adam([*policy.parameters(), log_std], lr=3e-3)
    obs = torch.randn(B, OBS)
    actions = torch.randn(B, N, A).clamp(-1, 1)  # from the stored behaviour policy
    best = torch.tanh(obs[:, :A])  # a critic that likes actions near tanh(obs[:, :2])
    q = -((actions - best[:, None]) ** 2).sum(-1)  # [B, N]

    # The fused loss and its gradient equal the plain-PyTorch reference.
    mean = policy(obs)
    loss = awr_loss(("gaussian", mean, log_std), actions, q, beta=1.0)
    ref = awr_loss_reference(("gaussian", mean, log_std), actions, q, beta=1.0)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    g, g_ref = torch.autograd.grad(loss, log_std)[0], torch.autograd.grad(ref, log_std)[0]
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)

    before = ((policy(obs) - best) ** 2).mean().item()
    for _ in range(200):
        loss = awr_loss(("gaussian", policy(obs), log_std), actions, q, beta=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = ((policy(obs) - best) ** 2).mean().item()
    assert after < 0.5 * before, (before, after)
    print(f"policy mean's squared distance to the critic's best action {before:.3f} -> {after:.3f}")


if __name__ == "__main__":
    main()
