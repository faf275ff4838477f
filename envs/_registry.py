"""``make`` and ``list_envs``: env ids to vector envs."""

from __future__ import annotations

import re
from typing import Any

from gymnasium.vector import AutoresetMode, VectorEnv

from qwr_fast.envs._autoreset import NextStepVectorEnv, check_autoreset_mode
from qwr_fast.envs._loop import check_num_envs
from qwr_fast.envs.atari import ATARI_IDS, AtariVectorEnv
from qwr_fast.envs.bitflip import BitFlipSubsetVectorEnv, BitFlipVectorEnv
from qwr_fast.envs.discretize import discretize
from qwr_fast.envs.hanabi import HANABI_IDS, HanabiVectorEnv
from qwr_fast.envs.minatar import MINATAR_IDS, MinAtarVectorEnv
from qwr_fast.envs.mujoco import MUJOCO_IDS, MujocoVectorEnv

_BITFLIP_SIZES = (8, 16, 32, 64)
_FAMILIES = {"BitFlip": BitFlipVectorEnv, "BitFlipSubset": BitFlipSubsetVectorEnv}
_ID = re.compile(r"^(BitFlip|BitFlipSubset)-([1-9][0-9]*)$")


def list_envs() -> list[str]:
    """The registered ids. ``BitFlip-<N>`` and ``BitFlipSubset-<N>`` accept any N >= 1; the
    listed sizes are the ones the project's experiments use."""
    bitflip = [f"{family}-{n}" for family in _FAMILIES for n in _BITFLIP_SIZES]
    return bitflip + list(MUJOCO_IDS) + list(MINATAR_IDS) + list(ATARI_IDS) + list(HANABI_IDS)


def _make_loop_family(env_id: str, num_envs: int, seed: int | None, kwargs: dict) -> VectorEnv:
    bins = kwargs.pop("bins", None)
    if env_id in MUJOCO_IDS:
        env = MujocoVectorEnv(env_id, num_envs, seed=seed, **kwargs)
    elif env_id in MINATAR_IDS:
        env = MinAtarVectorEnv(env_id, num_envs, seed=seed, **kwargs)
    elif env_id in HANABI_IDS:
        env = HanabiVectorEnv(env_id, num_envs, seed=seed, **kwargs)
    else:
        env = AtariVectorEnv(env_id, num_envs, seed=seed, **kwargs)
    return env if bins is None else discretize(env, bins)


def make(
    env_id: str,
    num_envs: int = 1,
    *,
    seed: int | None = None,
    autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
    **kwargs: Any,
) -> VectorEnv:
    """A vector env of ``num_envs`` copies of ``env_id``; see the ``qwr_fast.envs`` docstring.

    ``autoreset_mode``: ``AutoresetMode.SAME_STEP`` (the default, what the trainers use) or
    ``AutoresetMode.NEXT_STEP`` (gymnasium's default, which its vector observation wrappers
    require; see ``qwr_fast.envs._autoreset``); ``"same_step"`` / ``"next_step"`` also work.

    ``seed`` is used by the first ``reset()`` that is given no seed. ``kwargs`` go to the
    family (BitFlip: ``horizon``, ``init``, ``terminate_when_all_ones``, ``copy``; ``n_bits``
    may be given only if it agrees with the id; MuJoCo, MinAtar, Atari, Hanabi: see their
    modules).
    ``bins=<k or k per dim>`` wraps a Box-action env in ``qwr_fast.envs.discretize``.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a str, got {type(env_id).__name__}")
    num_envs = check_num_envs(num_envs)
    mode = check_autoreset_mode(autoreset_mode)
    env = _make_same_step(env_id, num_envs, seed, kwargs)
    if mode == AutoresetMode.NEXT_STEP:
        return NextStepVectorEnv(env, copy=kwargs.get("copy", True))
    return env


def _make_same_step(env_id: str, num_envs: int, seed: int | None, kwargs: dict) -> VectorEnv:
    if (
        env_id in MUJOCO_IDS
        or env_id in MINATAR_IDS
        or env_id in HANABI_IDS
        or env_id.startswith("ALE/")
    ):
        return _make_loop_family(env_id, num_envs, seed, dict(kwargs))
    m = _ID.match(env_id)
    if m is None:
        raise ValueError(
            f"unknown env id {env_id!r}; known ids: {', '.join(list_envs())} "
            "(BitFlip-<N> and BitFlipSubset-<N> take any N >= 1, ALE/<Game>-v5 any ALE game)"
        )
    family, n_bits = m.group(1), int(m.group(2))
    if kwargs.get("n_bits", n_bits) != n_bits:
        raise ValueError(f"n_bits={kwargs['n_bits']} contradicts the id {env_id!r}")
    kwargs["n_bits"] = n_bits
    return _FAMILIES[family](num_envs, seed=seed, **kwargs)
