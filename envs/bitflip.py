"""BitFlip and BitFlipSubset: the QWR poster's toy with 2^N states, as Numba vector envs.

BitFlip (the toy task of the QWR poster, Kozakowski et al. 2021, arXiv 2102.06782): N bits;
the action flips one bit (``Discrete(N)``);
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
nothing.

Memory traffic, which bounds the step (4096 x 64 floats are 1 MiB): a BitFlip step writes one
float per env (the obs row shows the bits, so the flipped bit is read there too); a
BitFlipSubset step rewrites the obs rows from the packed bits (one-byte actions with N a
multiple of 8 are read as uint64 words, 8 actions per AND / multiply). ``obs`` and
``final_obs`` are two buffers that swap roles at a step where an episode ends: the buffer that
shows s_{t+1} is returned as ``final_obs`` as it is, and the other one becomes ``obs``, its rows
brought up to date from ``final_bits`` (the bits it shows: only the floats that differ are
written) or rewritten for the envs that reset. So a step where every env resets writes N floats
per env once, not twice, and ``final_obs`` costs nothing at the steps in between.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from qwr_fast.envs._loop import check_num_envs
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
_F32_ONE = np.uint32(0x3F800000)  # the bit pattern of float32 1.0 (0.0 is all zeros)
_S6 = np.uint64(6)
_S29 = np.uint32(29)  # float32 1.0 >> 29 == 1
_M63 = np.uint64(63)
_NOT_LOW_BYTE_BITS = np.uint64(0xFEFEFEFEFEFEFEFE)
_PACK_BYTES = np.uint64(0x0102040810204080)
_FEW = 8  # an obs word with more changed bits than this is rewritten whole by _sync_row


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
    """``out[i, base + k] = bit k of z`` as float32 bit patterns (``out`` is a uint32 view)."""
    # Unsigned indices skip numba's negative-index wraparound, so the loop vectorises.
    ub = np.uint64(base)
    for k in range(min(64, n_bits - base)):
        uk = np.uint64(k)
        out[i, ub + uk] = np.uint32((z >> uk) & _ONE) * _F32_ONE


@numba.njit(inline="always", nogil=True)
def _unpack_row(i, bits, out, n_bits):
    for w in range(bits.shape[1]):
        _unpack_word(bits[i, w], out, i, 64 * w, n_bits)


@numba.njit(inline="always", nogil=True)
def _next_word(s, w, n_bits, init_zeros):
    """``(s', word w of a fresh row)`` from stream state ``s`` (scalars only, so the callers'
    loops carry no array references)."""
    if init_zeros:
        return s, np.uint64(0)
    s = s + GOLDEN
    return s, mix64(s) & _word_mask(64 * w, n_bits)


@numba.njit(inline="always", nogil=True)
def _draw_bits(i, bits, rng, n_bits, init_zeros):
    """Fresh initial bits for row i (its obs row is written separately, by ``_unpack_row``)."""
    s = rng[i]
    for w in range(bits.shape[1]):
        s, bits[i, w] = _next_word(s, w, n_bits, init_zeros)
    rng[i] = s


@numba.njit(inline="always", nogil=True)
def _sync_row(i, bits, shown, out_u, n_bits):
    """Make row i of ``out_u`` (a uint32 view of an obs buffer that shows ``shown[i]``) show
    ``bits[i]``: write only the floats that change, or a whole word's 64 when many do."""
    for w in range(bits.shape[1]):
        z = bits[i, w]
        d = z ^ shown[i, w]
        if d:
            shown[i, w] = z
            base = 64 * w
            if _popcount(d) > _FEW:
                _unpack_word(z, out_u, i, base, n_bits)
            else:
                while d:
                    low = d & (~d + _ONE)
                    k = np.uint64(_popcount(low - _ONE))
                    out_u[i, np.uint64(base) + k] = np.uint32((z >> k) & _ONE) * _F32_ONE
                    d ^= low


@numba.njit(inline="always", nogil=True)
def _all_ones(i, bits, n_bits):
    for w in range(bits.shape[1]):  # noqa: SIM110 (an early-exit loop, not a generator, in numba)
        if bits[i, w] != _word_mask(64 * w, n_bits):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _reset_rows(mask, bits, obs_u, rng, init_zeros):
    n_bits = obs_u.shape[1]
    for i in range(bits.shape[0]):
        if mask[i]:
            _draw_bits(i, bits, rng, n_bits, init_zeros)
            _unpack_row(i, bits, obs_u, n_bits)


