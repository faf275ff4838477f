"""DQN blueprint trainer: double-Q target, smoke run, exact resume, blueprint loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwr_fast.blueprints import load_q_blueprint
from qwr_fast.nn.dueling_q import DuelingQ
from qwr_fast.objectives.dqn import double_q_loss
from qwr_fast.trainers.dqn import DQNConfig, DQNTrainer


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


def test_weighted_loss_and_td_abs():
    q, target = DuelingQ((3,), 4, hidden=8), DuelingQ((3,), 4, hidden=8)
    obs, nxt = torch.randn(5, 3), torch.randn(5, 3)
    a, r, d = torch.randint(0, 4, (5,)), torch.randn(5), torch.full((5,), 0.9)
    w = torch.tensor([1.0, 0.5, 0.0, 0.25, 1.0])
    out = double_q_loss(q, target, obs, a, r, d, nxt, weight=w)
    with torch.no_grad():
        y = r + d * target(nxt)[torch.arange(5), q(nxt).argmax(-1)]
        q_sa = q(obs)[torch.arange(5), a]
        huber = torch.nn.functional.smooth_l1_loss(q_sa, y, reduction="none")
    torch.testing.assert_close(out["loss"].detach(), (w * huber).mean())
    torch.testing.assert_close(out["td_abs"], (y - q_sa).abs())


def test_prioritized_resume_equals_uninterrupted(tmp_path):
    kw = dict(eps_start=0.5, eps_end=0.5, prioritized=True, per_beta_steps=200)
    full = DQNTrainer(_cfg(tmp_path / "a", **kw))
    full.train()
    DQNTrainer(_cfg(tmp_path / "b", total_steps=100, **kw)).train()
    resumed = DQNTrainer.resumed(str(tmp_path / "b" / "run"), total_steps=200)
    resumed.train()
    for k, v in full.q.state_dict().items():
        assert torch.equal(v, resumed.q.state_dict()[k]), k
    assert np.array_equal(full.replay.tree.tree, resumed.replay.tree.tree)
    assert len(np.unique(full.replay.tree.leaves)) > 2  # priorities came from TD errors
    q, _, replay = load_q_blueprint(tmp_path / "a" / "run" / "checkpoint.pt")
    assert len(replay) == 200


class MaskedToyEnv:
    """A vector env whose observation ends with a legal-action mask (``action_mask_slice``):
    3 features then 5 mask entries, at least one legal; an illegal action is an error.
    Episodes last 3 steps; reward 1 for action 0 when legal."""

    K = 5
    metadata = {"autoreset_mode": "SameStep"}  # the obs after an episode end is its first

    def __init__(self, num_envs, seed=0):
        import gymnasium as gym

        self.num_envs = num_envs
        self.single_action_space = gym.spaces.Discrete(self.K)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (3 + self.K,), np.float32)
        self.action_mask_slice = slice(3, 3 + self.K)
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.illegal_actions = 0

    def _obs(self):
        mask = self.rng.random((self.num_envs, self.K)) < 0.4
        mask[np.arange(self.num_envs), self.rng.integers(0, self.K, self.num_envs)] = True
        feats = self.rng.random((self.num_envs, 3))
        self.obs = np.concatenate([feats, mask], axis=1).astype(np.float32)
        return self.obs

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t[:] = 0
        return self._obs(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        legal = self.obs[np.arange(self.num_envs), 3 + actions] > 0.5
        self.illegal_actions += int((~legal).sum())
        reward = ((actions == 0) & legal).astype(np.float64)
        self.t += 1
        term = self.t >= 3
        self.t[term] = 0
        obs = self._obs()
        info = {"final_obs": obs, "_final_obs": term} if term.any() else {}
        return obs, reward, term, np.zeros(self.num_envs, dtype=bool), info


def test_legal_action_mask_in_acting_exploring_and_bootstrapping(tmp_path, monkeypatch):
    import qwr_fast.envs

    monkeypatch.setattr(qwr_fast.envs, "make", lambda env_id, n, seed=0: MaskedToyEnv(n, seed))
    trainer = DQNTrainer(_cfg(tmp_path, env="masked-toy", eps_start=0.5, eps_end=0.5))
    assert trainer.mask_slice == slice(3, 8)
    for _ in range(60):  # 120 env steps: random, greedy and (from step 40) gradient steps
        trainer.step()
    assert trainer.grad_steps > 0
    assert trainer.env.illegal_actions == 0
    trainer.evaluate(1.0)  # every action random
    trainer.evaluate(0.0)  # every action greedy
    assert trainer.eval_env.illegal_actions == 0
    # random exploration covers the legal actions uniformly
    obs = np.zeros((4000, 8), dtype=np.float32)
    obs[:, 3 + np.array([1, 2, 4])] = 1.0
    acts = trainer._act(obs, 1.0, np.random.default_rng(0), 4000)
    counts = np.bincount(acts, minlength=5)
    assert counts[[0, 3]].sum() == 0 and counts[[1, 2, 4]].min() > 1200
    # greedy action and bootstrap argmax ignore an illegal action with the largest Q
    with torch.no_grad():
        trainer.q.adv.bias[0] = 1e6
    assert (trainer._act(obs[:8], 0.0, np.random.default_rng(0), 8) != 0).all()
    x = torch.as_tensor(obs[:8])
    mask = trainer.legal_mask(x)
    d = torch.full((8,), 0.9)
    a, r = torch.zeros(8, dtype=torch.long), torch.zeros(8)
    out = double_q_loss(trainer.q, trainer.target, x, a, r, d, x, next_mask=mask)
    with torch.no_grad():
        a_next = trainer.q(x).masked_fill(~mask, float("-inf")).argmax(-1)
        y = d * trainer.target(x)[torch.arange(8), a_next]
        q_sa = trainer.q(x)[torch.arange(8), a]
    assert bool((a_next != 0).all())
    torch.testing.assert_close(out["td_abs"], (y - q_sa).abs())
    # a terminal observation without legal actions leaves every action legal
    assert bool(trainer.legal_mask(torch.zeros(2, 8)).all())


def test_hanabi_blueprint_plays_only_legal_moves(tmp_path):
    # The real Hanabi env raises on an illegal action, so a finished run (training, epsilon
    # exploration and evaluation) with prioritised replay is the check.
    pytest.importorskip("pyspiel", reason="the Hanabi env needs open_spiel (extra `hanabi`)")
    cfg = _cfg(tmp_path, env="Hanabi-VerySmall", total_steps=300, prioritized=True)
    trainer = DQNTrainer(cfg)
    trainer.train()
    assert trainer.mask_slice == trainer.env.action_mask_slice
