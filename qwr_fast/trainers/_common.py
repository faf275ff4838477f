"""What every trainer does the same way: the process set-up (device, threads, seeds, the heap),
the RNG streams a checkpoint carries, one optimiser step, the evaluation episodes, and saving
and resuming a run."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from qwr_fast.blueprints import CHECKPOINT_FORMAT
from qwr_fast.checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from qwr_fast.checks import check_fields
from qwr_fast.data.collect import Collector, autoreset_mode
from qwr_fast.distributed import (
    SHARDS,
    Chunk,
    NormSync,
    World,
    all_max,
    all_mean,
    all_sum,
    barrier,
    broadcast,
    broadcast_weights,
    chunk_step,
    env_world,
    join,
    shard_dir,
)
from qwr_fast.trainers.runlog import LATEST, RunInterrupted, check_run_dir, plot_eval_curve
from qwr_fast.trainers.tracking import TrackedRunLog, check_extras

__all__ = [
    "SAMPLED_GREEDY_EVAL_COLUMNS",
    "Trainer",
    "check_per_fields",
    "eval_returns",
    "load_rng_state",
    "optimizer_step",
    "plot_sampled_greedy",
    "resolve_device",
    "retain_freed_memory",
    "rng_state",
    "seed_everything",
]


def check_per_fields(cfg) -> None:
    """The prioritised-replay fields of a config (``per_alpha``, ``per_beta0``,
    ``per_beta_steps``, ``per_eps``), and ``prioritized`` against ``compile``."""
    check_fields(cfg, "per_alpha per_beta_steps", ">= 0")
    check_fields(cfg, "per_beta0", "[0, 1]")
    check_fields(cfg, "per_eps", "> 0")
    if getattr(cfg, "compile", False) and cfg.prioritized:
        raise ValueError(
            "--compile compiles the whole update step, sampling included; the "
            "--prioritized sampler walks a sum tree on the host: drop one of the two"
        )


def resolve_device(choice: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``; ValueError for ``cuda`` without a
    CUDA device."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    cuda = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if cuda else "cpu")


def seed_everything(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Seed python's, numpy's global and torch's RNGs; returns a generator on ``device`` seeded
    with ``seed`` (the trainer's own stream)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (global stream used by third-party envs)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def rng_state(gen: torch.Generator, np_gen: np.random.Generator | None = None) -> dict:
    """Every RNG stream of a run (the checkpoint's ``rng`` entry)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
        "gen": gen.get_state(),
    }
    if np_gen is not None:
        state["np_gen"] = np_gen.bit_generator.state
    return state


def load_rng_state(
    state: dict, gen: torch.Generator, np_gen: np.random.Generator | None = None
) -> None:
    """Restore :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    gen.set_state(state["gen"])
    if np_gen is not None:
        np_gen.bit_generator.state = state["np_gen"]


SAMPLED_GREEDY_EVAL_COLUMNS = [
    "step",
    "return_mean",
    "return_std",
    "return_mean_greedy",
    "return_std_greedy",
]
"""``eval.csv`` of ppo-train (sampled actions and argmax) and dqn-train (epsilon 0.05 and 0)."""


def plot_sampled_greedy(run_dir: str, *, title: str = "") -> str | None:
    """Write ``curve.png`` (eval return vs env steps, sampled and greedy) from ``eval.csv``."""
    return plot_eval_curve(
        run_dir, [("return_mean", "sampled"), ("return_mean_greedy", "greedy")], title=title
    )


def optimizer_step(opt: torch.optim.Optimizer, params, loss: torch.Tensor, grad_clip: float):
    """Zero the gradients, backpropagate ``loss``, clip the global grad norm of ``params`` to
    ``grad_clip`` (0: no clip) and step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()


_frame_hooks: list = []
"""The active recorders of :func:`eval_returns` (``qwr_fast.trainers.video.EvalRecorder``)."""


