"""The one step from a vector environment to a replay (or a dataset): :class:`Collector`.

A collector owns the training env's side of a run: the current observations, which envs are
at a reset step (next-step autoreset), the running episode returns and the returns of the
episodes that ended. Each :meth:`Collector.collect` step asks a :class:`Behaviour` for the
actions (and the behaviour distribution ``mu`` they were drawn from), steps the env, works out
the observation that bootstraps each step (the final observation of an episode that ended, in
every autoreset mode) and writes the transition to a sink with the signature of
:meth:`qwr_fast.data.replay.Replay.add` (a replay, or a dataset recorder).

``qwr-train``, ``aql-train``, ``dqn-train`` and ``qwr-collect`` collect through it.

Checkpoint (:meth:`Collector.state_dict`): a ``qwr_fast.envs`` env is saved with its exact
``get_state``. A gymnasium vector env has none; its state is saved as plain data instead
(:func:`vector_env_attrs`: the instance attributes of the vector env, of every sub-env and
wrapper and of their spaces that are numbers, strings, arrays or containers of them, and the
state of every numpy ``Generator``), which restores it exactly for envs that keep their state
that way (classic control, toy text). An env with state in any other object (gymnasium's own
MuJoCo envs hold an ``MjData``, Box2D envs a world) is not saved: the resumed run restarts its
episodes, with a warning. No object is pickled, so a checkpoint from someone else runs no
code (see :mod:`qwr_fast.checkpoint`).
"""

from __future__ import annotations

import copy
import enum
import warnings
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from qwr_fast.envs._vector import is_plain

__all__ = [
    "Behaviour",
    "Collector",
    "autoreset_mode",
    "make_env",
    "restore_vector_env_attrs",
    "vector_env_attrs",
]


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
        env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    except gym.error.Error as e:
        raise ValueError(f"--env {env_id!r}: {e}") from e
    space = env.single_observation_space
    if not isinstance(space, (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiBinary)):
        env.close()
        raise ValueError(
            f"--env {env_id!r} has a {type(space).__name__} observation space; the trainers "
            "take Box, Discrete or MultiBinary observations (register a flattened version, "
            "e.g. with gymnasium.wrappers.FlattenObservation)"
        )
    return env


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
        state)``, ``("attrs", tree)`` of :func:`vector_env_attrs`, or None), ``env_obs``,
        ``prev_done``, ``ep_return``."""
        return {
            "env": self._env_state(),
            "env_obs": np.array(self.obs, copy=True),
            "prev_done": self.prev_done.copy(),
            "ep_return": self.ep_return.copy(),
        }

    def load_state_dict(self, s: dict, *, reset_seed: int) -> None:
        """Restore :meth:`state_dict` (also the bare ``env`` states that older aql-train,
        ppo-train and dqn-train checkpoints hold). Without an env state the envs restart
        (``env.reset(seed=reset_seed)``) and the run will not equal an uninterrupted one; so
        do they for the ``("pickle", bytes)`` env state of older checkpoints, which is never
        unpickled (it could run code)."""
        env_state = s["env"]
        tag = env_state[0] if isinstance(env_state, tuple) else None
        if env_state is None or tag == "pickle":
            what = "no env state" if env_state is None else "a pickled env state (not loaded)"
            warnings.warn(
                f"the checkpoint holds {what}: the resumed run restarts its episodes and "
                "will not equal an uninterrupted one",
                stacklevel=2,
            )
            self.obs, _ = self.env.reset(seed=reset_seed)
            return
        if tag == "attrs":
            restore_vector_env_attrs(self.env, env_state[1])
        else:
            self.env.set_state(env_state[1] if tag == "get_state" else env_state)
        self.obs = s["env_obs"]
        if s.get("prev_done") is not None:
            self.prev_done = s["prev_done"]
        if s.get("ep_return") is not None:
            self.ep_return = s["ep_return"]

    def _env_state(self):
        # the base env decides: a wrapper (``discretize``) forwards get_state to the env it wraps
        if hasattr(getattr(self.env, "unwrapped", self.env), "get_state"):
            return ("get_state", self.env.get_state())
        try:
            return ("attrs", vector_env_attrs(self.env))
        except TypeError as e:
            warnings.warn(
                f"env {self.env} has no get_state and {e}: a resumed run restarts its episodes "
                "and will not equal an uninterrupted one",
                stacklevel=2,
            )
            return None


# ---------------------------------------------------------------- gymnasium envs as plain data
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_NODES = (gym.Env, gym.vector.VectorEnv, gym.Space)


def _is_static(value: Any) -> bool:
    """Configuration that a fresh env of the same id has as well (skipped): dtypes, env specs,
    enums, classes and callables, and containers of these and plain data."""
    if isinstance(value, (np.dtype, gym.envs.registration.EnvSpec, enum.Enum, type)):
        return True
    if type(value) in (list, tuple):
        return all(is_plain(v) or _is_static(v) for v in value)
    if type(value) is dict:
        return all(is_plain(v) or _is_static(v) for v in value.values())
    return callable(value) and not isinstance(value, _NODES)


def vector_env_attrs(env: gym.vector.VectorEnv) -> tuple:
    """The state of a gymnasium vector env as plain data: a tree of tagged tuples over the
    instance attributes of the env, its sub-envs and wrappers (``envs``, ``env``) and their
    spaces. ``("plain", value)`` for plain data (``qwr_fast.envs._vector.is_plain``),
    ``("rng", state)`` for a numpy ``Generator`` (or ``("random_state", state)`` for a
    ``RandomState``), ``("node", class name, {attribute: tree})`` for an env, wrapper or
    space, ``("list" | "tuple" | "dict", items)`` for containers of these, ``("seen",)`` for an
    object met before; configuration (``_is_static``) is left out.
    TypeError naming the attribute if one holds anything else (its state cannot be saved
    as data)."""
    return _attrs(env, "env", set())


def _attrs(value: Any, where: str, seen: set[int]) -> tuple:
    if is_plain(value):
        return ("plain", copy.deepcopy(value))
    if isinstance(value, np.random.Generator):
        return ("rng", value.bit_generator.state)
    if isinstance(value, np.random.RandomState):
        return ("random_state", value.get_state(legacy=False))
    if isinstance(value, _NODES):
        if id(value) in seen:
            return ("seen",)
        seen.add(id(value))
        fields = {
            k: _attrs(v, f"{where}.{k}", seen)
            for k, v in vars(value).items()
            if k != "env_fns" and not (not is_plain(v) and _is_static(v))
        }
        return ("node", type(value).__qualname__, fields)
    if type(value) in (list, tuple):
        items = [_attrs(v, f"{where}[{i}]", seen) for i, v in enumerate(value)]
        return (type(value).__name__, items)
    if type(value) is dict and all(type(k) is str for k in value):
        return ("dict", {k: _attrs(v, f"{where}[{k!r}]", seen) for k, v in value.items()})
    raise TypeError(f"its {where} is a {type(value).__module__}.{type(value).__qualname__}")


def restore_vector_env_attrs(env: gym.vector.VectorEnv, tree: Any) -> None:
    """Write :func:`vector_env_attrs` back into ``env`` (a fresh env of the same id and
    ``num_envs``), in place. ValueError if the tree does not fit the env (another class or
    container layout, a malformed entry); only attributes of the env's own objects are
    written, and only with plain data and numpy generators' states."""
    try:
        _restore(env, tree, "env")
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise ValueError(f"the checkpoint's env state does not fit {env}: {e}") from e


