"""BitFlip and BitFlipSubset: the QWR poster's toy with 2^N states, as Numba vector envs.

BitFlip (QWR poster, ``shared/seeds/000``): N bits; the action flips one bit (``Discrete(N)``);
reward +1 if that bit went 0 -> 1, else -1. BitFlipSubset: the action flips any subset of the
bits (``MultiBinary(N)``, 2^N actions); reward = (# bits flipped 0 -> 1) - (# flipped 1 -> 0),
so flipping nothing gives 0.

Details the poster leaves open, fixed here: an episode lasts ``horizon`` steps (default 5, the
poster's figure) and ends by *truncation* (a time limit: bootstrap through it), never by
termination, unless ``terminate_when_all_ones=True``, which terminates as soon as every bit is
1 (the optimum). Initial bits are uniform from the env's SplitMix64 stream (``init="random"``,
64 bits per draw, bit j of a row = bit j % 64 of draw j // 64) or all zero (``init="zeros"``).
Observations are the bits as float32 ``[num_envs, N]``.

State: ``bits`` uint64 ``[num_envs, ceil(N / 64)]`` (bit j of a row is bit j % 64 of word
j // 64, so a random row is its SplitMix64 draws as they come), ``t`` int32 (steps taken in
the episode), ``ep_return`` float32, ``rng`` uint64; ``EnvState`` stores the bits unpacked,
uint8 ``[num_envs, N]``. Each step is one ``@numba.njit`` call over the batch that checks the
actions, writes the preallocated outputs in place and autoresets finished envs; it allocates
nothing. ``final_obs`` is kept as a mirror of ``obs`` (each flip is written to both), so at an
episode end it already holds the last observation and only the rows reset at the previous
step are copied back (``_stale``): a 4096-env BitFlip step touches O(#envs + #episode ends *
N) floats, not O(#envs * N).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from qwr_fast.envs._rng import GOLDEN, mix64
from qwr_fast.envs._vector import ArrayVectorEnv

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_S1 = np.uint64(1)
_S2 = np.uint64(2)
_S4 = np.uint64(4)
_S56 = np.uint64(56)
_K1 = np.uint64(0x5555555555555555)
_K2 = np.uint64(0x3333333333333333)
_K4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@numba.njit(inline="always", nogil=True)
def _popcount(x):
    x = x - ((x >> _S1) & _K1)
    x = (x & _K2) + ((x >> _S2) & _K2)
    x = (x + (x >> _S4)) & _K4
    return np.int64((x * _H01) >> _S56)


@numba.njit(inline="always", nogil=True)
def _word_mask(base, n_bits):
    """The valid bits of the word holding bits ``base .. base + 63``."""
    rem = n_bits - base
    return _ALL if rem >= 64 else (_ONE << np.uint64(rem)) - _ONE


@numba.njit(inline="always", nogil=True)
def _unpack_word(z, out, i, base, n_bits):
    """``out[i, base + k] = bit k of z`` for the valid bits of the word."""
    # Unsigned indices skip numba's negative-index wraparound, so the loop vectorises.
    ub = np.uint64(base)
    for k in range(min(64, n_bits - base)):
        uk = np.uint64(k)
        out[i, ub + uk] = np.float32(np.int64((z >> uk) & _ONE))


@numba.njit(inline="always", nogil=True)
def _draw_row(i, bits, obs, rng, init_zeros):
    n_bits = obs.shape[1]
    if init_zeros:
        for w in range(bits.shape[1]):
            bits[i, w] = 0
        for j in range(n_bits):
            obs[i, j] = 0.0
    else:
        s = rng[i]
        for w in range(bits.shape[1]):
            s = s + GOLDEN
            z = mix64(s) & _word_mask(64 * w, n_bits)
            bits[i, w] = z
            _unpack_word(z, obs, i, 64 * w, n_bits)
        rng[i] = s


@numba.njit(inline="always", nogil=True)
def _all_ones(i, bits, n_bits):
    for w in range(bits.shape[1]):  # noqa: SIM110 (an early-exit loop, not a generator, in numba)
        if bits[i, w] != _word_mask(64 * w, n_bits):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _reset_rows(mask, bits, obs, rng, stale, init_zeros):
    for i in range(bits.shape[0]):
        if mask[i]:
            _draw_row(i, bits, obs, rng, init_zeros)
            stale[i] = 1


@numba.njit(cache=True, nogil=True)
def _refresh_rows(rows, bits, obs, stale):
    n_bits = obs.shape[1]
    for i in rows:
        for w in range(bits.shape[1]):
            _unpack_word(bits[i, w], obs, i, 64 * w, n_bits)
        stale[i] = 1


@numba.njit(inline="always", nogil=True)
def _finish_step(bits, obs, final_obs, stale, t, ep_return, rng, reward, terminated, truncated,
                 done, ep_r, ep_l, horizon, stop_all_ones, init_zeros):  # fmt: skip
    """After the flips: counters and flags for every env (a branch-free pass that vectorises),
    then statistics and a fresh row for the envs whose episode ended. Returns their count."""
    n, n_bits = obs.shape
    n_done = 0
    for i in range(n):
        ti = t[i] + 1
        tr = ti >= horizon
        t[i] = ti
        ep_return[i] += reward[i]
        truncated[i] = tr
        n_done += tr
    if stop_all_ones:
        for i in range(n):
            te = _all_ones(i, bits, n_bits)
            terminated[i] = te
            n_done += te and not truncated[i]
    if n_done:
        for i in range(n):
            if truncated[i] or terminated[i]:
                done[i] = True
                ep_r[i] = ep_return[i]
                ep_l[i] = t[i]
                t[i] = 0
                ep_return[i] = 0.0
                _draw_row(i, bits, obs, rng, init_zeros)
                stale[i] = 1
    return n_done


@numba.njit(inline="always", nogil=True)
def _resync(i, obs, final_obs, done, ep_r, ep_l):
    """Row i was reset (at the last step, by reset() or set_state): copy its fresh obs into
    the final_obs mirror and clear the statistics it reported."""
    for j in range(obs.shape[1]):
        final_obs[i, j] = obs[i, j]
    done[i] = False
    ep_r[i] = 0.0
    ep_l[i] = 0


@numba.njit(cache=True, nogil=True)
def _bitflip_step(actions, bits, obs, final_obs, stale, t, ep_return, rng, reward, terminated,
                  truncated, done, ep_r, ep_l, horizon, stop_all_ones, init_zeros):  # fmt: skip
    n, n_bits = obs.shape
    for i in range(n):
        if actions[i] < 0 or actions[i] >= n_bits:
            return -1 - i
    for i in range(n):
        if stale[i]:
            _resync(i, obs, final_obs, done, ep_r, ep_l)
            stale[i] = 0
        a = np.int64(actions[i])
        w = a >> 6
        sh = np.uint64(a & 63)
        word = bits[i, w]
        b = np.int64((word >> sh) & _ONE)
        bits[i, w] = word ^ (_ONE << sh)
        nb = np.float32(1 - b)
        obs[i, a] = nb
        final_obs[i, a] = nb
        reward[i] = np.float32(1 - 2 * b)
    return _finish_step(bits, obs, final_obs, stale, t, ep_return, rng, reward, terminated,
                        truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                        init_zeros)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _subset_step(actions, bits, obs, final_obs, stale, t, ep_return, rng, reward, terminated,
                 truncated, done, ep_r, ep_l, horizon, stop_all_ones, init_zeros):  # fmt: skip
    n, n_bits = obs.shape
    for i in range(n):
        bad = np.uint64(0)
        for j in range(n_bits):  # |= of every entry but the lowest bit: branch-free, vectorises
            bad |= np.uint64(actions[i, j]) & ~_ONE
        if bad:
            return -1 - i
    for i in range(n):
        if stale[i]:  # final_obs is rewritten below: only the statistics need clearing
            done[i] = False
            ep_r[i] = 0.0
            ep_l[i] = 0
            stale[i] = 0
        gained = 0
        for w in range(bits.shape[1]):
            base = 64 * w
            ub = np.uint64(base)
            m = np.uint64(0)
            for k in range(min(64, n_bits - base)):
                uk = np.uint64(k)
                m |= np.uint64(actions[i, ub + uk]) << uk
            word = bits[i, w]
            gained += _popcount(m & ~word) - _popcount(m & word)
            word ^= m
            bits[i, w] = word
            _unpack_word(word, obs, i, base, n_bits)
            _unpack_word(word, final_obs, i, base, n_bits)
        reward[i] = np.float32(gained)
    return _finish_step(bits, obs, final_obs, stale, t, ep_return, rng, reward, terminated,
                        truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                        init_zeros)  # fmt: skip


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


class _BitFlipBase(ArrayVectorEnv):
    _state_fields = ("bits", "t", "ep_return", "rng")
    _family = ""

    def __init__(
        self,
        num_envs: int = 1,
        *,
        n_bits: int = 8,
        horizon: int = 5,
        init: str = "random",
        terminate_when_all_ones: bool = False,
        seed: int | None = None,
        copy: bool = True,
    ) -> None:
        self.n_bits = _check_int(n_bits, "n_bits", 1)
        self.horizon = _check_int(horizon, "horizon", 1)
        if init not in ("random", "zeros"):
            raise ValueError(f"init must be 'random' or 'zeros', got {init!r}")
        if not isinstance(terminate_when_all_ones, bool):
            raise TypeError(
                "terminate_when_all_ones must be a bool, got "
                f"{type(terminate_when_all_ones).__name__}"
            )
        self.init = init
        self.terminate_when_all_ones = terminate_when_all_ones
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.n_bits,), np.float32)
        self.single_action_space = self._make_action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        n_words = (self.n_bits + 63) // 64
        self._bits = np.zeros((num_envs, n_words), dtype=np.uint64)
        self._stale = np.ones(num_envs, dtype=np.uint8)
        super().__init__(num_envs, (self.n_bits,), seed=seed, copy=copy)

    def _make_action_space(self) -> spaces.Space:
        raise NotImplementedError

    @property
    def config(self) -> tuple:
        return (
            self._family,
            ("n_bits", self.n_bits),
            ("horizon", self.horizon),
            ("init", self.init),
            ("terminate_when_all_ones", self.terminate_when_all_ones),
        )

    def _reset_kernel(self, mask: np.ndarray) -> None:
        _reset_rows(mask, self._bits, self._obs, self._rng, self._stale, self.init == "zeros")

    def _refresh_obs(self, rows: np.ndarray | slice) -> None:
        idx = np.arange(self.num_envs)[rows] if isinstance(rows, slice) else rows
        _refresh_rows(idx, self._bits, self._obs, self._stale)

    def _get_field(self, name: str, rows: np.ndarray | slice) -> np.ndarray:
        if name != "bits":
            return super()._get_field(name, rows)
        as_bytes = np.ascontiguousarray(self._bits[rows], dtype="<u8").view(np.uint8)
        return np.unpackbits(as_bytes, axis=1, count=self.n_bits, bitorder="little")

    def _set_field(self, name: str, rows: np.ndarray | slice, value: np.ndarray) -> None:
        if name != "bits":
            return super()._set_field(name, rows, value)
        value = np.asarray(value)
        if value.ndim != 2 or value.shape[1] != self.n_bits or value.dtype != np.uint8:
            raise ValueError(
                f"state.arrays['bits'] must be uint8 [k, {self.n_bits}], got shape "
                f"{value.shape} dtype {value.dtype}"
            )
        packed = np.packbits(value, axis=1, bitorder="little")
        words = np.zeros((len(value), self._bits.shape[1] * 8), dtype=np.uint8)
        words[:, : packed.shape[1]] = packed
        self._bits[rows] = words.view("<u8")
        return None

    def _run(self, kernel, actions: np.ndarray) -> int:
        code = kernel(actions, self._bits, self._obs, self._final_obs, self._stale, self._t,
                      self._ep_return, self._rng, self._reward, self._terminated,
                      self._truncated, self._done, self._ep_r, self._ep_l, self.horizon,
                      self.terminate_when_all_ones, self.init == "zeros")  # fmt: skip
        if code < 0:
            i = -1 - code
            raise ValueError(
                f"actions[{i}] = {actions[i].tolist()} is outside {self.single_action_space}"
            )
        return code


class BitFlipVectorEnv(_BitFlipBase):
    """``BitFlip-<N>``: flip one of N bits per step (``Discrete(N)``); see the module doc."""

    _family = "BitFlip"

    def _make_action_space(self) -> spaces.Space:
        return spaces.Discrete(self.n_bits)

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.dtype.kind not in "iu":
            raise TypeError(f"actions must be integers for Discrete({self.n_bits}), got {a.dtype}")
        if a.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},) (one Discrete({self.n_bits}) "
                f"action per env), got {a.shape}"
            )
        return a

    def _step_kernel(self, actions: np.ndarray) -> int:
        return self._run(_bitflip_step, actions)


class BitFlipSubsetVectorEnv(_BitFlipBase):
    """``BitFlipSubset-<N>``: flip any subset of N bits per step (``MultiBinary(N)``)."""

    _family = "BitFlipSubset"

    def _make_action_space(self) -> spaces.Space:
        return spaces.MultiBinary(self.n_bits)

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if a.dtype.kind not in "biu":
            raise TypeError(
                f"actions must be bool or integer 0/1 for MultiBinary({self.n_bits}), got {a.dtype}"
            )
        if a.shape != (self.num_envs, self.n_bits):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.n_bits}) (one "
                f"MultiBinary({self.n_bits}) action per env), got {a.shape}"
            )
        return a.view(np.uint8) if a.dtype == np.bool_ else a

    def _step_kernel(self, actions: np.ndarray) -> int:
        return self._run(_subset_step, actions)
