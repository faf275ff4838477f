"""Q-value fine-tuning (Algorithm 2) on the BitFlip bandit, with and without a global replay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwr_fast.data.replay import Replay
from qwr_fast.nn.dueling_q import DuelingQ, QBlueprint
from qwr_fast.planners import Budget, QFineTune, QFineTuneConfig
from tests.planners.test_planners import BANDIT, CountingEnv, bitflip

OBS = np.array(BANDIT, dtype=np.float32)


def _blueprint_not_choosing(action: int) -> DuelingQ:
    for seed in range(20):
        torch.manual_seed(seed)
        q = DuelingQ((4,), 4, hidden=16)
        if int(q(torch.as_tensor(OBS[None])).argmax()) != action:
            return q
    raise AssertionError("no seed gives a blueprint that avoids the action")


# gamma = 0 makes the targets the immediate rewards: Q*(s*, .) = [-1, -1, 1, -1]
CFG = dict(horizon=1, explore=1.0, updates=300, batch_size=32, lr=1e-2, gamma=0.0)


def test_q_finetuning_finds_the_good_arm_and_passes_acceptance():
    sim, real, root = bitflip(BANDIT, 16, horizon=1)
    q_bp = _blueprint_not_choosing(2)
    before = {k: v.clone() for k, v in q_bp.state_dict().items()}
    planner = QFineTune(q_bp, sim, QFineTuneConfig(**CFG))
    gen = torch.Generator().manual_seed(0)
    res = planner.plan(root, OBS, Budget(env_steps=16 * 8), generator=gen)
    assert res.action == 2 and res.adopted and res.grad_steps == 300
    np.testing.assert_allclose(res.action_values, [-1, -1, 1, -1], atol=0.1)
    for k, v in q_bp.state_dict().items():  # the blueprint is not modified
        assert torch.equal(v, before[k]), k


def _global_replay(reward_of_0: float) -> Replay:
    """A replay in which, at s*, action 0 earns ``reward_of_0`` and ends the episode."""
    rep = Replay(64, 1, (4,), 1, action_dtype=torch.int64)
    o = torch.as_tensor(OBS[None])
    for _ in range(64):
        rep.add(o, torch.zeros(1, 1), torch.zeros(1, dtype=torch.int64),
                torch.tensor([reward_of_0]), torch.tensor([True]), torch.tensor([False]),
                o, torch.zeros(1, 1))  # fmt: skip
    return rep


@pytest.mark.parametrize("p_global, action", [(1.0, 0), (0.0, 2)])
def test_global_replay_share(p_global, action):
    sim, real, root = bitflip(BANDIT, 16, horizon=1)
    q_bp = _blueprint_not_choosing(action)
    cfg = QFineTuneConfig(**{**CFG, "p_global": p_global, "accept_rounds": 0})
    planner = QFineTune(q_bp, sim, cfg, replay=_global_replay(5.0))
    res = planner.plan(root, OBS, Budget(env_steps=16 * 8), generator=torch.Generator())
    assert res.action == action and res.adopted


@pytest.mark.parametrize("budget", [0, 15, 16, 40, 100])
def test_q_finetuning_budget_exact(budget):
    env, real, root = bitflip([0, 0, 1, 1], 4, horizon=4)
    sim = CountingEnv(env)
    torch.manual_seed(0)
    cfg = QFineTuneConfig(horizon=3, updates=5, accept_rounds=1)
    res = QFineTune(DuelingQ((4,), 4, hidden=8), sim, cfg).plan(
        root, np.array([0, 0, 1, 1], dtype=np.float32), Budget(env_steps=budget)
    )
    assert res.env_steps == sim.steps <= budget
    assert (res.grad_steps > 0) == (budget >= 3 * 4 * 3)  # one batch + two acceptance batches


@pytest.mark.parametrize("beliefs", [False, True], ids=["exact-root", "belief-root"])
def test_q_finetuning_acts_legally_in_hanabi(beliefs):
    """Hanabi raises on an illegal action. Uniform exploration (explore 1), greedy play of an
    untrained Q and the acceptance test would each pick illegal actions unless Q-value
    fine-tuning masks them from the observations' legal-action mask."""
    from qwr_fast.envs import make

    real, sim = make("Hanabi-Small", 1, seed=0), make("Hanabi-Small", 8, seed=1)
    obs, _ = real.reset(seed=0)
    torch.manual_seed(0)
    q_bp = DuelingQ(real.single_observation_space.shape, real.single_action_space.n, hidden=16)
    cfg = QFineTuneConfig(horizon=4, explore=1.0, updates=20, accept_rounds=1)
    planner = QFineTune(q_bp, sim, cfg)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    mask = real.action_mask_slice
    for _ in range(6):  # a few moves of the real game, each searched
        root = real.belief_states(0, 8, rng) if beliefs else real.get_state(0)
        legal = obs[0][mask] > 0.5
        res = planner.plan(root, obs[0], Budget(env_steps=8 * 4 * 4), legal=legal, generator=gen)
        assert res.grad_steps == 20 and legal[res.action]
        obs, _, term, trunc, _ = real.step(np.array([res.action]))
        if term[0] or trunc[0]:
            break
    # the masked blueprint view: illegal actions at -inf, the value over the legal ones
    x = torch.as_tensor(obs)
    (q, _), (masked, value) = q_bp.as_blueprint()(x), QBlueprint(q_bp, mask)(x)
    legal = torch.as_tensor(obs[:, mask] > 0.5)
    assert torch.isinf(masked[~legal]).all() and torch.equal(masked[legal], q[legal])
    assert torch.equal(value, q.masked_fill(~legal, -torch.inf).max(-1).values)
