import copy

import pytest
import torch

from qwr_fast.data.replay import ReplayBatch
from qwr_fast.estimators import td_lambda
from qwr_fast.kernels.sampled_q_head import sampled_q_head_reference
from qwr_fast.nn.policy import CategoricalPolicy, GaussianPolicy, sample_from_mu
from qwr_fast.nn.sampled_q import SampledQ
from qwr_fast.nn.value import StateValue
from qwr_fast.objectives.qwr import (
    awr_actor_loss,
    awr_critic_loss,
    qwr_actor_loss,
    qwr_critic_loss,
)
from qwr_fast.objectives.target_sync import TargetSync

B, T, O, A, K, H = 5, 3, 4, 2, 3, 16


def _batch(kind: str) -> ReplayBatch:
    terminal = torch.rand(B, T) < 0.2
    if kind == "gaussian":
        mu = torch.cat([torch.rand(B, A) * 2 - 1, torch.full((B, A), -0.9)], -1)
        next_mu = torch.cat([torch.rand(B, T, A) * 2 - 1, torch.full((B, T, A), -0.9)], -1)
        action = torch.rand(B, A) * 2 - 1
    else:
        mu, next_mu, action = torch.randn(B, K), torch.randn(B, T, K), torch.randint(0, K, (B,))
    return ReplayBatch(
        obs=torch.randn(B, O),
        mu=mu,
        action=action,
        reward=torch.randn(B, T),
        terminal=terminal,
        truncated=torch.zeros(B, T, dtype=torch.bool),
        stop=terminal | (torch.rand(B, T) < 0.2),
        next_obs=torch.randn(B, T, O),
        next_mu=next_mu,
    )


def _nets(kind: str):
    kw = {"action_dim": A} if kind == "gaussian" else {"num_actions": K}
    q = SampledQ(O, hidden=H, **kw)
    target = copy.deepcopy(q)
    for p in target.parameters():  # a distinct target, so mixing them up shows
        p.data.add_(0.1 * torch.randn_like(p))
    policy = (
        GaussianPolicy((O,), A, hidden=H)
        if kind == "gaussian"
        else CategoricalPolicy((O,), K, hidden=H)
    )
    return q, target, policy


def _loop_lse(v_rows, tau):
    vals = torch.tensor(v_rows, dtype=torch.float64)
    return tau * (torch.logsumexp(vals / tau, 0) - torch.log(torch.tensor(float(len(v_rows)))))


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("value_scale", [False, True])
def test_critic_target_matches_hand_written_loop(kind, value_scale):
    q_net, target, _ = _nets(kind)
    batch = _batch(kind)
    n, gamma, tau, lam = 3, 0.9, 0.5, 0.8
    out = qwr_critic_loss(
        q_net,
        target,
        batch,
        kind=kind,
        n=n,
        gamma=gamma,
        tau=tau,
        lam=lam,
        normalize_q=False,
        value_scale=value_scale,
        generator=torch.Generator().manual_seed(7),
    )
    acts = sample_from_mu(
        kind, batch.next_mu.reshape(B * T, -1), n, generator=torch.Generator().manual_seed(7)
    )
    with torch.no_grad():
        flat_obs = batch.next_obs.reshape(B * T, O)
        qn = sampled_q_head_reference(target.gate(flat_obs), acts, target.head_params())
        qn = qn.view(B, T, n)
    scale = 1 - gamma if value_scale else 1.0
    targets = []
    for b in range(B):  # tau acts on the unscaled Q: qn / scale, backed up, scaled again
        unscaled = [[x / scale for x in qn[b, i].tolist()] for i in range(T)]
        v = [scale * _loop_lse(q_i, tau).item() for q_i in unscaled]
        d = [0.0 if batch.terminal[b, i] else gamma for i in range(T)]
        r = [scale * batch.reward[b, i].item() for i in range(T)]
        g = r[T - 1] + d[T - 1] * v[T - 1]
        for i in range(T - 2, -1, -1):
            g = r[i] + d[i] * (v[i] if batch.stop[b, i] else (1 - lam) * v[i] + lam * g)
        targets.append(g)
    targets = torch.tensor(targets, dtype=torch.float32)
    q = q_net(batch.obs, batch.action).detach()
    torch.testing.assert_close(out["target_mean"], targets.mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        out["critic_loss"].detach(), ((q - targets) ** 2).mean(), rtol=1e-5, atol=1e-6
    )


