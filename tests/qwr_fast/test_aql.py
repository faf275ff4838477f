import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from qwr_fast.actions import ActionAdapter
from qwr_fast.estimators import bootstrap_index, n_step_target, td_lambda
from qwr_fast.nn.aql_net import AQLNet
from qwr_fast.nn.torsos import make_body
from qwr_fast.objectives.aql import (
    aql_losses,
    argmax_candidates,
    candidate_actions,
    enumerate_actions,
    uniform_actions,
)

SIZES = (3, 2, 4)


def make_net(sizes=SIZES, obs_dim=5, hidden=16, with_proposal=True, seed=0):
    torch.manual_seed(seed)
    spec = ActionAdapter("multi_discrete", tuple(sizes), (0,) * len(sizes))
    return AQLNet(
        make_body((obs_dim,), hidden),
        obs_dim,
        spec,
        hidden=hidden,
        proposal_width=8,
        with_proposal=with_proposal,
    )


@pytest.mark.parametrize("sizes", [SIZES, (2, 2, 2, 2, 2), (7,), (11, 1, 5)])
def test_encode_is_the_sum_of_one_embedding_per_sub_action(sizes):
    spec = ActionAdapter("multi_discrete", sizes, (0,) * len(sizes))
    actions = enumerate_actions(sizes)
    code = spec.encode(actions[None])[0]  # [prod K, A]
    w = torch.randn(6, spec.code_dim)
    tables = []  # embedding table of sub-action d: choice 0 -> 0, choice k -> a column of w
    col = 0
    for k in sizes:
        tables.append(torch.cat([torch.zeros(1, 6), w[:, col : col + k - 1].T]))
        col += k - 1
    expected = torch.stack(
        [sum(t[int(x)] for t, x in zip(tables, a, strict=True)) for a in actions]
    )
    torch.testing.assert_close(code @ w.T, expected)
    assert len({tuple(c.tolist()) for c in code}) == spec.num_actions  # injective


def test_ordinal_code_is_the_bin_position():
    spec = ActionAdapter("multi_discrete", (11, 2, 1), (0, 0, 0), "ordinal")
    assert spec.code_dim == 3
    code = spec.encode(torch.tensor([[0, 0, 0], [5, 1, 0], [10, 0, 0]]))
    expected = torch.tensor([[-1.0, -1.0, 0.0], [0.0, 1.0, 0.0], [1.0, -1.0, 0.0]])
    torch.testing.assert_close(code, expected)
    with pytest.raises(ValueError, match="code must be 'onehot' or 'ordinal'"):
        ActionAdapter("discrete", (2,), (0,), "binary")


def test_uniform_sampler_covers_the_space_chi_squared():
    sizes = torch.tensor(SIZES)
    gen = torch.Generator().manual_seed(0)
    a = uniform_actions(sizes, 40, 600, generator=gen)  # 24000 draws of 24 actions
    assert a.shape == (40, 600, 3) and a.dtype == torch.int64
    assert bool(((a >= 0) & (a < sizes)).all())
    flat = ((a[..., 0] * 2 + a[..., 1]) * 4 + a[..., 2]).reshape(-1)
    counts = torch.bincount(flat, minlength=24).numpy()
    assert counts.shape == (24,) and counts.min() > 0
    chi2, p = stats.chisquare(counts)
    assert p > 1e-3, (chi2, p, counts)


def test_uniform_sampler_detects_a_biased_sampler():
    # The chi-squared check above is able to fail: a sampler that never draws the last choice.
    counts = np.bincount(np.random.default_rng(0).integers(0, 23, 24000), minlength=24)
    assert stats.chisquare(counts).pvalue < 1e-6


def test_enumerate_actions():
    all_a = enumerate_actions(SIZES)
    assert all_a.shape == (24, 3)
    assert [tuple(r) for r in all_a.tolist()] == list(itertools.product(*map(range, SIZES)))


@pytest.mark.parametrize("B", [1, 5])
def test_argmax_over_covering_candidates_equals_exhaustive_argmax(B):
    net = make_net()
    obs = torch.randn(B, 5)
    feat = net.features(obs)
    gen = torch.Generator().manual_seed(1)
    # Proposal samples + enough uniform samples that a 24-action space is surely covered.
    cand = candidate_actions(net, feat, 7, 600, generator=gen)
    assert cand.shape == (B, 607, 3)
    codes = (cand[..., 0] * 2 + cand[..., 1]) * 4 + cand[..., 2]
    assert all(len(set(codes[b].tolist())) == 24 for b in range(B))
    best, best_q = argmax_candidates(net.q_candidates(feat, cand), cand)
    every = enumerate_actions(SIZES)[None].expand(B, -1, -1)
    with torch.no_grad():
        q_all = net.q_values(obs, every)  # unfused autograd path, [B, 24]
    torch.testing.assert_close(best, every[torch.arange(B), q_all.argmax(1)])
    torch.testing.assert_close(best_q, q_all.max(1).values, rtol=1e-5, atol=1e-5)


