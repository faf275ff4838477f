"""MuJoCo vector envs (``qwr_fast.envs.mujoco``) and the discretisation wrapper."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from qwr_fast import envs
from tests.envs.loop_contract import (
    check_clone,
    check_replay,
    check_seeding,
    check_time_limit,
    random_actions,
    rollout,
)

pytest.importorskip("mujoco", reason="MuJoCo suite needs the extra: pip install qwr_fast[mujoco]")


def test_spaces_and_metadata():
    env = envs.make("HalfCheetah-v5", 3, seed=0)
    assert env.metadata["autoreset_mode"].value == "SameStep"
    assert env.single_action_space.shape == (6,) and env.action_space.shape == (3, 6)
    obs, info = env.reset()
    assert info == {} and obs.shape == (3, 17) and obs in env.observation_space
    assert env.max_episode_steps == 1000
    assert "Humanoid-v5" in envs.list_envs() and "HalfCheetah-v5" in envs.list_envs()


def test_seeding():
    check_seeding(lambda seed: envs.make("Hopper-v5", 3, seed=seed))


@pytest.mark.parametrize(
    ("env_id", "kwargs", "min_ends"),
    [
        ("Hopper-v5", {"max_episode_steps": 25}, 3),  # falls (terminates) and truncates
        ("Humanoid-v5", {"max_episode_steps": 12}, 3),  # cinert/cfrc_ext observations
        ("Ant-v5", {"max_episode_steps": 12}, 3),
    ],
)
def test_snapshot_replay_is_bit_identical(env_id, kwargs, min_ends):
    env = envs.make(env_id, 3, seed=1, **kwargs)
    check_replay(env, np.random.default_rng(0), warmup=4, n_steps=30, min_ends=min_ends)


def test_clone_states():
    env = envs.make("Walker2d-v5", 4, seed=2, max_episode_steps=9)
    check_clone(env, np.random.default_rng(1), n_steps=14)


def test_time_limit_truncates_with_final_obs():
    env = envs.make("HalfCheetah-v5", 3, seed=0, max_episode_steps=7)
    check_time_limit(env, 7, np.random.default_rng(2))


def test_termination_apart_from_truncation():
    env = envs.make("Hopper-v5", 4, seed=0)
    env.reset()
    rng = np.random.default_rng(3)
    seen = False
    for a in random_actions(env, rng, 200):
        obs, _, terminated, truncated, infos = env.step(a)
        assert not truncated.any()
        if terminated.any():
            seen = True
            np.testing.assert_array_equal(infos["_final_obs"], terminated)
            assert not np.array_equal(infos["final_obs"][terminated], obs[terminated])
            np.testing.assert_array_equal(infos["final_obs"][~terminated], obs[~terminated])
    assert seen, "a random Hopper falls within 200 steps"


def test_bad_actions_raise_before_any_env_moves():
    env = envs.make("HalfCheetah-v5", 2, seed=0)
    env.reset()
    before = env.get_state()
    good = np.zeros((2, 6), np.float32)
    with pytest.raises(ValueError, match=r"shape \(2, 6\)"):
        env.step(good[:, :5])
    with pytest.raises(TypeError, match="floats"):
        env.step(good.astype(np.int64))
    bad = good.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"actions\[1\] = .* is outside Box"):
        env.step(bad)
    bad[1, 3] = 1.5
    with pytest.raises(ValueError, match=r"actions\[1\]"):
        env.step(bad)
    assert_same_state(env.get_state(), before)


def assert_same_state(a, b):
    np.testing.assert_array_equal(a.arrays["obs"], b.arrays["obs"])
    for x, y in zip(a.arrays["game"], b.arrays["game"], strict=True):
        np.testing.assert_array_equal(x[0].qpos, y[0].qpos)
        np.testing.assert_array_equal(x[0].qvel, y[0].qvel)
        assert x[0].time == y[0].time


def test_state_errors():
    env = envs.make("Hopper-v5", 2, seed=0)
    with pytest.raises(ValueError, match="this env is"):
        env.set_state(envs.make("Hopper-v5", 2, max_episode_steps=5).get_state())
    with pytest.raises(ValueError, match="this env is"):
        env.set_state(envs.make("Walker2d-v5", 2).get_state())
    with pytest.raises(ValueError, match="holds 2 envs; expected 3"):
        envs.make("Hopper-v5", 3).set_state(env.get_state())
    with pytest.raises(ValueError, match="unknown env id 'Hopper-v4'"):
        envs.make("Hopper-v4")


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)
    with pytest.raises(ImportError, match=r"pip install qwr_fast\[mujoco\]"):
        envs.make("Hopper-v5")


def test_discretize_maps_indices_to_linspace_centres():
    raw = envs.make("Hopper-v5", 3, seed=4)
    disc = envs.make("Hopper-v5", 3, seed=4, bins=[3, 5, 11])
    box = raw.single_action_space
    assert list(disc.single_action_space.nvec) == [3, 5, 11]
    assert disc.action_space.shape == (3, 3)
    for j, k in enumerate([3, 5, 11]):
        np.testing.assert_array_equal(
            disc.centres[j, :k], np.linspace(box.low[j], box.high[j], k).astype(np.float32)
        )
    idx = random_actions(disc, np.random.default_rng(5), 30)
    cont = [disc.centres[np.arange(3), a] for a in idx]
    assert any((c == box.low).any() for c in cont) and any((c == box.high).any() for c in cont)
    raw.reset()
    disc.reset()
    ref, got = rollout(raw, cont), rollout(disc, idx)
    for u, v in zip(ref, got, strict=True):
        for p, q in zip(u, v, strict=True):
            np.testing.assert_array_equal(p, q)
    state = disc.get_state()
    again = rollout(disc, idx[:5])
    disc.set_state(state)
    for u, v in zip(again, rollout(disc, idx[:5]), strict=True):
        for p, q in zip(u, v, strict=True):
            np.testing.assert_array_equal(p, q)


def test_discretize_errors():
    env = envs.make("Humanoid-v5", 2, seed=0, bins=11)
    assert list(env.single_action_space.nvec) == [11] * 17
    with pytest.raises(ValueError, match=r"actions\[0\] = .* is outside MultiDiscrete"):
        env.step(np.full((2, 17), 11))
    with pytest.raises(ValueError, match=r"shape \(2, 17\)"):
        env.step(np.zeros((2, 16), np.int64))
    with pytest.raises(TypeError, match="integers"):
        env.step(np.zeros((2, 17)))
    with pytest.raises(ValueError, match="bins must be >= 2"):
        envs.make("Hopper-v5", bins=1)
    with pytest.raises(ValueError, match="3 ints"):
        envs.make("Hopper-v5", bins=[3, 3])
    with pytest.raises(TypeError, match="1-d Box"):
        envs.discretize(envs.make("BitFlip-4"), 3)


def test_discretize_any_gymnasium_vector_env():
    import gymnasium

    raw = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("Pendulum-v1")] * 2)
    env = envs.discretize(raw, 5)
    np.testing.assert_array_equal(env.centres[0], np.array([-2, -1, 0, 1, 2], np.float32))
    env.reset(seed=0)
    raw2 = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("Pendulum-v1")] * 2)
    raw2.reset(seed=0)
    a = np.array([[0], [3]])
    o1, r1, *_ = env.step(a)
    o2, r2, *_ = raw2.step(np.array([[-2.0], [1.0]], np.float32))
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(r1, r2)
