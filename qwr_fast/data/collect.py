"""The one step from a vector environment to a replay (or a dataset): :class:`Collector`.

A collector owns the training env's side of a run: the current observations, which envs are
at a reset step (next-step autoreset), the running episode returns and the returns of the
episodes that ended. Each :meth:`Collector.collect` step asks a :class:`Behaviour` for the
actions (and the behaviour distribution ``mu`` they were drawn from), steps the env, works out
the observation that bootstraps each step (the final observation of an episode that ended, in
every autoreset mode) and writes the transition to a sink with the signature of
:meth:`qwr_fast.data.replay.Replay.add` (a replay, or a dataset recorder).

``qwr-train``, ``aql-train``, ``dqn-train`` and ``qwr-collect`` collect through it.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

__all__ = ["Behaviour", "Collector", "autoreset_mode", "make_env"]


def make_env(env_id: str, num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """A vector env: ``qwr_fast.envs.make`` for its ids, else ``gymnasium.make_vec`` (sync,
    same-step autoreset). ValueError naming ``--env`` for an id neither knows."""
    from qwr_fast.envs import make

    try:
        return make(env_id, num_envs, seed=seed)
    except ValueError as e:
        if not str(e).startswith("unknown env id"):
            raise
    try:
        return gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    except gym.error.Error as e:
        raise ValueError(f"--env {env_id!r}: {e}") from e


def autoreset_mode(env: gym.vector.VectorEnv) -> AutoresetMode:
    """The vector env's autoreset mode (gymnasium's default, next-step, when it declares
    none)."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return AutoresetMode(mode) if not isinstance(mode, AutoresetMode) else mode


class Behaviour(Protocol):
    """What a collector acts with. ``act(obs) -> (action, mu)``: network actions (what the sink
    stores) and the behaviour parameters they were drawn from (None if there are none);
    ``to_env(action)``: the env's actions; ``next_mu(boot_obs, mu)``: what the sink stores as
    ``next_mu`` for the bootstrap observations."""

    def act(self, obs: Any) -> tuple[Any, Any]: ...

    def to_env(self, action: Any) -> np.ndarray: ...

    def next_mu(self, boot_obs: Any, mu: Any) -> Any: ...


class Sink(Protocol):
    def add(self, obs, mu, action, reward, terminal, truncated, next_obs, next_mu, *, valid): ...


