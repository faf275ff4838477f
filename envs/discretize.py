"""Discretise a Box action space: ``bins`` per dimension -> ``MultiDiscrete``.

Action index ``k`` of dimension ``j`` is bin centre ``k`` of ``linspace(low[j], high[j],
bins[j])``, so both bounds are reachable and, for an odd ``bins``, so is the midpoint (zero
torque for the symmetric MuJoCo boxes). ``discretize(env, bins)`` wraps any gymnasium
``VectorEnv`` whose ``single_action_space`` is a bounded 1-d Box; ``make(env_id, bins=k)`` does
it for a ``qwr_fast.envs`` id. Amortized Q-learning on Humanoid uses 17 dims x 11 bins.

Observations, rewards, flags, ``infos``, the autoreset mode and ``get_state``/``set_state``/
``clone_states`` (when the wrapped env has them; ``reseed`` included) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space


def _check_bins(bins: int | Sequence[int], n_dims: int) -> np.ndarray:
    b = np.full(n_dims, bins, dtype=object) if np.ndim(bins) == 0 else np.asarray(bins, object)
    if b.shape != (n_dims,):
        raise ValueError(f"bins must be an int or {n_dims} ints (one per action dim), got {bins}")
    for v in b:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"bins must be an int >= 2 or a sequence of them, got {bins!r}")
        if v < 2:
            raise ValueError(f"bins must be >= 2 per action dim, got {bins!r}")
    return b.astype(np.int64)


class DiscretizedVectorEnv(VectorEnv):
    """``env`` with its ``Box(d)`` actions replaced by ``MultiDiscrete(bins)``."""

    def __init__(self, env: VectorEnv, bins: int | Sequence[int]) -> None:
        if not isinstance(env, VectorEnv):
            raise TypeError(f"env must be a gymnasium VectorEnv, got {type(env).__name__}")
        box = env.single_action_space
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise TypeError(f"env's single_action_space must be a 1-d Box, got {box}")
        if not (np.isfinite(box.low).all() and np.isfinite(box.high).all()):
            raise ValueError(f"env's action Box must be bounded to be discretised, got {box}")
        self.env = env
        self.num_envs = env.num_envs
        self.bins = _check_bins(bins, box.shape[0])
        self.metadata = env.metadata
        self.render_mode = getattr(env, "render_mode", None)
        self.single_observation_space = env.single_observation_space
        self.observation_space = env.observation_space
        self.single_action_space = spaces.MultiDiscrete(self.bins)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        d = box.shape[0]
        table = np.zeros((d, int(self.bins.max())), dtype=np.float64)
        for j in range(d):
            table[j, : self.bins[j]] = np.linspace(box.low[j], box.high[j], self.bins[j])
        self.centres = table.astype(box.dtype)
        """``[d, max(bins)]``: row j holds dim j's bin centres (zero-padded after bins[j])."""
        self._dims = np.arange(d)

    def to_continuous(self, actions: Any) -> np.ndarray:
        """Bin indices ``[num_envs, d]`` -> the Box actions they stand for."""
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.dtype.kind not in "iu":
            raise TypeError(
                f"actions must be integers for {self.single_action_space}, got {a.dtype}"
            )
        shape = (self.num_envs, len(self.bins))
        if a.shape != shape:
            raise ValueError(
                f"actions must have shape {shape} (one {self.single_action_space} action per "
                f"env), got {a.shape}"
            )
        bad = ((a < 0) | (a >= self.bins)).any(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"actions[{i}] = {a[i].tolist()} is outside {self.single_action_space}"
            )
        return self.centres[self._dims, a]

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.action_space.seed(seed if isinstance(seed, (int, np.integer)) else None)
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any):
        return self.env.step(self.to_continuous(actions))

    def get_state(self, *args: Any, **kwargs: Any):
        return self.env.get_state(*args, **kwargs)

    def set_state(self, state: Any, indices: Any = None, *, reseed: Any = None):
        """The wrapped env's ``set_state``, ``reseed`` included (None: exact restore)."""
        extra = {} if reseed is None else {"reseed": reseed}
        return self.env.set_state(state, indices, **extra)

    def clone_states(self, source: int, targets: Any = None, *, reseed: Any = None):
        """The wrapped env's ``clone_states``, ``reseed`` included (None: exact clones)."""
        extra = {} if reseed is None else {"reseed": reseed}
        return self.env.clone_states(source, targets, **extra)

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close(**kwargs)

    @property
    def unwrapped(self) -> VectorEnv:
        return self.env.unwrapped


def discretize(env: VectorEnv, bins: int | Sequence[int]) -> DiscretizedVectorEnv:
    """Wrap ``env`` (a VectorEnv with a bounded 1-d Box action space) so that its actions are
    ``MultiDiscrete(bins)`` indices into per-dimension ``linspace(low, high, bins)`` centres."""
    return DiscretizedVectorEnv(env, bins)
