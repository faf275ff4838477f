"""``make`` and ``list_envs``: env ids to vector envs."""

from __future__ import annotations

import re
from typing import Any

from gymnasium.vector import VectorEnv

from qwr_fast.envs.bitflip import BitFlipSubsetVectorEnv, BitFlipVectorEnv

_BITFLIP_SIZES = (8, 16, 32, 64)
_FAMILIES = {"BitFlip": BitFlipVectorEnv, "BitFlipSubset": BitFlipSubsetVectorEnv}
_ID = re.compile(r"^(BitFlip|BitFlipSubset)-([1-9][0-9]*)$")


def list_envs() -> list[str]:
    """The registered ids. ``BitFlip-<N>`` and ``BitFlipSubset-<N>`` accept any N >= 1; the
    listed sizes are the ones the project's experiments use."""
    return [f"{family}-{n}" for family in _FAMILIES for n in _BITFLIP_SIZES]


def make(env_id: str, num_envs: int = 1, *, seed: int | None = None, **kwargs: Any) -> VectorEnv:
    """A vector env of ``num_envs`` copies of ``env_id``; see the ``qwr_fast.envs`` docstring.

    ``seed`` is used by the first ``reset()`` that is given no seed. ``kwargs`` go to the
    family (BitFlip: ``horizon``, ``init``, ``terminate_when_all_ones``, ``copy``; ``n_bits``
    may be given only if it agrees with the id).
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a str, got {type(env_id).__name__}")
    m = _ID.match(env_id)
    if m is None:
        raise ValueError(
            f"unknown env id {env_id!r}; known ids: {', '.join(list_envs())} "
            "(BitFlip-<N> and BitFlipSubset-<N> take any N >= 1)"
        )
    family, n_bits = m.group(1), int(m.group(2))
    if kwargs.get("n_bits", n_bits) != n_bits:
        raise ValueError(f"n_bits={kwargs['n_bits']} contradicts the id {env_id!r}")
    kwargs["n_bits"] = n_bits
    return _FAMILIES[family](num_envs, seed=seed, **kwargs)