def eval_returns(env, act: Callable[[np.ndarray], np.ndarray], *, seed: int, max_steps: int):
    """Return ``[num_envs]`` of the first episode of each env of ``env`` (reset with ``seed``),
    acting with ``act(obs) -> env actions``; an episode unfinished after ``max_steps`` steps
    counts its partial return. Inside an ``EvalRecorder`` (``--capture-video``) the recorder
    sees ``(env, obs)`` at each step of env 0's first episode (its last state too where the env
    does not reset on its own)."""
    E = env.num_envs
    hook = _frame_hooks[-1] if _frame_hooks else None
    obs, _ = env.reset(seed=seed)
    if hook is not None:
        hook(env, obs)
    ret = np.zeros(E)
    finished = np.zeros(E, dtype=bool)
    mode = autoreset_mode(env)
    disabled = mode == AutoresetMode.DISABLED
    last_frame = mode != AutoresetMode.SAME_STEP  # the env still shows an episode's last state
    for _ in range(max_steps):
        if finished.all():
            break
        obs, r, term, trunc, _ = env.step(act(obs))
        ret += np.where(finished, 0.0, r)
        done = np.logical_or(term, trunc)
        if hook is not None and not finished[0] and (last_frame or not done[0]):
            hook(env, obs)
        finished |= done
        if disabled and done.any():
            obs, _ = env.reset(options={"reset_mask": done})
    return ret


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's documented maximum on 64-bit systems
TRIM_THRESHOLD = 512 << 20


def retain_freed_memory() -> bool:
    """Keep freed memory in the process heap (glibc), so per-step activations stop
    page-faulting: raise glibc's mmap threshold to 32 MB and its trim threshold to 512 MB.

    A training step on the CPU allocates and frees the same MB-sized activations every step
    (the target network's ``[3072, 256]`` head at the MuJoCo config is 3 MB). glibc serves
    blocks above its mmap threshold with fresh ``mmap`` calls and returns freed heap tops to
    the OS above its trim threshold, so those blocks come back as new pages that fault on
    first touch, every step: 215K minor faults per second in a two-thread HalfCheetah run
    (docs/results.md). Returns True when both took effect, False where there is no glibc
    (macOS, musl, Windows): then nothing changes.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, TypeError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _shards_complete(run_dir: str, state: dict, world: World) -> bool:
    """Whether every rank r > 0 wrote its shard of rank 0's checkpoint ``state`` (by step)."""
    name = f"ckpt_{state['counters']['global_step']}.pt"
    paths = [os.path.join(shard_dir(run_dir, r), name) for r in range(1, world.size)]
    return all(os.path.exists(p) for p in paths)


