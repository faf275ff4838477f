"""PPO blueprint trainer: GAE against a Python loop, loss masking and clipping, smoke run,
exact resume, checkpoint loading, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwr_fast.blueprints import load_blueprint
from qwr_fast.checkpoint import CheckpointError, save_checkpoint
from qwr_fast.cli.train import ppo_train as main
from qwr_fast.estimators import gae
from qwr_fast.nn.actor_critic import ActorCritic
from qwr_fast.objectives.ppo import ppo_loss
from qwr_fast.trainers.ppo import PPOConfig, PPOTrainer


def gae_loop(r, d, v_tm1, v_t, lam):
    T, B = r.shape
    out = np.zeros((T, B))
    for b in range(B):
        a = 0.0
        for t in reversed(range(T)):
            delta = r[t, b] + d[t, b] * v_t[t, b] - v_tm1[t, b]
            a = delta + d[t, b] * lam * a
            out[t, b] = a
    return out


@pytest.mark.parametrize("T, B", [(1, 1), (7, 3), (13, 5)])
def test_gae_matches_loop(T, B):
    r, v_tm1, v_t = torch.randn(T, B), torch.randn(T, B), torch.randn(T, B)
    d = 0.99 * (torch.rand(T, B) > 0.2).float()
    got = gae(r, d, v_tm1, v_t, lam=0.9)
    want = gae_loop(*(x.double().numpy() for x in (r, d, v_tm1, v_t)), 0.9)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_gae_shape_check():
    with pytest.raises(ValueError, match=r"\[T, B\]"):
        gae(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, 2), lam=0.9)


def _batch(agent, n=12, k=4):
    obs = torch.randn(n, 5)
    actions = torch.randint(0, k, (n,))
    with torch.no_grad():
        logits, v = agent(obs)
        logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
    return obs, actions, logp, torch.randn(n), torch.randn(n), v


def test_ppo_loss_weight_equals_subset():
    agent = ActorCritic((5,), 4, hidden=8)
    obs, a, logp, adv, ret, v = _batch(agent)
    kw = dict(clip_coef=0.2, ent_coef=0.01, vf_coef=0.5)
    w = torch.zeros(12)
    w[:7] = 1.0
    logp_old = logp - 0.3 * torch.randn(12)
    masked = ppo_loss(agent, obs, a, logp_old, adv, ret, v, weight=w, **kw)
    sub = ppo_loss(agent, obs[:7], a[:7], logp_old[:7], adv[:7], ret[:7], v[:7], **kw)
    for k in sub:
        torch.testing.assert_close(masked[k], sub[k], rtol=1e-5, atol=1e-6)


def test_ppo_loss_policy_weight_masks_only_the_policy_terms():
    agent = ActorCritic((5,), 4, hidden=8)
    obs, a, logp, adv, ret, v = _batch(agent)
    kw = dict(clip_coef=0.2, ent_coef=0.01, vf_coef=0.5)
    pw = torch.zeros(12)
    pw[3:9] = 1.0
    logp_old = logp - 0.3 * torch.randn(12)
    masked = ppo_loss(agent, obs, a, logp_old, adv, ret, v, policy_weight=pw, **kw)
    sub = ppo_loss(agent, obs[3:9], a[3:9], logp_old[3:9], adv[3:9], ret[3:9], v[3:9], **kw)
    full = ppo_loss(agent, obs, a, logp_old, adv, ret, v, **kw)
    for k in ("policy_loss", "entropy", "approx_kl", "clip_frac"):
        torch.testing.assert_close(masked[k], sub[k], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(masked["value_loss"], full["value_loss"])


def test_action_mask_gives_illegal_actions_zero_probability():
    agent = ActorCritic((7,), 3, hidden=8, action_mask=(4, 7))
    obs = torch.randn(6, 7)
    obs[:, 4:] = torch.tensor([[1.0, 0.0, 1.0]] * 3 + [[0.0, 1.0, 0.0]] * 3)
    logits, _ = agent(obs)
    p = torch.softmax(logits, -1)
    assert (p[obs[:, 4:] < 0.5] == 0).all() and torch.isfinite(torch.log_softmax(logits, -1)).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(6))
    with pytest.raises(ValueError, match="action_mask"):
        ActorCritic((7,), 3, hidden=8, action_mask=(3, 7))


def test_ppo_loss_clipping_stops_the_policy_gradient():
    # ratio = e > 1 + clip on every row: rows with a positive normalised advantage take the
    # clipped (constant) branch, the others the unclipped one.
    agent = ActorCritic((5,), 4, hidden=8)
    obs, a, logp, adv, ret, v = _batch(agent)
    kw = dict(clip_coef=0.2, ent_coef=0.0, vf_coef=0.0)
    out = ppo_loss(agent, obs, a, logp - 1.0, adv, ret, v, **kw)
    assert out["clip_frac"] == 1.0
    got = torch.autograd.grad(out["policy_loss"], list(agent.policy.parameters()))
    logits, _ = agent(obs)
    ratio = (torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1) - logp + 1.0).exp()
    adv_n = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
    ref = (-adv_n * ratio * (adv_n < 0)).sum() / len(adv)
    want = torch.autograd.grad(ref, list(agent.policy.parameters()))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7)


def _cfg(tmp_path, **kw):
    base = dict(
        env="BitFlip-4",
        preset="bitflip",
        total_steps=256,
        num_envs=4,
        num_steps=16,
        num_minibatches=2,
        hidden=16,
        eval_every=128,
        eval_episodes=2,
        eval_max_steps=50,
        checkpoint_every=128,
        run_dir=str(tmp_path / "run"),
        progress=False,
        tensorboard=False,
    )
    return PPOConfig(**{**base, **kw})


def test_trainer_smoke_files_and_blueprint(tmp_path):
    cfg = _cfg(tmp_path)
    last = PPOTrainer(cfg).train()
    assert last["step"] == 256
    run = tmp_path / "run"
    for f in ("checkpoint.pt", "ckpt_128.pt", "ckpt_256.pt", "eval.csv", "train.csv",
              "curve.png", "config.json"):  # fmt: skip
        assert (run / f).exists(), f
    net, saved = load_blueprint(run / "checkpoint.pt")
    assert saved["env"] == "BitFlip-4" and isinstance(net, ActorCritic)
    logits, value = net(torch.zeros(3, 4))
    assert logits.shape == (3, 4) and value.shape == (3,)


def test_resume_equals_uninterrupted(tmp_path):
    # no lr annealing: its schedule depends on total_steps, which the resume changes
    full = PPOTrainer(_cfg(tmp_path / "a", anneal_lr=False))
    full.train()
    PPOTrainer(_cfg(tmp_path / "b", anneal_lr=False, total_steps=128)).train()
    resumed = PPOTrainer.resumed(str(tmp_path / "b" / "run"), total_steps=256)
    assert resumed.global_step == 128
    resumed.train()
    assert resumed.global_step == full.global_step == 256
    for k, v in full.agent.state_dict().items():
        assert torch.equal(v, resumed.agent.state_dict()[k]), k
    rows = (tmp_path / "b" / "run" / "eval.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["128", "256"]


def test_load_blueprint_rejects_other_checkpoints(tmp_path):
    path = tmp_path / "x.pt"
    save_checkpoint(path, {"format": 1, "policy": {}})
    with pytest.raises(CheckpointError, match="not a ppo-train checkpoint"):
        load_blueprint(path)


def test_config_validation_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="--num-envs"):
        _cfg(tmp_path, num_envs=0).validate()
    with pytest.raises(ValueError, match="--num-minibatches"):
        _cfg(tmp_path, num_minibatches=5).validate()
    assert main(["--preset", "nope"]) == 2
    assert main(["--env", "BitFlip-4", "--num-envs", "0", "--no-progress"]) == 2
    assert main(["--env", "Pendulum-v1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--preset must be one of" in err and "--num-envs" in err
