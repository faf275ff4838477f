"""PPO blueprint trainer (CleanRL ``ppo.py`` shape): collect, GAE, clipped-surrogate epochs,
evaluate, log, checkpoint.

Schulman et al., "Proximal Policy Optimization Algorithms" (arXiv 1707.06347), with CleanRL's
defaults (advantage normalisation per minibatch, clipped value loss, global grad-norm clip,
linear learning-rate annealing). It trains the blueprints of the decision-time planners
(Fickinger et al., "Scalable Online Planning via RL Fine-Tuning", NeurIPS 2021, arXiv
2109.15316); the update (:func:`qwr_fast.objectives.ppo.ppo_update`) is the one policy
fine-tuning reuses.

The run directory holds ``checkpoint.pt`` (the latest state: the blueprint the planners load,
:func:`qwr_fast.blueprints.load_blueprint`, and the resume point), ``ckpt_<step>.pt`` snapshots
(early ones are the paper's weak blueprints; ``keep_checkpoints=0`` keeps them all),
``config.json``, ``train.csv``, ``eval.csv``, ``curve.png`` and ``tb/``. Usage:
``ppo-train --help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from qwr_fast.checks import check_fields
from qwr_fast.distributed import all_sum, data_parallel, env_world, join
from qwr_fast.estimators import gae
from qwr_fast.nn.actor_critic import ActorCritic
from qwr_fast.nn.torsos import obs_tensor
from qwr_fast.objectives.ppo import ppo_update
from qwr_fast.trainers._common import (
    SAMPLED_GREEDY_EVAL_COLUMNS,
    Trainer,
    eval_returns,
    load_rng_state,
    plot_sampled_greedy,
    rng_state,
    seed_everything,
)
from qwr_fast.trainers.config import RunConfig
from qwr_fast.trainers.runlog import check_run_dir

__all__ = ["PPOConfig", "PRESETS", "PPOTrainer"]

EVAL_COLUMNS = SAMPLED_GREEDY_EVAL_COLUMNS
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
class PPOConfig(RunConfig):
    """Train a PPO blueprint (categorical policy + value) on a Discrete-action env."""

    env: str = "MinAtar/Breakout"
    """env id from qwr_fast.envs (MinAtar/Breakout, BitFlip-8, ALE/MsPacman-v5, ...)"""
    preset: Literal["auto", "none", "minatar", "bitflip", "atari", "hanabi"] = "auto"
    total_steps: int = 1_000_000
    """env steps to train for (over all envs)"""
    run_dir: str = "runs/ppo"
    """run directory: checkpoint.pt, ckpt_<step>.pt, config.json, train.csv, eval.csv, curve.png"""
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
    tensorboard: bool = True
    """TensorBoard logs in RUN_DIR/tb"""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        positive = (
            "total_steps num_envs num_steps update_epochs num_minibatches hidden eval_every "
            "eval_episodes eval_max_steps checkpoint_every threads"
        )
        check_fields(self, positive, ">= 1")
        check_fields(self, "checkpoint_minutes", ">= 0")
        check_fields(self, "keep_checkpoints", ">= 0")
        check_fields(self, "lr clip_coef", "> 0")
        check_fields(self, "gae_lambda", "[0, 1]")
        check_fields(self, "gamma", "[0, 1)")
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


class PPOTrainer(Trainer):
    """Owns the loop of one run; ``train()`` runs it to ``total_steps``."""

    config_cls = PPOConfig
    TRAIN_COLUMNS, EVAL_COLUMNS = TRAIN_COLUMNS, EVAL_COLUMNS
    TB_SKIP = ("step", "update")
    COUNTERS = ("global_step", "updates", "num_evals", "last_eval", "wall")
    CHECKPOINT_KIND = "ppo"
    FIXED_CHECKPOINT = True

    def __init__(self, cfg: PPOConfig) -> None:
        from qwr_fast.envs import make

        cfg.validate()
        world = env_world()  # under torchrun: rollouts per rank, DDP over the minibatches
        if world.is_main:
            check_run_dir(cfg)
        self.cfg = cfg
        self.local_envs = world.split(cfg.num_envs, "--num-envs")
        if (self.local_envs * cfg.num_steps) % cfg.num_minibatches:
            raise ValueError(
                f"--num-minibatches {cfg.num_minibatches} must divide each rank's rollout of "
                f"num_envs / {world.size} * num_steps = {self.local_envs * cfg.num_steps}"
            )
        self.world, _ = join(torch.device("cpu"))
        torch.set_num_threads(cfg.threads)
        self.gen = seed_everything(cfg.seed)
        env_seed = cfg.seed + world.rank * self.local_envs  # a single process's envs, in turn
        self.env = make(cfg.env, self.local_envs, seed=env_seed)
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
        # identical networks by construction (same seed); then each rank's own streams
        if not world.is_main:
            self.gen = seed_everything(world.seed(cfg.seed))
        self.learner = (
            data_parallel(self.agent, None, torch.device("cpu"))
            if world.distributed
            else self.agent
        )
        self.obs, _ = self.env.reset(seed=env_seed)
        self.global_step = 0
        self.updates = 0
        self.num_evals = 0
        self.wall = 0.0
        self.last_eval = float("nan")
        self.train_returns: list[float] = []

    @property
    def batch_size(self) -> int:
        """Env steps per rollout (over all ranks)."""
        return self.cfg.num_envs * self.cfg.num_steps

    @torch.no_grad()
    def collect(self) -> dict[str, torch.Tensor]:
        """One rollout of ``num_steps`` x ``num_envs``; returns the flat PPO batch."""
        c = self.cfg
        T, B = c.num_steps, self.local_envs
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
            if "_episode_stats" in info:
                self.train_returns += info["episode_stats"]["r"][info["_episode_stats"]].tolist()
        v_t[:-1] = v_tm1[1:]  # where an episode ended, discount_t is 0 and v_t is unused
        v_t[-1] = self.agent(obs_tensor(self.obs))[1]
        adv = gae(r_t, disc, v_tm1, v_t, lam=c.gae_lambda)
        self.global_step += T * B * self.world.size
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
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + self.num_evals)

        def act(obs):
            logits, _ = self.agent(obs_tensor(obs))
            if greedy:
                return logits.argmax(-1).numpy()
            return (
                torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1).numpy()
            )

        seed = self.cfg.seed + 10_000 + self.num_evals
        return eval_returns(self.eval_env, act, seed=seed, max_steps=self.cfg.eval_max_steps)

    def state_dict(self) -> dict:
        mask = self.agent.action_mask
        return self.checkpoint_state(
            net={
                "obs_shape": list(self.obs_shape),
                "num_actions": self.agent.num_actions,
                "hidden": self.agent.hidden,
                "action_mask": None if mask is None else list(mask),
            },
            agent=self.agent.state_dict(),
            opt=self.opt.state_dict(),
            rng=rng_state(self.gen),
            env=self.env.get_state(),
            env_obs=np.array(self.obs, copy=True),
        )

    def load_state_dict(self, s: dict) -> None:
        self.check_kind(s, "PPO checkpoint")
        self.agent.load_state_dict(s["agent"])
        self.opt.load_state_dict(s["opt"])
        load_rng_state(s["rng"], self.gen)
        self.env.set_state(s["env"])
        self.obs = s["env_obs"]
        self.load_counters(s)

    def summary(self, last: dict) -> str:
        """The one line ``ppo-train`` prints after the final evaluation ``last``."""
        return (
            f"PPO on {self.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f} (sampled), "
            f"{last['return_mean_greedy']:.3f} (greedy); checkpoint: "
            f"{self.cfg.run_dir}/checkpoint.pt"
        )

    def run_epoch(self) -> dict[str, float]:
        """One rollout, then ``update_epochs`` epochs of minibatch updates on it."""
        cfg = self.cfg
        if cfg.anneal_lr:
            frac = 1.0 - self.global_step / cfg.total_steps
            for g in self.opt.param_groups:
                g["lr"] = frac * cfg.lr
        batch = self.collect()
        stats, _ = ppo_update(
            self.learner,
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
        return stats

    def train_row(self, stats: dict, steps_per_s: float) -> dict:
        returns, self.train_returns = self.train_returns, []
        total, count = all_sum(self.world, [float(np.sum(returns)), float(len(returns))])
        return {
            "step": self.global_step,
            "update": self.updates,
            **{k: stats[k] for k in TRAIN_COLUMNS[2:7]},
            "train_return": total / count if count else float("nan"),
            "steps_per_s": steps_per_s,
            "wall_s": self.wall,
        }

    def eval_row(self) -> tuple[dict, dict]:
        rs = self.evaluate(greedy=False)
        with self.recording():
            rg = self.evaluate(greedy=True)
        row = {
            "step": self.global_step,
            "return_mean": float(rs.mean()),
            "return_std": float(rs.std()),
            "return_mean_greedy": float(rg.mean()),
            "return_std_greedy": float(rg.std()),
        }
        return row, {"return": row["return_mean"], "return_greedy": row["return_mean_greedy"]}

    def plot(self) -> None:
        plot_sampled_greedy(self.cfg.run_dir, title=f"PPO on {self.cfg.env} (seed {self.cfg.seed})")
