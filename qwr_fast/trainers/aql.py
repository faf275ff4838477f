"""Amortized Q-learning trainer (``aql-train``): collect, update critic and proposal, evaluate,
log, checkpoint.

Van de Wiele et al., "Q-Learning in enormous action spaces via amortized approximate
maximization" (arXiv 2001.08116); the losses live in :mod:`qwr_fast.objectives.aql`, the
network in :mod:`qwr_fast.nn.aql_net`. The same trainer runs the baselines by flag:
``uniform-ql`` (max over N + M uniform samples, no proposal) and ``exhaustive-dqn`` (max over
every action, where the space is small enough to enumerate). Usage: ``aql-train --help``
(:mod:`qwr_fast.cli.train`). The run directory holds ``config.json``, ``eval.csv``,
``train.csv``, ``ckpt_<step>.pt``, ``curve.png`` and ``tb/``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from qwr_fast.actions import ActionAdapter
from qwr_fast.checks import check_fields
from qwr_fast.data.collect import autoreset_mode, make_env
from qwr_fast.distributed import data_parallel
from qwr_fast.estimators import bootstrap_index, discounts
from qwr_fast.kernels import skip_value_checks
from qwr_fast.nn.aql_net import AQLNet
from qwr_fast.nn.torsos import RunningNorm, make_body
from qwr_fast.objectives.aql import (
    aql_losses,
    argmax_candidates,
    candidate_actions,
    enumerate_actions,
    uniform_actions,
)
from qwr_fast.objectives.target_sync import TargetSync
from qwr_fast.trainers._common import (
    check_per_fields,
    eval_returns,
    optimizer_step,
    seed_everything,
)
from qwr_fast.trainers.config import EpochConfig, QLearnerConfig
from qwr_fast.trainers.qlearner import QLearner
from qwr_fast.trainers.runlog import plot_eval_curve
from qwr_fast.trainers.step import UpdateStep, step_mode, trainer_generator_as_default

__all__ = ["AQLConfig", "PRESETS", "AQLTrainer"]

MAX_ENUMERATE = 1 << 16
EVAL_COLUMNS = ["step", "return_mean", "return_std", "proposal_return_mean", "proposal_return_std"]
TRAIN_COLUMNS = [
    "step",
    "epoch",
    "epsilon",
    "critic_loss",
    "proposal_loss",
    "proposal_entropy",
    "q_mean",
    "target_mean",
    "train_return",
    "steps_per_s",
    "wall_s",
]


@dataclass
class AQLConfig(QLearnerConfig, EpochConfig):
    """Train Amortized Q-learning (or the UniformQL / exhaustive-DQN baselines)."""

    env: str = "BitFlipSubset-16"
    """env id: qwr_fast.envs ids (BitFlipSubset-32, Hopper-v5, ...) or a gymnasium id"""
    algo: Literal["aql", "uniform-ql", "exhaustive-dqn"] = "aql"
    """aql: proposal + uniform candidates; uniform-ql: N + M uniform; exhaustive-dqn: all actions"""
    preset: Literal["auto", "none", "bitflip", "mujoco"] = "auto"
    total_steps: int = 100_000
    """env steps to train for (over all envs)"""
    run_dir: str = "runs/aql"
    """run directory: config.json, eval.csv, train.csv, checkpoints, curve.png, tb/"""
    bins: int = 0
    """discretise a Box action space into this many bins per dimension (0: no wrapper)"""
    num_proposal: int = 100
    """N: proposal samples per candidate set (uniform-ql draws them uniformly instead)"""
    num_uniform: int = 400
    """M: uniform samples per candidate set"""
    action_code: Literal["auto", "onehot", "ordinal"] = "auto"
    """Q's action input: one-hot per sub-action, or the bin position per dimension (ordinal);
    auto: ordinal with --bins (ordered bins of a Box), one-hot otherwise"""
    factorised: bool = False
    """ablation: the proposal's sub-actions ignore the previous ones (state-only softmaxes)"""
    num_envs: int = 4
    """parallel training envs"""
    steps_per_epoch: int = 500
    """env steps collected per epoch (over all envs)"""
    updates_per_epoch: int = 125
    """gradient steps (critic and proposal on one batch) per epoch"""
    learning_starts: int = 1000
    """env steps of uniform random actions before the first update"""
    batch_size: int = 128
    """replay slices per gradient step"""
    replay_size: int = 100_000
    """replay capacity in env steps"""
    n_step: int = 3
    """n of the n-step target"""
    gamma: float = 0.99
    """discount"""
    bootstrap_truncation: bool = True
    """bootstrap through time-limit truncation (off: treat it as termination)"""
    double_q: bool = True
    """choose the bootstrap argmax with the online Q, value it with the target Q"""
    stored_argmax: bool = False
    """bootstrap with the argmax stored at acting time instead of a fresh candidate set"""
    target_every: int = 250
    """gradient steps between hard target-network syncs"""
    q_lr: float = 1e-3
    """Adam learning rate of the encoder and Q head"""
    proposal_lr: float = 1e-3
    """Adam learning rate of the proposal"""
    entropy_coef: float = 0.01
    """c: weight of the proposal's entropy bonus"""
    entropy_samples: int = 8
    """proposal samples (taken from the candidate set) of the entropy estimate"""
    grad_clip: float = 10.0
    """global grad-norm clip (0: off)"""
    eps_fraction: float = 0.3
    """fraction of total_steps over which epsilon decays linearly"""
    hidden: int = 256
    """width of the encoder and the Q head"""
    proposal_width: int = 256
    """E: width of the proposal"""
    normalize_obs: bool = True
    """running observation normaliser (vector observations; updated while collecting)"""
    eval_every: int = 5000
    """env steps between evaluations (rounded up to whole epochs)"""
    eval_episodes: int = 10
    """episodes per evaluation (one per eval env), greedy over a candidate set"""
    eval_max_steps: int = 1000
    """cap on the steps of one evaluation (an unfinished episode counts its partial return)"""
    checkpoint_every: int = 10_000
    """env steps between checkpoints (rounded up to whole epochs; one at the end always)"""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        positive = (
            "total_steps num_envs steps_per_epoch batch_size replay_size n_step target_every "
            "eval_every eval_episodes eval_max_steps checkpoint_every keep_checkpoints threads "
            "hidden proposal_width entropy_samples"
        )
        check_fields(self, positive, ">= 1")
        check_fields(self, "checkpoint_minutes", ">= 0")
        check_fields(self, "num_proposal num_uniform updates_per_epoch learning_starts", ">= 0")
        if self.algo != "exhaustive-dqn" and self.num_proposal + self.num_uniform < 1:
            raise ValueError("--num-proposal + --num-uniform must be >= 1")
        if self.algo == "aql" and self.num_proposal < 1:
            raise ValueError("--algo aql needs --num-proposal >= 1 (use uniform-ql for N=0)")
        if self.bins == 1 or self.bins < 0:
            raise ValueError(f"--bins must be 0 (off) or >= 2, got {self.bins}")
        check_fields(self, "q_lr proposal_lr", "> 0")
        check_fields(self, "eps_start eps_end eps_fraction", "[0, 1]")
        check_fields(self, "gamma", "[0, 1)")
        check_fields(self, "entropy_coef grad_clip", ">= 0")
        check_per_fields(self)