def state_actors(run_dir: str) -> int:
    """The ``--actors`` of the run in ``run_dir`` (its config.json; 0 if unknown)."""
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            return int(json.load(f).get("actors", 0) or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


class Trainer:
    """Saving and resuming, the same for every trainer. A subclass sets ``config_cls``,
    ``CHECKPOINT_KIND`` (None: the checkpoint has no ``kind`` entry) and ``FIXED_CHECKPOINT``
    (True: the latest state is ``checkpoint.pt``, the planners' blueprint; False: the newest
    ``ckpt_<step>.pt``), and has ``cfg``, ``global_step``, ``state_dict()`` and
    ``load_state_dict()``."""

    config_cls: type
    CHECKPOINT_KIND: str | None = None
    FIXED_CHECKPOINT = False
    SNAPSHOTS = True
    TRAIN_COLUMNS: list[str]
    EVAL_COLUMNS: list[str]
    TB_SKIP: tuple[str, ...] = ("step", "epoch")
    """train.csv columns that are counters, not TensorBoard scalars"""
    COUNTERS: tuple[str, ...] = ("global_step", "epoch", "num_evals", "last_eval", "wall")
    """the attributes a checkpoint's ``counters`` entry holds"""
    SAVED: tuple[str, ...] = ()
    """the attributes (networks, optimisers, normaliser) whose ``state_dict`` a checkpoint
    holds under the same name; an attribute that is None is saved as None"""

    def __new__(cls, *args, **kwargs):
        # the optional extras of --track / --capture-video are checked before anything runs
        cfg = args[0] if args else kwargs.get("cfg")
        if cfg is not None:
            check_extras(cfg)
        return super().__new__(cls)

    world: World = World()
    """this process's place in a multi-process run (:mod:`qwr_fast.distributed`; alone by
    default)"""
    STEPS_FIELD = "steps_per_epoch"
    """the config field of the env steps per epoch (over all envs)"""
    REPLAY_FIELD = "replay_size"
    """the config field of the replay capacity in env steps"""
    SINGLE_LEARNER_FLAGS: tuple[str, ...] = ()
    """bool config fields that do not run with several learners"""
    pending = False
    """mode 2: an actor restored with a chunk its learner has not received yet"""
    collector_norm = None
    """the observation normaliser the collector (or a mode-2 learner's receiver) updates"""

    # ------------------------------------------------- scale-out (README: Scaling out)
    def join_world(self) -> None:
        """Under ``torchrun``: this rank's share of the global values (:meth:`share`, which
        fails before any work for one that does not divide), the process group, the device
        (``cfg.device``; CPU where the config has none) and the torch threads (one on an
        actor). Alone: only the device and the threads. Sets ``world`` and ``device``."""
        cfg = self.cfg
        actors = getattr(cfg, "actors", 0)  # dqn-train has no actor ranks
        world = env_world(actors)
        if world.is_main:
            check_run_dir(cfg)
        self.share(world)
        self.world, self.device = join(resolve_device(getattr(cfg, "device", "cpu")), actors)
        torch.set_num_threads(1 if self.world.is_actor else cfg.threads)

    def epoch_steps(self, world: World) -> tuple[int, str]:
        """The env steps of one epoch (over all envs; one chunk per actor in mode 2), and
        what sets them, for error messages."""
        return getattr(self.cfg, self.STEPS_FIELD), "--" + self.STEPS_FIELD.replace("_", "-")

    def share(self, world: World) -> None:
        """Each rank's share of the global ``--num-envs``, ``--batch-size`` and replay
        capacity (and, with ``--actors``, of the envs among the actors); ValueError, before
        any work, for a share that does not divide or a flag that does not run on several
        learners."""
        cfg = self.cfg
        flag = "--" + self.REPLAY_FIELD.replace("_", "-")
        self.local_batch = world.split(cfg.batch_size, "--batch-size")
        self.local_replay = world.split(getattr(cfg, self.REPLAY_FIELD), flag)
        self.local_envs = world.split(cfg.num_envs, "--num-envs")
        steps, steps_flag = self.epoch_steps(world)
        if world.learners > 1:
            world.split(steps, steps_flag)
            for name in self.SINGLE_LEARNER_FLAGS:
                if getattr(cfg, name):
                    raise ValueError(
                        f"--{name.replace('_', '-')} is not supported with several learners "
                        f"({world.learners}): run without it, or with one learner"
                    )
        if not world.actors:
            return
        if getattr(cfg, "dataset", None) is not None:
            raise ValueError("--actors collect from envs: an offline --dataset run has none")
        if world.actors % world.learners:
            raise ValueError(
                f"--actors {world.actors} must be a multiple of the {world.learners} learners "
                "(each learner takes the chunks of as many actors)"
            )
        self.actor_envs = world.split(cfg.num_envs, "--num-envs", parts=world.actors)
        if steps % cfg.num_envs:
            raise ValueError(
                f"--actors: {steps_flag} {steps} must be a multiple of --num-envs "
                f"{cfg.num_envs} (each actor steps its envs equally often per epoch)"
            )
        if cfg.total_steps % steps:
            raise ValueError(
                f"--actors: --total-steps {cfg.total_steps} must be a multiple of "
                f"{steps_flag} {steps} (every chunk has the same size)"
            )
        self.chunk_steps = steps // cfg.num_envs

    def collecting_envs(self) -> tuple[int, int] | None:
        """``(num_envs, env seed)`` of this rank's training envs (None: it collects nothing, a
        mode-2 learner): every collecting rank numbers its envs as a single process numbers
        its ``--num-envs`` from ``--seed``."""
        cfg, world = self.cfg, self.world
        if world.is_actor:
            return self.actor_envs, cfg.seed + world.actor_index * self.actor_envs
        if world.actors:
            return None
        return self.local_envs, cfg.seed + world.rank * self.local_envs

    def make_collector(self, env, obs_to_tensor, **kw) -> Collector | None:
        """The collector of this rank's training envs ``env`` (made from
        :meth:`collecting_envs`), updating :attr:`collector_norm`; None without envs."""
        if env is None:
            return None
        seed = self.collecting_envs()[1]
        norm = self.collector_norm
        return Collector(env, seed=seed, obs_to_tensor=obs_to_tensor, norm=norm, **kw)

    def rank_streams(self) -> None:
        """After the networks are built (identical on every rank by construction, from the
        same seed): rank r > 0 reseeds its own torch stream ``gen`` (and numpy ``rng`` where the
        trainer has one)."""
        world = self.world
        if world.is_main:
            return
        self.gen = seed_everything(world.seed(self.cfg.seed), self.device)
        if hasattr(self, "rng"):
            self.rng = np.random.default_rng(world.seed(self.cfg.seed))

    def norm_synced(self, norm):
        """What the collector updates: ``norm`` itself, or a :class:`NormSync` over the
        learners when several learners each see their own observations (None: no
        normaliser)."""
        world = self.world
        if norm is None or world.learners == 1 or world.is_actor:
            return norm
        return NormSync(norm, world)

    def make_chunks(self, obs_shape, mu_dim, action_shape, action_dtype, obs_dtype) -> None:
        """Mode 2: an actor's chunk, or a learner's one per actor to receive into."""
        world = self.world
        mine = [world.rank] if world.is_actor else world.actors_of(world.rank)
        steps, envs = self.chunk_steps, self.actor_envs
        self.chunks = [
            Chunk(steps, envs, obs_shape, mu_dim, action_shape, action_dtype, obs_dtype)
            for _ in mine
        ]
        self.actor_returns = [0.0, 0.0]
        self.chunks_filled = 0

    def collect(self, steps: int) -> None:
        """Step the training envs ``steps // num_envs`` times with the current behaviour (each
        rank its ``1 / world size`` share; the observation normaliser merged after)."""
        norm = self.collector_norm
        sync = norm if isinstance(norm, NormSync) else None
        if sync is not None:
            sync.begin()
        size = self.world.size
        self.global_step += size * self.collector.collect(steps // size, self, self.replay)
        if sync is not None:
            sync.end()

    def acting_step(self) -> int:
        """The global env step of the behaviour's next action (exploration schedules): a
        single process's count, whatever the number of collecting ranks."""
        if self.world.is_actor:  # ahead of the learners' step: the chunks filled before
            base = (self.chunks_filled - 1) * self.chunk_steps * self.cfg.num_envs
            return base + self.world.actors * self.collector.steps_in_call
        return self.global_step + self.world.size * self.collector.steps_in_call

    def receive(self, on_step: Callable[[int], None] | None = None) -> None:
        """Mode 2 learner: this epoch's chunk from each of its actors, into the replay (the
        observation normaliser folded over them step by step, as a collector would); after
        each vector step ``on_step(global step before it)``, where the trainer learns between
        env steps."""
        world = self.world
        for chunk, src in zip(self.chunks, world.actors_of(world.rank), strict=True):
            chunk.recv(src)
            self.actor_returns[0] += float(chunk.header[1])
            self.actor_returns[1] += float(chunk.header[2])
        norm = self.collector_norm
        sync = norm if isinstance(norm, NormSync) else None
        if sync is not None:
            sync.begin()
        for t in range(self.chunk_steps):
            step = chunk_step(t, self.chunks, self.device)
            if norm is not None:
                norm.update(step["obs"][step["valid"]])
            valid = step.pop("valid")
            self.replay.add(*step.values(), valid=valid)
            self.global_step += self.cfg.num_envs
            if on_step is not None:
                on_step(self.global_step - self.cfg.num_envs)
        if sync is not None:
            sync.end()

    def fill(self, chunk: Chunk) -> None:
        """Mode 2 actor: collect one chunk with the current behaviour."""
        chunk.clear()
        self.chunks_filled += 1
        self.collector.collect(self.chunk_steps * self.actor_envs, self, chunk)
        chunk.add_returns(self.collector.pop_returns())

    def acting_tensors(self) -> list[torch.Tensor]:
        """What the learners broadcast to the actors after every epoch: the parameters and
        buffers of the modules the behaviour acts with (:meth:`acting_modules`)."""
        modules = [m for m in self.acting_modules() if m is not None]
        return [t for m in modules for t in (*m.parameters(), *m.buffers())]

    def acting_modules(self) -> list:
        """The modules the behaviour acts with (the policy, the normaliser)."""
        raise NotImplementedError

    def train_return(self) -> float:
        """The mean return of the training episodes that ended since the last call, over
        every collecting rank (the actors report theirs with their chunks); NaN if none."""
        if self.world.actors:
            total, count = self.actor_returns
            self.actor_returns = [0.0, 0.0]
        else:
            returns = [] if self.collector is None else self.collector.pop_returns()
            total, count = float(np.sum(returns)), float(len(returns))
        total, count = all_sum(self.world, [total, count])
        return total / count if count else float("nan")

    def env_state(self) -> dict:
        """The training envs' part of a checkpoint (empty entries where this rank has none:
        offline, or a mode-2 learner)."""
        if self.collector is None:
            return {"env": None, "env_obs": None, "prev_done": None, "ep_return": None}
        return self.collector.state_dict()

    def actor_state(self) -> dict:
        """An actor's checkpoint: its envs, streams, acting weights and the unsent chunk."""
        return self.checkpoint_state(
            acting=[m.state_dict() for m in self.acting_modules() if m is not None],
            rng=rng_state(self.gen, getattr(self, "rng", None)),
            chunk=self.chunks[0].state_dict(),
            chunks_filled=self.chunks_filled,
            **self.collector.state_dict(),
        )

    def load_actor_state(self, s: dict) -> None:
        """Restore :meth:`actor_state`; the restored chunk is the first one its learner
        expects (``pending``)."""
        modules = [m for m in self.acting_modules() if m is not None]
        for module, state in zip(modules, s["acting"], strict=True):
            module.load_state_dict(state)
        load_rng_state(s["rng"], self.gen, getattr(self, "rng", None))
        self.chunks[0].load_state_dict(s["chunk"])
        self.chunks_filled = s["chunks_filled"]
        self.pending = True
        self.load_counters(s)
        self.collector.load_state_dict(s, reset_seed=self.cfg.seed + self.global_step)

    def run_log(self, train_columns: list[str], eval_columns: list[str], **kw) -> TrackedRunLog:
        """The :class:`RunLog` of one ``train()`` call (W&B too when ``cfg.track``); kept as
        ``self.log`` for :meth:`recording`. On a rank > 0 it writes nothing (``quiet``)."""
        world = self.world
        self.log = TrackedRunLog(
            self.cfg,
            self.global_step,
            train_columns,
            eval_columns,
            world=world.describe() if world.distributed else None,
            quiet=not world.is_main,
            **kw,
        )
        return self.log

    def recording(self):
        """Context manager around the greedy evaluation: with ``cfg.capture_video``, every
        ``cfg.video_every``-th evaluation's first episode of eval env 0 becomes
        ``RUN_DIR/videos/step_<global_step>.mp4`` (:mod:`qwr_fast.trainers.video`)."""
        cfg = self.cfg
        if not getattr(cfg, "capture_video", False) or self.num_evals % cfg.video_every:
            return contextlib.nullcontext()
        from qwr_fast.trainers.video import EvalRecorder

        return EvalRecorder(cfg.run_dir, self.global_step, getattr(self, "log", None))

    def checkpoint_state(self, **parts) -> dict:
        """The checkpoint dict: ``kind`` (if the trainer has one), ``format``, ``config``,
        ``parts`` (networks, optimisers, replay, RNG streams, env), ``counters``."""
        kind = {} if self.CHECKPOINT_KIND is None else {"kind": self.CHECKPOINT_KIND}
        return {
            **kind,
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.cfg),
            **parts,
            "counters": {name: getattr(self, name) for name in self.COUNTERS},
            "world_size": self.world.size,
        }

    def saved_states(self) -> dict:
        """``{name: state_dict}`` of the :attr:`SAVED` attributes (None where one is None)."""
        return {n: None if (m := getattr(self, n)) is None else m.state_dict() for n in self.SAVED}

    def load_saved_states(self, state: dict) -> None:
        """Restore the :attr:`SAVED` attributes from :meth:`saved_states`."""
        for name in self.SAVED:
            if (module := getattr(self, name)) is not None:
                module.load_state_dict(state[name])

    def learner_state(self, **parts) -> dict:
        """An off-policy trainer's checkpoint: :meth:`actor_state` on an actor rank; else the
        :attr:`SAVED` states, ``parts``, the replay and the training envs."""
        if self.world.is_actor:
            return self.actor_state()
        return self.checkpoint_state(
            **self.saved_states(), **parts, replay=self.replay.state_dict(), **self.env_state()
        )

    def load_counters(self, state: dict) -> None:
        """Restore the ``counters`` of :meth:`checkpoint_state`."""
        for name in self.COUNTERS:
            setattr(self, name, state["counters"][name])

    def load_run_state(self, state: dict, np_gen: np.random.Generator | None = None) -> None:
        """Restore :meth:`learner_state` but its ``parts``: the :attr:`SAVED` states, the
        replay, the RNG streams (``np_gen`` too, if the trainer has one), the counters and the
        collector's envs (restarted with this rank's seed at this step where the checkpoint
        holds no env state)."""
        self.load_saved_states(state)
        self.replay.load_state_dict(state["replay"])
        load_rng_state(state["rng"], self.gen, np_gen)
        self.load_counters(state)
        if self.collector is not None:
            reset_seed = self.cfg.seed + self.world.rank * self.local_envs + self.global_step
            self.collector.load_state_dict(state, reset_seed=reset_seed)

    def train(self) -> dict:
        """Run to ``total_steps``; returns the last evaluation. Each epoch: :meth:`run_epoch`
        (collect, then update), its ``train.csv`` row, the evaluation when due, the progress
        bar, the checkpoint when due (:meth:`RunLog.checkpoint_due`: every ``checkpoint_every``
        env steps, every ``checkpoint_minutes``); at the end the learning curve (:meth:`plot`).
        The run directory is locked meanwhile (RunDirBusy if another process runs there). On
        SIGINT / SIGTERM the current epoch ends, a checkpoint is written, and
        :class:`RunInterrupted` (a KeyboardInterrupt) says where; ``--resume`` continues exactly
        as if uninterrupted."""
        cfg, world = self.cfg, self.world
        log = self.run_log(self.TRAIN_COLUMNS, self.EVAL_COLUMNS, skip=self.TB_SKIP)
        if world.is_actor:
            with log:
                return self.serve(log)
        last: dict = {}
        with log:
            while self.global_step < cfg.total_steps:
                t0 = time.perf_counter()
                before = self.global_step
                stats = all_mean(world, self.run_epoch())
                dt = time.perf_counter() - t0
                self.wall += dt
                sps = (self.global_step - before) / dt
                log.train_row(self.train_row(stats, sps))
                final = self.global_step >= cfg.total_steps
                if world.is_main and log.evals.due(self.global_step, final):
                    last, scalars = self.eval_row()
                    self.num_evals += 1
                    self.last_eval = last["return_mean"]
                    log.eval_row(last, scalars)
                log.progress(self.global_step - before, sps, self.last_eval)
                due = log.checkpoint_due(self.global_step, final)
                if world.distributed:
                    due = self._agree_checkpoint(log, due)
                path = None if due is None else self.save(scheduled=due == "scheduled")
                if world.actors:  # the weights the actors act with next, and what to do
                    flags = [due is not None, log.stop_signal or 0, final, self.global_step]
                    broadcast_weights(self.acting_tensors(), [float(f) for f in flags])
                if path is not None:
                    log.stop_if_signalled(self.global_step, path, final)
        if world.is_main:
            self.plot()
        return last

    def serve(self, log) -> dict:
        """Mode 2 (``--actors``): this rank only collects. Each epoch it fills a chunk with
        its current policy (:meth:`fill`), receives the weights and flags the learners
        broadcast after their epoch, checkpoints when they did (its envs, streams and the
        chunk not yet sent), stops with them, and ships the chunk to its learner; so it
        collects epoch e + 1 while the learners train on epoch e. Returns ``{}``."""
        world = self.world
        chunk, learner = self.chunks[0], world.learner_of(world.rank)
        if self.pending:  # restored: the chunk its learner expects first
            chunk.send(learner)
        else:
            self.fill(chunk)
            chunk.send(learner)
        while True:
            self.fill(chunk)
            due, signum, final, step = broadcast_weights(self.acting_tensors(), [0.0] * 4)
            self.global_step = int(step)
            path = self.save() if due else None
            if final:
                return {}
            if signum:
                raise RunInterrupted(int(signum), self.global_step, path, self.cfg.run_dir)
            chunk.send(learner)

    def _agree_checkpoint(self, log, due: str | None) -> str | None:
        """A multi-process run checkpoints when rank 0's schedule says so, and stops when any
        rank received SIGINT / SIGTERM (``torchrun`` forwards them to every worker)."""
        codes = (None, "scheduled", "extra")
        (code,) = broadcast(self.world, [codes.index(due)])
        (signum,) = all_max(self.world, [log.stop_signal or 0])
        due = codes[int(code)]
        if signum:
            log.stop_signal = int(signum)
            due = due or "extra"
        return due

    def run_epoch(self) -> dict:
        """One epoch of an off-policy trainer: ``steps_per_epoch`` env steps collected (mode 2:
        received from the actors; offline: counted), then ``update()``; returns its losses.
        (ppo-train, on-policy, has its own.)"""
        cfg = self.cfg
        if cfg.actors:
            self.receive()
        elif self.collector is not None:
            self.collect(min(cfg.steps_per_epoch, cfg.total_steps - self.global_step))
        else:
            self.global_step += cfg.steps_per_epoch
        stats = self.update()
        self.epoch += 1
        return stats

    LABEL = "run"
    """what the trainer trains, in its messages (QWR, AQL, ...)"""
    EVAL_NOTE = ""
    """how the evaluation acts, in :meth:`summary` (e.g. `` (temperature 0)``)"""

    def state_dict(self) -> dict:
        """An epoch trainer's checkpoint: :meth:`learner_state` with the target syncs done so
        far and the RNG streams (dqn-train and ppo-train have their own)."""
        return self.learner_state(sync_count=self.sync.count, rng=rng_state(self.gen))

    def load_state_dict(self, s: dict) -> None:
        """Restore :meth:`state_dict` (on an actor rank, :meth:`load_actor_state`)."""
        self.check_kind(s, f"{self.LABEL} checkpoint")
        if self.world.is_actor:
            return self.load_actor_state(s)
        self.load_run_state(s)
        self.sync.count = s["sync_count"]

    def summary(self, last: dict) -> str:
        """The one line the entry point prints after the final evaluation ``last``."""
        return (
            f"{self.cfg.algo} on {self.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f}{self.EVAL_NOTE}; "
            f"curve: {self.cfg.run_dir}/curve.png"
        )

    def train_extras(self) -> dict:
        """``train.csv`` columns besides the counters and the losses (e.g. ``epsilon``)."""
        return {}

    def train_row(self, stats: dict, steps_per_s: float) -> dict:
        """The ``train.csv`` row after an epoch with losses ``stats``: the counters, the
        :meth:`train_extras`, and ``stats`` in every other column (NaN where it has none)."""
        known = {
            "step": self.global_step,
            "epoch": self.epoch,
            **self.train_extras(),
            "train_return": self.train_return(),
            "steps_per_s": steps_per_s,
            "wall_s": self.wall,
        }
        nan = float("nan")
        return {c: known[c] if c in known else stats.get(c, nan) for c in self.TRAIN_COLUMNS}

    def eval_row(self) -> tuple[dict, dict]:
        """Evaluate now: ``(eval.csv row, TensorBoard scalars)``."""
        raise NotImplementedError

    def plot(self) -> None:
        """Write the run's ``curve.png``."""
        raise NotImplementedError

    @property
    def keep(self) -> int:
        """Snapshots kept per directory (``keep_checkpoints``; 2 where the config has none)."""
        return getattr(self.cfg, "keep_checkpoints", 2)

    def save(self, scheduled: bool = True) -> str:
        """Write the checkpoint(s) atomically and prune old snapshots; returns the path of the
        latest state. An unscheduled save (wall time, stop signal) of a trainer with a fixed
        ``checkpoint.pt`` writes that file only: its ``ckpt_<step>.pt`` snapshots stay those of
        the ``checkpoint_every`` schedule (ppo-train's weak blueprints)."""
        state = self.state_dict()
        run_dir = self.cfg.run_dir
        world = self.world
        path = os.path.join(run_dir, f"ckpt_{self.global_step}.pt")
        if world.is_actor:  # after the learners' checkpoint of this step (see resumed())
            shards = shard_dir(run_dir, world.rank)
            os.makedirs(shards, exist_ok=True)
            save_checkpoint(os.path.join(shards, f"ckpt_{self.global_step}.pt"), state)
            prune_checkpoints(shards, self.keep)
            return path
        if world.distributed:  # every shard of a step is complete before rank 0's file names it
            shards = shard_dir(run_dir, world.rank)
            if not world.is_main:  # by step always; the fixed name too where rank 0 keeps one
                os.makedirs(shards, exist_ok=True)
                save_checkpoint(os.path.join(shards, f"ckpt_{self.global_step}.pt"), state)
                if self.FIXED_CHECKPOINT:
                    save_checkpoint(os.path.join(shards, LATEST), state)
            barrier(world)
        snapshot = self.SNAPSHOTS and (scheduled or not self.FIXED_CHECKPOINT)
        if world.is_main:
            if snapshot:
                save_checkpoint(path, state)
            if self.FIXED_CHECKPOINT:
                path = os.path.join(run_dir, LATEST)
                save_checkpoint(path, state)
            if snapshot:
                prune_checkpoints(run_dir, self.keep)
        if world.distributed:  # rank 0's pruned steps go from the shards after it
            barrier(world)
            if not world.is_main:
                prune_checkpoints(shards, self.keep)
        return path

    @classmethod
    def resumed(cls, run_dir: str, **overrides):
        """A trainer restored from the latest checkpoint of ``run_dir`` (its saved config,
        with ``overrides`` such as a larger ``total_steps``)."""
        world = env_world(state_actors(run_dir))
        state = cls.newest_intact_checkpoint(run_dir, world)
        cls.check_kind(state, run_dir)
        cfg = cls.config_cls(
            **{**state["config"], **overrides, "resume": run_dir, "run_dir": run_dir}
        )
        saved = state.get("world_size", 1)
        if saved != world.size:
            raise ValueError(
                f"--resume {run_dir}: the run was trained by {saved} process(es), not "
                f"{world.size}; resume it with as many (torchrun --nproc-per-node={saved}; "
                "resharding the replay shards is not supported)"
            )
        trainer = cls(cfg)
        if not world.is_main:  # this rank's own replay shard, RNG streams and envs
            step = state["counters"]["global_step"]
            path = os.path.join(shard_dir(run_dir, world.rank), f"ckpt_{step}.pt")
            state = load_checkpoint(path)
            cls.check_kind(state, path)
        trainer.load_state_dict(state)
        return trainer

    @classmethod
    def newest_intact_checkpoint(cls, run_dir: str, world: World | None = None) -> dict:
        """The state of the newest checkpoint of ``run_dir`` that loads (``checkpoint.pt``
        first for trainers that keep one, then ``ckpt_<step>.pt`` newest first). A corrupt or
        truncated newer one is skipped with one line on stderr naming it and the one used; a
        resume from an older checkpoint is still exact (the logs' later rows are dropped).
        Raises the newest one's :class:`CorruptCheckpointError` if none loads, and at once
        any other ``CheckpointError`` (e.g. a checkpoint holding code). With a multi-process
        ``world``, only a step whose shards every other rank wrote counts."""
        fixed = os.path.join(run_dir, LATEST)
        paths = [fixed] if cls.FIXED_CHECKPOINT and os.path.exists(fixed) else []
        paths += reversed(checkpoint_paths(run_dir))
        if not paths:
            latest_checkpoint(run_dir)  # raises: no checkpoint in run_dir
        distributed = world is not None and world.distributed
        first_error = None
        for path in paths:
            try:
                state = load_checkpoint(path)
            except CorruptCheckpointError as e:  # damaged; a forbidden payload stops the resume
                first_error = first_error or e
                continue
            if distributed and not _shards_complete(run_dir, state, world):
                continue  # a step some rank did not checkpoint (it died in between)
            if first_error is not None:
                print(
                    f"warning: {first_error}; resuming from the newest intact checkpoint, {path}",
                    file=sys.stderr,
                )
            return state
        if first_error is None:
            raise CheckpointError(
                f"--resume {run_dir}: no checkpoint whose shards every one of the "
                f"{world.size} ranks wrote (RUN_DIR/{SHARDS}/rank<r>/ckpt_<step>.pt)"
            )
        raise first_error

    @classmethod
    def check_kind(cls, state: dict, where: str) -> None:
        """ValueError unless ``state`` is this trainer's checkpoint of the current format."""
        if state.get("kind") != cls.CHECKPOINT_KIND or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{where}: checkpoint kind/format {state.get('kind')!r}/{state.get('format')}, "
                f"expected {cls.CHECKPOINT_KIND!r}/{CHECKPOINT_FORMAT}"
            )