def test_fused_candidate_q_equals_unfused_q():
    net = make_net(sizes=(11,) * 4, hidden=32)
    obs = torch.randn(3, 5)
    cand = uniform_actions(torch.tensor((11,) * 4), 3, 17)
    fused = net.q_candidates(net.features(obs), cand)
    with torch.no_grad():
        torch.testing.assert_close(fused, net.q_values(obs, cand), rtol=1e-5, atol=1e-5)


def test_argmax_candidates_picks_the_row_of_the_max():
    q = torch.tensor([[0.0, 2.0, 1.0], [5.0, -1.0, 4.0]])
    cand = torch.arange(18).view(2, 3, 3)
    best, best_q = argmax_candidates(q, cand)
    torch.testing.assert_close(best, torch.tensor([[3, 4, 5], [9, 10, 11]]))
    torch.testing.assert_close(best_q, torch.tensor([2.0, 5.0]))


def n_step_loop(r, d, v, stop):
    B, T = r.shape
    out = []
    for b in range(B):
        g, scale = 0.0, 1.0
        for i in range(T):
            g += scale * float(r[b, i])
            scale *= float(d[b, i])
            if bool(stop[b, i]) or i == T - 1:
                break
        out.append(g + scale * float(v[b]))
    return torch.tensor(out)


@pytest.mark.parametrize("T", [1, 3, 5])
def test_n_step_target_matches_a_python_loop(T):
    B = 37
    r = torch.randn(B, T)
    d = 0.9 * (torch.rand(B, T) > 0.2).float()
    stop = torch.rand(B, T) < 0.3
    v = torch.randn(B)
    got = n_step_target(r, d, v, stop)
    torch.testing.assert_close(got, n_step_loop(r, d, v, stop), rtol=1e-5, atol=1e-5)
    lam1 = td_lambda(r, d, v[:, None].expand(B, T), lam=1.0, stop=stop)
    torch.testing.assert_close(got, lam1, rtol=1e-5, atol=1e-5)
    k = bootstrap_index(stop)
    for b in range(B):
        hits = torch.nonzero(stop[b]).flatten().tolist()
        assert int(k[b]) == (hits[0] if hits else T - 1)


def test_n_step_target_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"r_t, discount_t and stop must all be \[B, T\]"):
        n_step_target(torch.zeros(3, 2), torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"v_boot must be \[B=3\]"):
        n_step_target(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(4), torch.zeros(3, 2))


def _batch(B=6, T=3, obs_dim=5):
    return dict(
        obs=torch.randn(B, obs_dim),
        action=uniform_actions(torch.tensor(SIZES), B, 1)[:, 0],
        r_t=torch.randn(B, T),
        discount_t=torch.full((B, T), 0.9),
        stop=torch.rand(B, T) < 0.3,
        boot_obs=torch.randn(B, obs_dim),
    )


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_losses_gradient_isolation():
    import copy

    net = make_net()
    target = copy.deepcopy(net).requires_grad_(False)
    b = _batch()
    out = aql_losses(net, target, **b, num_proposal=5, num_uniform=9, entropy_samples=3)
    assert set(out) == {
        "critic_loss",
        "proposal_loss",
        "q_mean",
        "target_mean",
        "proposal_entropy",
        "td_abs",
    }
    assert out["td_abs"].shape == (b["obs"].shape[0],) and not out["td_abs"].requires_grad
    out["critic_loss"].backward(retain_graph=True)
    assert all(g is None for g in _grads(net.proposal))  # TD loss never reaches the proposal
    assert any(g is not None and g.abs().sum() > 0 for g in _grads(net.q))
    net.zero_grad(set_to_none=True)
    out["proposal_loss"].backward()
    assert all(g is None for g in _grads(net.q))  # proposal loss never reaches Q or encoder
    assert net.proposal.heads_w.grad.abs().sum() > 0
    assert all(p.grad is None for p in target.parameters())


