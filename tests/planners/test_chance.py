"""Planners do not see the real env's future chance: every restore of a search draws fresh
chance from the planner's generator unless ``oracle_chance`` (issue: planners that cannot see
the future)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwr_fast.envs import EnvState, make
from qwr_fast.nn.actor_critic import ActorCritic
from qwr_fast.nn.dueling_q import DuelingQ
from qwr_fast.planners import (
    MCTS,
    Budget,
    PolicyFineTune,
    PolicyFineTuneConfig,
    QFineTune,
    QFineTuneConfig,
    Sparta,
    SpartaConfig,
    acceptance_test,
)
from qwr_fast.planners.core import chance_word, restore
from tests.planners.test_planners import BANDIT, UNIFORM, FixedNet, bitflip

OBS = np.array(BANDIT, dtype=np.float32)


class SpySim:
    """Proxy of a vector env that records the ``reseed`` of every ``set_state`` call."""

    def __init__(self, env) -> None:
        self.env, self.reseeds = env, []

    def set_state(self, state, indices=None, *, reseed=None):
        self.reseeds.append(reseed)
        return self.env.set_state(state, indices, reseed=reseed)

    def __getattr__(self, name):
        return getattr(self.env, name)


def _planners(sim, oracle: bool):
    kw = dict(oracle_chance=oracle)
    ft = PolicyFineTuneConfig(horizon=2, num_minibatches=1, epochs=1, accept_rounds=1)
    q = QFineTuneConfig(horizon=2, updates=2, batch_size=4, accept_rounds=1)
    torch.manual_seed(0)
    return {
        "sparta": Sparta(FixedNet(UNIFORM), sim, SpartaConfig(horizon=2), **kw),
        "mcts": MCTS(FixedNet(UNIFORM), sim, **kw),
        "policy-ft": PolicyFineTune(ActorCritic((4,), 4, hidden=8), sim, ft, **kw),
        "q-ft": QFineTune(DuelingQ((4,), 4, hidden=8), sim, q, **kw),
    }


@pytest.mark.parametrize("name", ["sparta", "mcts", "policy-ft", "q-ft"])
@pytest.mark.parametrize("oracle", [False, True])
def test_every_restore_of_a_search_draws_fresh_chance(name, oracle):
    env, real, root = bitflip(BANDIT, 4, horizon=3)
    sim = SpySim(env)
    planner = _planners(sim, oracle)[name]
    gen = torch.Generator().manual_seed(0)
    planner.plan(root, OBS, Budget(env_steps=64), generator=gen)
    assert sim.reseeds, "the search restored nothing"
    if oracle:
        assert all(r is None for r in sim.reseeds)
    else:
        assert all(isinstance(r, int) for r in sim.reseeds), sim.reseeds
        assert len(set(sim.reseeds)) > 1  # a new word per restore, not one per search


def test_paired_sparta_shares_one_fresh_word_per_round():
    env, real, root = bitflip(BANDIT, 4, horizon=3)
    beliefs = EnvState(root.config, {k: np.repeat(v, 4, 0) for k, v in root.arrays.items()})
    sim = SpySim(env)
    Sparta(FixedNet(UNIFORM), sim, SpartaConfig(horizon=2)).plan(
        beliefs, OBS, Budget(env_steps=32), generator=torch.Generator().manual_seed(0)
    )
    assert len(sim.reseeds) == 4
    for r in sim.reseeds:  # every action of a round meets the same chance
        assert isinstance(r, list) and len(r) == 4 and len(set(r)) == 1
    assert len({r[0] for r in sim.reseeds}) == 4  # and each round new chance


def test_acceptance_test_pairs_candidate_and_blueprint_on_the_same_chance():
    env, real, root = bitflip(BANDIT, 4, horizon=3)
    sim = SpySim(env)
    kw = dict(rounds=3, horizon=2, gamma=0.9, epsilon=0.0)
    acceptance_test(sim, root, FixedNet(UNIFORM), FixedNet(UNIFORM), **kw)
    r = sim.reseeds
    assert len(r) == 6 and r[0::2] == r[1::2] and len(set(r[0::2])) == 3


def test_a_sim_without_reseed_is_refused_with_a_clear_error():
    class OldSim:
        def set_state(self, state, indices=None):
            return None

    with pytest.raises(TypeError, match="oracle_chance=True"):
        restore(OldSim(), None, reseed=1)
    assert restore(OldSim(), None, reseed=None) is None
    with pytest.raises(TypeError, match="oracle_chance must be a bool"):
        Sparta(FixedNet(UNIFORM), make("BitFlip-4", 4, seed=0), oracle_chance=1)


def _minatar():
    pytest.importorskip("minatar", reason="MinAtar is not installed (pip install '.[minatar]')")
    return "MinAtar/Breakout"


def _play(env, actions: np.ndarray) -> np.ndarray:
    return np.stack([env.step(actions[t])[0] for t in range(len(actions))])


@pytest.mark.parametrize("oracle", [False, True])
def test_minatar_simulators_know_the_real_future_only_as_oracles(oracle):
    # The real game and 4 simulators restored from its state step under the same actions:
    # with oracle chance they replay its future exactly, with fresh chance each of them
    # diverges from it (sticky actions, ball and spawn draws are MinAtar's chance).
    env_id = _minatar()
    real = make(env_id, 1, seed=3)
    real.reset()
    sim = make(env_id, 4, seed=3)
    word = chance_word(torch.Generator().manual_seed(0), oracle_chance=oracle)
    restore(sim, real.get_state(0), reseed=word)
    acts = np.random.default_rng(0).integers(0, real.single_action_space.n, (200, 1))
    real_obs = _play(real, acts)  # [T, 1, *O]
    sim_obs = _play(sim, np.repeat(acts, 4, 1))  # [T, 4, *O]
    same = (sim_obs == real_obs).reshape(200, 4, -1).all(-1).all(0)  # [4] never differed
    assert same.all() if oracle else not same.any()


def test_searching_does_not_touch_the_real_future():
    # The real game's trajectory under a fixed action sequence is the same whether or not a
    # planner searched from it before every move.
    env_id = _minatar()
    acts = np.random.default_rng(1).integers(0, 3, (30, 1))
    sim = make(env_id, 4, seed=0)
    torch.manual_seed(0)
    real = make(env_id, 1, seed=5)
    real.reset(seed=5)
    net = ActorCritic(real.single_observation_space.shape, real.single_action_space.n, hidden=8)
    planner = MCTS(net, sim)
    gen = torch.Generator().manual_seed(0)
    searched = []
    for t in range(30):
        root = real.get_state(0)
        planner.plan(root, root.arrays["obs"][0], Budget(16), generator=gen)
        searched.append(real.step(acts[t])[0])
    plain = make(env_id, 1, seed=5)
    plain.reset(seed=5)
    np.testing.assert_array_equal(np.stack(searched), _play(plain, acts))
