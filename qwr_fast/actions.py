"""One adapter between a gymnasium action space and the actions the networks produce.

:class:`ActionAdapter` covers every space the trainers take:

- ``Box`` (1-d, continuous): network actions live in ``[-1, 1]^A`` and are rescaled to the
  env's bounds (``[-1, 1]`` where a bound is infinite); QWR's Gaussian policy.
- ``Discrete(n)``: one sub-action of ``n`` choices; int network actions in ``[0, n)`` (the
  env's ``start`` added on the way out); QWR's categorical policy, PPO, DQN.
- ``MultiDiscrete`` and ``MultiBinary`` (1-d), and a Box discretised into bins
  (:func:`qwr_fast.envs.discretize`): D sub-actions, sub-action d with ``sizes[d]`` choices;
  int network actions ``[B, D]`` (AQL, where ``Discrete`` is D = 1).

AQL's Q network takes the action as the sum of one embedding per sub-action (:meth:`encode`):
``W_a a`` with ``a`` the concatenation of the D one-hot codes, choice 0 of every sub-action
dropped (its embedding is absorbed in ``b_a``), so ``A = sum_d (K_d - 1)`` float inputs; for
``MultiBinary`` the code is the bit vector itself. For the ordered bins of a discretised Box an
``ordinal`` code (one number per sub-action, A = D) is an option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

__all__ = ["ActionAdapter", "legal_actions"]


def legal_actions(obs: torch.Tensor, mask_slice: slice | None) -> torch.Tensor | None:
    """``[..., K]`` bool legal actions read from observations that carry a legal-action mask
    (``env.action_mask_slice``, e.g. Hanabi); None without one. A row with no legal action (a
    terminal observation) counts every action as legal, so that maxima stay finite."""
    if mask_slice is None:
        return None
    mask = obs[..., mask_slice].float() > 0.5
    return mask | ~mask.any(-1, keepdim=True)


@dataclass(frozen=True)
class ActionAdapter:
    """Maps network actions to env actions and back for one action space
    (:meth:`from_space`)."""

    kind: str
    """``box``, ``discrete``, ``multi_discrete`` or ``multi_binary``"""
    sizes: tuple[int, ...] = ()
    """choices of each of the D sub-actions (``()`` for ``box``)"""
    starts: tuple[int, ...] = ()
    """the env's value of choice 0 of each sub-action"""
    code: str = "onehot"
    """Q's action input of the discrete kinds (:meth:`encode`): ``onehot`` (one embedding per
    sub-action choice) or ``ordinal`` (one number per sub-action, for ordered bins)"""
    low: np.ndarray | None = field(default=None, compare=False)
    """``box``: the lower bounds (float64 ``[A]``)"""
    high: np.ndarray | None = field(default=None, compare=False)
    """``box``: the upper bounds (float64 ``[A]``)"""

    def __post_init__(self) -> None:
        if self.kind not in ("box", "discrete", "multi_discrete", "multi_binary"):
            raise ValueError(
                f"kind must be box, discrete, multi_discrete or multi_binary, got {self.kind!r}"
            )
        if self.code not in ("onehot", "ordinal"):
            raise ValueError(f"code must be 'onehot' or 'ordinal', got {self.code!r}")

    @classmethod
    def from_space(
        cls, space: gym.Space, *, code: str = "onehot", continuous: bool = True
    ) -> ActionAdapter:
        """The adapter of a 1-d ``Box`` (unless ``continuous=False``), ``Discrete``,
        ``MultiDiscrete`` (1-d) or ``MultiBinary`` (1-d) space; ValueError for any other."""
        if isinstance(space, gym.spaces.Discrete):
            return cls("discrete", (int(space.n),), (int(space.start),), code)
        if continuous and isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            low, high = space.low.astype(np.float64), space.high.astype(np.float64)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                low, high = np.full_like(low, -1.0), np.full_like(high, 1.0)
            return cls("box", code=code, low=low, high=high)
        if isinstance(space, gym.spaces.MultiDiscrete) and len(space.nvec.shape) == 1:
            sizes = tuple(int(k) for k in space.nvec)
            return cls("multi_discrete", sizes, tuple(int(s) for s in space.start), code)
        if isinstance(space, gym.spaces.MultiBinary) and np.ndim(space.n) == 0:
            n = int(space.n)
            return cls("multi_binary", (2,) * n, (0,) * n, code)
        if continuous:
            raise ValueError(f"action space must be Discrete or a 1-D Box, got {space}")
        raise ValueError(
            "action space must be Discrete, 1-d MultiDiscrete or 1-d MultiBinary (wrap a Box "
            f"with qwr_fast.envs.discretize, or pass --bins), got {space}"
        )

    @property
    def policy_kind(self) -> str:
        """The policy family of QWR: ``gaussian`` (``box``) or ``categorical``
        (``discrete``)."""
        if self.kind == "box":
            return "gaussian"
        if self.kind == "discrete":
            return "categorical"
        raise ValueError(f"QWR policies need a Box or Discrete action space, not {self.kind}")

    @property
    def action_dim(self) -> int:
        """A, the width of a ``box`` action."""
        return int(self.low.shape[0])

    @property
    def num_sub(self) -> int:
        """D."""
        return len(self.sizes)

    @property
    def num_actions(self) -> int:
        """``prod K_d`` (a Python int: may exceed 2**63)."""
        return math.prod(self.sizes)

    @property
    def code_dim(self) -> int:
        """A, the width of :meth:`encode`: ``sum_d (K_d - 1)`` (onehot) or D (ordinal)."""
        return self.num_sub if self.code == "ordinal" else sum(self.sizes) - self.num_sub

    def sizes_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.tensor(self.sizes, dtype=torch.int64, device=device)

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` int -> ``[..., A]`` float. ``onehot``: the one-hot code of each
        sub-action without its choice-0 column, concatenated over d. ``ordinal``: choice k of
        K_d as ``2 k / (K_d - 1) - 1`` (the bin's position in [-1, 1]; 0 when K_d = 1)."""
        if self.code == "ordinal":
            sizes = torch.tensor(self.sizes, device=actions.device, dtype=torch.float32)
            return (
                actions.to(torch.float32) * (2.0 / (sizes - 1).clamp(min=1)) - (sizes > 1).float()
            )
        if all(k == 2 for k in self.sizes):  # MultiBinary: the code is the bit vector
            return actions.to(torch.float32)
        rows = self.code_rows(actions)
        code = actions.new_zeros((*actions.shape[:-1], self.code_dim + 1), dtype=torch.float32)
        code.scatter_(-1, rows, 1.0)
        return code[..., : self.code_dim]

    def code_rows(self, actions: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` int -> ``[..., D]`` int64: the column of the ``onehot`` code that each
        sub-action sets, A (one past the last column) for choice 0, which sets none. ``W_a``'s
        columns at these rows, summed, are ``W_a @ encode(actions)`` without the GEMM."""
        offsets = torch.tensor(
            np.concatenate([[0], np.cumsum([k - 1 for k in self.sizes])[:-1]]) - 1,
            dtype=torch.int64,
            device=actions.device,
        )
        return torch.where(actions > 0, actions + offsets, self.code_dim)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Network actions -> the env's batched actions: ``box`` ``[B, A]`` (clipped to
        ``[-1, 1]``, then scaled to the bounds);
        ``discrete`` ``[B]`` or ``[B, 1]`` int; the others ``[B, D]`` int."""
        a = actions.cpu().numpy()
        if self.kind == "box":  # clipped: a linear-mean policy's samples may leave [-1, 1]
            a = np.clip(a, -1.0, 1.0)
            return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)
        if self.kind == "discrete":
            return a.reshape(a.shape[0]).astype(np.int64) + self.starts[0]
        a = a + np.asarray(self.starts)
        return a.astype(np.int8 if self.kind == "multi_binary" else np.int64)

    def from_env(self, actions: np.ndarray) -> np.ndarray:
        """The env's batched actions -> network actions: ``box`` ``[B, A]`` float64 clipped to
        ``[-1, 1]``; ``discrete`` ``[B]`` int64; the others ``[B, D]`` int64."""
        if self.kind == "box":
            return np.clip(2.0 * (actions - self.low) / (self.high - self.low) - 1.0, -1.0, 1.0)
        a = np.asarray(actions, dtype=np.int64)
        return a - (self.starts[0] if self.kind == "discrete" else np.asarray(self.starts))
