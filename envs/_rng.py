"""Per-env random streams for the Numba environments: SplitMix64, one uint64 word per env.

SplitMix64 (Steele, Lea, Flood 2014; the seeder of xoshiro) is counter-based: the state
advances by a fixed odd constant and each output is a bijective mix of the new state. One
word of state per env makes ``get_state``/``set_state`` an exact, cheap array copy.

Seeding: ``seed_streams(seed, n)`` gives env ``i`` the state ``mix64(mix64(seed) + i)``, so the
streams of a batch depend on ``(seed, i)`` only and never on ``num_envs``.

Reseeding (``set_state(..., reseed=r)``, every family): ``reseed_streams(r, rows)`` gives the env
restored into row ``i`` the word ``mix64(mix64(mix64(r) ^ RESEED_TAG) + i)``: the same scheme on a
second hash path, so a reseeded restore does not start the stream that ``reset(seed=r)`` gave
env ``i``. The loop families turn the word into their own generator exactly as a seeded reset
turns a ``seed_streams`` word into one.
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
RESEED_TAG = 0x7265736565642121  # b"reseed!!": separates reseed words from seed_streams words


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


def seed_rows(seed: int | Sequence[int | None] | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(streams, seeded)``: like ``seed_streams``, but a sequence may hold None entries (as
    gymnasium allows): those envs are not reseeded (``seeded[i]`` is False, they continue their
    current stream; ``streams[i]`` is 0 and unused)."""
    if (
        isinstance(seed, (Sequence, np.ndarray))
        and not isinstance(seed, (str, bytes))
        and any(s is None for s in seed)
    ):
        if len(seed) != n:
            raise ValueError(f"seed must hold one int (or None) per env ({n}), got {len(seed)}")
        seeded = np.array([s is not None for s in seed], dtype=np.bool_)
        streams = np.zeros(n, dtype=np.uint64)
        given = [s for s in seed if s is not None]
        if given:
            streams[seeded] = seed_streams(given, len(given))
        return streams, seeded
    return seed_streams(seed, n), np.ones(n, dtype=np.bool_)


def reseed_streams(reseed: int | Sequence[int], rows: Sequence[int]) -> np.ndarray:
    """Fresh stream words ``uint64 [len(rows)]`` for the envs at ``rows`` of a reseeded restore.

    ``reseed``: one int (env ``rows[j]`` gets a word derived from ``(reseed, rows[j])``, so two
    envs never get the same word and the same call gives the same words), or one int per row
    (row j gets a word derived from ``reseed[j]`` alone, so equal ints give equal streams).
    """
    n = len(rows)
    if isinstance(reseed, (int, np.integer)) and not isinstance(reseed, bool):
        base = _mix64_py(_mix64_py(_check_seed(reseed, "reseed") & _MASK64) ^ RESEED_TAG)
        return np.array([_mix64_py((base + int(i)) & _MASK64) for i in rows], dtype=np.uint64)
    if isinstance(reseed, (str, bytes)) or not isinstance(reseed, (Sequence, np.ndarray)):
        raise TypeError(
            f"reseed must be None, an int or a sequence of {n} ints (one per restored env), "
            f"got {type(reseed).__name__}"
        )
    if len(reseed) != n:
        raise ValueError(f"reseed must hold one int per restored env ({n}), got {len(reseed)}")
    words = [_check_seed(s, f"reseed[{j}]") & _MASK64 for j, s in enumerate(reseed)]
    return np.array([_mix64_py(_mix64_py(_mix64_py(w) ^ RESEED_TAG)) for w in words], np.uint64)
