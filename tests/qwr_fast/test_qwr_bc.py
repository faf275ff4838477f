"""Behaviour cloning (``qwr-train --algo bc``), the offline baseline of QWR and AWR."""

import csv
import math

import numpy as np
import torch

from qwr_fast.cli.qwr_collect import main as qwr_collect_main
from qwr_fast.data.replay import Replay
from qwr_fast.nn.policy import GaussianPolicy
from qwr_fast.objectives.qwr import bc_actor_loss
from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer

TINY = dict(
    steps_per_epoch=40,
    critic_steps=4,
    actor_steps=20,
    batch_size=32,
    hidden=32,
    eval_every=80,
    eval_episodes=2,
    eval_max_steps=20,
    checkpoint_every=80,
    progress=False,
    tensorboard=False,
)


def test_bc_loss_is_the_negative_log_likelihood_of_the_stored_actions():
    torch.manual_seed(0)
    policy = GaussianPolicy((3,), 2, hidden=8, std=0.4)
    replay = Replay(20, 1, (3,), policy.mu_dim, (2,))
    for _ in range(10):
        obs = torch.randn(1, 3)
        replay.add(obs, policy.mu(obs).detach(), torch.randn(1, 2), torch.zeros(1),
                   torch.zeros(1, dtype=torch.bool), torch.zeros(1, dtype=torch.bool),
                   torch.randn(1, 3), torch.zeros(1, policy.mu_dim))  # fmt: skip
    batch = replay.sample(16, 1, generator=torch.Generator().manual_seed(1))
    loss = bc_actor_loss(policy, batch)["actor_loss"]
    mean = policy.mu(batch.obs)[:, :2]
    var = 0.4**2
    nll = ((batch.action - mean) ** 2 / (2 * var)).sum(1) + 2 * (0.5 * math.log(2 * math.pi * var))
    torch.testing.assert_close(loss, nll.mean())
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters() if p.requires_grad)


def test_offline_bc_fits_the_dataset_and_never_trains_a_critic(tmp_path):
    random_data = tmp_path / "random.npz"
    args = ["--env", "Pendulum-v1", "--steps", "400", "--out", str(random_data)]
    assert qwr_collect_main(args) == 0
    with np.load(random_data) as d:  # relabel: the logged actions become a function of the state
        arrays = dict(d)
    arrays["action"] = (1.5 * np.tanh(2.0 * arrays["obs"][:, 1:2])).astype(arrays["action"].dtype)
    data = tmp_path / "data.npz"
    np.savez(data, **arrays)
    cfg = QWRConfig(**TINY, env="Pendulum-v1", algo="bc", dataset=str(data), total_steps=160,
                    policy_lr=3e-3, run_dir=str(tmp_path / "bc"))  # fmt: skip
    trainer = QWRTrainer(cfg)
    critic_before = {k: v.clone() for k, v in trainer.critic.state_dict().items()}
    replay = trainer.replay
    obs = trainer.net_obs(replay.obs[: replay.size, 0])
    actions = replay.action[: replay.size, 0]
    with torch.no_grad():
        logp_before = trainer.policy.log_prob(obs, actions).mean()
    trainer.train()
    with torch.no_grad():
        logp_after = trainer.policy.log_prob(obs, actions).mean()
    assert logp_after > logp_before + 0.5, (logp_before, logp_after)
    assert all(torch.equal(v, critic_before[k]) for k, v in trainer.critic.state_dict().items())
    with open(tmp_path / "bc" / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(math.isnan(float(r["critic_loss"])) for r in rows)
    assert all(math.isfinite(float(r["actor_loss"])) for r in rows)
