"""PPO blueprint trainer (CleanRL ``ppo.py`` shape): collect, GAE, clipped-surrogate epochs,
evaluate, log, checkpoint.

Schulman et al., "Proximal Policy Optimization Algorithms" (arXiv 1707.06347), with CleanRL's
defaults (advantage normalisation per minibatch, clipped value loss, global grad-norm clip,
linear learning-rate annealing). It trains the blueprints of the decision-time planners
(Fickinger et al., "Scalable Online Planning via RL Fine-Tuning", NeurIPS 2021; ``REFERENCE.md``
section 3), and :func:`ppo_update` is the update that policy fine-tuning reuses.

The run directory holds ``checkpoint.pt`` (the latest state: the blueprint the planners load,
and the resume point), ``ckpt_<step>.pt`` snapshots (early ones are the paper's weak
blueprints; ``keep_checkpoints=0`` keeps them all), ``config.json``, ``train.csv``,
``eval.csv``, ``curve.png`` and ``tb/``. Usage: ``ppo-train --help``.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from qwr_fast.checkpoint import CheckpointError, load_checkpoint, prune_checkpoints, save_checkpoint
from qwr_fast.nn.policy import CategoricalPolicy, StateValue
from qwr_fast.runlog import plot_eval_curve
from qwr_fast.trainers._cli import trainer_from_argv
from qwr_fast.trainers._loop import RunLog, check_run_dir

__all__ = [
    "PPOConfig",
    "PRESETS",
    "ActorCritic",
    "PPOTrainer",
    "gae",
    "ppo_loss",
    "ppo_update",
    "load_blueprint",
    "main",
]

CHECKPOINT_FORMAT = 1
EVAL_COLUMNS = ["step", "return_mean", "return_std", "return_mean_greedy", "return_std_greedy"]
TRAIN_COLUMNS = [
    "step",
    "update",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "train_return",
    "steps_per_s",
    "wall_s",
]


@dataclass
class PPOConfig:
    """Train a PPO blueprint (categorical policy + state value) on a Discrete-action env."""

    env: str = "MinAtar/Breakout"
    """env id from qwr_fast.envs (MinAtar/Breakout, BitFlip-8, ALE/MsPacman-v5, ...)"""
    preset: Literal["none", "minatar", "bitflip", "atari", "hanabi"] = "none"
    """family preset applied before the explicit flags (flags given on the command line win)"""
    total_steps: int = 1_000_000
    """env steps to train for (over all envs)"""
    seed: int = 0
    """seed of every RNG (python, numpy, torch, envs)"""
    run_dir: str = "runs/ppo"
    """run directory: checkpoint.pt, ckpt_<step>.pt, config.json, train.csv, eval.csv, curve.png"""
    resume: str | None = None
    """continue the run in this directory from its checkpoint.pt"""
    overwrite: bool = False
    """start afresh in a run directory that holds another run's checkpoints, deleting them
    (without it, such a directory is an error, never silently clobbered)"""
    num_envs: int = 8
    """parallel training envs"""
    num_steps: int = 128
    """rollout length per env per update"""
    lr: float = 2.5e-4
    """Adam learning rate (annealed linearly to 0 when anneal_lr)"""
    anneal_lr: bool = True
    """linear learning-rate annealing over total_steps"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """lambda of GAE"""
    update_epochs: int = 4
    """epochs over each rollout batch"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    clip_coef: float = 0.1
    """surrogate clip (also clips the value loss)"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value-loss coefficient"""
    max_grad_norm: float = 0.5
    """global grad-norm clip"""
    hidden: int = 128
    """width of the bodies (MLP / MinAtar torso FC / Nature torso FC)"""
    eval_every: int = 50_000
    """env steps between evaluations (rounded up to whole updates)"""
    eval_episodes: int = 8
    """episodes per evaluation (one per eval env), sampled and greedy"""
    eval_max_steps: int = 10_000
    """cap on the steps of one evaluation (an unfinished episode counts its partial return)"""
    checkpoint_every: int = 50_000
    """env steps between checkpoints (rounded up to whole updates; one at the end always)"""
    keep_checkpoints: int = 0
    """ckpt_<step>.pt snapshots kept (0: all, e.g. for weak blueprints)"""
    threads: int = 1
    """torch CPU threads"""
    progress: bool = True
    """tqdm progress bar"""
    tensorboard: bool = True
    """TensorBoard logs in RUN_DIR/tb"""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        positive = (
            "total_steps num_envs num_steps update_epochs num_minibatches hidden eval_every "
            "eval_episodes eval_max_steps checkpoint_every threads"
        )
        for name in positive.split():
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.keep_checkpoints < 0:
            raise ValueError(f"--keep-checkpoints must be >= 0, got {self.keep_checkpoints}")
        for name in ("lr", "clip_coef"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}"
                )
        if not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"--gae-lambda must be in [0, 1], got {self.gae_lambda}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"--gamma must be in [0, 1), got {self.gamma}")
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(
                f"--num-minibatches ({self.num_minibatches}) must divide num_envs * num_steps "
                f"({self.num_envs * self.num_steps})"
            )


