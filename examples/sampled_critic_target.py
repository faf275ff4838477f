"""A SAC-style critic step in your own PyTorch code, with two fused ops of qwr_fast.

Your critic is Q(s, a) = head(gate(s), a); the target backs Q up over n actions sampled from
your policy at s' with a soft maximum (log-sum-exp, as in QWR-LSE) instead of one sample:

    y = r + gamma * (1 - done) * tau * (logsumexp_j Q'(s', a_j) / tau - log n)

``sampled_q_head`` evaluates the n sampled actions of every next state in one fused call (no
[B*n, H] activations are kept), and ``lse_backup`` forms the target. Run it:
``python examples/sampled_critic_target.py`` (CPU; on a GPU the same calls run Triton kernels).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qwr_fast.kernels import QHeadParams, lse_backup, lse_backup_reference, sampled_q_head

B, OBS, A, H, N = 64, 11, 3, 64, 16  # batch, obs dim, action dim, hidden, samples per state
GAMMA, TAU = 0.99, 1.0


class Critic(nn.Module):
    """Q(s, a) = w_o . relu(W_1 LayerNorm(gate(s) * tanh(W_a a + b_a)) + b_1) + b_o."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(OBS, H), nn.ReLU(), nn.Linear(H, H))
        self.act = nn.Linear(A, H)
        self.norm = nn.LayerNorm(H)
        self.fc = nn.Linear(H, H)
        self.out = nn.Linear(H, 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q with autograd, for training: ``obs[B, OBS]``, ``actions[B, A]`` -> ``[B]``."""
        x = self.gate(obs) * torch.tanh(self.act(actions))
        return self.out(torch.relu(self.fc(self.norm(x)))).squeeze(-1)

    def head_params(self) -> QHeadParams:
        """The head's weights in the layout of ``sampled_q_head`` (views, no copies)."""
        return QHeadParams(
            self.act.weight, self.act.bias, self.norm.weight, self.norm.bias,
            self.fc.weight, self.fc.bias, self.out.weight.view(-1), self.out.bias.view(()),
        )  # fmt: skip


def main() -> None:
    torch.manual_seed(0)
    critic = Critic()
    target = copy.deepcopy(critic).requires_grad_(False)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    # A replay batch and n actions per next state from your policy (here a fixed Gaussian).
    obs, next_obs = torch.randn(B, OBS), torch.randn(B, OBS)
    action = torch.randn(B, A).clamp(-1, 1)
    reward, done = torch.randn(B), torch.rand(B) < 0.1
    next_actions = torch.randn(B, N, A).clamp(-1, 1)

    with torch.no_grad():
        q_next = sampled_q_head(target.gate(next_obs), next_actions, target.head_params())
        # lse_backup takes [B, T, n] (T = 1 here: a one-step target).
        y = lse_backup(q_next[:, None], reward[:, None], (GAMMA * ~done).float()[:, None], tau=TAU)
    # The fused ops agree with their plain-PyTorch references and with the unfused critic.
    q_unfused = target(next_obs[:, None].expand(B, N, OBS).reshape(-1, OBS),
                       next_actions.reshape(-1, A)).view(B, N)  # fmt: skip
    torch.testing.assert_close(q_next, q_unfused, rtol=1e-5, atol=1e-5)
    y_ref = lse_backup_reference(
        q_next[:, None], reward[:, None], (GAMMA * ~done).float()[:, None], tau=TAU
    )
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)

    losses = []
    for _ in range(50):
        loss = torch.nn.functional.mse_loss(critic(obs, action), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    print(f"critic loss {losses[0]:.4f} -> {losses[-1]:.4f} over 50 steps on the LSE target")


if __name__ == "__main__":
    main()
