"""MuJoCo (gymnasium v5 ids: ``HalfCheetah-v5``, ``Hopper-v5``, ``Humanoid-v5``, ...) behind the
``qwr_fast.envs`` vector API.

Each env is the bare gymnasium ``MujocoEnv`` (``gymnasium.make(id).unwrapped``: no
``PassiveEnvChecker``/``OrderEnforcing``/``TimeLimit`` wrappers); the loop in
``qwr_fast.envs._loop`` applies the id's time limit (1000 steps for the locomotion tasks) as
truncation, checks the actions, and autoresets. Observations and the observation space are the
env's own (float64); actions must lie in the env's Box (no clipping: out of range, NaN or the
wrong shape raise before any env moves). ``bins=<k>`` (in ``make``) discretises the actions,
see ``qwr_fast.envs.discretize``.

State: the whole ``MjData`` (``mj_copyData``), not only qpos/qvel/act/time: gymnasium's
observations and rewards read quantities that ``mj_step`` left from the previous forward pass
(``cinert``/``cvel``/``cfrc_ext`` in Humanoid and Ant observations, the centre of mass
"before" the step in their rewards) and the solver's warm start changes the next step, so a
restore that recomputed them from qpos/qvel would not replay bit for bit (measured: after
``MujocoEnv.set_state(qpos, qvel)`` every Humanoid-v5 obs and reward of a 5-step replay
differed). Plus the env's ``np_random`` state (reset noise) and the loop's step counter and
return. The dynamics are deterministic, so ``set_state(..., reseed=r)`` changes only the reset
noise of the episodes that start after the restore (a fresh ``np_random`` from the env's reseed
word). A checkpoint stores the ``MjData`` as the bytes of MuJoCo's own serialisation
(``MjData.__getstate__``); ``set_state`` rebuilds it and refuses one whose model sizes differ
from the env's.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from qwr_fast.envs._loop import (
    LoopVectorEnv,
    check_num_envs,
    check_plain_snapshot,
    check_rng_state,
    missing_extra,
)

MUJOCO_IDS = (
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Humanoid-v5",
    "HumanoidStandup-v5",
    "InvertedDoublePendulum-v5",
    "InvertedPendulum-v5",
    "Pusher-v5",
    "Reacher-v5",
    "Swimmer-v5",
    "Walker2d-v5",
)
_DEFAULT = object()


def _import_mujoco():
    try:
        import mujoco
    except ImportError as e:
        raise missing_extra("mujoco", "mujoco", "MuJoCo") from e
    return mujoco


class MujocoVectorEnv(LoopVectorEnv):
    """``num_envs`` gymnasium MuJoCo envs of one id; see the module docstring."""

    FAMILY = "MuJoCo"

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        *,
        max_episode_steps: Any = _DEFAULT,
        seed: int | None = None,
        copy: bool = True,
        **env_kwargs: Any,
    ) -> None:
        if env_id not in MUJOCO_IDS:
            raise ValueError(f"unknown MuJoCo id {env_id!r}; known: {', '.join(MUJOCO_IDS)}")
        self._mujoco = _import_mujoco()
        import gymnasium

        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        spec = gymnasium.spec(env_id)
        if max_episode_steps is _DEFAULT:
            max_episode_steps = spec.max_episode_steps
        n = check_num_envs(num_envs)
        self._envs = [gymnasium.make(env_id, **env_kwargs).unwrapped for _ in range(n)]
        first = self._envs[0]
        super().__init__(
            num_envs,
            first.observation_space,
            first.action_space,
            max_episode_steps=max_episode_steps,
            seed=seed,
            copy=copy,
        )

    @property
    def config(self) -> tuple:
        return (
            "MuJoCo",
            self.env_id,
            tuple(sorted(self.env_kwargs.items())),
            ("max_episode_steps", self.max_episode_steps),
        )

    def _reset_one(self, i: int, seed: int | None) -> np.ndarray:
        return self._envs[i].reset(seed=seed)[0]

    def _step_one(self, i: int, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        obs, reward, terminated, truncated, _ = self._envs[i].step(action)
        return obs, reward, terminated, truncated

    def _snapshot_one(self, i: int) -> Any:
        env = self._envs[i]
        data = self._mujoco.MjData(env.model)
        self._mujoco.mj_copyData(data, env.model, env.data)
        return data, copy.deepcopy(env.np_random.bit_generator.state)

    def _restore_one(self, i: int, snapshot: Any) -> None:
        env = self._envs[i]
        data, rng_state = snapshot
        self._mujoco.mj_copyData(env.data, env.model, data)
        env.np_random.bit_generator.state = rng_state

    @classmethod
    def _snapshot_to_plain(cls, snapshot: Any) -> dict[str, Any]:
        data, rng_state = snapshot
        return {
            "family": cls.FAMILY,
            "data": bytes(data.__getstate__()),  # MuJoCo's own serialisation of the MjData
            "rng": copy.deepcopy(rng_state),
        }

    def _snapshot_from_plain(self, i: int, plain: dict[str, Any]) -> Any:
        p = check_plain_snapshot(plain, self.FAMILY, ("data", "rng"))
        env = self._envs[i]
        if type(p["data"]) is not bytes:
            raise ValueError("MuJoCo snapshot 'data' must be bytes")
        data = self._mujoco.MjData.__new__(self._mujoco.MjData)
        data.__setstate__(p["data"])
        if _model_sizes(data.model) != _model_sizes(env.model):
            raise ValueError(f"MuJoCo snapshot of another model than {self.env_id}'s")
        return data, check_rng_state(p["rng"], env.np_random.bit_generator, self.FAMILY)

    def _reseed_one(self, i: int, seed: int) -> None:
        # The dynamics are deterministic: the only chance is the reset noise of later episodes.
        # A PCG64 from the seed, as gymnasium's ``reset(seed=...)`` makes it.
        self._envs[i].np_random.bit_generator.state = np.random.PCG64(seed).state

    def close_extras(self, **kwargs: Any) -> None:
        for env in self._envs:
            env.close()


def _model_sizes(model: Any) -> tuple:
    """Every size of an ``MjModel`` (its int attributes ``n*``: nq, nv, nbody, nbuffer, ...),
    which fix the layout that ``mj_copyData`` copies."""
    names = sorted(a for a in dir(model) if a.startswith("n") and not a.startswith("__"))
    return tuple((a, v) for a in names if isinstance(v := getattr(model, a), int))