def _grads(module):
    return [p.grad for p in module.parameters()]


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_qwr_gradient_isolation(kind):
    q_net, target, policy = _nets(kind)
    target.requires_grad_(True)  # even a trainable-looking target must get no gradient
    batch = _batch(kind)
    qwr_critic_loss(q_net, target, batch, kind=kind, n=4)["critic_loss"].backward()
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(q_net.out))
    assert all(g is None for g in _grads(target)) and all(g is None for g in _grads(policy))
    q_net.zero_grad(set_to_none=True)
    qwr_actor_loss(policy, target, batch, n=4)["actor_loss"].backward()
    assert all(g is None for g in _grads(target)) and all(g is None for g in _grads(q_net))
    assert policy.head.weight.grad is not None and policy.head.weight.grad.abs().sum() > 0


def test_awr_gradient_isolation():
    v_net, policy = StateValue((O,), hidden=H), GaussianPolicy((O,), A, hidden=H, learn_std=True)
    v_target = copy.deepcopy(v_net)
    batch = _batch("gaussian")
    awr_critic_loss(v_net, v_target, batch)["critic_loss"].backward()
    assert v_net.out.weight.grad is not None
    assert all(g is None for g in _grads(v_target)) and all(g is None for g in _grads(policy))
    v_net.zero_grad(set_to_none=True)
    awr_actor_loss(policy, v_target, batch)["actor_loss"].backward()
    assert all(g is None for g in _grads(v_target)) and all(g is None for g in _grads(v_net))
    assert policy.log_std.grad is not None and policy.head.weight.grad is not None


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_actor_loss_matches_plain_formula(kind):
    _, target, policy = _nets(kind)
    batch = _batch(kind)
    n = 6
    out = qwr_actor_loss(policy, target, batch, n=n, generator=torch.Generator().manual_seed(3))
    acts = sample_from_mu(kind, batch.mu, n, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        q = sampled_q_head_reference(target.gate(batch.obs), acts, target.head_params())
    adv = q - q.mean(1, keepdim=True)
    adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-5)
    w = torch.exp(adv).clamp(max=20.0)
    obs_rep = batch.obs[:, None].expand(B, n, O).reshape(B * n, O)
    logp = policy.log_prob(obs_rep, acts.reshape(B * n, *acts.shape[2:])).view(B, n)
    torch.testing.assert_close(out["actor_loss"], -(w * logp).mean(), rtol=1e-5, atol=1e-6)


def test_enumerate_actions_weights_by_mu():
    _, target, policy = _nets("categorical")
    batch = _batch("categorical")
    out = qwr_actor_loss(policy, target, batch, enumerate_actions=True, normalize=False)
    acts = torch.arange(K).expand(B, K)
    with torch.no_grad():
        q = sampled_q_head_reference(target.gate(batch.obs), acts, target.head_params())
    sw = torch.softmax(batch.mu, -1)
    w = torch.exp(q - (sw * q).sum(1, keepdim=True)).clamp(max=20.0)
    logp = torch.log_softmax(policy.mu(batch.obs), -1)
    torch.testing.assert_close(
        out["actor_loss"], -(w * sw * logp).sum() / sw.sum(), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="categorical"):
        qwr_actor_loss(
            GaussianPolicy((O,), A, hidden=H), target, _batch("gaussian"), enumerate_actions=True
        )


def test_awr_actor_weights_use_td_lambda_advantage():
    v_target, policy = StateValue((O,), hidden=H), GaussianPolicy((O,), A, hidden=H)
    batch = _batch("gaussian")
    out = awr_actor_loss(
        policy, v_target, batch, gamma=0.9, lam=0.7, value_scale=False, normalize=False
    )
    with torch.no_grad():
        v_next = v_target(batch.next_obs.reshape(B * T, O)).view(B, T)
        d = 0.9 * (~batch.terminal).float()
        adv = td_lambda(batch.reward, d, v_next, lam=0.7, stop=batch.stop) - v_target(batch.obs)
    w = torch.exp(adv).clamp(max=20.0)
    want = -(w * policy.log_prob(batch.obs, batch.action)).mean()
    torch.testing.assert_close(out["actor_loss"], want, rtol=1e-5, atol=1e-6)


def test_target_sync_hard_and_polyak():
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    sync = TargetSync(online, target, every=3)
    assert torch.equal(target.weight, online.weight)
    before = target.weight.clone()
    online.weight.data += 1
    sync.step()
    sync.step()
    assert torch.equal(target.weight, before)
    sync.step()
    assert torch.equal(target.weight, online.weight)
    soft = TargetSync(online, target, polyak=0.25)
    online.weight.data += 4
    soft.step()
    torch.testing.assert_close(target.weight, online.weight - 3.0)
    with pytest.raises(ValueError, match="polyak"):
        TargetSync(online, target, polyak=0.0)
