"""Scale-out on ``torch.distributed``: data-parallel learners (one process per rank, launched
by ``torchrun``; gloo on CPU, nccl on CUDA).

A trainer started by ``torchrun --nproc-per-node=L`` sees ``WORLD_SIZE=L`` and joins the
process group (:func:`join`); with ``WORLD_SIZE`` unset (or 1) it runs alone and nothing here
does anything. The algorithm does not change with ``L``:

- ``--num-envs``, ``--steps-per-epoch``, ``--batch-size`` and ``--replay-size`` stay global:
  each rank steps ``num_envs / L`` envs (the same env seeds a single process gives envs
  ``rank * num_envs / L`` ...) into its own replay shard of ``replay_size / L`` and samples
  ``batch_size / L`` of every batch from it (slices never cross shards);
- every gradient step is averaged over the ranks by ``DistributedDataParallel``
  (:func:`data_parallel`), so the ranks take the same optimiser step on the same global batch;
  parameters, target networks and optimiser states stay identical by construction;
- the observation normaliser is merged explicitly after each collection
  (:class:`NormSync`: every rank folds the others' count/mean/M2 in rank order);
- rank 0 alone writes logs, evaluations and ``ckpt_<step>.pt``; rank ``r > 0`` writes its own
  replay shard, RNG streams and env state to ``RUN_DIR/shards/rank<r>/ckpt_<step>.pt`` (before
  rank 0's file: a ``ckpt_<step>.pt`` means every shard of that step is complete), so
  ``--resume`` under the same world size continues exactly.

What differs from one process with the same global settings: batch-level statistics that
the losses compute over their batch (QWR's ``--normalize-q`` scale and ``--normalize-adv``
standardisation) are taken over each rank's ``batch_size / L`` samples, as BatchNorm is under
DDP without SyncBatchNorm; and each rank draws its own random numbers.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist

__all__ = [
    "SHARDS",
    "NormSync",
    "World",
    "data_parallel",
    "env_world",
    "join",
    "restarted",
    "shard_dir",
]

SHARDS = "shards"
"""RUN_DIR/shards/rank<r>/: the checkpoints of rank r > 0 of a multi-process run"""

RANK_SEED_STRIDE = 1_000_003
"""rank r > 0 seeds its torch, numpy and python streams with ``seed + r * RANK_SEED_STRIDE``"""

TIMEOUT_ENV = "QWR_FAST_DIST_TIMEOUT_S"
"""seconds a collective may wait for the other ranks before it fails (default 1800: rank 0's
evaluation runs while the others wait at their next gradient step)"""


@dataclasses.dataclass(frozen=True)
class World:
    """Where this process stands: ``rank`` of ``size`` processes (1: alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes ``RUN_DIR``'s own files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def split(self, value: int, flag: str) -> int:
        """``value / size``; ValueError naming ``flag`` when it does not divide."""
        if value % self.size:
            raise ValueError(
                f"{flag} {value} does not divide among {self.size} ranks (the value is global: "
                f"each rank takes {flag} / {self.size}); use a multiple of {self.size}"
            )
        return value // self.size

    def seed(self, seed: int) -> int:
        """This rank's seed of its own random streams (``seed`` itself on rank 0)."""
        return seed + self.rank * RANK_SEED_STRIDE

    def describe(self) -> dict:
        """What ``config.json`` records under ``world``."""
        return {"world_size": self.size, "roles": ["learner"] * self.size}


def env_world() -> World:
    """The :class:`World` that ``torchrun``'s environment variables describe (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``), without joining anything; alone when they are unset."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def restarted() -> bool:
    """Whether ``torchrun --max-restarts`` restarted this worker (after a worker failed): the
    training entry points then resume from the run directory's latest checkpoint."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def join(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group of :func:`env_world` (gloo on CPU, nccl on CUDA; every
    collective times out after ``$QWR_FAST_DIST_TIMEOUT_S`` seconds, default 1800, instead of
    hanging on a rank that died) and return the world and this rank's device (``cuda:<local
    rank>`` on CUDA). Alone: ``(World(), device)``."""
    world = env_world()
    if not world.distributed:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
        # torchrun's store (env://), its keys prefixed by the restart count: workers restarted
        # by --max-restarts must not read the addresses their dead predecessors published
        store, _, _ = next(dist.rendezvous("env://", world.rank, world.size, timeout=timeout))
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            store=dist.PrefixStore(f"qwr_fast/attempt_{restart}", store),
            rank=world.rank,
            world_size=world.size,
            timeout=timeout,
        )
    if dist.get_world_size() != world.size or dist.get_rank() != world.rank:
        raise RuntimeError("the process group disagrees with RANK / WORLD_SIZE")
    return world, device


def shard_dir(run_dir: str, rank: int) -> str:
    """Where rank ``rank`` keeps its checkpoints (``run_dir`` itself for rank 0)."""
    return run_dir if rank == 0 else os.path.join(run_dir, SHARDS, f"rank{rank}")


class _Loss(torch.nn.Module):
    """A loss function as a module whose parameters are those of ``net`` (what DDP wraps)."""

    def __init__(self, net: torch.nn.Module, fn) -> None:
        super().__init__()
        self.net = net
        self.fn = fn

    def forward(self, batch):
        return self.fn(batch)


def data_parallel(net: torch.nn.Module, loss_fn, device: torch.device):
    """``loss_fn(batch) -> dict of losses`` (which trains ``net``) wrapped in
    ``DistributedDataParallel``: the backward pass of its losses averages ``net``'s gradients
    over the ranks (bucketed all-reduce, overlapped with the backward pass).
    Buffers are not re-broadcast at each forward (``broadcast_buffers=False``, called
    ``forward_sync_buffers`` from torch 2.13): the observation normaliser is not part of the
    networks and is merged by :class:`NormSync`."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    # torch >= 2.13 renames broadcast_buffers (and warns at the old name)
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return DistributedDataParallel(
        _Loss(net, loss_fn),
        device_ids=[device.index] if device.type == "cuda" else None,
        **{no_sync: False},
    )


