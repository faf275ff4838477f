"""The vector env that the MuJoCo, MinAtar and Atari families share: one Python loop over
``num_envs`` single envs behind the ``qwr_fast.envs`` contract.

A family subclasses ``LoopVectorEnv`` and provides the spaces, ``num_envs`` single envs and
five per-env hooks: reset (seeded or continuing its stream), step, snapshot, restore and reseed
(a fresh random state for a just-restored env). The loop owns everything else: action checks,
the time limit, SAME_STEP autoreset, ``infos``, episode statistics, seeding, and
``get_state``/``set_state``/``clone_states``.

An ``EnvState`` of a loop env holds, per env, the family's snapshot object (an ``object``
array ``arrays["game"]``), the observation, and the loop's counters (``t``, ``ep_return``).
A snapshot is never a view of a live env and ``restore`` copies it, so one snapshot can be
restored into many envs.

A checkpoint stores an ``EnvState`` with every snapshot as plain data (:func:`plain_state`: a
dict of numbers, str, bytes, lists and numpy arrays, never a pickled object), and
``set_state`` takes either form: each family turns a plain snapshot back into its own objects
(``_snapshot_from_plain``), checking it against the live env first.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from qwr_fast.envs._rng import fresh_seed, reseed_streams, seed_rows, seed_streams
from qwr_fast.envs._vector import EnvState, IndexLike, Reseed, _rows, _state_rows, is_plain

_NO_LIMIT = np.iinfo(np.int32).max
_FAMILIES: dict[str, type[LoopVectorEnv]] = {}
"""The loop families by ``FAMILY`` (their ``config[0]``), for :func:`plain_state`."""


def plain_state(state: EnvState) -> EnvState:
    """``state`` with each loop-family snapshot (an entry of an ``object`` array, ``game``) as
    plain data: what a checkpoint stores (see the module docstring). Entries that are plain
    already are kept, and a state without ``object`` arrays is returned as it is. The family's
    ``_snapshot_to_plain`` reads only what the snapshot's objects expose as data, so it also
    converts the stand-ins that :mod:`qwr_fast.checkpoint` reads an old pickled snapshot into.
    TypeError for an ``object`` array of a family that cannot store its snapshots."""
    objects = [k for k, v in state.arrays.items() if v.dtype == object]
    if not objects:
        return state
    family = _FAMILIES.get(state.config[0] if state.config else None)
    if family is None:
        raise TypeError(f"env state {state.config!r}: its snapshots cannot be stored as data")
    arrays = dict(state.arrays)
    for k in objects:
        out = np.empty(len(arrays[k]), dtype=object)
        for j, snapshot in enumerate(arrays[k]):
            out[j] = snapshot if type(snapshot) is dict else family._snapshot_to_plain(snapshot)
        arrays[k] = out
    return EnvState(state.config, arrays)


def plain_fields(obj: Any, skip: tuple[str, ...], where: str) -> dict[str, Any]:
    """A deep copy of the instance attributes of ``obj`` but ``skip``; TypeError naming
    ``where`` and the attribute if one is not plain data (``is_plain``)."""
    out = {}
    for k, v in vars(obj).items():
        if k in skip:
            continue
        if not is_plain(v):
            raise TypeError(f"{where}.{k} is a {type(v).__name__}, not plain data")
        out[k] = copy.deepcopy(v)
    return out


def check_rng_state(state: Any, like: np.random.BitGenerator, family: str) -> Any:
    """``state`` if a bit generator of ``like``'s type accepts it (numpy checks it); else
    ValueError."""
    try:
        type(like)().state = state
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ValueError(f"{family} snapshot 'rng' is no {type(like).__name__} state: {e}") from e
    return state


def check_plain_snapshot(plain: Any, family: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``plain`` if it is a plain snapshot of ``family`` with exactly ``keys`` (besides
    ``family``); ValueError otherwise."""
    if type(plain) is not dict or plain.get("family") != family:
        got = plain.get("family") if type(plain) is dict else type(plain).__name__
        raise ValueError(f"a {family} env cannot restore a snapshot of {got!r}")
    if set(plain) != {"family", *keys}:
        raise ValueError(
            f"{family} snapshot has the fields {sorted(plain)}, expected {sorted(keys)} "
            "and 'family'"
        )
    return plain


