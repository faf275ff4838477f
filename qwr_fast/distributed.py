"""Scale-out on ``torch.distributed`` (one process per rank, launched by ``torchrun``; gloo on
CPU, nccl on CUDA): data-parallel learners (mode 1), actor ranks that only collect (mode 2,
``qwr-train --actors K``), and the pieces the trainers share for both.

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
standardisation, PPO's advantage normalisation) are taken over each rank's share of the batch,
as BatchNorm is under DDP without SyncBatchNorm; and each rank draws its own random numbers.

Mode 2: the last ``K`` ranks are actors. Each fills a fixed-size :class:`Chunk` per epoch with
a CPU copy of the policy and ships it to its learner (``dist.send``); after every epoch rank 0
broadcasts the policy, the normaliser and the run's flags (checkpoint, stop, end) to every
rank (:func:`broadcast_weights`), so the actors collect epoch e + 1 while the learners train on
epoch e. The learners reduce among themselves only (:func:`learner_group`).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys

import torch
import torch.distributed as dist

__all__ = [
    "SHARDS",
    "Chunk",
    "NormSync",
    "World",
    "broadcast_weights",
    "chunk_step",
    "data_parallel",
    "env_world",
    "join",
    "learner_group",
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
    """Where this process stands: ``rank`` of ``size`` processes (1: alone), of which the last
    ``actors`` only collect (mode 2, ``--actors``) and the others learn."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    actors: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes ``RUN_DIR``'s own files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def learners(self) -> int:
        return self.size - self.actors

    @property
    def is_actor(self) -> bool:
        return self.rank >= self.learners

    @property
    def actor_index(self) -> int:
        """This actor's number among the actors (0 ... actors - 1)."""
        return self.rank - self.learners

    def actors_of(self, learner: int) -> list[int]:
        """The ranks of the actors that ship their chunks to ``learner``."""
        return [r for r in range(self.learners, self.size) if self.learner_of(r) == learner]

    def learner_of(self, actor_rank: int) -> int:
        return (actor_rank - self.learners) % self.learners

    def split(self, value: int, flag: str, parts: int | None = None) -> int:
        """``value / parts`` (default: the learners); ValueError naming ``flag`` when it does
        not divide."""
        parts = self.learners if parts is None else parts
        if value % parts:
            raise ValueError(
                f"{flag} {value} does not divide among {parts} ranks (the value is global: "
                f"each takes {flag} / {parts}); use a multiple of {parts}"
            )
        return value // parts

    def seed(self, seed: int) -> int:
        """This rank's seed of its own random streams (``seed`` itself on rank 0)."""
        return seed + self.rank * RANK_SEED_STRIDE

    def describe(self) -> dict:
        """What ``config.json`` records under ``world``."""
        roles = ["learner"] * self.learners + ["actor"] * self.actors
        return {"world_size": self.size, "roles": roles}


def env_world(actors: int = 0) -> World:
    """The :class:`World` that ``torchrun``'s environment variables describe (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``), the last ``actors`` ranks collecting only, without joining
    anything; alone when they are unset. ValueError for ``actors`` that leave no learner."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if actors and actors >= size:
        raise ValueError(
            f"--actors {actors} needs at least {actors + 1} processes (one learner or more; "
            f"WORLD_SIZE={size}): launch with torchrun --nproc-per-node={actors + 1} or more"
        )
    if size <= 1:
        return World()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    return World(rank, size, local, actors)


_learners = None
"""the process group of the learners (None: every rank, the default group)"""


def learner_group():
    """The process group the learners reduce over (DDP, statistics, checkpoints)."""
    return _learners


def restarted() -> bool:
    """Whether ``torchrun --max-restarts`` restarted this worker (after a worker failed): the
    training entry points then resume from the run directory's latest checkpoint."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def join(device: torch.device, actors: int = 0) -> tuple[World, torch.device]:
    """Join the process group of :func:`env_world` (gloo on CPU, nccl on CUDA; every
    collective times out after ``$QWR_FAST_DIST_TIMEOUT_S`` seconds, default 1800, instead of
    hanging on a rank that died) and return the world and this rank's device (``cuda:<local
    rank>`` on CUDA). Alone: ``(World(), device)``."""
    global _learners
    world = env_world(actors)
    if not world.distributed:
        return world, device
    if world.is_actor:  # collectors act on the CPU with one thread
        device = torch.device("cpu")
    elif device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
        # torchrun's store (env://), its keys prefixed by the restart count: workers restarted
        # by --max-restarts must not read the addresses their dead predecessors published
        store, _, _ = next(dist.rendezvous("env://", world.rank, world.size, timeout=timeout))
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo",
            store=dist.PrefixStore(f"qwr_fast/attempt_{restart}", store),
            rank=world.rank,
            world_size=world.size,
            timeout=timeout,
        )
    if dist.get_world_size() != world.size or dist.get_rank() != world.rank:
        raise RuntimeError("the process group disagrees with RANK / WORLD_SIZE")
    if world.actors:  # every rank takes part in creating it
        _learners = dist.new_group(list(range(world.learners)))
    return world, device


