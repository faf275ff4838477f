"""MinAtar vector envs (``qwr_fast.envs.minatar``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from qwr_fast import envs
from tests.envs.loop_contract import check_clone, check_replay, check_seeding, check_time_limit

pytest.importorskip(
    "minatar", reason="MinAtar suite needs the extra: pip install qwr_fast[minatar]"
)

GAMES = ["MinAtar/Asterix", "MinAtar/Breakout", "MinAtar/Freeway", "MinAtar/Seaquest",
         "MinAtar/SpaceInvaders"]  # fmt: skip


def test_spaces_and_ids():
    assert set(GAMES) <= set(envs.list_envs())
    env = envs.make("MinAtar/Breakout", 2, seed=0)
    assert env.single_action_space.n == 6 and env.action_space.shape == (2,)
    obs, _ = env.reset()
    assert obs.shape == (2, 10, 10, 4) and obs.dtype == np.bool_ and obs in env.observation_space
    minimal = envs.make("MinAtar/Breakout", 2, minimal_action_set=True)
    assert minimal.single_action_space.n == 3


@pytest.mark.parametrize("env_id", ["MinAtar/Asterix", "MinAtar/Seaquest"])
def test_seeding(env_id):
    check_seeding(lambda seed: envs.make(env_id, 3, seed=seed))


@pytest.mark.parametrize("env_id", GAMES)
def test_snapshot_replay_is_bit_identical(env_id):
    env = envs.make(env_id, 3, seed=1, max_episode_steps=40)
    check_replay(env, np.random.default_rng(0), warmup=5, n_steps=100, min_ends=3)


def test_clone_states():
    env = envs.make("MinAtar/SpaceInvaders", 4, seed=2, max_episode_steps=15)
    check_clone(env, np.random.default_rng(1), n_steps=40)


def test_time_limit_truncates_with_final_obs():
    env = envs.make("MinAtar/Freeway", 3, seed=0, max_episode_steps=30)
    check_time_limit(env, 30, np.random.default_rng(2))


def test_termination_apart_from_truncation():
    env = envs.make("MinAtar/Breakout", 5, seed=0)
    env.reset()
    rng = np.random.default_rng(3)
    ends = 0
    for _ in range(300):
        obs, _, terminated, truncated, infos = env.step(rng.integers(0, 6, 5))
        assert not truncated.any()
        if terminated.any():
            ends += int(terminated.sum())
            np.testing.assert_array_equal(infos["_episode_stats"], terminated)
            assert (infos["episode_stats"]["l"][terminated] > 0).all()
            np.testing.assert_array_equal(infos["final_obs"][~terminated], obs[~terminated])
    assert ends > 0, "a random Breakout paddle misses the ball within 300 steps"


def test_bad_actions_and_errors(monkeypatch):
    env = envs.make("MinAtar/Breakout", 2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"actions\[1\] = 6 is outside Discrete\(6\)"):
        env.step(np.array([0, 6]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(np.array([0]))
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([0.0, 1.0]))
    np.testing.assert_array_equal(env.get_state().arrays["t"], [0, 0])
    with pytest.raises(ValueError, match="unknown env id 'MinAtar/Pong'"):
        envs.make("MinAtar/Pong")
    with pytest.raises(ValueError, match="this env is"):
        env.set_state(envs.make("MinAtar/Breakout", 2, sticky_action_prob=0.0).get_state())
    monkeypatch.setitem(sys.modules, "minatar", None)
    with pytest.raises(ImportError, match=r"pip install qwr_fast\[minatar\]"):
        envs.make("MinAtar/Breakout")


@pytest.mark.parametrize(
    ("env_id", "minimal"), [("MinAtar/Breakout", False), ("MinAtar/Asterix", True)]
)
def test_matches_a_plain_loop_over_minatar(env_id, minimal):
    """Step by step against the loop a user would write over ``minatar.Environment``s seeded
    as the env seeds them: obs, rewards, flags, final obs and episode statistics."""
    from minatar import Environment

    from qwr_fast.envs._rng import seed_streams

    n, limit = 6, 25
    env = envs.make(env_id, n, seed=7, max_episode_steps=limit, minimal_action_set=minimal)
    obs, _ = env.reset()
    games = [Environment(env_id.split("/")[1].lower()) for _ in range(n)]
    for g, s in zip(games, seed_streams(7, n), strict=True):
        g.seed(int(s) % 2**32)
        g.reset()
    action_set = games[0].minimal_action_set() if minimal else list(range(6))
    t, ret = [0] * n, [0.0] * n
    rng = np.random.default_rng(5)
    ends = rewards = truncations = 0
    for _ in range(120):
        actions = rng.integers(0, env.single_action_space.n, n)
        obs, reward, terminated, truncated, infos = env.step(actions)
        for i, g in enumerate(games):
            r, te = g.act(int(action_set[actions[i]]))
            t[i] += 1
            ret[i] += r
            assert reward[i] == r and terminated[i] == te and truncated[i] == (t[i] >= limit)
            last = g.state()
            if te or t[i] >= limit:
                ends += 1
                truncations += not te
                assert infos["_episode_stats"][i] and infos["_final_obs"][i]
                assert (
                    infos["episode_stats"]["r"][i] == ret[i]
                    and infos["episode_stats"]["l"][i] == t[i]
                )
                np.testing.assert_array_equal(infos["final_obs"][i], last)
                g.reset()
                t[i], ret[i] = 0, 0.0
            elif infos:
                assert not infos["_episode_stats"][i] and infos["episode_stats"]["l"][i] == 0
                np.testing.assert_array_equal(infos["final_obs"][i], last)
            np.testing.assert_array_equal(obs[i], g.state())
            rewards += r != 0
    assert ends > n and rewards > 0 and truncations > 0
