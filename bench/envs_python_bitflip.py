"""Straightforward pure-Python BitFlip / BitFlipSubset (``gymnasium.Env``): the baseline that
the Numba vector envs are benchmarked against under ``gymnasium.vector.SyncVectorEnv``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv


class PyBitFlipEnv(gym.Env):
    """N bits; flip one (or, with ``subset=True``, any subset); +1 per 0 -> 1, -1 per 1 -> 0;
    truncated after ``horizon`` steps; random initial bits."""

    def __init__(self, n_bits: int = 64, horizon: int = 5, subset: bool = False) -> None:
        self.n_bits, self.horizon, self.subset = n_bits, horizon, subset
        self.observation_space = spaces.Box(0.0, 1.0, (n_bits,), np.float32)
        self.action_space = spaces.MultiBinary(n_bits) if subset else spaces.Discrete(n_bits)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.bits = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        self.t = 0
        return self.bits.copy(), {}

    def step(self, action):
        if self.subset:
            flip = np.asarray(action, dtype=bool)
            reward = float(np.sum(self.bits[flip] == 0) - np.sum(self.bits[flip] == 1))
            self.bits[flip] = 1.0 - self.bits[flip]
        else:
            reward = 1.0 if self.bits[action] == 0 else -1.0
            self.bits[action] = 1.0 - self.bits[action]
        self.t += 1
        return self.bits.copy(), reward, False, self.t >= self.horizon, {}


def make_python_vector_env(n_bits: int, num_envs: int, subset: bool) -> SyncVectorEnv:
    return SyncVectorEnv(
        [lambda: PyBitFlipEnv(n_bits, subset=subset) for _ in range(num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
