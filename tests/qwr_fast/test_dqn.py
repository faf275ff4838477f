"""DQN blueprint trainer: double-Q target, smoke run, exact resume, blueprint loading."""

from __future__ import annotations

import torch

from qwr_fast.trainers.dqn import DQNConfig, DQNTrainer, DuelingQ, double_q_loss, load_q_blueprint


def test_double_q_target_and_isolation():
    q, target = DuelingQ((3,), 4, hidden=8), DuelingQ((3,), 4, hidden=8)
    obs, nxt = torch.randn(5, 3), torch.randn(5, 3)
    a, r, d = torch.randint(0, 4, (5,)), torch.randn(5), torch.tensor([0.9, 0, 0.9, 0.9, 0])
    out = double_q_loss(q, target, obs, a, r, d, nxt)
    out["loss"].backward()
    assert all(p.grad is None for p in target.parameters())
    with torch.no_grad():
        y = r + d * target(nxt)[torch.arange(5), q(nxt).argmax(-1)]
        want = torch.nn.functional.smooth_l1_loss(q(obs)[torch.arange(5), a], y)
    torch.testing.assert_close(out["loss"].detach(), want)


def test_dueling_head_mean_zero_advantage():
    q = DuelingQ((3,), 4, hidden=8)
    x = torch.randn(6, 3)
    h = q.body(x)
    torch.testing.assert_close(q(x).mean(-1), q.value(h).squeeze(-1))


def _cfg(tmp_path, **kw):
    base = dict(env="BitFlip-4", total_steps=200, num_envs=2, buffer_size=400,
                learning_starts=40, train_every=2, target_every=10, hidden=8, eval_every=100,
                eval_episodes=2, checkpoint_every=100, run_dir=str(tmp_path / "run"),
                progress=False)  # fmt: skip
    return DQNConfig(**{**base, **kw})


def test_smoke_resume_and_load(tmp_path):
    # constant epsilon: its schedule depends on total_steps, which the resume changes
    kw = dict(eps_start=0.5, eps_end=0.5)
    full = DQNTrainer(_cfg(tmp_path / "a", **kw))
    full.train()
    DQNTrainer(_cfg(tmp_path / "b", total_steps=100, **kw)).train()
    resumed = DQNTrainer.resumed(str(tmp_path / "b" / "run"), total_steps=200)
    resumed.train()
    for k, v in full.q.state_dict().items():
        assert torch.equal(v, resumed.q.state_dict()[k]), k
    q, cfg, replay = load_q_blueprint(tmp_path / "a" / "run" / "checkpoint.pt")
    assert cfg["env"] == "BitFlip-4" and len(replay) == 200
    torch.testing.assert_close(q(torch.ones(1, 4)), full.q(torch.ones(1, 4)))
    for f in ("eval.csv", "train.csv", "curve.png", "config.json"):
        assert (tmp_path / "a" / "run" / f).exists(), f