def test_losses_target_uses_the_argmax_of_the_target_network():
    import copy

    net = make_net()
    target = copy.deepcopy(net)
    with torch.no_grad():
        for p in target.q.parameters():
            p.add_(0.3 * torch.randn_like(p))
    b = _batch(B=4, T=1)
    b["stop"][:] = True
    every = enumerate_actions(SIZES)[None].expand(4, -1, -1)
    for double_q in (True, False):
        out = aql_losses(
            net, target, **b, num_proposal=0, num_uniform=0, enumerate_all=True, double_q=double_q
        )
        with torch.no_grad():
            chooser = net if double_q else target
            a_star = chooser.q_values(b["boot_obs"], every).argmax(1)
            v = target.q_values(b["boot_obs"], every)[torch.arange(4), a_star]
        expected = b["r_t"][:, 0] + 0.9 * v
        torch.testing.assert_close(out["target_mean"], expected.mean(), rtol=1e-5, atol=1e-5)
        assert float(out["proposal_loss"]) == 0.0


def test_proposal_loss_pulls_the_proposal_to_the_argmax():
    import copy

    net = make_net(seed=3)
    target = copy.deepcopy(net)
    obs = torch.randn(1, 5)
    feat = net.features(obs)
    every = enumerate_actions(SIZES)[None]
    with torch.no_grad():
        best = every[0, net.q_values(obs, every).argmax(1)]
    opt = torch.optim.Adam(net.proposal.parameters(), lr=0.05)
    b = _batch(B=1)
    b["obs"] = obs
    p0 = net.proposal.log_prob(feat.detach(), best[:, None]).exp().item()
    for _ in range(60):
        out = aql_losses(net, target, **b, num_proposal=4, num_uniform=64, entropy_coef=0.0)
        opt.zero_grad()
        out["proposal_loss"].backward()
        opt.step()
    p1 = net.proposal.log_prob(feat.detach(), best[:, None]).exp().item()
    assert p0 < 0.2 and p1 > 0.9, (p0, p1)


def test_candidate_actions_errors():
    net = make_net(with_proposal=False)
    feat = torch.randn(2, 16)
    with pytest.raises(ValueError, match="num_proposal > 0 needs a net with a proposal"):
        candidate_actions(net, feat, 3, 0)
    with pytest.raises(ValueError, match="num_proposal \\+ num_uniform must be >= 1"):
        candidate_actions(net, feat, 0, 0)


def test_weighted_critic_loss_and_td_abs():
    import copy

    net = make_net()
    target = copy.deepcopy(net)
    b = _batch()
    B = b["obs"].shape[0]
    weight = torch.rand(B)
    kw = dict(num_proposal=5, num_uniform=9, huber=True)

    def losses(**extra):
        return aql_losses(
            net, target, **b, **kw, generator=torch.Generator().manual_seed(0), **extra
        )

    plain, out = losses(), losses(weight=weight)
    td = plain["td_abs"]
    # the Huber loss depends on |y - q| only: rebuild it from td_abs
    huber = torch.nn.functional.smooth_l1_loss(td, torch.zeros(B), reduction="none")
    torch.testing.assert_close(plain["critic_loss"].detach(), huber.mean())
    torch.testing.assert_close(out["td_abs"], td)
    torch.testing.assert_close(out["critic_loss"].detach(), (weight * huber).mean())
    torch.testing.assert_close(losses(weight=torch.ones(B))["critic_loss"], plain["critic_loss"])
    with pytest.raises(ValueError, match="weight"):
        losses(weight=torch.ones(B + 1))


@pytest.mark.parametrize(
    ("sizes", "code"),
    [((11,) * 4, "onehot"), ((2,) * 7, "onehot"), ((1, 5, 3), "onehot"), ((11,) * 4, "ordinal")],
)
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_candidate_q_in_chunks_equals_unfused_q(sizes, code, backend):
    # 5 x 500 = 2500 candidates: more than one chunk of the CPU path (2048 rows)
    torch.manual_seed(1)
    spec = ActionAdapter("multi_discrete", sizes, (0,) * len(sizes), code)
    net = AQLNet(make_body((5,), 32), 5, spec, hidden=32, proposal_width=8)
    obs = torch.randn(5, 5)
    cand = uniform_actions(torch.tensor(sizes), 5, 500)
    fused = net.q_candidates(net.features(obs), cand, backend=backend)
    with torch.no_grad():
        torch.testing.assert_close(fused, net.q_values(obs, cand), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="actions"):
        net.q_candidates(net.features(obs), cand[:4])