PRESETS: dict[str, dict] = {
    "none": {},
    "minatar": dict(num_envs=8, num_steps=128, lr=2.5e-4, hidden=128, ent_coef=0.01),
    "bitflip": dict(
        num_envs=8, num_steps=32, lr=1e-3, hidden=64, eval_every=5_000, checkpoint_every=5_000
    ),
    "atari": dict(num_envs=8, num_steps=128, lr=2.5e-4, hidden=512, clip_coef=0.1),
    # Self-play of one shared policy on both seats; the legal-action mask travels in the obs.
    "hanabi": dict(
        num_envs=16,
        num_steps=64,
        lr=5e-4,
        hidden=256,
        gamma=0.999,
        ent_coef=0.01,
        anneal_lr=False,
        eval_every=50_000,
        eval_episodes=32,
    ),
}


ILLEGAL_LOGIT = -1e9
"""The logit :class:`ActorCritic` gives an illegal action (probability exactly 0 in float32)."""


class ActorCritic(nn.Module):
    """Blueprint network: a categorical policy and a state value with separate bodies.

    ``forward(obs[B, *O]) -> (logits[B, K], value[B])``; this is the interface every planner
    in :mod:`qwr_fast.planners` takes.

    ``action_mask = (start, stop)``: for envs that carry a legal-action mask in their flat
    observation (``env.action_mask_slice``, e.g. Hanabi), the logits of the actions whose
    ``obs[..., start:stop]`` entry is 0 are set to ``ILLEGAL_LOGIT`` (a finite value, so that
    entropies and log-ratios stay finite), so every sampler and argmax keeps to legal actions.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden: int = 128,
        action_mask: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.num_actions = int(num_actions)
        self.hidden = int(hidden)
        if action_mask is not None:
            start, stop = (int(v) for v in action_mask)
            if len(self.obs_shape) != 1 or stop - start != self.num_actions or start < 0:
                raise ValueError(
                    f"action_mask must be (start, stop) with stop - start = num_actions "
                    f"({self.num_actions}) inside a flat observation {self.obs_shape}, "
                    f"got {action_mask}"
                )
            action_mask = (start, stop)
        self.action_mask = action_mask
        self.policy = CategoricalPolicy(self.obs_shape, self.num_actions, hidden=hidden)
        self.critic = StateValue(self.obs_shape, hidden=hidden)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy.mu(obs)
        if self.action_mask is not None:
            start, stop = self.action_mask
            logits = logits.masked_fill(obs[..., start:stop] < 0.5, ILLEGAL_LOGIT)
        return logits, self.critic(obs)


def gae(
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    v_tm1: torch.Tensor,
    v_t: torch.Tensor,
    *,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates ``[T, B]`` (time-major).

    ``r_t[T, B]`` rewards, ``discount_t[T, B]`` = gamma * (1 - terminal), ``v_tm1[T, B]`` the
    value of the state each step started from, ``v_t[T, B]`` the value of the state it led to
    (the bootstrap; 0 or anything where ``discount_t`` is 0). ``delta_t = r_t + discount_t v_t
    - v_tm1`` and ``A_t = delta_t + discount_t * lam * A_{t+1}``; a step whose ``discount_t``
    is 0 cuts the recursion. Pass ``discount_t = 0`` at steps where an episode was truncated
    and bootstrap it through ``r_t`` if needed.
    """
    if not (r_t.shape == discount_t.shape == v_tm1.shape == v_t.shape) or r_t.dim() != 2:
        raise ValueError(
            "r_t, discount_t, v_tm1 and v_t must all be [T, B], got "
            f"{tuple(r_t.shape)}, {tuple(discount_t.shape)}, {tuple(v_tm1.shape)}, "
            f"{tuple(v_t.shape)}"
        )
    delta = r_t + discount_t * v_t - v_tm1
    adv = torch.zeros_like(delta)
    last = torch.zeros_like(delta[0])
    for t in range(r_t.shape[0] - 1, -1, -1):
        last = delta[t] + discount_t[t] * lam * last
        adv[t] = last
    return adv


