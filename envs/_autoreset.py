"""NEXT_STEP autoreset on top of the families' SAME_STEP envs: ``make(..., autoreset_mode=...)``.

Gymnasium's default autoreset (and what its vector observation wrappers accept) is NEXT_STEP:
the step at which env i's episode ends returns that episode's last observation in ``obs[i]``
(no ``final_obs`` info), and the next step ignores ``actions[i]`` and returns the reset
observation with reward 0 and no done flags. ``NextStepVectorEnv`` gives that view of a family
env (which resets in the same step): at an ending step it shows the last observation and keeps
the already reset env waiting; at the next step the waiting envs are stepped with a valid
placeholder action and then restored to their reset state (``get_state``/``set_state`` of those
rows), so their states, RNG streams included, are exactly the reset ones.

``get_state`` adds two arrays to the family's ``EnvState``: ``next_step_pending`` (bool: the
env's next step is its reset step) and ``next_step_obs`` (the observation last shown), so
``set_state`` is exact in this mode too. A state taken in SAME_STEP mode restores with no env
pending; a family env ignores the two arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from qwr_fast.envs._vector import EnvState, IndexLike, Reseed, _rows

AUTORESET_MODES = {
    AutoresetMode.SAME_STEP: AutoresetMode.SAME_STEP,
    AutoresetMode.NEXT_STEP: AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "next_step": AutoresetMode.NEXT_STEP,
    AutoresetMode.SAME_STEP.value: AutoresetMode.SAME_STEP,
    AutoresetMode.NEXT_STEP.value: AutoresetMode.NEXT_STEP,
}


def check_autoreset_mode(mode: Any) -> AutoresetMode:
    """``mode`` as an ``AutoresetMode`` (SAME_STEP or NEXT_STEP; also their names and values as
    str); ValueError otherwise."""
    key = mode.lower() if isinstance(mode, str) and mode.lower() in AUTORESET_MODES else mode
    try:
        return AUTORESET_MODES[key]
    except (KeyError, TypeError):
        raise ValueError(
            f"autoreset_mode must be AutoresetMode.SAME_STEP or AutoresetMode.NEXT_STEP "
            f"('same_step' / 'next_step'), got {mode!r}"
        ) from None


def _idle_action(space: spaces.Space) -> np.ndarray:
    """One valid action of ``space`` (for envs whose action this step is ignored)."""
    if isinstance(space, spaces.Box):
        low = np.where(np.isfinite(space.low), space.low, 0.0)
        high = np.where(np.isfinite(space.high), space.high, 0.0)
        mid = np.clip(low / 2 + high / 2, space.low, space.high)
        return mid.astype(space.dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype).copy()
    if isinstance(space, spaces.Discrete):
        return np.asarray(space.start, dtype=np.int64)
    return np.zeros(space.shape, dtype=space.dtype)  # MultiBinary


class NextStepVectorEnv(VectorEnv):
    """A family env (SAME_STEP) seen with gymnasium's NEXT_STEP autoreset (module docstring).

    ``env`` is the wrapped env; its public attributes (``n_bits``, ``max_episode_steps``,
    ``config``, ...) are readable here too. ``copy`` as in ``make``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, env: VectorEnv, *, copy: bool = True) -> None:
        self.env = env
        n = self.num_envs = env.num_envs
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.render_mode = getattr(env, "render_mode", None)
        self.single_observation_space = env.single_observation_space
        self.observation_space = env.observation_space
        self.single_action_space = env.single_action_space
        self.action_space = env.action_space
        self._copy = copy
        space = env.single_observation_space
        self._obs = np.zeros((n, *space.shape), dtype=space.dtype)  # the obs last shown
        self._reward = np.zeros(n, dtype=np.float32)
        self._terminated = np.zeros(n, dtype=np.bool_)
        self._truncated = np.zeros(n, dtype=np.bool_)
        self._pending = np.zeros(n, dtype=np.bool_)  # next step is the env's reset step
        self._idle = _idle_action(env.single_action_space)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or "env" not in self.__dict__:
            raise AttributeError(name)
        env = self.env
        while not hasattr(env, name) and hasattr(env, "env"):  # through ``discretize``
            env = env.env
        return getattr(env, name)

    def _out(self, a: np.ndarray) -> np.ndarray:
        return a.copy() if self._copy else a

    # -- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None):
        """As the family's ``reset``; the reset envs are no longer pending."""
        obs, infos = self.env.reset(seed=seed, options=options)
        mask = None if not options else np.asarray(options["reset_mask"])
        if mask is None:
            self._obs[:] = obs
            self._pending[:] = False
        else:
            self._obs[mask] = obs[mask]
            self._pending[mask] = False
        return self._out(self._obs), infos

    def _placeholder_actions(self, actions: Any, rows: np.ndarray) -> Any:
        """``actions`` with a valid action in ``rows`` (whose actions are ignored)."""
        a = np.array(actions, copy=True)
        if a.ndim == 0 or len(a) != self.num_envs:
            return actions  # malformed: the family's own check names the problem
        legal = getattr(self.env, "_legal", None)  # Hanabi: legal moves per env
        for i in rows.tolist():
            a[i] = legal[i][0] if legal is not None else self._idle
        return a

    def step(self, actions: Any):
        """Step every env with NEXT_STEP autoreset (see the module docstring)."""
        if self.closed:
            raise RuntimeError("env is closed")
        waiting = np.flatnonzero(self._pending)
        saved = None
        if waiting.size:
            saved = self.env.get_state(waiting)
            actions = self._placeholder_actions(actions, waiting)
        obs, reward, terminated, truncated, infos = self.env.step(actions)
        self._obs[:] = obs
        self._reward[:] = reward
        self._terminated[:] = terminated
        self._truncated[:] = truncated
        ended = self._terminated | self._truncated
        if saved is not None:  # the waiting envs: back to their reset state, shown as such
            self._obs[waiting] = self.env.set_state(saved, waiting)[waiting]
            self._reward[waiting] = 0.0
            self._terminated[waiting] = self._truncated[waiting] = False
            ended[waiting] = False
        self._pending[:] = ended
        out_infos: dict[str, Any] = {}
        if ended.any():
            self._obs[ended] = infos["final_obs"][ended]
            stats = infos["episode_stats"]
            out_infos = {
                "episode_stats": {
                    "r": np.where(ended, stats["r"], 0).astype(np.float32),
                    "l": np.where(ended, stats["l"], 0).astype(np.int32),
                },
                "_episode_stats": ended,
            }
        return (
            self._out(self._obs),
            self._out(self._reward),
            self._out(self._terminated),
            self._out(self._truncated),
            out_infos,
        )

    # -- snapshot / restore ---------------------------------------------------------------
    def get_state(self, indices: IndexLike = None) -> EnvState:
        """The family's exact state plus ``next_step_pending`` and ``next_step_obs``."""
        state = self.env.get_state(indices)
        rows = _rows(indices, self.num_envs, "indices")
        arrays = dict(state.arrays)
        arrays["next_step_pending"] = self._pending[rows].copy()
        arrays["next_step_obs"] = self._obs[rows].copy()
        return EnvState(state.config, arrays)

    def set_state(
        self, state: EnvState, indices: IndexLike = None, *, reseed: Reseed = None
    ) -> np.ndarray:
        """As the family's ``set_state``; exact in NEXT_STEP mode too (a pending env stays
        pending and shows the observation it showed)."""
        obs = self.env.set_state(state, indices, reseed=reseed)
        rows = _rows(indices, self.num_envs, "indices")
        self._obs[rows] = obs[rows]
        pending = state.arrays.get("next_step_pending")
        if pending is None:
            self._pending[rows] = False
        else:
            self._pending[rows] = pending
            shown = np.broadcast_to(state.arrays["next_step_obs"], self._obs[rows].shape)
            self._obs[rows] = np.where(
                self._pending[rows].reshape(-1, *([1] * (self._obs.ndim - 1))),
                shown,
                self._obs[rows],
            )
        return self._out(self._obs)

    def clone_states(
        self, source: int, targets: IndexLike = None, *, reseed: Reseed = None
    ) -> np.ndarray:
        """Copy env ``source``'s exact state (pending flag included) into ``targets``."""
        if isinstance(source, bool) or not isinstance(source, (int, np.integer)):
            raise TypeError(f"source must be an int env index, got {type(source).__name__}")
        if not 0 <= source < self.num_envs:
            raise ValueError(f"source must lie in [0, {self.num_envs}), got {source}")
        return self.set_state(self.get_state(int(source)), targets, reseed=reseed)

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close(**kwargs)
