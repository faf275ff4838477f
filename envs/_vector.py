"""The batched-array vector env that the Numba families share: buffers, infos, seeding, state.

A family subclasses ``ArrayVectorEnv`` and provides the spaces, the state arrays (named in
``_state_fields``, stored as ``self._<name>`` with a leading ``num_envs`` axis), an action check,
one jitted step over the whole batch and one jitted reset of a row mask. Everything else (the
SAME_STEP autoreset contract, ``infos``, ``get_state``/``set_state``/``clone_states``) lives here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from qwr_fast.envs._rng import fresh_seed, reseed_streams, seed_rows

IndexLike = int | slice | Sequence[int] | np.ndarray | None
Reseed = int | Sequence[int] | np.ndarray | None


@dataclass(frozen=True, eq=False)
class EnvState:
    """An exact snapshot of ``num_envs`` environments (RNG streams, counters, statistics).

    ``set_state(state)`` restores it exactly; ``set_state(state, reseed=r)`` restores it with
    fresh RNG streams (see ``qwr_fast.envs``).

    ``config`` names the family and its parameters; ``set_state`` refuses a state taken from a
    differently configured env. ``arrays`` maps each state field to an array whose first axis
    is the env axis (``[num_envs, ...]``); the arrays are private copies, never views of a live
    env.
    """

    config: tuple
    arrays: Mapping[str, np.ndarray]

    @property
    def num_envs(self) -> int:
        return len(next(iter(self.arrays.values())))

    def select(self, indices: IndexLike) -> EnvState:
        """The snapshot of a subset of envs (an int keeps a leading axis of 1)."""
        rows = _rows(indices, self.num_envs, "indices")
        return EnvState(self.config, {k: v[rows].copy() for k, v in self.arrays.items()})


_PLAIN_SCALARS = (type(None), bool, int, float, str, bytes)
_PLAIN_KINDS = "biufcUS"  # numpy dtype kinds of plain arrays and scalars (not object, not void)


def is_plain(value: Any) -> bool:
    """Whether ``value`` is plain data, what a checkpoint stores of an env: None, bool, int,
    float, str, bytes, numpy numbers / bools / strings and arrays of them, and lists, tuples and
    dicts (str or int keys) of plain data. Exact types only (no subclasses such as enums or
    named tuples: those unpickle through their class)."""
    t = type(value)
    if t in _PLAIN_SCALARS:
        return True
    if isinstance(value, (np.ndarray, np.generic)):
        exact = t is np.ndarray or t is value.dtype.type
        return exact and value.dtype.kind in _PLAIN_KINDS
    if t is list or t is tuple:
        return all(is_plain(v) for v in value)
    if t is dict:
        return all(type(k) in (str, int) and is_plain(v) for k, v in value.items())
    return False


def _rows(indices: IndexLike, n: int, name: str) -> np.ndarray | slice:
    """Row selector for arrays with a leading axis of ``n``: a slice or an int64 index array."""
    if indices is None:
        return slice(None)
    if isinstance(indices, slice):
        return indices
    if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
        idx = np.array([indices], dtype=np.int64)
    else:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise TypeError(
                f"{name} must be an int, a slice or a 1-d sequence of ints, got "
                f"shape {idx.shape} dtype {idx.dtype}"
            )
        idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= n):  # no negative (from-the-end) indices
        raise ValueError(f"{name} must lie in [0, {n}), got {idx.tolist()}")
    return idx


def _row_count(rows: np.ndarray | slice, n: int) -> int:
    return len(range(n)[rows]) if isinstance(rows, slice) else len(rows)


def _state_rows(state: Any, config: tuple, indices: IndexLike, n: int) -> np.ndarray | slice:
    """Validate ``state`` for ``set_state`` on an env with ``config`` and ``n`` envs; return the
    rows it is written to (``state`` holds one env per row, or one env broadcast to all)."""
    if not isinstance(state, EnvState):
        raise TypeError(f"state must be an EnvState, got {type(state).__name__}")
    if state.config != config:
        raise ValueError(f"state was taken from {state.config}, this env is {config}")
    rows = _rows(indices, n, "indices")
    k = _row_count(rows, n)
    if state.num_envs not in (1, k):
        raise ValueError(f"state holds {state.num_envs} envs; expected {k} (the rows written) or 1")
    return rows


class ArrayVectorEnv(VectorEnv):
    """Base of the Numba vector envs (see ``qwr_fast.envs`` for the contract it implements)."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    _state_fields: tuple[str, ...] = ()

    def __init__(self, num_envs: int, obs_shape: tuple[int, ...], *, seed, copy: bool) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be a positive int, got {type(num_envs).__name__}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs}")
        if not isinstance(copy, bool):
            raise TypeError(f"copy must be a bool, got {type(copy).__name__}")
        n = int(num_envs)
        self.num_envs = n
        self.render_mode = None
        self._copy = copy
        self._obs = np.zeros((n, *obs_shape), dtype=np.float32)
        self._final_obs = np.zeros_like(self._obs)
        self._reward = np.zeros(n, dtype=np.float32)
        self._terminated = np.zeros(n, dtype=np.bool_)
        self._truncated = np.zeros(n, dtype=np.bool_)
        self._done = np.zeros(n, dtype=np.bool_)
        self._ep_r = np.zeros(n, dtype=np.float32)
        self._ep_l = np.zeros(n, dtype=np.int32)
        self._rng = np.zeros(n, dtype=np.uint64)
        self._ep_return = np.zeros(n, dtype=np.float32)
        self._t = np.zeros(n, dtype=np.int32)
        self._pending_seed = seed
        self._reset_masked(fresh_seed() if seed is None else seed, None)
        self._needs_reset = True  # step() refuses until reset() or set_state()

    # -- family hooks ---------------------------------------------------------------------
    @property
    def config(self) -> tuple:
        """The family name and parameters; a state only fits an env with the same config."""
        raise NotImplementedError

    def _check_actions(self, actions: Any) -> np.ndarray:
        raise NotImplementedError

    def _step_kernel(self, actions: np.ndarray) -> int:
        """Step every env in place; return the number of finished episodes."""
        raise NotImplementedError

    def _reset_kernel(self, mask: np.ndarray) -> None:
        """Draw fresh initial states for the rows where ``mask`` is true; write their obs."""
        raise NotImplementedError

    def _refresh_obs(self, rows: np.ndarray | slice) -> None:
        """Rewrite ``self._obs[rows]`` from the state arrays (after ``set_state``)."""
        raise NotImplementedError

    def _get_field(self, name: str, rows: np.ndarray | slice) -> np.ndarray:
        """A private copy of state field ``name`` at ``rows`` (as ``EnvState`` stores it)."""
        return getattr(self, "_" + name)[rows].copy()

    def _set_field(self, name: str, rows: np.ndarray | slice, value: np.ndarray) -> None:
        """Write ``value`` (``EnvState``'s layout, 1 row or one per row) into field ``name``."""
        getattr(self, "_" + name)[rows] = value

    # -- gymnasium API --------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all envs (or those in ``options["reset_mask"]``); return ``(obs, {})``.

        ``seed``: an int (env i draws from stream ``(seed, i)``), one int per env, or None
        (keep the current streams; the first reset after ``make(seed=s)`` uses ``s``).
        """
        mask = None
        if options:
            unknown = set(options) - {"reset_mask"}
            if unknown:
                raise ValueError(f"options: unknown keys {sorted(unknown)}; known: ['reset_mask']")
            mask = np.asarray(options["reset_mask"])
            if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                    f"got shape {mask.shape} dtype {mask.dtype}"
                )
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        else:
            self._pending_seed = None
        if seed is not None:
            self.action_space.seed(seed if isinstance(seed, (int, np.integer)) else None)
        self._reset_masked(seed, mask)
        self._needs_reset = False
        return (self._obs.copy() if self._copy else self._obs), {}

    def _reset_masked(self, seed, mask: np.ndarray | None) -> None:
        if seed is not None:
            streams, seeded = seed_rows(seed, self.num_envs)
            if mask is not None:
                seeded &= mask
            self._rng[seeded] = streams[seeded]
        full = np.ones(self.num_envs, dtype=np.bool_) if mask is None else mask
        self._reset_kernel(full)
        self._t[full] = 0
        self._ep_return[full] = 0.0

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; see the ``qwr_fast.envs`` docstring for the autoreset contract."""
        if self._needs_reset or self.closed:
            raise RuntimeError("env is closed" if self.closed else "call reset() before step()")
        ndone = self._step_kernel(self._check_actions(actions))
        c = self._copy
        obs = self._obs.copy() if c else self._obs
        reward = self._reward.copy() if c else self._reward
        terminated = self._terminated.copy() if c else self._terminated
        truncated = self._truncated.copy() if c else self._truncated
        if ndone == 0:
            return obs, reward, terminated, truncated, {}
        done = self._done.copy() if c else self._done
        infos = {
            "final_obs": self._final_obs.copy() if c else self._final_obs,
            "_final_obs": done,
            "episode_stats": {
                "r": self._ep_r.copy() if c else self._ep_r,
                "l": self._ep_l.copy() if c else self._ep_l,
            },
            "_episode_stats": done,
        }
        return obs, reward, terminated, truncated, infos

    # -- snapshot / restore ---------------------------------------------------------------
    def get_state(self, indices: IndexLike = None) -> EnvState:
        """An exact copy of the state of all envs, or of ``indices`` (in that order)."""
        rows = _rows(indices, self.num_envs, "indices")
        arrays = {k: self._get_field(k, rows) for k in self._state_fields}
        return EnvState(self.config, arrays)

    def set_state(
        self, state: EnvState, indices: IndexLike = None, *, reseed: Reseed = None
    ) -> np.ndarray:
        """Overwrite the state of all envs, or of ``indices``, with ``state``; return the obs.

        ``state.num_envs`` must equal the number of rows written, or be 1 (broadcast to all of
        them). With ``reseed=None`` (the default) stepping afterwards with the same actions
        reproduces, bit for bit, what the envs that the state was taken from produced (including
        their autoresets). Otherwise every restored env gets a fresh RNG stream (see
        ``qwr_fast.envs._rng.reseed_streams``: an int gives the env in row i a stream derived
        from ``(reseed, i)``, a sequence one int per restored row); the rest of the state is
        restored exactly, so only future chance draws (the bits of the next random resets)
        differ.
        """
        rows = _state_rows(state, self.config, indices, self.num_envs)
        streams = None
        if reseed is not None:  # validated before any env changes
            streams = reseed_streams(reseed, np.arange(self.num_envs)[rows].tolist())
        for name in self._state_fields:
            self._set_field(name, rows, state.arrays[name])
        if streams is not None:
            self._rng[rows] = streams
        self._refresh_obs(rows)
        self._needs_reset = False
        return self._obs.copy() if self._copy else self._obs

    def clone_states(
        self, source: int, targets: IndexLike = None, *, reseed: Reseed = None
    ) -> np.ndarray:
        """Copy env ``source``'s exact state into ``targets`` (default: every env); return obs.

        With ``reseed=None`` clones share the RNG stream of ``source``, so identical actions
        give identical rollouts, autoresets included; with ``reseed`` each target gets a fresh
        stream as in ``set_state``. To fill the first k envs use ``clone_states(i, range(k))``.
        """
        if isinstance(source, bool) or not isinstance(source, (int, np.integer)):
            raise TypeError(f"source must be an int env index, got {type(source).__name__}")
        if not 0 <= source < self.num_envs:
            raise ValueError(f"source must lie in [0, {self.num_envs}), got {source}")
        return self.set_state(self.get_state(int(source)), targets, reseed=reseed)