@numba.njit(cache=True, nogil=True)
def _refresh_rows(rows, bits, obs_u):
    n_bits = obs_u.shape[1]
    for i in rows:
        _unpack_row(i, bits, obs_u, n_bits)


@numba.njit(inline="always", nogil=True)
def _finish_step(bits, obs_u, final_bits, final_u, t, ep_return, rng, reward, terminated,
                 truncated, done, ep_r, ep_l, horizon, stop_all_ones, init_zeros):  # fmt: skip
    """After the moves: counters and flags of every env. If an episode ended, the two obs
    buffers swap roles (the caller swaps them after a positive return): ``obs_u`` shows every
    env's s_{t+1}, so it becomes ``final_obs`` as it is, and ``final_u`` (which shows
    ``final_bits``) becomes the next ``obs``: its rows are brought up to date, or rewritten for
    the envs that reset. Returns the number of ended episodes. Each pass is a plain loop over
    the batch (the branch-free ones vectorise)."""
    n, n_bits = obs_u.shape
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
    if n_done == 0:
        return 0  # done, ep_r, ep_l are only returned (and so only rewritten) when n_done > 0
    for i in range(n):
        d = truncated[i] | terminated[i]
        done[i] = d
        ep_r[i] = ep_return[i] if d else np.float32(0.0)
        ep_l[i] = t[i] if d else np.int32(0)
        t[i] = np.int32(0) if d else t[i]
        ep_return[i] = np.float32(0.0) if d else ep_return[i]
    if n_done < n:
        for i in range(n):
            if not done[i]:
                _sync_row(i, bits, final_bits, final_u, n_bits)
    for i in range(n):
        if done[i]:
            s = rng[i]
            for w in range(bits.shape[1]):
                final_bits[i, w] = bits[i, w]
                s, bits[i, w] = _next_word(s, w, n_bits, init_zeros)
            rng[i] = s
    for i in range(n):
        if done[i]:
            _unpack_row(i, bits, final_u, n_bits)
    return n_done


@numba.njit(cache=True, nogil=True)
def _bitflip_step(actions, bits, obs_u, final_bits, final_u, t, ep_return, rng, reward,
                  terminated, truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                  init_zeros):  # fmt: skip
    n, n_bits = obs_u.shape
    bad = False
    for i in range(n):  # an |= reduction without an early exit: vectorises
        bad |= (actions[i] < 0) | (actions[i] >= n_bits)
    if bad:
        for i in range(n):
            if actions[i] < 0 or actions[i] >= n_bits:
                return -1 - i
    for i in range(n):
        # The obs row shows the bits: read the flipped bit there, in the row it writes anyway.
        a = np.uint64(actions[i])
        ui = np.uint64(i)
        o = obs_u[ui, a]
        obs_u[ui, a] = o ^ _F32_ONE
        reward[i] = np.float32(1.0) - np.float32(2.0) * np.float32(o >> _S29)
        bits[ui, a >> _S6] ^= _ONE << (a & _M63)
    return _finish_step(bits, obs_u, final_bits, final_u, t, ep_return, rng, reward,
                        terminated, truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                        init_zeros)  # fmt: skip


@numba.njit(inline="always", nogil=True)
def _apply_word(i, w, m, bits):
    """Flip the bits ``m`` of word w of row i; return the reward."""
    word = bits[i, w]
    bits[i, w] = word ^ m
    return _popcount(m & ~word) - _popcount(m & word)


