import itertools

import pytest
import torch

from qwr_fast.kernels.proposal_sample import proposal_sample
from qwr_fast.nn.proposal import AutoregressiveProposal

SIZES = (3, 2, 4)


def make(factorised=False, width=16, in_dim=5):
    torch.manual_seed(1)
    module = AutoregressiveProposal(in_dim, SIZES, width, factorised=factorised)
    with torch.no_grad():  # larger weights than the init, so that conditioning matters
        module.heads_w.mul_(4.0)
        module.heads_b.normal_()
        if not factorised:
            module.emb.mul_(4.0)
    return module


def all_actions(B):
    space = torch.tensor(list(itertools.product(*(range(s) for s in SIZES))))  # [24, D]
    return space[None].expand(B, -1, -1).contiguous()


def brute_force_log_prob(module, features, action):
    """log p(action) for one state [in_dim] and one action [D], with Python loops."""
    z = module.input(features)
    total = 0.0
    for d, a in enumerate(action.tolist()):
        logits = module.heads_w[d, : SIZES[d]] @ torch.relu(z) + module.heads_b[d, : SIZES[d]]
        total = total + torch.log_softmax(logits, -1)[a]
        z = z + module.emb[d, a]
    return total


@pytest.mark.parametrize("factorised", [False, True])
def test_log_prob_matches_enumeration_and_sums_to_one(factorised):
    module = make(factorised)
    features = torch.randn(3, 5)
    actions = all_actions(3)
    logp = module.log_prob(features, actions)  # [3, 24]
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3), rtol=1e-5, atol=1e-5)
    expected = torch.stack(
        [
            torch.stack([brute_force_log_prob(module, features[b], a) for a in actions[b]])
            for b in range(3)
        ]
    )
    torch.testing.assert_close(logp, expected, rtol=1e-5, atol=1e-5)


def test_factorised_ignores_previous_sub_actions():
    module = make(factorised=True)
    assert "emb" not in dict(module.named_parameters())
    features = torch.randn(2, 5)
    step = module.step_log_probs(features, all_actions(2))  # [2, 24, D, K]
    torch.testing.assert_close(step, step[:, :1].expand_as(step))
    conditioned = make(factorised=False).step_log_probs(features, all_actions(2))
    assert not torch.allclose(conditioned[:, :, 1], conditioned[:, :1, 1].expand(-1, 24, -1))


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_sample_with_gumbel_reproduces_op_and_log_prob(backend):
    module = make()
    features = torch.randn(4, 5)
    N, D, K = 7, len(SIZES), max(SIZES)
    gumbel = -torch.log(-torch.log(torch.rand(4, N, D, K)))
    actions, logp = module.sample(features, N, gumbel=gumbel, temperature=0.7, backend=backend)
    with torch.no_grad():
        z0 = module.input(features)
    op_actions, op_logp = proposal_sample(
        z0, module.heads_w.detach(), module.heads_b.detach(), module.emb.detach(), N,
        sizes=SIZES, gumbel=gumbel, temperature=0.7, backend="reference",
    )  # fmt: skip
    assert torch.equal(actions, op_actions)
    torch.testing.assert_close(logp, op_logp, rtol=1e-5, atol=1e-5)
    assert not logp.requires_grad
    torch.testing.assert_close(
        logp, module.log_prob(features, actions).detach(), rtol=1e-5, atol=1e-5
    )


def test_sample_with_generator_is_reproducible():
    module = make()
    features = torch.randn(2, 5)
    a1, _ = module.sample(features, 50, generator=torch.Generator().manual_seed(3))
    a2, _ = module.sample(features, 50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)
    assert bool((a1 < torch.tensor(SIZES)).all())


def test_entropy_chain_rule_gives_exact_joint_entropy():
    module = make()
    features = torch.randn(3, 5)
    actions = all_actions(3)
    with torch.no_grad():
        p = module.log_prob(features, actions).exp()  # [3, 24]
        exact = -(p * p.log()).sum(-1)
        estimator = module.entropy(features, actions)  # [3, 24]
    torch.testing.assert_close((p * estimator).sum(-1), exact, rtol=1e-5, atol=1e-5)


def test_greedy_entropy_and_mode():
    module = make()
    features = torch.randn(3, 5)
    greedy = module.mode(features)
    with torch.no_grad():
        step = module.step_log_probs(features, greedy[:, None])
    assert torch.equal(step.argmax(-1)[:, 0], greedy)
    entropy = module.entropy(features)
    assert entropy.shape == (3,)
    torch.testing.assert_close(entropy, module.entropy(features, greedy[:, None])[:, 0])
    assert bool((entropy > 0).all())


@pytest.mark.parametrize("factorised", [False, True])
def test_gradients_flow_into_parameters(factorised):
    module = make(factorised)
    features = torch.randn(4, 5)
    actions, _ = module.sample(features, 6, generator=torch.Generator().manual_seed(0))
    loss = -module.log_prob(features, actions).mean() - 0.01 * module.entropy(features).mean()
    loss.backward()
    for name, param in module.named_parameters():
        assert param.grad is not None and bool(torch.isfinite(param.grad).all()), name
        assert param.grad.abs().sum() > 0, name
    assert (module.emb.grad is None) == factorised
    valid = torch.arange(max(SIZES)) < torch.tensor(SIZES)[:, None]
    assert bool((module.heads_w.grad[~valid] == 0).all())


def test_bad_inputs():
    module = make()
    features = torch.randn(2, 5)
    with pytest.raises(ValueError, match="features"):
        module.log_prob(torch.randn(2, 4), all_actions(2))
    with pytest.raises(ValueError, match="actions"):
        module.log_prob(features, all_actions(3))
    with pytest.raises(ValueError, match="actions"):
        module.log_prob(features, all_actions(2)[..., :2])
    with pytest.raises(TypeError, match="actions"):
        module.log_prob(features, all_actions(2).float())
    bad = all_actions(2).clone()
    bad[0, 0, 1] = 2  # sizes[1] == 2
    with pytest.raises(ValueError, match="actions"):
        module.log_prob(features, bad)
    with pytest.raises(ValueError, match="sizes"):
        AutoregressiveProposal(5, (3, 0))
    with pytest.raises(ValueError, match="num_samples"):
        module.sample(features, 0)