def ppo_loss(
    agent: nn.Module,
    obs: torch.Tensor,
    actions: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    returns: torch.Tensor,
    v_old: torch.Tensor,
    *,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    weight: torch.Tensor | None = None,
    policy_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Clipped-surrogate PPO loss on one minibatch (CleanRL ``ppo.py``), named scalars.

    ``adv`` is normalised over the minibatch (over the rows with ``weight`` > 0 when given).
    ``weight[B]`` (0/1) drops rows from every mean (policy fine-tuning masks the steps after an
    episode ended inside a rollout). ``policy_weight[B]`` (0/1) further drops rows from the
    policy and entropy terms only (single-agent search: the partner's moves, played by the
    frozen blueprint, train the value but not the policy).
    """
    logits, value = agent(obs)
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, actions[:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    w = torch.ones_like(adv) if weight is None else weight
    n = w.sum().clamp(min=1.0)
    pw = w if policy_weight is None else w * policy_weight
    pn = pw.sum().clamp(min=1.0)
    mean = (adv * pw).sum() / pn
    std = (((adv - mean) ** 2 * pw).sum() / pn).sqrt()
    adv = (adv - mean) / (std + 1e-8)
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - clip_coef, 1 + clip_coef))
    v_clipped = v_old + (value - v_old).clamp(-clip_coef, clip_coef)
    v_loss = 0.5 * torch.maximum((value - returns) ** 2, (v_clipped - returns) ** 2)
    policy_loss = (pg * pw).sum() / pn
    value_loss = (v_loss * w).sum() / n
    ent = (entropy * pw).sum() / pn
    with torch.no_grad():
        approx_kl = (((ratio - 1) - log_ratio) * pw).sum() / pn
        clip_frac = (((ratio - 1).abs() > clip_coef).float() * pw).sum() / pn
    return {
        "loss": policy_loss - ent_coef * ent + vf_coef * value_loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": ent,
        "approx_kl": approx_kl,
        "clip_frac": clip_frac,
    }


def ppo_update(
    agent: nn.Module,
    opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    *,
    epochs: int,
    num_minibatches: int,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    max_grad_norm: float,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, float], int]:
    """``epochs`` passes of shuffled minibatches over a flat batch; returns the last minibatch's
    losses and the number of gradient steps taken.

    ``batch`` holds flat ``[N, ...]`` tensors ``obs, actions, logp, adv, returns, values`` and
    optionally ``weight`` (0/1 row mask) and ``policy_weight`` (0/1 mask of the policy terms).
    """
    N = batch["actions"].shape[0]
    if N % num_minibatches:
        raise ValueError(f"num_minibatches ({num_minibatches}) must divide the batch size {N}")
    mb = N // num_minibatches
    stats: dict[str, torch.Tensor] = {}
    steps = 0
    for _ in range(epochs):
        perm = torch.randperm(N, generator=generator)
        for k in range(num_minibatches):
            idx = perm[k * mb : (k + 1) * mb]
            out = ppo_loss(
                agent,
                batch["obs"][idx],
                batch["actions"][idx],
                batch["logp"][idx],
                batch["adv"][idx],
                batch["returns"][idx],
                batch["values"][idx],
                clip_coef=clip_coef,
                ent_coef=ent_coef,
                vf_coef=vf_coef,
                weight=batch["weight"][idx] if "weight" in batch else None,
                policy_weight=batch["policy_weight"][idx] if "policy_weight" in batch else None,
            )
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            if max_grad_norm > 0:
                nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
            opt.step()
            steps += 1
            stats = out
    return {k: float(v.detach()) for k, v in stats.items()}, steps


def obs_tensor(obs: np.ndarray) -> torch.Tensor:
    """Env observations as the float32 tensor the networks take (bool/uint8 grids included)."""
    return torch.as_tensor(np.asarray(obs)).to(torch.float32)


def load_blueprint(path: str | os.PathLike) -> tuple[ActorCritic, dict]:
    """The :class:`ActorCritic` saved in a ``ppo-train`` checkpoint, in eval mode, and the
    run's config dict. :class:`CheckpointError` if the file is not a PPO checkpoint."""
    state = load_checkpoint(path)
    if state.get("kind") != "ppo" or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a ppo-train checkpoint (kind {state.get('kind')!r}, "
            f"format {state.get('format')!r}, expected 'ppo', {CHECKPOINT_FORMAT})"
        )
    net = state["net"]
    agent = ActorCritic(
        tuple(net["obs_shape"]),
        net["num_actions"],
        hidden=net["hidden"],
        action_mask=net.get("action_mask"),
    )
    agent.load_state_dict(state["agent"])
    agent.eval()
    return agent, state["config"]


class PPOTrainer:
    """Owns the loop of one run; ``train()`` runs it to ``total_steps``."""

    def __init__(self, cfg: PPOConfig) -> None:
        from qwr_fast.envs import make

        cfg.validate()
        check_run_dir(cfg)
        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)  # noqa: NPY002 (global stream used by third-party envs)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.env = make(cfg.env, cfg.num_envs, seed=cfg.seed)
        self.eval_env = make(cfg.env, cfg.eval_episodes, seed=cfg.seed + 1)
        space = self.env.single_action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise ValueError(f"--env {cfg.env}: PPO needs a Discrete action space, got {space}")
        self.obs_shape = tuple(self.env.single_observation_space.shape)
        mask = getattr(self.env, "action_mask_slice", None)
        self.agent = ActorCritic(
            self.obs_shape,
            int(space.n),
            hidden=cfg.hidden,
            action_mask=None if mask is None else (mask.start, mask.stop),
        )
        self.opt = torch.optim.Adam(self.agent.parameters(), lr=cfg.lr, eps=1e-5)
        self.obs, _ = self.env.reset(seed=cfg.seed)
        self.global_step = 0
        self.updates = 0
        self.num_evals = 0
        self.wall = 0.0
        self.last_eval = float("nan")
        self.train_returns: list[float] = []

    @property
    def batch_size(self) -> int:
        return self.cfg.num_envs * self.cfg.num_steps

    @torch.no_grad()
    def collect(self) -> dict[str, torch.Tensor]:
        """One rollout of ``num_steps`` x ``num_envs``; returns the flat PPO batch."""
        c = self.cfg
        T, B = c.num_steps, c.num_envs
        obs_buf = torch.zeros((T, B, *self.obs_shape))
        act = torch.zeros((T, B), dtype=torch.int64)
        logp = torch.zeros((T, B))
        v_tm1 = torch.zeros((T, B))
        v_t = torch.zeros((T, B))
        r_t = torch.zeros((T, B))
        disc = torch.zeros((T, B))
        for t in range(T):
            o = obs_tensor(self.obs)
            logits, value = self.agent(o)
            a = torch.distributions.Categorical(logits=logits).sample()
            obs_buf[t], act[t], v_tm1[t] = o, a, value
            logp[t] = torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1)
            self.obs, r, term, trunc, info = self.env.step(a.numpy())
            r_t[t] = torch.as_tensor(r, dtype=torch.float32)
            cut = trunc & ~term
            if cut.any():  # truncation bootstraps through the reward from the final obs
                v_final = self.agent(obs_tensor(info["final_obs"]))[1]
                r_t[t] += c.gamma * v_final * torch.as_tensor(cut, dtype=torch.float32)
            disc[t] = c.gamma * torch.as_tensor(~(term | trunc), dtype=torch.float32)
            if "_episode" in info:
                self.train_returns += info["episode"]["r"][info["_episode"]].tolist()
        v_t[:-1] = v_tm1[1:]  # where an episode ended, discount_t is 0 and v_t is unused
        v_t[-1] = self.agent(obs_tensor(self.obs))[1]
        adv = gae(r_t, disc, v_tm1, v_t, lam=c.gae_lambda)
        self.global_step += T * B
        return {
            "obs": obs_buf.reshape(T * B, *self.obs_shape),
            "actions": act.reshape(-1),
            "logp": logp.reshape(-1),
            "adv": adv.reshape(-1),
            "returns": (adv + v_tm1).reshape(-1),
            "values": v_tm1.reshape(-1),
        }

    @torch.no_grad()
    def evaluate(self, greedy: bool) -> np.ndarray:
        """Return of the first episode of each eval env, seeded per evaluation."""
        env, E = self.eval_env, self.cfg.eval_episodes
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + self.num_evals)
        obs, _ = env.reset(seed=self.cfg.seed + 10_000 + self.num_evals)
        ret = np.zeros(E)
        finished = np.zeros(E, dtype=bool)
        for _ in range(self.cfg.eval_max_steps):
            if finished.all():
                break
            logits, _ = self.agent(obs_tensor(obs))
            if greedy:
                a = logits.argmax(-1)
            else:
                a = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)
            obs, r, term, trunc, _ = env.step(a.numpy())
            ret += np.where(finished, 0.0, r)
            finished |= term | trunc
        return ret

    def state_dict(self) -> dict:
        return {
            "kind": "ppo",
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.cfg),
            "net": {
                "obs_shape": list(self.obs_shape),
                "num_actions": self.agent.num_actions,
                "hidden": self.agent.hidden,
                "action_mask": None
                if self.agent.action_mask is None
                else list(self.agent.action_mask),
            },
            "agent": self.agent.state_dict(),
            "opt": self.opt.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),  # noqa: NPY002
                "torch": torch.get_rng_state(),
                "gen": self.gen.get_state(),
            },
            "env": self.env.get_state(),
            "env_obs": np.array(self.obs, copy=True),
            "counters": {
                "global_step": self.global_step,
                "updates": self.updates,
                "num_evals": self.num_evals,
                "last_eval": self.last_eval,
                "wall": self.wall,
            },
        }

    def load_state_dict(self, s: dict) -> None:
        if s.get("kind") != "ppo" or s.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint kind/format {s.get('kind')!r}/{s.get('format')}, expected "
                f"'ppo'/{CHECKPOINT_FORMAT}"
            )
        self.agent.load_state_dict(s["agent"])
        self.opt.load_state_dict(s["opt"])
        random.setstate(s["rng"]["python"])
        np.random.set_state(s["rng"]["numpy"])  # noqa: NPY002
        torch.set_rng_state(s["rng"]["torch"])
        self.gen.set_state(s["rng"]["gen"])
        self.env.set_state(s["env"])
        self.obs = s["env_obs"]
        c = s["counters"]
        self.global_step, self.updates = c["global_step"], c["updates"]
        self.num_evals, self.last_eval, self.wall = c["num_evals"], c["last_eval"], c["wall"]

    def save(self) -> str:
        """Write ``ckpt_<step>.pt`` and ``checkpoint.pt`` (atomically); prune old snapshots."""
        state = self.state_dict()
        save_checkpoint(os.path.join(self.cfg.run_dir, f"ckpt_{self.global_step}.pt"), state)
        path = os.path.join(self.cfg.run_dir, "checkpoint.pt")
        save_checkpoint(path, state)
        prune_checkpoints(self.cfg.run_dir, self.cfg.keep_checkpoints)
        return path

    def train(self) -> dict:
        """Run to ``total_steps``; returns the last evaluation."""
        cfg = self.cfg
        log = RunLog(cfg, self.global_step, TRAIN_COLUMNS, EVAL_COLUMNS, skip=("step", "update"))
        last: dict = {}
        with log:
            while self.global_step < cfg.total_steps:
                t0 = time.perf_counter()
                before = self.global_step
                if cfg.anneal_lr:
                    frac = 1.0 - self.global_step / cfg.total_steps
                    for g in self.opt.param_groups:
                        g["lr"] = frac * cfg.lr
                batch = self.collect()
                stats, _ = ppo_update(
                    self.agent,
                    self.opt,
                    batch,
                    epochs=cfg.update_epochs,
                    num_minibatches=cfg.num_minibatches,
                    clip_coef=cfg.clip_coef,
                    ent_coef=cfg.ent_coef,
                    vf_coef=cfg.vf_coef,
                    max_grad_norm=cfg.max_grad_norm,
                    generator=self.gen,
                )
                self.updates += 1
                dt = time.perf_counter() - t0
                self.wall += dt
                sps = (self.global_step - before) / dt
                log.train_row(
                    {
                        "step": self.global_step,
                        "update": self.updates,
                        **{k: stats[k] for k in TRAIN_COLUMNS[2:7]},
                        "train_return": (
                            float(np.mean(self.train_returns))
                            if self.train_returns
                            else float("nan")
                        ),
                        "steps_per_s": sps,
                        "wall_s": self.wall,
                    }
                )
                self.train_returns = []
                final = self.global_step >= cfg.total_steps
                if log.evals.due(self.global_step, final):
                    rs, rg = self.evaluate(greedy=False), self.evaluate(greedy=True)
                    self.num_evals += 1
                    self.last_eval = float(rs.mean())
                    last = {
                        "step": self.global_step,
                        "return_mean": float(rs.mean()),
                        "return_std": float(rs.std()),
                        "return_mean_greedy": float(rg.mean()),
                        "return_std_greedy": float(rg.std()),
                    }
                    log.eval_row(
                        last,
                        {
                            "return": last["return_mean"],
                            "return_greedy": last["return_mean_greedy"],
                        },
                    )
                log.progress(self.global_step - before, sps, self.last_eval)
                if log.checkpoints.due(self.global_step, final):
                    self.save()
        plot_curve(cfg.run_dir, title=f"PPO on {cfg.env} (seed {cfg.seed})")
        return last

    @classmethod
    def resumed(cls, run_dir: str, **overrides) -> PPOTrainer:
        """A trainer restored from ``run_dir/checkpoint.pt`` (its saved config, with
        ``overrides`` such as a larger ``total_steps``)."""
        state = load_checkpoint(os.path.join(run_dir, "checkpoint.pt"))
        if state.get("kind") != "ppo":
            raise CheckpointError(f"{run_dir}/checkpoint.pt is not a ppo-train checkpoint")
        cfg = PPOConfig(**{**state["config"], **overrides, "resume": run_dir, "run_dir": run_dir})
        trainer = cls(cfg)
        trainer.load_state_dict(state)
        return trainer


def plot_curve(run_dir: str, *, title: str = "") -> str | None:
    """Write ``curve.png`` (eval return vs env steps, sampled and greedy) from ``eval.csv``."""
    return plot_eval_curve(
        run_dir, [("return_mean", "sampled"), ("return_mean_greedy", "greedy")], title=title
    )


def main(argv: list[str] | None = None) -> int:
    """``ppo-train``: parse flags (preset first), train, print the final evaluation.

    Exit code 0 on success, 2 on bad arguments with a one-line message.
    """

    argv = list(sys.argv[1:] if argv is None else argv)
    trainer = trainer_from_argv("ppo-train", PPOConfig, PPOTrainer, PRESETS, argv)
    if isinstance(trainer, int):
        return trainer
    last = trainer.train()
    if last:
        print(
            f"PPO on {trainer.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f} (sampled), "
            f"{last['return_mean_greedy']:.3f} (greedy); checkpoint: "
            f"{trainer.cfg.run_dir}/checkpoint.pt"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
