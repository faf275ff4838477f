import pytest
import torch
from torch import nn

from qwr_fast.kernels._common import poison_outputs
from qwr_fast.kernels.sampled_q_head import sampled_q_head_reference
from qwr_fast.nn.sampled_q import SampledQ

RTOL = 1e-5


def close(got, expected):
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=RTOL * scale)


def randomise(module: nn.Module) -> nn.Module:
    """Non-trivial LayerNorm / bias values so that a swapped parameter would show."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


@pytest.mark.parametrize("backend", ["auto", "torch", "reference"])
@pytest.mark.parametrize("discrete", [False, True])
def test_forward_equals_op_on_head_params(backend, discrete):
    O, A, K, H, B, n = 7, 3, 5, 32, 6, 4
    kwargs = {"num_actions": K} if discrete else {"action_dim": A}
    q = randomise(SampledQ(O, hidden=H, **kwargs))
    obs = torch.randn(B, O)
    actions = torch.randint(0, K, (B, n)) if discrete else torch.randn(B, n, A)
    expected = q(obs, actions)
    assert expected.shape == (B, n)
    with poison_outputs():
        got = q.q_sampled(obs, actions, backend=backend)
    assert not got.requires_grad
    close(got, expected.detach())
    close(sampled_q_head_reference(q.gate(obs), actions, q.head_params()), expected)


@pytest.mark.parametrize("discrete", [False, True])
def test_single_action_shapes(discrete):
    O, A, K, H, B = 5, 2, 4, 16, 3
    kwargs = {"num_actions": K} if discrete else {"action_dim": A}
    q = randomise(SampledQ(O, hidden=H, **kwargs))
    obs = torch.randn(B, O)
    actions = torch.randint(0, K, (B,)) if discrete else torch.randn(B, A)
    single = q(obs, actions)
    assert single.shape == (B,)
    close(single, q(obs, actions.unsqueeze(1))[:, 0])
    close(q.q_sampled(obs, actions), single.detach())


def test_gradients_flow_to_every_parameter():
    q = SampledQ(6, action_dim=2, hidden=16)
    obs, actions = torch.randn(4, 6), torch.randn(4, 3, 2)
    (q(obs, actions) * torch.randn(4, 3)).sum().backward()
    for name, p in q.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradients_match_reference_autograd():
    q = randomise(SampledQ(6, num_actions=5, hidden=16))
    obs, actions = torch.randn(4, 6), torch.randint(0, 5, (4, 3))
    upstream = torch.randn(4, 3)
    params = list(q.parameters())
    got = torch.autograd.grad((q(obs, actions) * upstream).sum(), params)
    ref = sampled_q_head_reference(q.gate(obs), actions, q.head_params())
    expected = torch.autograd.grad((ref * upstream).sum(), params, allow_unused=True)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, torch.zeros_like(g) if e is None else e)


def test_custom_body():
    torso = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 40), nn.ReLU())
    q = SampledQ(0, num_actions=6, hidden=24, body=torso, body_dim=40)
    obs, actions = torch.randn(5, 2, 3, 3), torch.randint(0, 6, (5, 7))
    assert q.gate(obs).shape == (5, 24)
    close(q.q_sampled(obs, actions), q(obs, actions).detach())


def test_bad_arguments():
    with pytest.raises(ValueError, match="action_dim"):
        SampledQ(4, hidden=8)
    with pytest.raises(ValueError, match="num_actions"):
        SampledQ(4, action_dim=2, num_actions=3, hidden=8)
    q = SampledQ(4, num_actions=3, hidden=8)
    with pytest.raises(ValueError, match="actions must be in"):
        q.q_sampled(torch.randn(2, 4), torch.full((2, 3), 3))