PRESETS: dict[str, dict] = {
    "none": {},
    "bitflip": dict(
        hidden=64,
        proposal_width=64,
        num_envs=4,
        steps_per_epoch=200,
        updates_per_epoch=100,
        learning_starts=400,
        batch_size=32,
        n_step=1,
        # One step reaches the optimum, so Q*(s, a) = (1 - gamma) r(s, a) + gamma * zeros(s)
        # (docs/results.md): each bit moves Q by 1 - gamma, 0.1 at gamma 0.9, under the
        # bootstrap noise; every gamma < 1 has the same optimal policy.
        gamma=0.5,
        # The 5-step limit is not in the observation: bootstrap through it (Markov targets).
        bootstrap_truncation=True,
        target_every=100,
        eps_fraction=0.25,
        eval_every=1000,
        eval_episodes=32,
        eval_max_steps=100,
        normalize_obs=False,
        q_lr=1e-3,
        proposal_lr=3e-3,
    ),
    "mujoco": dict(
        bins=11,
        hidden=256,
        proposal_width=256,
        num_envs=1,
        steps_per_epoch=1000,
        updates_per_epoch=250,
        learning_starts=5000,
        batch_size=128,
        n_step=3,
        gamma=0.99,
        eps_fraction=0.1,
        eval_every=10_000,
        eval_episodes=5,
        eval_max_steps=1000,
    ),
}