def all_mean(world: World, values: dict[str, float]) -> dict[str, float]:
    """The mean over the ranks of each of ``values`` (logging statistics)."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / world.size for k, v in zip(keys, t.tolist(), strict=True)}


def all_sum(world: World, values: list[float]) -> list[float]:
    """The sum over the ranks of each of ``values``."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def all_max(world: World, values: list[float]) -> list[float]:
    """The maximum over the ranks of each of ``values`` (e.g. a stop flag any rank raised)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def broadcast(world: World, values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every rank (its decisions: evaluate, checkpoint, stop)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.broadcast(t, src=0)
    return t.tolist()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


class NormSync:
    """Keeps a running observation normaliser (``mean``, ``var``, ``count`` buffers, parallel
    Welford) identical across ranks. The collector updates it through this object
    (:meth:`update`): the normaliser itself, as a single process would (acting uses it), and an
    accumulator of this rank's new observations since :meth:`begin`. :meth:`end` replaces the
    normaliser by its state at :meth:`begin` merged with every rank's accumulator in rank
    order: the same float64 computation on every rank, so the result is identical."""

    def __init__(self, norm, world: World) -> None:
        self.norm, self.world = norm, world
        self.acc = type(norm)(tuple(norm.mean.shape)).to(norm.mean.device)

    def begin(self) -> None:
        n, acc = self.norm, self.acc
        self.start = (n.mean.clone(), n.var.clone(), n.count.clone())
        acc.mean.zero_()
        acc.var.zero_()
        acc.count.zero_()

    def update(self, x: torch.Tensor) -> None:
        self.norm.update(x)
        self.acc.update(x)

    def end(self) -> None:
        acc = self.acc
        local = torch.cat([acc.count.reshape(1), acc.mean.reshape(-1), acc.var.reshape(-1)])
        parts = [torch.empty_like(local) for _ in range(self.world.size)]
        dist.all_gather(parts, local)
        mean, var, count = self.start
        D = mean.numel()
        m2 = var * count
        for part in parts:
            n_b = part[0]
            if n_b <= 0:
                continue
            mean_b, var_b = part[1 : 1 + D].view_as(mean), part[1 + D :].view_as(mean)
            total = count + n_b
            delta = mean_b - mean
            mean = mean + delta * n_b / total
            m2 = m2 + var_b * n_b + delta**2 * count * n_b / total
            count = total
        self.norm.mean.copy_(mean)
        self.norm.var.copy_(m2 / count.clamp(min=1))
        self.norm.count.copy_(count)
