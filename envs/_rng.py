"""Per-env random streams for the Numba environments: SplitMix64, one uint64 word per env.

SplitMix64 (Steele, Lea, Flood 2014; the seeder of xoshiro) is counter-based: the state
advances by a fixed odd constant and each output is a bijective mix of the new state. One
word of state per env makes ``get_state``/``set_state`` an exact, cheap array copy.

Seeding: ``seed_streams(seed, n)`` gives env ``i`` the state ``mix64(mix64(seed) + i)``, so the
streams of a batch depend on ``(seed, i)`` only and never on ``num_envs``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_MASK64 = (1 << 64) - 1


@numba.njit(inline="always", nogil=True)
def mix64(z):
    """The SplitMix64 output function (a bijection of uint64)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _mix64_py(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _check_seed(seed: object, name: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int or None, got {seed}")
    return int(seed)


def fresh_seed() -> int:
    """A 64-bit seed from the operating system's entropy."""
    return int(np.random.SeedSequence().entropy) & _MASK64


def seed_streams(seed: int | Sequence[int] | None, n: int) -> np.ndarray:
    """Initial states ``uint64 [n]``: from one int (env i gets ``(seed, i)``), from ``n`` ints
    (one per env, each used as that env's ``(seed, 0)``), or from fresh entropy (None)."""
    if seed is None:
        seed = fresh_seed()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        base = _mix64_py(_check_seed(seed, "seed") & _MASK64)
        return np.array([_mix64_py((base + i) & _MASK64) for i in range(n)], dtype=np.uint64)
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise TypeError(
            f"seed must be an int, a sequence of {n} ints (one per env) or None, "
            f"got {type(seed).__name__}"
        )
    if len(seed) != n:
        raise ValueError(f"seed must hold one int per env ({n}), got {len(seed)}")
    return np.array(
        [_mix64_py(_mix64_py(_check_seed(s, f"seed[{i}]") & _MASK64)) for i, s in enumerate(seed)],
        dtype=np.uint64,
    )
