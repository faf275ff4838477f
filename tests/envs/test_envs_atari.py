"""Atari vector envs (``qwr_fast.envs.atari``): preprocessing and exact snapshots."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from qwr_fast import envs
from tests.envs.loop_contract import check_clone, check_replay, check_seeding, check_time_limit

pytest.importorskip("ale_py", reason="Atari suite needs the extra: pip install qwr_fast[atari]")
pytest.importorskip("cv2", reason="Atari preprocessing needs OpenCV: pip install qwr_fast[atari]")


def test_preprocessing():
    env = envs.make("ALE/Breakout-v5", 2, seed=0)
    assert env.single_action_space.n == 4, "minimal action set"
    obs, _ = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8 and obs in env.observation_space
    for k in range(1, 4):
        np.testing.assert_array_equal(obs[:, k], obs[:, 0], "the stack starts filled")
    new, *_ = env.step(np.array([1, 1]))
    np.testing.assert_array_equal(new[:, :3], obs[:, 1:], "the stack shifts by one frame")
    opts = dict(env.config[2:])
    assert opts["sticky_action_prob"] == 0.25 and opts["noop_max"] == 30
    assert opts["frame_skip"] == 4 and not opts["full_action_space"]
    assert envs.make("ALE/Breakout-v5", full_action_space=True).single_action_space.n == 18


def test_seeding():
    check_seeding(lambda seed: envs.make("ALE/Breakout-v5", 2, seed=seed))


def test_snapshot_replay_is_bit_identical():
    env = envs.make("ALE/Breakout-v5", 3, seed=1, max_episode_steps=20)
    check_replay(env, np.random.default_rng(0), warmup=5, n_steps=45, min_ends=3)


def test_clone_states():
    env = envs.make("ALE/Pong-v5", 3, seed=2, max_episode_steps=10)
    check_clone(env, np.random.default_rng(1), n_steps=15)


def test_time_limit_truncates_with_final_obs():
    env = envs.make("ALE/Pong-v5", 2, seed=0, max_episode_steps=12)
    check_time_limit(env, 12, np.random.default_rng(2))


def test_bad_actions_and_errors(monkeypatch):
    env = envs.make("ALE/Pong-v5", 2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"actions\[0\] = 6 is outside Discrete\(6\)"):
        env.step(np.array([6, 0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(np.zeros((2, 1), np.int64))
    with pytest.raises(ValueError, match="unknown Atari id 'ALE/NotAGame-v5'"):
        envs.make("ALE/NotAGame-v5")
    with pytest.raises(ValueError, match="sticky_action_prob"):
        envs.make("ALE/Pong-v5", sticky_action_prob=1.0)
    monkeypatch.setitem(sys.modules, "ale_py", None)
    with pytest.raises(ImportError, match=r"pip install qwr_fast\[atari\]"):
        envs.make("ALE/Pong-v5")