@numba.njit(cache=True, nogil=True)
def _subset_step(actions, bits, obs_u, final_bits, final_u, t, ep_return, rng, reward,
                 terminated, truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                 init_zeros):  # fmt: skip
    """Any 0/1 integer ``actions [n, N]``."""
    n, n_bits = obs_u.shape
    bad = np.uint64(0)
    for i in range(n):
        for j in range(n_bits):  # |= of every entry but the lowest bit: branch-free, vectorises
            bad |= np.uint64(actions[i, j]) & ~_ONE
    if bad:
        for i in range(n):
            for j in range(n_bits):
                if np.uint64(actions[i, j]) & ~_ONE:
                    return -1 - i
    for i in range(n):
        gained = 0
        for w in range(bits.shape[1]):
            ub = np.uint64(64 * w)
            m = np.uint64(0)
            for k in range(min(64, n_bits - 64 * w)):
                uk = np.uint64(k)
                m |= np.uint64(actions[i, ub + uk]) << uk
            gained += _apply_word(i, w, m, bits)
        reward[i] = np.float32(gained)
    for i in range(n):  # a pass of its own: a plain streaming write that vectorises
        _unpack_row(i, bits, obs_u, n_bits)
    return _finish_step(bits, obs_u, final_bits, final_u, t, ep_return, rng, reward,
                        terminated, truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                        init_zeros)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _subset_step_bytes(actions, bits, obs_u, final_bits, final_u, t, ep_return, rng, reward,
                       terminated, truncated, done, ep_r, ep_l, horizon, stop_all_ones,
                       init_zeros):  # fmt: skip
    """One-byte actions seen as ``uint64 [n, N / 8]`` (N a multiple of 8): 8 actions a word,
    checked with one AND and packed into 8 bits with one multiply."""
    n, n_bits = obs_u.shape
    n_blocks = actions.shape[1]
    bad = np.uint64(0)
    for word in actions.reshape(-1):  # one flat |= reduction: vectorises (a 2-d loop does not)
        bad |= word & _NOT_LOW_BYTE_BITS
    if bad:
        for i in range(n):
            for b in range(n_blocks):
                if actions[i, b] & _NOT_LOW_BYTE_BITS:
                    return -1 - i
    for i in range(n):
        gained = 0
        for w in range(bits.shape[1]):
            m = np.uint64(0)
            for b in range(min(8, n_blocks - 8 * w)):
                # 8 bytes of 0/1 -> 8 bits: byte k's bit lands alone on bit 56 + k.
                byte_bits = (actions[i, 8 * w + b] * _PACK_BYTES) >> _S56
                m |= byte_bits << np.uint64(8 * b)
            gained += _apply_word(i, w, m, bits)
        reward[i] = np.float32(gained)
    for i in range(n):  # a pass of its own: a plain streaming write that vectorises
        _unpack_row(i, bits, obs_u, n_bits)
    return _finish_step(bits, obs_u, final_bits, final_u, t, ep_return, rng, reward,
                        terminated, truncated, done, ep_r, ep_l, horizon, stop_all_ones,
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
        num_envs = check_num_envs(num_envs)
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
        self._final_bits = np.zeros_like(self._bits)  # the bits that each final_obs row shows
        super().__init__(num_envs, (self.n_bits,), seed=seed, copy=copy)
        self._obs_u = self._obs.view(np.uint32)  # the kernels write float32 0/1 as bit patterns
        self._final_u = self._final_obs.view(np.uint32)

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
        obs_u = self._obs.view(np.uint32)
        _reset_rows(mask, self._bits, obs_u, self._rng, self.init == "zeros")

    def _refresh_obs(self, rows: np.ndarray | slice) -> None:
        idx = np.arange(self.num_envs)[rows] if isinstance(rows, slice) else rows
        _refresh_rows(idx, self._bits, self._obs.view(np.uint32))

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

    def _run(self, kernel, kernel_actions: np.ndarray, actions: np.ndarray) -> int:
        code = kernel(kernel_actions, self._bits, self._obs_u, self._final_bits, self._final_u,
                      self._t, self._ep_return, self._rng, self._reward, self._terminated,
                      self._truncated, self._done, self._ep_r, self._ep_l, self.horizon,
                      self.terminate_when_all_ones, self.init == "zeros")  # fmt: skip
        if code < 0:
            i = -1 - code
            raise ValueError(
                f"actions[{i}] = {actions[i].tolist()} is outside {self.single_action_space}"
            )
        if code:
            self._obs, self._final_obs = self._final_obs, self._obs
            self._obs_u, self._final_u = self._final_u, self._obs_u
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
        return self._run(_bitflip_step, actions, actions)


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
        if actions.itemsize == 1 and self.n_bits % 8 == 0 and actions.flags.c_contiguous:
            return self._run(_subset_step_bytes, actions.view(np.uint64), actions)
        return self._run(_subset_step, actions, actions)
