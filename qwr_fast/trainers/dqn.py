"""Small DQN blueprint trainer for Q-value fine-tuning: double Q-learning
(:func:`qwr_fast.objectives.dqn.double_q_loss`), dueling head (:class:`qwr_fast.nn.DuelingQ`),
hard target sync, epsilon-greedy collection, uniform replay (:class:`qwr_fast.data.Replay` with
margin 1) or, with ``--prioritized``, proportional prioritised replay
(:class:`qwr_fast.data.PrioritizedReplay`). Envs that carry a legal-action mask in their
observation (``env.action_mask_slice``, e.g. Hanabi) act, explore and bootstrap over legal
actions only. Loop (CleanRL ``dqn.py`` shape): collect, update, sync target, evaluate, log,
checkpoint.

``checkpoint.pt`` holds the network, the optimiser and the replay (the "global buffer" that
Q-value fine-tuning draws from, :func:`qwr_fast.blueprints.load_q_blueprint`). Usage:
``dqn-train --help``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from qwr_fast.actions import legal_actions
from qwr_fast.checks import check_fields
from qwr_fast.distributed import all_mean, broadcast_weights, data_parallel
from qwr_fast.nn.dueling_q import DuelingQ
from qwr_fast.nn.torsos import obs_tensor
from qwr_fast.objectives.dqn import double_q_loss
from qwr_fast.objectives.target_sync import TargetSync
from qwr_fast.trainers._common import (
    SAMPLED_GREEDY_EVAL_COLUMNS,
    check_per_fields,
    eval_returns,
    optimizer_step,
    plot_sampled_greedy,
    rng_state,
    seed_everything,
)
from qwr_fast.trainers.config import QLearnerConfig, RunConfig
from qwr_fast.trainers.qlearner import QLearner
from qwr_fast.trainers.runlog import Every
from qwr_fast.trainers.step import UpdateStep, step_mode, trainer_generator_as_default

__all__ = ["DQNConfig", "PRESETS", "DQNTrainer"]

EVAL_COLUMNS = SAMPLED_GREEDY_EVAL_COLUMNS
TRAIN_COLUMNS = ["step", "loss", "q_mean", "epsilon", "train_return", "steps_per_s", "wall_s"]


@dataclass
class DQNConfig(QLearnerConfig, RunConfig):
    """Train a double-DQN blueprint with a dueling head on a Discrete-action env."""

    env: str = "MinAtar/Breakout"
    """env id from qwr_fast.envs"""
    preset: Literal["auto", "none", "minatar", "bitflip"] = "auto"
    total_steps: int = 500_000
    """env steps to train for (over all envs)"""
    run_dir: str = "runs/dqn"
    """run directory: checkpoint.pt, config.json, train.csv, eval.csv, curve.png"""
    actors: int = 0
    """under torchrun: the last ACTORS ranks only collect (CPU, one thread each) and ship each
    1000 env steps to the learners, acting with the Q-network the learners broadcast after
    every 1000 env steps (README: Scaling out); 0: every rank learns"""
    num_envs: int = 4
    """parallel training envs"""
    buffer_size: int = 100_000
    """replay capacity in env steps"""
    batch_size: int = 32
    """transitions per gradient step"""
    lr: float = 1e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    learning_starts: int = 5_000
    """env steps before the first update"""
    train_every: int = 4
    """env steps per gradient step"""
    target_every: int = 1_000
    """gradient steps between hard target syncs"""
    eps_fraction: float = 0.2
    """fraction of total_steps over which epsilon decays linearly"""
    hidden: int = 128
    """width of the body and of the dueling streams"""
    eval_every: int = 50_000
    """env steps between evaluations"""
    eval_episodes: int = 8
    """episodes per evaluation (epsilon 0.05 and greedy)"""
    eval_max_steps: int = 10_000
    """cap on the steps of one evaluation"""
    checkpoint_every: int = 50_000
    """env steps between checkpoints (one at the end always)"""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        positive = (
            "total_steps num_envs buffer_size batch_size train_every target_every hidden "
            "eval_every eval_episodes eval_max_steps checkpoint_every threads"
        )
        check_fields(self, positive, ">= 1")
        check_fields(self, "checkpoint_minutes", ">= 0")
        check_fields(self, "lr", "> 0")
        check_fields(self, "gamma", "[0, 1)")
        check_fields(self, "eps_start eps_end eps_fraction", "[0, 1]")
        check_per_fields(self)


PRESETS: dict[str, dict] = {
    "none": {},
    "minatar": dict(num_envs=4, lr=1e-4, hidden=128),
    "bitflip": dict(
        num_envs=4,
        hidden=64,
        lr=1e-3,
        learning_starts=500,
        target_every=200,
        eval_every=5_000,
        checkpoint_every=5_000,
    ),
}


class DQNTrainer(QLearner):
    """Owns the loop of one run; ``train()`` runs it to ``total_steps``.

    It is also the behaviour its collector acts with: epsilon-greedy over the legal actions.
    """

    config_cls = DQNConfig
    SINGLE_LEARNER_FLAGS = ("compile",)
    CHECKPOINT_KIND = "dqn"
    FIXED_CHECKPOINT = True
    SNAPSHOTS = False
    REPLAY_FIELD = "buffer_size"
    ROW_STEPS = 1000
    """env steps between train.csv rows; with --actors, one epoch (a chunk per actor)"""
    COUNTERS = ("global_step", "grad_steps", "num_evals", "last_eval", "wall")
    SAVED = ("q", "target", "opt")

    def __init__(self, cfg: DQNConfig) -> None:
        from qwr_fast.envs import make

        cfg.validate()
        self.cfg = cfg
        self.join_world()  # under torchrun: this rank's place and shares (README: Scaling out)
        self.gen = seed_everything(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        world = self.world
        collecting = self.collecting_envs()
        env = None if collecting is None else make(cfg.env, collecting[0], seed=collecting[1])
        self.eval_env = make(cfg.env, cfg.eval_episodes, seed=cfg.seed + 1)
        space = self.eval_env.single_action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise ValueError(f"--env {cfg.env}: DQN needs a Discrete action space, got {space}")
        observations = self.eval_env.single_observation_space
        self.obs_shape = tuple(observations.shape)
        self.q = DuelingQ(self.obs_shape, int(space.n), hidden=cfg.hidden)
        self.mask_slice: slice | None = getattr(self.eval_env, "action_mask_slice", None)
        self.target = copy.deepcopy(self.q)
        self.sync = TargetSync(self.q, self.target, every=cfg.target_every)
        # fused: one kernel per step, and no host read of the step count (qwr-train's choice)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr, fused=True)
        self.rank_streams()
        self.loss_fn = self.loss
        if world.learners > 1 and not world.is_actor:
            self.loss_fn = data_parallel(self.q, self.loss, self.device)
        self.update_fn = UpdateStep(self.update_step, step_mode(cfg.compile, False))
        obs_dtype = (  # MinAtar grids are bool: store them as such (1 byte per cell)
            torch.bool if observations.dtype == np.bool_ else torch.float32
        )
        if cfg.actors:  # mode 2: chunks from the actors (the learner's own to receive into)
            self.make_chunks(self.obs_shape, 1, (), torch.int64, obs_dtype)
        replay_args = (self.local_replay, self.local_envs, self.obs_shape, 1)
        replay_kw = dict(action_dtype=torch.int64, obs_dtype=obs_dtype)
        self.replay = self.make_replay(*replay_args, **replay_kw)
        self.collector = self.make_collector(env, torch.as_tensor)
        self.global_step = self.grad_steps = self.num_evals = 0
        self.wall = 0.0
        self.last_eval = float("nan")

    def epoch_steps(self, world) -> tuple[int, str]:
        """One step of every env; with actors, ``ROW_STEPS`` env steps (a chunk each)."""
        if world.actors:
            return self.ROW_STEPS, "dqn-train's epoch with --actors (its train.csv rows)"
        return self.cfg.num_envs, "--num-envs"

    def acting_modules(self) -> list:
        return [self.q]

    def legal_mask(self, obs: torch.Tensor) -> torch.Tensor | None:
        """``[B, K]`` bool legal actions of ``obs`` (:func:`qwr_fast.actions.legal_actions`)."""
        return legal_actions(obs, self.mask_slice)

    def _act(self, obs: np.ndarray, eps: float, rng: np.random.Generator, n: int) -> np.ndarray:
        x = obs_tensor(obs)
        mask = self.legal_mask(x)
        with torch.no_grad():
            q = self.q(x)
        if mask is None:
            greedy = q.argmax(-1).numpy()
            explore = rng.random(n) < eps
            return np.where(explore, rng.integers(0, self.q.num_actions, n), greedy)
        greedy = q.masked_fill(~mask, float("-inf")).argmax(-1).numpy()
        explore = rng.random(n) < eps
        # uniform over the legal actions: the argmax of i.i.d. uniforms restricted to them
        legal_random = np.where(mask.numpy(), rng.random((n, self.q.num_actions)), -1.0)
        return np.where(explore, legal_random.argmax(-1), greedy)

    def act(self, obs: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Collector behaviour: epsilon-greedy actions; ``mu`` is unused (zeros)."""
        a = self._act(obs, self.epsilon(self.acting_step()), self.rng, obs.shape[0])
        return a, torch.zeros(obs.shape[0], 1)

    def to_env(self, action: np.ndarray) -> np.ndarray:
        return action

    def next_mu(self, boot_obs: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        return mu

    def step(self) -> dict[str, float]:
        """One env step of every env (each rank steps its own), then the gradient steps now
        due."""
        before = self.global_step
        self.collect(self.cfg.num_envs)
        return self.learn(before)

    def receive_epoch(self) -> dict[str, float]:
        """Mode 2 learner: each actor's chunk of ``ROW_STEPS`` env steps, added step by step
        with the gradient steps due after each, as if collected here. Returns the last
        gradient step's losses."""
        stats: dict[str, float] = {}

        def learn(before: int) -> None:
            stats.update(self.learn(before))

        self.receive(on_step=learn)
        return stats

    def learn(self, before: int) -> dict[str, float]:
        """The gradient steps due after the env steps from ``before`` to the current step (one
        per ``train_every``, from ``learning_starts``); returns the last one's losses."""
        c = self.cfg
        stats: dict[str, float] = {}
        if self.global_step < c.learning_starts:
            return stats
        steps = self.global_step // c.train_every - before // c.train_every
        if steps <= 0:
            return stats
        with trainer_generator_as_default(self.gen):
            for _ in range(steps):
                out = self.update_fn()
                self.grad_steps += 1
        return {k: float(v) for k, v in out.items()}

    def update_step(self) -> dict[str, torch.Tensor]:
        """One whole gradient step, as :attr:`update_fn` runs it (eager or compiled): a replay
        sample, the double-Q loss, the Adam step and the target sync (a copy every
        ``target_every`` steps); random draws from the default generator."""
        out = self.loss_fn(self.sample())
        optimizer_step(self.opt, self.q.parameters(), out["loss"], 10.0)
        self.sync.step()
        return {k: v.detach() for k, v in out.items()}

    def loss(self, sample: tuple) -> dict[str, torch.Tensor]:
        """The double-Q loss on ``sample`` (:meth:`sample`); the priorities of its slots
        updated with the TD errors."""
        b, weight, index = sample
        out = double_q_loss(
            self.q,
            self.target,
            b.obs.float(),
            b.action,
            b.reward[:, 0],
            self.cfg.gamma * (~b.terminal[:, 0]).float(),
            b.next_obs[:, 0].float(),
            weight=weight,
            next_mask=self.legal_mask(b.next_obs[:, 0]),
        )
        return self.update_priorities(out, index)

    @torch.no_grad()
    def evaluate(self, eps: float) -> np.ndarray:
        """Return of the first episode of each eval env (epsilon-greedy), seeded per eval."""
        rng = np.random.default_rng(self.cfg.seed * 1000 + self.num_evals)
        E = self.cfg.eval_episodes

        def act(obs):
            return self._act(obs, eps, rng, E)

        seed = self.cfg.seed + 10_000 + self.num_evals
        return eval_returns(self.eval_env, act, seed=seed, max_steps=self.cfg.eval_max_steps)

    def state_dict(self) -> dict:
        return self.learner_state(
            net={
                "obs_shape": list(self.obs_shape),
                "num_actions": self.q.num_actions,
                "hidden": self.q.hidden,
            },
            rng=rng_state(self.gen, self.rng),
            # the returns of the episodes ended since the last train.csv row (a checkpoint
            # between rows, by wall time or at a stop signal, must not lose them)
            train_returns=[] if self.collector is None else list(self.collector.finished_returns),
        )

    def load_state_dict(self, s: dict) -> None:
        self.check_kind(s, "DQN checkpoint")
        if self.world.is_actor:
            return self.load_actor_state(s)
        self.load_run_state(s, self.rng)
        self.sync.count = self.grad_steps
        if self.collector is not None:
            self.collector.finished_returns = list(s.get("train_returns", []))

    def summary(self, last: dict) -> str:
        """The one line ``dqn-train`` prints after the final evaluation ``last``."""
        return (
            f"DQN on {self.cfg.env}: step {last['step']}, greedy eval return "
            f"{last['return_mean_greedy']:.3f}; checkpoint: {self.cfg.run_dir}/checkpoint.pt"
        )

    def train(self) -> dict:
        """Run to ``total_steps``; returns the last evaluation. The run directory's lock, the
        checkpoint schedule and the stop at SIGINT / SIGTERM are those of
        :meth:`Trainer.train`, with one env step of every env as the boundary."""
        cfg, world = self.cfg, self.world
        log = self.run_log(TRAIN_COLUMNS, EVAL_COLUMNS)
        if world.is_actor:
            with log:
                return self.serve(log)
        rows = Every(self.ROW_STEPS, self.global_step)  # a train.csv row at each 1000 env steps
        last: dict = {}
        t_log, s_log = time.perf_counter(), self.global_step
        with log:
            while self.global_step < cfg.total_steps:
                t0 = time.perf_counter()
                before = self.global_step
                stats = self.receive_epoch() if world.actors else self.step()
                self.wall += time.perf_counter() - t0
                final = self.global_step >= cfg.total_steps
                if rows.due(self.global_step, final):
                    now = time.perf_counter()
                    stats = all_mean(world, stats)
                    sps = (self.global_step - s_log) / (now - t_log)
                    log.train_row(
                        {
                            "step": self.global_step,
                            "loss": stats.get("loss", float("nan")),
                            "q_mean": stats.get("q_mean", float("nan")),
                            "epsilon": self.epsilon(),
                            "train_return": self.train_return(),
                            "steps_per_s": sps,
                            "wall_s": self.wall,
                        }
                    )
                    t_log, s_log = now, self.global_step
                    log.progress(0, sps, self.last_eval)
                log.progress(self.global_step - before)
                if world.is_main and log.evals.due(self.global_step, final):
                    re = self.evaluate(0.05)
                    with self.recording():
                        rg = self.evaluate(0.0)
                    self.num_evals += 1
                    self.last_eval = float(rg.mean())
                    last = {
                        "step": self.global_step,
                        "return_mean": float(re.mean()),
                        "return_std": float(re.std()),
                        "return_mean_greedy": float(rg.mean()),
                        "return_std_greedy": float(rg.std()),
                    }
                    log.eval_row(last, {})
                due = log.checkpoint_due(self.global_step, final)
                if world.distributed:
                    due = self._agree_checkpoint(log, due)
                path = None if due is None else self.save(scheduled=due == "scheduled")
                if world.actors:  # the Q-network the actors act with next, and what to do
                    flags = [due is not None, log.stop_signal or 0, final, self.global_step]
                    broadcast_weights(self.acting_tensors(), [float(f) for f in flags])
                if path is not None:
                    log.stop_if_signalled(self.global_step, path, final)
        if world.is_main:
            plot_sampled_greedy(cfg.run_dir, title=f"DQN on {cfg.env} (seed {cfg.seed})")
        return last