class AQLTrainer(QLearner):
    """Owns the loop of one run (see the module docstring); ``train()`` runs it to the end.

    It is also the behaviour its collector acts with: epsilon-greedy over a candidate set
    (uniform actions before ``learning_starts``), storing the greedy action at the bootstrap
    observation as ``next_mu`` when ``stored_argmax``.
    """

    config_cls = AQLConfig
    SLICE_FIELD = "n_step"
    LABEL = "AQL"
    SINGLE_LEARNER_FLAGS = ("compile",)
    TRAIN_COLUMNS, EVAL_COLUMNS = TRAIN_COLUMNS, EVAL_COLUMNS
    COUNTERS = ("global_step", "epoch", "num_updates", "num_evals", "last_eval", "wall")
    SAVED = ("net", "target", "norm", "opt_q", "opt_p")

    def __init__(self, cfg: AQLConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.join_world()  # under torchrun: this rank's place and shares (README: Scaling out)
        self.gen = seed_everything(cfg.seed, self.device)

        world = self.world
        collecting = self.collecting_envs()
        env = None if collecting is None else self._make_env(*collecting)
        self.eval_env = self._make_env(cfg.eval_episodes, cfg.seed + 1)
        code = cfg.action_code
        if code == "auto":
            code = "ordinal" if cfg.bins else "onehot"
        space = self.eval_env.single_action_space
        self.spec = ActionAdapter.from_space(space, code=code, continuous=False)
        self.obs_shape = tuple(self.eval_env.single_observation_space.shape)
        if cfg.algo == "exhaustive-dqn" and self.spec.num_actions > MAX_ENUMERATE:
            raise ValueError(
                f"--algo exhaustive-dqn enumerates every action: {cfg.env} has "
                f"{self.spec.num_actions} > {MAX_ENUMERATE}; use aql or uniform-ql"
            )
        dev = self.device
        self.norm = (
            RunningNorm(self.obs_shape).to(dev)
            if cfg.normalize_obs and len(self.obs_shape) == 1
            else None
        )
        self.net = AQLNet(
            make_body(self.obs_shape, cfg.hidden),
            int(np.prod(self.obs_shape)),
            self.spec,
            hidden=cfg.hidden,
            proposal_width=cfg.proposal_width,
            factorised=cfg.factorised,
            with_proposal=cfg.algo == "aql",
        ).to(dev)
        self.target = copy.deepcopy(self.net)
        self.sync = TargetSync(self.net, self.target, every=cfg.target_every)
        # fused, as qwr-train's: one kernel per step, and the step count stays with the
        # parameters (the default Adam reads it on the host every step)
        self.opt_q = torch.optim.Adam(self.net.q.parameters(), lr=cfg.q_lr, fused=True)
        self.opt_p = (
            torch.optim.Adam(self.net.proposal.parameters(), lr=cfg.proposal_lr, fused=True)
            if self.net.proposal is not None
            else None
        )
        if cfg.algo == "uniform-ql":
            self.num_p, self.num_u = 0, cfg.num_proposal + cfg.num_uniform
        else:
            self.num_p, self.num_u = cfg.num_proposal, cfg.num_uniform
        self.rank_streams()
        self.loss_fn = self.losses
        if world.learners > 1 and not world.is_actor:
            self.loss_fn = data_parallel(self.net, self.losses, dev)
        self.update_fn = UpdateStep(self.update_step, step_mode(cfg.compile, False))
        # an actor acts with the normaliser the learners broadcast (frozen in a chunk)
        self.collector_norm = None if world.is_actor else self.norm_synced(self.norm)
        D = self.spec.num_sub
        if cfg.actors:  # mode 2: chunks from the actors (the learner's own to receive into)
            self.make_chunks(self.obs_shape, D, (D,), torch.int64, torch.float32)
        replay_args = (self.local_replay, self.local_envs, self.obs_shape, D, (D,))
        replay_kw = dict(action_dtype=torch.int64, device=dev)
        self.replay = self.make_replay(*replay_args, **replay_kw)
        self.collector = self.make_collector(
            env,
            lambda obs: torch.as_tensor(np.asarray(obs), device=dev),
            bootstrap_truncation=cfg.bootstrap_truncation,
        )
        self.global_step = 0
        self.epoch = 0
        self.num_updates = 0
        self.num_evals = 0
        self.last_eval = float("nan")
        self.wall = 0.0

    def _make_env(self, num_envs: int, seed: int):
        cfg = self.cfg
        env = make_env(cfg.env, num_envs, seed)
        if autoreset_mode(env) != AutoresetMode.SAME_STEP:
            raise ValueError(f"--env {cfg.env}: aql-train needs a same-step autoreset vector env")
        if cfg.bins:
            from qwr_fast.envs import discretize

            env = discretize(env, cfg.bins)
        return env

    # ------------------------------------------------------------------ acting
    def _net_obs(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.to(torch.float32)
        return self.norm(obs) if self.norm is not None else obs

    @torch.no_grad()
    def greedy(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``[B, D]``: the argmax of Q over a fresh candidate set (every action for
        exhaustive-dqn)."""
        feat = self.net.features(self._net_obs(obs))
        if self.cfg.algo == "exhaustive-dqn":
            cand = enumerate_actions(self.spec.sizes, self.device)[None].expand(len(feat), -1, -1)
        else:
            cand = candidate_actions(self.net, feat, self.num_p, self.num_u, generator=generator)
        best, _ = argmax_candidates(self.net.q_candidates(feat, cand), cand)
        return best

    def act(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Collector behaviour: epsilon-greedy actions ``[E, D]``; ``mu`` is unused (zeros)."""
        E = obs.shape[0]
        step = self.acting_step()
        explore = uniform_actions(self.spec.sizes_tensor(self.device), E, 1, generator=self.gen)
        explore = explore[:, 0]
        if step < self.cfg.learning_starts:
            a = explore
        else:
            greedy = self.greedy(obs, self.gen)
            u = torch.rand(E, generator=self.gen, device=self.device)
            a = torch.where((u < self.epsilon(step))[:, None], explore, greedy)
        return a, torch.zeros(E, self.spec.num_sub)

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        return self.spec.to_env(action)

    def next_mu(self, boot_obs: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """The replay's ``next_mu`` slot holds the greedy action at the bootstrap observation
        (``stored_argmax``), else zeros."""
        if self.cfg.stored_argmax:
            return self.greedy(boot_obs, self.gen).float()
        return torch.zeros(boot_obs.shape[0], self.spec.num_sub, device=self.device)

    def acting_modules(self) -> list:
        return [self.net, self.norm]

    # ---------------------------------------------------------------- learning
    def losses(self, sample: tuple) -> dict[str, torch.Tensor]:
        """The critic and proposal losses on ``sample`` (:meth:`sample`); the priorities of
        its slots updated with the TD errors."""
        c = self.cfg
        b, weight, index = sample
        stop = b.stop
        k = bootstrap_index(stop)
        rows = torch.arange(len(k), device=self.device)
        boot_obs = self._net_obs(b.next_obs[rows, k])
        boot_action = b.next_mu[rows, k].long() if c.stored_argmax else None
        out = aql_losses(
            self.net,
            self.target,
            self._net_obs(b.obs),
            b.action,
            b.reward,
            discounts(b.terminal, c.gamma),
            stop,
            boot_obs,
            num_proposal=self.num_p,
            num_uniform=self.num_u,
            enumerate_all=c.algo == "exhaustive-dqn",
            double_q=c.double_q,
            entropy_coef=c.entropy_coef,
            entropy_samples=c.entropy_samples,
            boot_action=boot_action,
            weight=weight,
        )
        return self.update_priorities(out, index)

    def update(self) -> dict[str, float]:
        """``updates_per_epoch`` gradient steps on the critic and the proposal."""
        c = self.cfg
        stats: dict[str, torch.Tensor] = {}
        if self.global_step < c.learning_starts:
            return {}
        # (the fused ops' value-range checks read values on the host: skipped, the trainer
        # builds their inputs itself; as qwr-train's update)
        with skip_value_checks(), trainer_generator_as_default(self.gen):
            for _ in range(c.updates_per_epoch):
                stats.update(self.update_fn())
                self.num_updates += 1
        return {k: float(v) for k, v in stats.items()}

    def update_step(self) -> dict[str, torch.Tensor]:
        """One whole gradient step, as :attr:`update_fn` runs it (eager or compiled): a replay
        sample, the critic and proposal losses, their optimiser steps and the target sync;
        random draws from the default generator. Returns the losses, detached."""
        c = self.cfg
        out = self.loss_fn(self.sample())
        if self.loss_fn is self.losses:
            q_params = self.net.q.parameters()
            optimizer_step(self.opt_q, q_params, out["critic_loss"], c.grad_clip)
            if self.opt_p is not None:
                params = self.net.proposal.parameters()
                optimizer_step(self.opt_p, params, out["proposal_loss"], c.grad_clip)
        else:  # DDP: one backward of both losses (their parameters are disjoint)
            self.joint_step(out)
        self.sync.step()
        return {k: v.detach() for k, v in out.items()}

    def joint_step(self, out: dict[str, torch.Tensor]) -> None:
        """Both optimiser steps after one backward pass of ``critic_loss + proposal_loss``:
        the critic loss reaches only the Q parameters and the proposal loss only the
        proposal's (it reads detached features), so the gradients are those of two separate
        backward passes; each group is clipped on its own."""
        c = self.cfg
        opts = [self.opt_q] + ([] if self.opt_p is None else [self.opt_p])
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        (out["critic_loss"] + out["proposal_loss"]).backward()
        for opt in opts:
            params = [p for g in opt.param_groups for p in g["params"]]
            if c.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
            opt.step()

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, *, proposal_only: bool = False) -> np.ndarray:
        """Return of the first episode of each eval env, greedy (epsilon 0), seeded per
        evaluation; ``proposal_only`` acts with the proposal's greedy mode instead."""
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 1000 + self.num_evals)

        def act(obs):
            obs_t = torch.as_tensor(np.asarray(obs), device=self.device)
            if proposal_only:
                a = self.net.proposal.mode(self.net.features(self._net_obs(obs_t)))
            else:
                a = self.greedy(obs_t, gen)
            return self.spec.to_env(a)

        seed = self.cfg.seed + 10_000 + self.num_evals
        return eval_returns(self.eval_env, act, seed=seed, max_steps=self.cfg.eval_max_steps)

    # -------------------------------------------------------------------- loop
    def train_extras(self) -> dict:
        return {"epsilon": self.epsilon()}

    def eval_row(self) -> tuple[dict, dict]:
        nan = float("nan")
        with self.recording():
            r = self.evaluate()
        rp = self.evaluate(proposal_only=True) if self.net.proposal is not None else None
        row = {
            "step": self.global_step,
            "return_mean": float(r.mean()),
            "return_std": float(r.std()),
            "proposal_return_mean": nan if rp is None else float(rp.mean()),
            "proposal_return_std": nan if rp is None else float(rp.std()),
        }
        scalars = {"return": row["return_mean"]}
        if rp is not None:
            scalars["proposal_return"] = row["proposal_return_mean"]
        return row, scalars

    def plot(self) -> None:
        cfg = self.cfg
        plot_eval_curve(
            cfg.run_dir,
            [("return_mean", "argmax over candidates"), ("proposal_return_mean", "proposal mode")],
            title=f"{cfg.algo} on {cfg.env} (seed {cfg.seed})",
        )
