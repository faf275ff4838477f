"""Proportional prioritised replay (Schaul, Quan, Antonoglou, Silver, ICLR 2016, arXiv 1511.05952).

A start step ``i`` of the replay is drawn with probability ``P(i) = p_i^alpha / sum_j p_j^alpha``;
``p_i = |delta_i| + eps`` after its TD error ``delta_i`` was seen, and a new step enters at the
largest priority seen so far, so it is replayed at least once soon. The bias is corrected by
importance weights ``w_i = (n P(i))^-beta`` normalised by their maximum over the batch (they
only scale updates down); ``n`` cancels in the normalisation, so ``w_i = (min_j P(j) / P(i))^beta``
over the batch's ``j``. ``beta`` is annealed to 1 by the trainer (:func:`annealed_beta`).

The ``p^alpha`` live in a :class:`SumTree` over the replay's ``length x num_envs`` slots (slot
``t * num_envs + e``); sampling is stratified (one uniform per ``1/B`` of the mass, as in the
paper), the uniforms are drawn from the caller's ``torch.Generator`` so that a run resumed from
a checkpoint (which holds the priorities, :meth:`PrioritizedReplay.state_dict`) draws exactly
what an uninterrupted one draws. Every operation is vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qwr_fast.data.replay import Replay, ReplayBatch

__all__ = ["SumTree", "PrioritizedReplay", "PrioritizedBatch", "annealed_beta"]


class SumTree:
    """A binary tree of float64 sums over ``size`` non-negative leaves.

    ``set`` and ``find`` take arrays and loop over the ``log2(size)`` levels only.
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size = size
        self.depth = max(0, (size - 1).bit_length())
        self.first_leaf = 1 << self.depth
        self.tree = np.zeros(2 * self.first_leaf, dtype=np.float64)  # node 1 is the root

    @property
    def total(self) -> float:
        return float(self.tree[1])

    @property
    def leaves(self) -> np.ndarray:
        """The ``size`` leaf values (a read-only view)."""
        view = self.tree[self.first_leaf : self.first_leaf + self.size]
        view.flags.writeable = False
        return view

    def set(self, index: np.ndarray, value: np.ndarray) -> None:
        """``leaf[index] = value`` (for a repeated index the last value wins), then the sums."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        value = np.broadcast_to(np.asarray(value, dtype=np.float64), index.shape)
        if index.size == 0:
            return
        if index.min() < 0 or index.max() >= self.size:
            raise ValueError(f"index must lie in [0, size={self.size}), got {index.tolist()}")
        if not np.all(np.isfinite(value)) or value.min() < 0:
            raise ValueError("value must be finite and >= 0")
        node = index + self.first_leaf
        self.tree[node] = value
        for _ in range(self.depth):
            node = np.unique(node >> 1)
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each ``mass`` in ``[0, total)``, the leaf ``i`` with ``cum[i-1] <= mass <
        cum[i]`` (``cum`` the inclusive prefix sums): never a zero leaf."""
        if not self.total > 0:
            raise ValueError("cannot sample from a sum tree whose leaves are all zero")
        v = np.minimum(np.asarray(mass, dtype=np.float64), np.nextafter(self.total, 0.0))
        node = np.ones(v.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            mass_left = self.tree[left]
            right = v >= mass_left
            # rounding can leave v just past the right subtree's sum: keep it strictly inside
            v = np.where(right, np.minimum(v - mass_left, np.nextafter(self.tree[left + 1], 0)), v)
            node = left + right
        return node - self.first_leaf


def annealed_beta(beta0: float, step: int, anneal_steps: int) -> float:
    """``beta`` linearly from ``beta0`` at step 0 to 1 at ``anneal_steps``, then 1."""
    return beta0 + (1.0 - beta0) * min(1.0, step / max(1, anneal_steps))


@dataclass(frozen=True)
class PrioritizedBatch:
    """``batch``: the slices; ``index [B]`` int64: their start slots (for
    :meth:`PrioritizedReplay.update_priorities`); ``weight [B]`` float32: the normalised
    importance weights (max 1)."""

    batch: ReplayBatch
    index: torch.Tensor
    weight: torch.Tensor


class PrioritizedReplay(Replay):
    """:class:`Replay` whose start steps can be drawn in proportion to ``priority^alpha``.

    Takes the arguments of :class:`Replay` plus ``alpha`` (0: uniform) and ``eps`` (added to
    ``|TD|`` so that no stored step starves). ``sample`` (inherited) stays uniform;
    :meth:`sample_prioritized` draws by priority. A step stored as not ``valid`` has priority 0.
    """

    def __init__(self, *args, alpha: float = 0.6, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.tree = SumTree(self.length * self.num_envs)
        self.max_priority = 1.0

    def add(self, *args, valid: torch.Tensor | None = None, **kwargs) -> None:
        """:meth:`Replay.add`; the stored steps enter at the largest priority seen so far."""
        row = self.pos
        super().add(*args, valid=valid, **kwargs)
        ok = np.ones(self.num_envs, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        slots = row * self.num_envs + np.arange(self.num_envs)
        self.tree.set(slots, np.where(ok, self.max_priority**self.alpha, 0.0))

    def load_arrays(self, **arrays: torch.Tensor) -> None:
        """:meth:`Replay.load_arrays`; every valid loaded step at the largest priority."""
        super().load_arrays(**arrays)
        valid = self.valid[: self.size, 0].cpu().numpy()
        self.tree.set(np.arange(self.length), 0.0)
        self.tree.set(np.arange(self.size), np.where(valid, self.max_priority**self.alpha, 0.0))

    def sample_prioritized(
        self,
        batch_size: int,
        margin: int = 1,
        *,
        beta: float,
        generator: torch.Generator | None = None,
    ) -> PrioritizedBatch:
        """``batch_size`` slices whose start steps are drawn with probability ``P(i)``
        (stratified over the total mass), with importance weights at exponent ``beta``."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        gen_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(batch_size, generator=generator, device=gen_device, dtype=torch.float64)
        total = self.tree.total
        mass = (np.arange(batch_size) + u.cpu().numpy()) * (total / batch_size)
        slot = self.tree.find(mass)  # [B]
        prob = self.tree.tree[slot + self.tree.first_leaf] / total
        weight = (prob.min() / prob) ** beta
        t, env = slot // self.num_envs, slot % self.num_envs
        k = (t - (self.pos - self.size)) % self.length  # steps after the oldest
        batch = self.slices(torch.as_tensor(k), torch.as_tensor(env), margin)
        return PrioritizedBatch(
            batch,
            torch.as_tensor(slot),
            torch.as_tensor(weight, dtype=torch.float32, device=self.device),
        )

    def update_priorities(self, index: torch.Tensor, td_abs: torch.Tensor) -> None:
        """Set the priority of the slots ``index [B]`` (from :meth:`sample_prioritized`) to
        ``|TD| + eps``, ``td_abs [B]`` the absolute TD errors of the batch."""
        index = torch.as_tensor(index).detach().cpu().numpy().reshape(-1)
        td = torch.as_tensor(td_abs).detach().to("cpu", torch.float64).numpy().reshape(-1)
        if td.shape != index.shape:
            raise ValueError(f"td_abs must be [B={index.size}] like index, got {td.shape}")
        if not np.all(np.isfinite(td)) or (td < 0).any():
            raise ValueError("td_abs must be finite and >= 0")
        priority = td + self.eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.set(index, priority**self.alpha)

    def state_dict(self) -> dict:
        """:meth:`Replay.state_dict` plus the priorities (``p^alpha`` per slot)."""
        state = super().state_dict()
        state.update(
            priorities=torch.from_numpy(self.tree.leaves.copy()),
            max_priority=self.max_priority,
            alpha=self.alpha,
        )
        return state

    def load_state_dict(self, state: dict) -> None:
        if "priorities" not in state:
            raise ValueError("replay state holds no priorities (saved without --prioritized)")
        if state["alpha"] != self.alpha:
            raise ValueError(f"replay state has alpha={state['alpha']}, this one {self.alpha}")
        super().load_state_dict(state)
        priorities = torch.as_tensor(state["priorities"], dtype=torch.float64).numpy()
        if priorities.shape != (self.tree.size,):
            raise ValueError(
                f"replay state priorities have shape {priorities.shape}, expected "
                f"({self.tree.size},)"
            )
        self.tree.set(np.arange(self.tree.size), priorities)
        self.max_priority = float(state["max_priority"])