def _restore(live: Any, tree: Any, where: str) -> Any:
    if type(tree) is not tuple or not tree or type(tree[0]) is not str:
        raise ValueError(f"{where}: malformed env state entry")
    tag = tree[0]
    if tag == "plain" and len(tree) == 2 and is_plain(tree[1]):
        return copy.deepcopy(tree[1])
    if tag == "rng" and len(tree) == 2:
        return _generator(live, tree[1], where)
    if tag == "random_state" and len(tree) == 2:
        rs = live if isinstance(live, np.random.RandomState) else np.random.RandomState()  # noqa: NPY002
        rs.set_state(tree[1])
        return rs
    if tag == "seen" and len(tree) == 1:
        return live
    if tag == "node" and len(tree) == 3 and type(tree[2]) is dict:
        if not isinstance(live, _NODES) or type(live).__qualname__ != tree[1]:
            raise ValueError(f"{where} is a {type(live).__qualname__}, the state's a {tree[1]}")
        fields = vars(live)
        for k, sub in tree[2].items():
            if type(k) is not str or not k.isidentifier() or k.startswith("__"):
                raise ValueError(f"{where}: bad attribute name {k!r}")
            fields[k] = _restore(fields.get(k), sub, f"{where}.{k}")
        return live
    if tag in ("list", "tuple") and len(tree) == 2 and type(tree[1]) is list:
        if type(live).__name__ != tag or len(live) != len(tree[1]):
            raise ValueError(f"{where} does not match the state's {tag} of {len(tree[1])}")
        pairs = enumerate(zip(live, tree[1], strict=True))
        items = [_restore(v, t, f"{where}[{i}]") for i, (v, t) in pairs]
        return items if tag == "list" else tuple(items)
    if tag == "dict" and len(tree) == 2 and type(tree[1]) is dict:
        if type(live) is not dict or set(live) != set(tree[1]):
            raise ValueError(f"{where} does not match the state's keys")
        return {k: _restore(live[k], t, f"{where}[{k!r}]") for k, t in tree[1].items()}
    raise ValueError(f"{where}: malformed env state entry {tag!r}")


def _generator(live: Any, state: Any, where: str) -> np.random.Generator:
    """``live`` (a ``Generator``, or None for one not made yet) set to ``state``."""
    name = state.get("bit_generator") if type(state) is dict else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"{where}: not a numpy Generator state")
    if not (isinstance(live, np.random.Generator) and type(live.bit_generator).__name__ == name):
        live = np.random.Generator(getattr(np.random, name)())
    live.bit_generator.state = state
    return live