def exit_process(status: int) -> int:
    """End a rank of a process group with ``status``: flush stdout and stderr, then
    ``os._exit(status)``, skipping the interpreter's teardown. Returns ``status`` unchanged
    when no process group is up (a single process, a test calling an entry point in-process).

    Why: a gloo group's worker threads release a finished collective's tensors a moment after
    the collective returns, and that release takes the GIL. When the main thread is already
    tearing the interpreter down, the worker thread cannot have it and the process aborts
    ("terminate called without an active exception", pytorch/pytorch#190489), so a run whose
    every checkpoint and record was written fails under torchrun. Destroying the group first
    does not help while the trainer's DDP wrapper still holds it. Every entry point calls this
    last, after its files are written and closed."""
    if not (dist.is_available() and dist.is_initialized()):
        return status
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


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
    ``DistributedDataParallel`` (``loss_fn=None``: ``net`` itself, for a loss that calls
    ``net(...)`` once per step): the backward pass of its losses averages ``net``'s gradients
    over the learners (bucketed all-reduce, overlapped with the backward pass).
    Buffers are not re-broadcast at each forward (``broadcast_buffers=False``, called
    ``forward_sync_buffers`` from torch 2.13): the observation normaliser is not part of the
    networks and is merged by :class:`NormSync`."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    # torch >= 2.13 renames broadcast_buffers (and warns at the old name)
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return DistributedDataParallel(
        net if loss_fn is None else _Loss(net, loss_fn),
        device_ids=[device.index] if device.type == "cuda" else None,
        process_group=learner_group(),
        **{no_sync: False},
    )


def all_mean(world: World, values: dict[str, float]) -> dict[str, float]:
    """The mean over the ranks of each of ``values`` (logging statistics)."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t, group=learner_group())
    return {k: float(v) / world.learners for k, v in zip(keys, t.tolist(), strict=True)}


def all_sum(world: World, values: list[float]) -> list[float]:
    """The sum over the learners of each of ``values``."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, group=learner_group())
    return t.tolist()


def all_max(world: World, values: list[float]) -> list[float]:
    """The maximum over the learners of each of ``values`` (e.g. a stop flag any learner
    raised)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=learner_group())
    return t.tolist()


def broadcast(world: World, values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every learner (its decisions: checkpoint, stop)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.broadcast(t, src=0, group=learner_group())
    return t.tolist()


def barrier(world: World) -> None:
    """Wait for every learner."""
    if world.distributed:
        dist.barrier(group=learner_group())


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
        parts = [torch.empty_like(local) for _ in range(self.world.learners)]
        dist.all_gather(parts, local, group=learner_group())
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


# ------------------------------------------------------------------ mode 2: actor ranks
class Chunk:
    """``steps`` vector-env steps of ``num_envs`` envs in fixed-size tensors: what an actor's
    collector writes (it has the signature of :meth:`qwr_fast.data.replay.Replay.add`) and
    ships to its learner whole, and what the learner receives into. ``header``: steps
    written, the sum and the count of the episode returns that ended in the chunk."""

    FIELDS = ("obs", "mu", "action", "reward", "terminal", "truncated", "next_obs", "next_mu")

    def __init__(self, steps, num_envs, obs_shape, mu_dim, action_shape, action_dtype, obs_dtype):
        n, E = steps, num_envs
        self.tensors = {
            "obs": torch.zeros(n, E, *obs_shape, dtype=obs_dtype),
            "mu": torch.zeros(n, E, mu_dim),
            "action": torch.zeros(n, E, *action_shape, dtype=action_dtype),
            "reward": torch.zeros(n, E),
            "terminal": torch.zeros(n, E, dtype=torch.uint8),
            "truncated": torch.zeros(n, E, dtype=torch.uint8),
            "next_obs": torch.zeros(n, E, *obs_shape, dtype=obs_dtype),
            "next_mu": torch.zeros(n, E, mu_dim),
            "valid": torch.zeros(n, E, dtype=torch.uint8),
        }
        self.header = torch.zeros(3, dtype=torch.float64)

    def clear(self) -> None:
        self.header.zero_()

    def add(self, obs, mu, action, reward, terminal, truncated, next_obs, next_mu, *, valid):
        t = int(self.header[0])
        values = (obs, mu, action, reward, terminal, truncated, next_obs, next_mu, valid)
        for name, value in zip((*self.FIELDS, "valid"), values, strict=True):
            self.tensors[name][t] = torch.as_tensor(value)
        self.header[0] += 1

    def add_returns(self, returns: list[float]) -> None:
        self.header[1] += float(sum(returns))
        self.header[2] += len(returns)

    def send(self, dst: int) -> None:
        for t in (*self.tensors.values(), self.header):
            dist.send(t, dst)

    def recv(self, src: int) -> None:
        for t in (*self.tensors.values(), self.header):
            dist.recv(t, src)

    def state_dict(self) -> dict:
        return {"header": self.header.clone(), **{k: v.clone() for k, v in self.tensors.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.header.copy_(state["header"])
        for k, v in self.tensors.items():
            v.copy_(state[k])


def chunk_step(t: int, chunks: list[Chunk], device) -> dict:
    """Step ``t`` of ``chunks`` (one per actor, their envs side by side) as the arguments of
    ``Replay.add`` on ``device``."""
    out = {
        k: torch.cat([c.tensors[k][t] for c in chunks], dim=0).to(device)
        for k in (*Chunk.FIELDS, "valid")
    }
    for k in ("terminal", "truncated", "valid"):
        out[k] = out[k].bool()
    return out


def broadcast_weights(tensors: list[torch.Tensor], flags: list[float]) -> list[float]:
    """Rank 0's ``tensors`` (the acting policy's parameters and buffers, the normaliser) and
    ``flags`` on every rank, over the whole world: an actor receives into its own (CPU)
    tensors; the other learners hold identical values and only take part. Returns the flags."""
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:  # one flat buffer per dtype: one broadcast each
        groups.setdefault(t.dtype, []).append(t)
    received = torch.tensor(flags, dtype=torch.float64)
    groups.setdefault(torch.float64, []).append(received)
    for group in groups.values():
        flat = torch.cat([t.detach().reshape(-1).cpu() for t in group])
        dist.broadcast(flat, src=0)
        offset = 0
        with torch.no_grad():
            for t in group:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()
    return received.tolist()