def missing_extra(package: str, extra: str, family: str) -> ImportError:
    """The error for a family whose optional dependency is not installed."""
    return ImportError(
        f"the {family} environments need the `{package}` package: pip install qwr_fast[{extra}]"
    )


def check_num_envs(num_envs: Any) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
        raise TypeError(f"num_envs must be a positive int, got {type(num_envs).__name__}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs}")
    return int(num_envs)


def check_positive_int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value}")
    return int(value)


class LoopVectorEnv(VectorEnv):
    """Base of the families that step real single envs (see ``qwr_fast.envs``)."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    FAMILY: str | None = None
    """``config[0]``; a family that sets it can store its snapshots as plain data."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("FAMILY"):
            _FAMILIES[cls.FAMILY] = cls

    def __init__(
        self,
        num_envs: int,
        single_observation_space: spaces.Box,
        single_action_space: spaces.Discrete | spaces.Box,
        *,
        max_episode_steps: int | None,
        seed: int | None,
        copy: bool,
    ) -> None:
        n = self.num_envs = check_num_envs(num_envs)
        if not isinstance(copy, bool):
            raise TypeError(f"copy must be a bool, got {type(copy).__name__}")
        self.max_episode_steps = check_positive_int_or_none(max_episode_steps, "max_episode_steps")
        self.render_mode = None
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, n)
        self.action_space = batch_space(single_action_space, n)
        self._copy = copy
        self._discrete = isinstance(single_action_space, spaces.Discrete)
        self._batch_shape = (n,)
        # The valid actions as a set: one ``issuperset`` checks a batch ~4x faster than min
        # and max (a step of a cheap game such as MinAtar is ~3 us per env).
        n_actions = int(single_action_space.n) if self._discrete else 0
        self._valid_actions = frozenset(range(n_actions)) if n_actions <= 4096 else None
        if not self._discrete:
            low, high = single_action_space.low, single_action_space.high
            self._a_low, self._a_high = low.astype(np.float64), high.astype(np.float64)
        obs_shape, obs_dtype = single_observation_space.shape, single_observation_space.dtype
        self._obs = np.zeros((n, *obs_shape), dtype=obs_dtype)
        self._final_obs = np.zeros_like(self._obs)
        self._reward = np.zeros(n, dtype=np.float32)
        self._terminated = np.zeros(n, dtype=np.bool_)
        self._truncated = np.zeros(n, dtype=np.bool_)
        self._done = np.zeros(n, dtype=np.bool_)
        self._ep_r = np.zeros(n, dtype=np.float32)
        self._ep_l = np.zeros(n, dtype=np.int32)
        # Memoryviews of the per-env flags and statistics: a scalar write through one is about
        # half the cost of numpy's ``__setitem__``, and a step writes a few per ended episode.
        self._flag_views = tuple(
            memoryview(a)
            for a in (self._terminated, self._truncated, self._done, self._ep_r, self._ep_l)
        )
        self._t = [0] * n  # Python lists: the per-env loop reads and writes them as scalars
        self._ep_return = [0.0] * n
        self._flagged: list[int] = []  # the rows whose flags and statistics the last step set
        self._pending_seed = seed
        self._reset_rows(range(n), seed_streams(fresh_seed() if seed is None else seed, n))
        self._needs_reset = True  # step() refuses until reset() or set_state()

    # -- family hooks ---------------------------------------------------------------------
    @property
    def config(self) -> tuple:
        """The family name and parameters; a state only fits an env with the same config."""
        raise NotImplementedError

    def _reset_one(self, i: int, seed: int | None) -> np.ndarray:
        """Reset env i (reseeding its RNG from ``seed`` if given); return its observation."""
        raise NotImplementedError

    def _step_one(self, i: int, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        """Step env i; return ``(obs, reward, terminated, truncated_by_the_env_itself)``."""
        raise NotImplementedError

    def _snapshot_one(self, i: int) -> Any:
        """A private, exact copy of env i's state (RNG included)."""
        raise NotImplementedError

    def _restore_one(self, i: int, snapshot: Any) -> None:
        """Make env i's state a copy of ``snapshot`` (which stays unchanged)."""
        raise NotImplementedError

    def _reseed_one(self, i: int, seed: int) -> None:
        """Replace env i's random state (just restored) by a fresh one from the uint64 ``seed``,
        as a seeded reset would make it, leaving the rest of its state as it is."""
        raise NotImplementedError

    @classmethod
    def _snapshot_to_plain(cls, snapshot: Any) -> dict[str, Any]:
        """``snapshot`` (of ``_snapshot_one``) as a dict of plain data with a ``family`` key;
        ``_snapshot_from_plain`` inverts it exactly."""
        raise TypeError(f"{cls.__name__} cannot store its snapshots as data")

    def _snapshot_from_plain(self, i: int, plain: dict[str, Any]) -> Any:
        """The snapshot that ``plain`` (of ``_snapshot_to_plain``, read from a file) stands
        for, checked against env i; ValueError or TypeError if it does not fit."""
        raise TypeError(f"{type(self).__name__} cannot restore a snapshot stored as data")

    # -- gymnasium API --------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all envs (or those in ``options["reset_mask"]``); return ``(obs, {})``.

        ``seed``: an int (env i gets a seed derived from ``(seed, i)``), one int per env, or
        None (keep the current streams; the first reset after ``make(seed=s)`` uses ``s``).
        """
        rows: Sequence[int] = range(self.num_envs)
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
            rows = np.flatnonzero(mask).tolist()
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        else:
            self._pending_seed = None
        streams = None
        if seed is not None:
            streams, seeded = seed_rows(seed, self.num_envs)
            self.action_space.seed(seed if isinstance(seed, (int, np.integer)) else None)
            if not seeded.all():  # None entries: those envs continue their own streams
                streams = [int(s) if k else None for s, k in zip(streams, seeded, strict=True)]
        self._reset_rows(rows, streams)
        self._needs_reset = False
        return (self._obs.copy() if self._copy else self._obs), {}

    def _reset_rows(self, rows: Sequence[int], streams: np.ndarray | list | None) -> None:
        for i in rows:
            s = None if streams is None else streams[i]
            self._obs[i] = self._reset_one(i, None if s is None else int(s))
            self._t[i] = 0
            self._ep_return[i] = 0.0

    def _write_obs(self, rows: list[np.ndarray]) -> None:
        """``self._obs[i] = rows[i]`` for every env (a family may do it in one copy)."""
        obs = self._obs
        for i, o in enumerate(rows):
            obs[i] = o

    def _check_actions(self, actions: Any) -> list | np.ndarray:
        """The validated actions: a list of ints for ``Discrete``, else the float array."""
        if (  # the common case first, in as few Python operations as possible
            self._discrete
            and type(actions) is np.ndarray
            and actions.shape == self._batch_shape
            and actions.dtype.kind in "iu"
        ):
            values = actions.tolist()
            if self._valid_actions is not None and self._valid_actions.issuperset(values):
                return values
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        space = self.single_action_space
        if self._discrete:
            if a.dtype.kind not in "iu":
                raise TypeError(f"actions must be integers for {space}, got {a.dtype}")
            if a.shape != self._batch_shape:
                raise ValueError(
                    f"actions must have shape ({self.num_envs},) (one {space} action per env), "
                    f"got {a.shape}"
                )
            values = a.tolist()
            if min(values) >= 0 and max(values) < space.n:
                return values
            bad = (a < 0) | (a >= space.n)
        else:
            shape = (self.num_envs, *space.shape)
            if a.dtype.kind != "f":
                raise TypeError(f"actions must be floats for {space}, got {a.dtype}")
            if a.shape != shape:
                raise ValueError(
                    f"actions must have shape {shape} (one {space} action per env), got {a.shape}"
                )
            bad = ~((a >= self._a_low) & (a <= self._a_high))  # NaN fails both comparisons
            bad = bad.reshape(self.num_envs, -1).any(axis=1)
            if not bad.any():
                return a
        i = int(np.argmax(bad))
        raise ValueError(f"actions[{i}] = {a[i].tolist()} is outside {space}")

    def _step_envs(self, actions: list | np.ndarray) -> tuple[list, list]:
        """Step every env, write ``self._reward``, autoreset the envs whose episode ends (time
        limit included).

        Returns ``(rows, ended)``: each env's next observation (the reset one where the episode
        ended) and ``(i, final_obs, return, length, terminated, truncated)`` for each ended
        episode. A family may override it with the same loop around its own env calls inlined
        (MinAtar does: its step is ~3 us).
        """
        t, ep_return = self._t, self._ep_return
        limit = self.max_episode_steps or _NO_LIMIT
        step_one, reset_one = self._step_one, self._reset_one
        rows, rewards, ended = [], [], []
        for i, a in enumerate(actions):
            o, r, te, tr = step_one(i, a)
            ti = t[i] + 1
            rewards.append(r)
            if te or tr or ti >= limit:
                ended.append((i, o, ep_return[i] + r, ti, te, tr or ti >= limit))
                t[i] = 0
                ep_return[i] = 0.0
                o = reset_one(i, None)
            else:
                t[i] = ti
                ep_return[i] += r
            rows.append(o)
        self._reward[:] = rewards
        return rows, ended

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; see the ``qwr_fast.envs`` docstring for the autoreset contract."""
        if self._needs_reset or self.closed:
            raise RuntimeError("env is closed" if self.closed else "call reset() before step()")
        rows, ended = self._step_envs(self._check_actions(actions))
        self._write_obs(rows)
        if self._flagged:  # flags and statistics are nonzero only in the rows ended last step
            self._clear_flags()
        if ended:
            return self._end_episodes(rows, ended)
        if self._copy:
            return (
                self._obs.copy(),
                self._reward.copy(),
                self._terminated.copy(),
                self._truncated.copy(),
                {},
            )
        return self._obs, self._reward, self._terminated, self._truncated, {}

    def _clear_flags(self) -> None:
        terminated, truncated, done, ep_r, ep_l = self._flag_views
        for i in self._flagged:
            terminated[i] = truncated[i] = done[i] = False
            ep_r[i] = 0.0
            ep_l[i] = 0
        self._flagged = []

    def _write_final_obs(self, rows: list, ended: list) -> None:
        """``final_obs`` = ``obs`` (whose rows are ``rows``), with the last observation of each
        ended episode in its row (a family may do it in one copy)."""
        final_obs = self._final_obs
        np.copyto(final_obs, self._obs)
        for e in ended:
            final_obs[e[0]] = e[1]

    def _end_episodes(
        self, rows: list, ended: list
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The step's return at a step where the episodes ``ended`` (see ``_step_envs``)
        ended: their flags, final observations and statistics set."""
        self._write_final_obs(rows, ended)
        terminated, truncated, done, ep_r, ep_l = self._flag_views
        self._flagged = [e[0] for e in ended]
        for i, _, ret, length, te, tr in ended:
            terminated[i] = te
            truncated[i] = tr
            done[i] = True
            ep_r[i] = ret
            ep_l[i] = length
        obs, reward, final_obs = self._obs, self._reward, self._final_obs
        if not self._copy:
            infos = {
                "final_obs": final_obs,
                "_final_obs": self._done,
                "episode_stats": {"r": self._ep_r, "l": self._ep_l},
                "_episode_stats": self._done,
            }
            return obs, reward, self._terminated, self._truncated, infos
        done = self._done.copy()
        infos = {
            "final_obs": final_obs.copy(),
            "_final_obs": done,
            "episode_stats": {"r": self._ep_r.copy(), "l": self._ep_l.copy()},
            "_episode_stats": done,
        }
        return obs.copy(), reward.copy(), self._terminated.copy(), self._truncated.copy(), infos

    # -- snapshot / restore ---------------------------------------------------------------
    def get_state(self, indices: IndexLike = None) -> EnvState:
        """An exact copy of the state of all envs, or of ``indices`` (in that order)."""
        idx = np.arange(self.num_envs)[_rows(indices, self.num_envs, "indices")]
        games = np.empty(len(idx), dtype=object)
        for k, i in enumerate(idx.tolist()):
            games[k] = self._snapshot_one(i)
        arrays = {
            "game": games,
            "obs": self._obs[idx].copy(),
            "t": np.array(self._t, dtype=np.int32)[idx],
            "ep_return": np.array(self._ep_return, dtype=np.float64)[idx],
        }
        return EnvState(self.config, arrays)

    def set_state(
        self, state: EnvState, indices: IndexLike = None, *, reseed: Reseed = None
    ) -> np.ndarray:
        """Overwrite the state of all envs, or of ``indices``, with ``state``; return the obs.

        ``state.num_envs`` must equal the number of rows written, or be 1 (broadcast to all of
        them). With ``reseed=None`` (the default) stepping afterwards with the same actions
        reproduces, bit for bit, what the envs that the state was taken from produced (including
        their autoresets).

        ``reseed`` (an int, or one int per restored row): restore the state exactly, then give
        each restored env a fresh chance stream (``_reseed_one``), derived from ``(reseed, i)``
        for the env in row i (or from ``reseed[j]`` for the j-th restored row; see
        ``qwr_fast.envs._rng.reseed_streams``). The returned obs, the step counters, returns and
        everything else deterministic equal the exact restore's; only the future chance draws
        (the family's sticky actions, spawns, card draws, reset noise) are new, so a simulator
        restored from a real env's state does not know what chance will do in the real env.
        """
        rows = _state_rows(state, self.config, indices, self.num_envs)
        idx = np.arange(self.num_envs)[rows].tolist()
        streams = None if reseed is None else reseed_streams(reseed, idx)
        games, ts, rets = state.arrays["game"], state.arrays["t"], state.arrays["ep_return"]
        if any(type(g) is dict for g in games):  # a state read from a checkpoint
            games = [
                self._snapshot_from_plain(idx[0 if state.num_envs == 1 else j], g)
                if type(g) is dict
                else g
                for j, g in enumerate(games)
            ]
        for j, i in enumerate(idx):
            k = 0 if state.num_envs == 1 else j
            self._restore_one(i, games[k])
            if streams is not None:
                self._reseed_one(i, int(streams[j]))
            self._t[i] = int(ts[k])
            self._ep_return[i] = float(rets[k])
        self._obs[rows] = state.arrays["obs"]
        self._needs_reset = False
        return self._obs.copy() if self._copy else self._obs

    def clone_states(
        self, source: int, targets: IndexLike = None, *, reseed: Reseed = None
    ) -> np.ndarray:
        """Copy env ``source``'s exact state into ``targets`` (default: every env); return obs.

        With ``reseed=None`` clones share the RNG state of ``source``, so identical actions give
        identical rollouts, autoresets included; with ``reseed`` each target gets a fresh chance
        stream as in ``set_state``.
        """
        if isinstance(source, bool) or not isinstance(source, (int, np.integer)):
            raise TypeError(f"source must be an int env index, got {type(source).__name__}")
        if not 0 <= source < self.num_envs:
            raise ValueError(f"source must lie in [0, {self.num_envs}), got {source}")
        return self.set_state(self.get_state(int(source)), targets, reseed=reseed)
