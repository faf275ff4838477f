"""The one action adapter (qwr_fast/actions.py): every space the trainers take, both ways."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from qwr_fast.actions import ActionAdapter


def test_discrete_and_factored_spaces_round_trip():
    s = ActionAdapter.from_space(gym.spaces.Discrete(5, start=2))
    assert (s.kind, s.sizes, s.num_actions, s.code_dim) == ("discrete", (5,), 5, 4)
    assert s.policy_kind == "categorical"
    # AQL's [B, D=1] actions and QWR's [B] actions map to the same env actions
    np.testing.assert_array_equal(s.to_env(torch.tensor([[0], [4]])), [2, 6])
    np.testing.assert_array_equal(s.to_env(torch.tensor([0, 4])), [2, 6])
    np.testing.assert_array_equal(s.from_env(np.array([2, 6])), [0, 4])
    s = ActionAdapter.from_space(gym.spaces.MultiDiscrete([11] * 17))
    assert s.num_actions == 11**17 and s.code_dim == 170
    s = ActionAdapter.from_space(gym.spaces.MultiBinary(32))
    assert s.sizes == (2,) * 32 and s.num_actions == 2**32
    a = torch.randint(0, 2, (3, 32))
    env_a = s.to_env(a)
    assert env_a.shape == (3, 32) and env_a.dtype == np.int8
    np.testing.assert_array_equal(s.from_env(env_a), a.numpy())
    with pytest.raises(ValueError, match="Discrete, 1-d MultiDiscrete or 1-d MultiBinary"):
        ActionAdapter.from_space(gym.spaces.Box(-1, 1, (3,)), continuous=False)
    with pytest.raises(ValueError, match="QWR policies need a Box or Discrete"):
        _ = ActionAdapter.from_space(gym.spaces.MultiBinary(4)).policy_kind


def test_box_scales_to_the_bounds_and_back():
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)
    space = gym.spaces.Box(low, high, dtype=np.float32)
    s = ActionAdapter.from_space(space)
    assert (s.kind, s.policy_kind, s.action_dim) == ("box", "gaussian", 2)
    a = torch.tensor([[-1.0, -1.0], [0.0, 0.5], [1.0, 1.0]])
    env_a = s.to_env(a)
    assert env_a.dtype == np.float32
    np.testing.assert_allclose(env_a, [[-2.0, 0.0], [0.0, 7.5], [2.0, 10.0]])
    np.testing.assert_allclose(s.from_env(env_a), a.numpy(), atol=1e-6)
    np.testing.assert_allclose(s.from_env(np.array([[5.0, -3.0]])), [[1.0, -1.0]])  # clipped
    unbounded = ActionAdapter.from_space(gym.spaces.Box(-np.inf, np.inf, (3,)))
    np.testing.assert_array_equal(unbounded.low, -np.ones(3))
    np.testing.assert_array_equal(unbounded.high, np.ones(3))
    with pytest.raises(ValueError, match="Discrete or a 1-D Box"):
        ActionAdapter.from_space(gym.spaces.Box(-1, 1, (2, 2)))


def test_bad_kind_and_code():
    with pytest.raises(ValueError, match="kind must be"):
        ActionAdapter("tuple")
    with pytest.raises(ValueError, match="code must be 'onehot' or 'ordinal'"):
        ActionAdapter("discrete", (2,), (0,), "binary")