class Collector:
    """Steps ``env`` with a behaviour and writes every transition to a sink.

    Args:
        env: a gymnasium vector env (any autoreset mode).
        seed: the seed of the first ``env.reset``.
        obs_to_tensor: what the behaviour and the sink see of an observation batch (e.g. a
            tensor on the replay's device); the identity by default.
        norm: a running observation normaliser (``update(obs)``) folded over every observation
            acted on, except the reset steps of a next-step-autoreset env; None for none.
        bootstrap_truncation: store ``terminal`` as the env reports it (truncation
            bootstraps); False stores ``terminal | truncated`` (truncation ends the return).
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        *,
        seed: int,
        obs_to_tensor=None,
        norm=None,
        bootstrap_truncation: bool = True,
    ) -> None:
        self.env = env
        self.num_envs = env.num_envs
        self.mode = autoreset_mode(env)
        self.obs_to_tensor = obs_to_tensor if obs_to_tensor is not None else (lambda o: o)
        self.norm = norm
        self.bootstrap_truncation = bootstrap_truncation
        self.obs, _ = env.reset(seed=seed)
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        self.ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self.finished_returns: list[float] = []
        # env steps taken so far by the running collect() call (0 between calls): a behaviour
        # whose schedule counts env steps (epsilon, learning starts) adds it to its own count
        self.steps_in_call = 0

    def pop_returns(self) -> list[float]:
        """The returns of the episodes that ended since the last call."""
        out, self.finished_returns = self.finished_returns, []
        return out

    def collect(self, steps: int, behaviour: Behaviour, sink: Sink) -> int:
        """Step every env ``max(1, steps // num_envs)`` times; returns the env steps taken."""
        E = self.num_envs
        n = max(1, steps // E)
        self.steps_in_call = 0
        for _ in range(n):
            obs_t = self.obs_to_tensor(self.obs)
            if self.norm is not None:
                valid = ~self.prev_done if self.mode == AutoresetMode.NEXT_STEP else None
                self.norm.update(
                    obs_t if valid is None or valid.all() else obs_t[torch.as_tensor(valid)]
                )
            action, mu = behaviour.act(obs_t)
            next_obs, reward, term, trunc, infos = self.env.step(behaviour.to_env(action))
            done = np.logical_or(term, trunc)
            boot = np.array(next_obs, copy=True)
            valid = np.ones(E, dtype=bool)
            if self.mode == AutoresetMode.SAME_STEP and done.any():
                final = infos["final_obs"]
                for i in np.flatnonzero(done):
                    boot[i] = final[i]
            elif self.mode == AutoresetMode.NEXT_STEP:
                valid = ~self.prev_done
            elif self.mode == AutoresetMode.DISABLED and done.any():
                next_obs, _ = self.env.reset(options={"reset_mask": done})
            boot_t = self.obs_to_tensor(boot)
            sink.add(
                obs_t,
                mu,
                action,
                torch.as_tensor(reward, dtype=torch.float32),
                torch.as_tensor(term if self.bootstrap_truncation else done),
                torch.as_tensor(trunc),
                boot_t,
                behaviour.next_mu(boot_t, mu),
                valid=torch.as_tensor(valid),
            )
            self.ep_return += np.where(valid, reward, 0.0)
            for i in np.flatnonzero(done & valid):
                self.finished_returns.append(float(self.ep_return[i]))
                self.ep_return[i] = 0.0
            self.prev_done = done & valid
            self.obs = next_obs
            self.steps_in_call += E
        self.steps_in_call = 0
        return n * E

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """The env's state and the collector's, under the checkpoint keys ``env`` (``("get_state",
        state)`` or ``("pickle", bytes)``, or None), ``env_obs``, ``prev_done``, ``ep_return``."""
        return {
            "env": self._env_state(),
            "env_obs": np.array(self.obs, copy=True),
            "prev_done": self.prev_done.copy(),
            "ep_return": self.ep_return.copy(),
        }

    def load_state_dict(self, s: dict, *, reset_seed: int) -> None:
        """Restore :meth:`state_dict` (also the bare ``env`` states that older aql-train,
        ppo-train and dqn-train checkpoints hold). Without an env state the envs restart
        (``env.reset(seed=reset_seed)``) and the run will not equal an uninterrupted one."""
        env_state = s["env"]
        if env_state is None:
            warnings.warn(
                "the checkpoint holds no env state: the resumed run restarts its episodes and "
                "will not equal an uninterrupted one",
                stacklevel=2,
            )
            self.obs, _ = self.env.reset(seed=reset_seed)
            return
        if isinstance(env_state, tuple) and env_state[0] == "pickle":
            vars(self.env).update(pickle.loads(env_state[1]))
        else:
            self.env.set_state(env_state[1] if isinstance(env_state, tuple) else env_state)
        self.obs = s["env_obs"]
        if s.get("prev_done") is not None:
            self.prev_done = s["prev_done"]
        if s.get("ep_return") is not None:
            self.ep_return = s["ep_return"]

    def _env_state(self):
        if hasattr(self.env, "get_state"):
            return ("get_state", self.env.get_state())
        try:
            fields = {k: v for k, v in vars(self.env).items() if k != "env_fns"}
            return ("pickle", pickle.dumps(fields))
        except Exception:
            warnings.warn(
                f"env {self.env} has no get_state and cannot be pickled: a resumed run "
                "restarts its episodes and will not equal an uninterrupted one",
                stacklevel=2,
            )
            return None
