"""Replay of a vector environment, sized in env steps, sampled as margin slices for QWR.

Each env step ``t`` of env ``e`` stores ``(s_t, mu_t, a_t, r_t, terminal_t, truncated_t)`` plus
the observation that bootstraps it (``s_{t+1}``, or the final observation of an episode that
ended at ``t``) and the behaviour distribution at that observation (``next_mu_t``). Storing the
bootstrap observation per step makes time-limit truncation exact (the value of the final
observation is used, never the first observation of the next episode) whatever the vector env's
autoreset mode.

A sample is a slice of ``T`` consecutive steps of one env, ``t .. t+T-1``; ``stop[:, i]`` marks
the last valid step of the slice (episode end, truncation, or the newest stored step), so that
the margin recursion of :func:`qwr_fast.kernels.lse_backup` never reads across an episode.

Host reads: neither :meth:`Replay.add` nor :meth:`Replay.sample` reads a device value on the
host when every stored step is valid (same-step or disabled autoreset; the valid flags are
counted from the host-side ``valid`` the collector passes). The stored-step count and the
oldest row live on the device as well (``size_t``, ``oldest_t``) and sampling computes with
them, so a sample can run inside a compiled or CUDA-graph-captured update step. On a CUDA
replay, the fields of a step that arrive from the host (rewards, flags, ...) are packed into
one pinned buffer and copied in one non-blocking host-to-device copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Replay", "ReplayBatch"]


@dataclass(frozen=True)
class ReplayBatch:
    """A batch of ``B`` margin slices of length ``T``.

    ``obs``: ``[B, *O]`` (s_t); ``mu``: ``[B, P]`` behaviour distribution parameters at s_t;
    ``action``: ``[B, *A]`` (a_t); ``reward``: ``[B, T]`` (r_t .. r_{t+T-1});
    ``terminal``/``truncated``/``stop``: ``[B, T]`` bool; ``next_obs``: ``[B, T, *O]``
    (s_{t+1} .. s_{t+T}, each the bootstrap observation of its step); ``next_mu``: ``[B, T, P]``.
    """

    obs: torch.Tensor
    mu: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminal: torch.Tensor
    truncated: torch.Tensor
    stop: torch.Tensor
    next_obs: torch.Tensor
    next_mu: torch.Tensor


class Replay:
    """Circular replay of ``capacity`` env steps spread over ``num_envs`` parallel envs.

    Args:
        capacity: total env steps kept (``capacity // num_envs`` per env, at least 1).
        num_envs: number of envs stepped together (one :meth:`add` stores one step of each).
        obs_shape: shape of one observation.
        mu_dim: width ``P`` of the stored behaviour distribution parameters.
        action_shape: shape of one action (``()`` for discrete actions).
        action_dtype: ``torch.int64`` for discrete actions, a float dtype otherwise.
        obs_dtype: storage dtype of observations (e.g. ``torch.uint8`` for pixels).
        device: where the tensors live (sampling happens there too).
        pack_host_writes: copy the host-side fields of each :meth:`add` to the device as one
            packed buffer (pinned on CUDA, non-blocking); default: on a non-CPU device.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        mu_dim: int,
        action_shape: tuple[int, ...] = (),
        *,
        action_dtype: torch.dtype = torch.float32,
        obs_dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        pack_host_writes: bool | None = None,
    ) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int (env steps), got {capacity!r}")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if mu_dim < 1:
            raise ValueError(f"mu_dim must be >= 1, got {mu_dim}")
        self.num_envs = num_envs
        self.length = max(1, capacity // num_envs)
        self.obs_shape = tuple(obs_shape)
        self.action_shape = tuple(action_shape)
        self.device = torch.device(device)
        L, E = self.length, num_envs

        def buf(*shape, dtype):
            return torch.zeros((L, E, *shape), dtype=dtype, device=self.device)

        self.obs = buf(*self.obs_shape, dtype=obs_dtype)
        self.next_obs = buf(*self.obs_shape, dtype=obs_dtype)
        self.mu = buf(mu_dim, dtype=torch.float32)
        self.next_mu = buf(mu_dim, dtype=torch.float32)
        self.action = buf(*self.action_shape, dtype=action_dtype)
        self.reward = buf(dtype=torch.float32)
        self.terminal = buf(dtype=torch.bool)
        self.truncated = buf(dtype=torch.bool)
        self.valid = torch.ones((L, E), dtype=torch.bool, device=self.device)
        # False entries of ``valid`` per row and in all (unused rows hold True), counted on the
        # host by every writer so that a sample knows in O(1), without reading the device,
        # whether every stored step may start a slice.
        self._row_invalid = np.zeros(L, dtype=np.int64)
        self._num_invalid = 0
        self.pack_host_writes = (
            self.device.type != "cpu" if pack_host_writes is None else pack_host_writes
        )
        self.pos = 0
        self.size = 0
        # the device's copies of ``size`` and of the oldest stored row, for sampling
        self.size_t = torch.zeros((), dtype=torch.int64, device=self.device)
        self.oldest_t = torch.zeros((), dtype=torch.int64, device=self.device)

    _FIELDS = (
        "obs",
        "next_obs",
        "mu",
        "next_mu",
        "action",
        "reward",
        "terminal",
        "truncated",
        "valid",
    )

    @property
    def all_valid(self) -> bool:
        """Whether every stored step may start a slice (then :meth:`sample` draws uniformly,
        with no pass over the replay and no host read)."""
        return self._num_invalid == 0

    def __len__(self) -> int:
        """Env steps stored (over all envs)."""
        return self.size * self.num_envs

    def add(
        self,
        obs: torch.Tensor,
        mu: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        terminal: torch.Tensor,
        truncated: torch.Tensor,
        next_obs: torch.Tensor,
        next_mu: torch.Tensor,
        *,
        valid: torch.Tensor | None = None,
    ) -> None:
        """Store one step of every env (leading dimension ``num_envs`` on every argument).

        ``valid[num_envs]`` (bool, default all True) marks steps that are real transitions; a
        False step (the reset step of a next-step-autoreset vector env) is stored but never
        sampled as a slice start, and, following an episode end, never reached by a slice.
        """
        if valid is None:
            valid = torch.ones(self.num_envs, dtype=torch.bool)
        values = dict(
            obs=obs,
            next_obs=next_obs,
            mu=mu,
            next_mu=next_mu,
            action=action,
            reward=reward,
            terminal=terminal,
            truncated=truncated,
            valid=valid,
        )
        for name, value in values.items():
            expected = tuple(getattr(self, name).shape[1:])
            shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
            if shape != expected:
                raise ValueError(f"{name} must have shape {expected} (num_envs first), got {shape}")
        # counted where ``valid`` is: on the host unless a caller passes it on the device
        row_invalid = int(self.num_envs - torch.as_tensor(valid).count_nonzero())
        on_host = [
            n
            for n, v in values.items()
            if not (isinstance(v, torch.Tensor) and v.device == self.device)
        ]
        if self.pack_host_writes and len(on_host) > 1:
            values.update(self._packed_to_device({n: values[n] for n in on_host}))
        for name, value in values.items():
            store = getattr(self, name)
            store[self.pos] = torch.as_tensor(value, device=self.device).to(store.dtype)
        self._num_invalid += row_invalid - int(self._row_invalid[self.pos])
        self._row_invalid[self.pos] = row_invalid
        self.pos = (self.pos + 1) % self.length
        self.size = min(self.size + 1, self.length)
        self._counters_to_device()

    def _packed_to_device(self, values: dict) -> dict[str, torch.Tensor]:
        """``values`` (host data, one row of each named buffer) as device tensors, sent in
        one copy of a packed byte buffer (pinned, non-blocking on CUDA; the caching host
        allocator keeps the buffer until the copy has run)."""
        parts, spans, offset = [], {}, 0
        for name, value in values.items():
            store = getattr(self, name)
            row = torch.as_tensor(value).to(store.dtype).contiguous().reshape(-1)
            nbytes = row.numel() * row.element_size()
            spans[name] = (offset, nbytes, store.dtype, tuple(store.shape[1:]))
            parts.append(row.view(torch.uint8))
            pad = -nbytes % 8  # keep every field 8-byte aligned for its dtype view
            if pad:
                parts.append(torch.zeros(pad, dtype=torch.uint8))
            offset += nbytes + pad
        staging = torch.empty(offset, dtype=torch.uint8, pin_memory=self.device.type == "cuda")
        torch.cat(parts, out=staging)
        packed = staging.to(self.device, non_blocking=True)
        return {
            name: packed[start : start + nbytes].view(dtype).view(shape)
            for name, (start, nbytes, dtype, shape) in spans.items()
        }

    def _counters_to_device(self) -> None:
        self.size_t.fill_(self.size)
        self.oldest_t.fill_((self.pos - self.size) % self.length)

    def sample(
        self, batch_size: int, margin: int = 1, *, generator: torch.Generator | None = None
    ) -> ReplayBatch:
        """Sample ``batch_size`` slices of ``margin`` steps uniformly over stored start steps."""
        # (checked eagerly only: a compiled step must not guard on the growing size)
        if not torch.compiler.is_compiling() and self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        if margin < 1:
            raise ValueError(f"margin must be >= 1, got {margin}")
        # without a generator: the default generator of the replay's device (on CUDA the one a
        # CUDA graph capture registers)
        gen_device = generator.device if generator is not None else self.device
        if self._num_invalid == 0:  # every stored step is valid: no pass over the replay
            # uniform over [0, size) with size on the device (2^62 // size draws per value:
            # the modulo's bias is below 2^-40 for any replay that fits in memory)
            draw = torch.randint(0, 2**62, (batch_size,), generator=generator, device=gen_device)
            k = draw.to(self.device) % self.size_t
            env = torch.randint(
                0, self.num_envs, (batch_size,), generator=generator, device=gen_device
            )
        else:
            oldest = (self.pos - self.size) % self.length
            rows = (oldest + torch.arange(self.size, device=self.device)) % self.length
            valid = self.valid[rows]  # [size, E]
            if self._num_invalid >= self.size * self.num_envs:
                raise ValueError("the replay holds no valid step to sample")
            flat = torch.multinomial(
                valid.reshape(-1).float().to(gen_device), batch_size, True, generator=generator
            )
            k, env = flat // self.num_envs, flat % self.num_envs
        return self.slices(k, env, margin)

    def slices(self, k: torch.Tensor, env: torch.Tensor, margin: int = 1) -> ReplayBatch:
        """The slices of ``margin`` steps that start ``k[B]`` steps after the oldest stored step
        of envs ``env[B]`` (what :meth:`sample` draws; prioritised samplers pick their own).
        Computed on the device, with no host read."""
        k, env = k.to(self.device), env.to(self.device)
        offsets = torch.arange(margin, device=self.device)
        rel = k[:, None] + offsets  # [B, T], steps after the oldest
        last = self.size_t - 1
        newest = rel >= last
        rel = torch.minimum(rel, last)
        t = (self.oldest_t + rel) % self.length  # [B, T]
        # Rows of the (L * E)-row flattening of each buffer: index_select gathers whole rows,
        # several times faster on CPU than advanced indexing with two index tensors.
        flat = (t * self.num_envs + env[:, None]).reshape(-1)  # [B * T]
        flat0 = t[:, 0] * self.num_envs + env  # [B]

        def rows(store: torch.Tensor, index: torch.Tensor, shape: tuple[int, ...]):
            return store.flatten(0, 1).index_select(0, index).view(*shape, *store.shape[2:])

        B, T = t.shape
        terminal = rows(self.terminal, flat, (B, T))
        truncated = rows(self.truncated, flat, (B, T))
        stop = terminal | truncated | newest
        return ReplayBatch(
            obs=rows(self.obs, flat0, (B,)),
            mu=rows(self.mu, flat0, (B,)),
            action=rows(self.action, flat0, (B,)),
            reward=rows(self.reward, flat, (B, T)),
            terminal=terminal,
            truncated=truncated,
            stop=stop,
            next_obs=rows(self.next_obs, flat, (B, T)),
            next_mu=rows(self.next_mu, flat, (B, T)),
        )

    def load_arrays(self, **arrays: torch.Tensor) -> None:
        """Fill a ``num_envs=1`` replay with ``N <= capacity`` consecutive steps at once (offline
        datasets): keyword arguments as in :meth:`add`, each with leading dimension ``N``."""
        if self.num_envs != 1:
            raise ValueError("load_arrays needs a replay with num_envs=1")
        arrays.setdefault("valid", torch.ones(arrays["reward"].shape[0], dtype=torch.bool))
        N = arrays["reward"].shape[0]
        if self.length < N:
            raise ValueError(f"{N} steps do not fit a replay of {self.length} steps")
        for name in self._FIELDS:
            store = getattr(self, name)
            value = torch.as_tensor(arrays[name], device=self.device)
            if tuple(value.shape) != (N, *store.shape[2:]):
                raise ValueError(
                    f"{name} must have shape {(N, *store.shape[2:])}, got {tuple(value.shape)}"
                )
            store[:N, 0] = value.to(store.dtype)
        self.pos, self.size = N % self.length, N
        self._count_invalid()

    def _count_invalid(self) -> None:
        """Recount the invalid steps per row from ``valid`` (after a bulk write) and update
        the device counters."""
        self._row_invalid = self.valid.logical_not().sum(1).cpu().numpy().astype(np.int64)
        self._num_invalid = int(self._row_invalid.sum())
        self._counters_to_device()

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (tensors are stored as they are)."""
        state = {name: getattr(self, name) for name in self._FIELDS}
        state.update(pos=self.pos, size=self.size, num_envs=self.num_envs, length=self.length)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; the replay must have been built with the same sizes."""
        for key in ("num_envs", "length"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"replay state has {key}={state[key]}, this replay has {getattr(self, key)}"
                )
        for name in self._FIELDS:
            store = getattr(self, name)
            value = state[name]
            if value.shape != store.shape:
                raise ValueError(
                    f"replay state {name} has shape {tuple(value.shape)}, "
                    f"expected {tuple(store.shape)}"
                )
            store.copy_(value)
        self.pos, self.size = int(state["pos"]), int(state["size"])
        self._count_invalid()
