"""Small DQN blueprint trainer for Q-value fine-tuning: double Q-learning, dueling head, hard
target sync, epsilon-greedy collection, uniform replay (``qwr_fast.replay.Replay`` with margin
1) or, with ``--prioritized``, proportional prioritised replay
(:class:`qwr_fast.prioritized_replay.PrioritizedReplay`). Envs that carry a legal-action mask in
their observation (``env.action_mask_slice``, e.g. Hanabi) act, explore and bootstrap over legal
actions only. Loop (CleanRL ``dqn.py`` shape):
collect, update, sync target, evaluate, log, checkpoint.

``checkpoint.pt`` holds the network, the optimiser and the replay (the "global buffer" that
Q-value fine-tuning draws from, :func:`load_q_blueprint`). Usage: ``python -m
qwr_fast.trainers.dqn --help``.
"""

from __future__ import annotations

import copy
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

from qwr_fast.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from qwr_fast.nn.policy import make_body
from qwr_fast.prioritized_replay import PrioritizedReplay, annealed_beta
from qwr_fast.replay import Replay
from qwr_fast.trainers._cli import trainer_from_argv
from qwr_fast.trainers._loop import RunLog, check_run_dir
from qwr_fast.trainers.ppo import EVAL_COLUMNS, obs_tensor, plot_curve

__all__ = ["DQNConfig", "PRESETS", "DuelingQ", "DQNTrainer", "double_q_loss", "load_q_blueprint"]

CHECKPOINT_FORMAT = 1
TRAIN_COLUMNS = ["step", "loss", "q_mean", "epsilon", "train_return", "steps_per_s", "wall_s"]


@dataclass
class DQNConfig:
    """Train a double-DQN blueprint with a dueling head on a Discrete-action env."""

    env: str = "MinAtar/Breakout"
    """env id from qwr_fast.envs"""
    preset: Literal["none", "minatar", "bitflip"] = "none"
    """family preset applied before the explicit flags (flags given on the command line win)"""
    total_steps: int = 500_000
    """env steps to train for (over all envs)"""
    seed: int = 0
    """seed of every RNG"""
    run_dir: str = "runs/dqn"
    """run directory: checkpoint.pt, config.json, train.csv, eval.csv, curve.png"""
    resume: str | None = None
    """continue the run in this directory from its checkpoint.pt"""
    overwrite: bool = False
    """start afresh in a run directory that holds another run's checkpoints, deleting them
    (without it, such a directory is an error, never silently clobbered)"""
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
    eps_start: float = 1.0
    """initial exploration epsilon"""
    eps_end: float = 0.05
    """final exploration epsilon"""
    eps_fraction: float = 0.2
    """fraction of total_steps over which epsilon decays linearly"""
    hidden: int = 128
    """width of the body and of the dueling streams"""
    prioritized: bool = False
    """proportional prioritised replay (Schaul et al. 2016) instead of uniform replay"""
    per_alpha: float = 0.6
    """prioritised replay: priority exponent alpha (0: uniform)"""
    per_beta0: float = 0.4
    """prioritised replay: initial importance-weight exponent beta, annealed linearly to 1"""
    per_beta_steps: int = 0
    """prioritised replay: env steps over which beta reaches 1 (0: total_steps)"""
    per_eps: float = 1e-6
    """prioritised replay: priority = |TD| + per_eps"""
    eval_every: int = 50_000
    """env steps between evaluations"""
    eval_episodes: int = 8
    """episodes per evaluation (epsilon 0.05 and greedy)"""
    eval_max_steps: int = 10_000
    """cap on the steps of one evaluation"""
    checkpoint_every: int = 50_000
    """env steps between checkpoints (one at the end always)"""
    threads: int = 1
    """torch CPU threads"""
    progress: bool = True
    """tqdm progress bar"""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        positive = (
            "total_steps num_envs buffer_size batch_size train_every target_every hidden "
            "eval_every eval_episodes eval_max_steps checkpoint_every threads"
        )
        for name in positive.split():
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"--gamma must be in [0, 1), got {self.gamma}")
        for name in ("eps_start", "eps_end", "eps_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1]")
        if not self.per_alpha >= 0:
            raise ValueError(f"--per-alpha must be >= 0, got {self.per_alpha}")
        if not 0 <= self.per_beta0 <= 1:
            raise ValueError(f"--per-beta0 must be in [0, 1], got {self.per_beta0}")
        if self.per_beta_steps < 0 or not self.per_eps > 0:
            raise ValueError("--per-beta-steps must be >= 0 and --per-eps > 0")


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


class DuelingQ(nn.Module):
    """``Q(s, .) = V(s) + A(s, .) - mean_a A(s, a)`` over a shared body; ``[B, *O] -> [B, K]``.

    As a planner blueprint (``(logits, value)`` interface) use :meth:`as_blueprint`.
    """

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, *, hidden: int = 128):
        super().__init__()
        self.obs_shape, self.num_actions, self.hidden = tuple(obs_shape), num_actions, hidden
        self.body = make_body(self.obs_shape, hidden)
        self.value = nn.Linear(hidden, 1)
        self.adv = nn.Linear(hidden, num_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.body(obs)
        a = self.adv(h)
        return self.value(h) + a - a.mean(-1, keepdim=True)

    def as_blueprint(self) -> QBlueprint:
        return QBlueprint(self)


class QBlueprint(nn.Module):
    """A Q-network seen as a planner blueprint: ``(logits = Q, value = max_a Q)`` (greedy
    play by argmax of the logits)."""

    def __init__(self, q: nn.Module) -> None:
        super().__init__()
        self.q = q

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q(obs)
        return q, q.max(-1).values


def double_q_loss(
    q: nn.Module,
    target: nn.Module,
    obs: torch.Tensor,
    action: torch.Tensor,
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    next_obs: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    next_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Huber loss of ``Q(s, a)`` against ``r + discount * Q_target(s', argmax_a Q(s', a))``.

    ``discount_t[B]`` is 0 where the transition terminated; no gradient reaches ``target``.
    ``weight[B]`` (importance weights of prioritised replay) makes the loss
    ``mean(weight * huber_i)``. ``next_mask[B, K]`` (bool, True = legal) restricts the argmax
    at ``s'`` to legal actions. Returns ``loss``, ``q_mean`` and ``td_abs[B]`` (detached).
    """
    q_sa = q(obs).gather(-1, action[:, None]).squeeze(-1)
    with torch.no_grad():
        q_next = q(next_obs)
        if next_mask is not None:
            q_next = q_next.masked_fill(~next_mask, float("-inf"))
        a_next = q_next.argmax(-1, keepdim=True)
        y = r_t + discount_t * target(next_obs).gather(-1, a_next).squeeze(-1)
    if weight is None:
        loss = nn.functional.smooth_l1_loss(q_sa, y)
    else:
        if weight.shape != q_sa.shape:
            raise ValueError(f"weight must be [B={q_sa.shape[0]}], got {tuple(weight.shape)}")
        loss = (weight * nn.functional.smooth_l1_loss(q_sa, y, reduction="none")).mean()
    return {"loss": loss, "q_mean": q_sa.detach().mean(), "td_abs": (y - q_sa.detach()).abs()}


def load_q_blueprint(path: str | os.PathLike) -> tuple[DuelingQ, dict, Replay]:
    """The :class:`DuelingQ` of a DQN checkpoint (eval mode), its config dict and its replay."""
    state = load_checkpoint(path)
    if state.get("kind") != "dqn" or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a DQN checkpoint (kind {state.get('kind')!r})")
    net = state["net"]
    q = DuelingQ(tuple(net["obs_shape"]), net["num_actions"], hidden=net["hidden"])
    q.load_state_dict(state["q"])
    q.eval()
    rs = state["replay"]
    replay = Replay(
        rs["length"] * rs["num_envs"],
        rs["num_envs"],
        tuple(net["obs_shape"]),
        1,
        action_dtype=torch.int64,
        obs_dtype=rs["obs"].dtype,
    )
    replay.load_state_dict(rs)
    return q, state["config"], replay


class DQNTrainer:
    """Owns the loop of one run; ``train()`` runs it to ``total_steps``."""

    def __init__(self, cfg: DQNConfig) -> None:
        from qwr_fast.envs import make

        cfg.validate()
        check_run_dir(cfg)
        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)  # noqa: NPY002 (global stream used by third-party envs)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.env = make(cfg.env, cfg.num_envs, seed=cfg.seed)
        self.eval_env = make(cfg.env, cfg.eval_episodes, seed=cfg.seed + 1)
        space = self.env.single_action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise ValueError(f"--env {cfg.env}: DQN needs a Discrete action space, got {space}")
        self.obs_shape = tuple(self.env.single_observation_space.shape)
        self.q = DuelingQ(self.obs_shape, int(space.n), hidden=cfg.hidden)
        self.mask_slice: slice | None = getattr(self.env, "action_mask_slice", None)
        self.target = copy.deepcopy(self.q)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr)
        obs_dtype = (  # MinAtar grids are bool: store them as such (1 byte per cell)
            torch.bool if self.env.single_observation_space.dtype == np.bool_ else torch.float32
        )
        replay_args = (cfg.buffer_size, cfg.num_envs, self.obs_shape, 1)
        replay_kw = dict(action_dtype=torch.int64, obs_dtype=obs_dtype)
        self.replay = (
            PrioritizedReplay(*replay_args, alpha=cfg.per_alpha, eps=cfg.per_eps, **replay_kw)
            if cfg.prioritized
            else Replay(*replay_args, **replay_kw)
        )
        self.obs, _ = self.env.reset(seed=cfg.seed)
        self.global_step = self.grad_steps = self.num_evals = 0
        self.wall = 0.0
        self.last_eval = float("nan")
        self.train_returns: list[float] = []

    def epsilon(self) -> float:
        c = self.cfg
        frac = min(1.0, self.global_step / max(1.0, c.eps_fraction * c.total_steps))
        return c.eps_start + frac * (c.eps_end - c.eps_start)

    def beta(self) -> float:
        """Importance-weight exponent of prioritised replay at the current step."""
        c = self.cfg
        return annealed_beta(c.per_beta0, self.global_step, c.per_beta_steps or c.total_steps)

    def legal_mask(self, obs: torch.Tensor) -> torch.Tensor | None:
        """``[B, K]`` bool legal actions read from the observations (``env.action_mask_slice``),
        None for envs without one. A row with no legal action (a terminal observation) counts
        every action as legal, so that maxima stay finite."""
        if self.mask_slice is None:
            return None
        mask = obs[..., self.mask_slice].float() > 0.5
        return mask | ~mask.any(-1, keepdim=True)

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

    def step(self) -> dict[str, float]:
        """One env step of every env, then the gradient steps now due."""
        c, E = self.cfg, self.cfg.num_envs
        a = self._act(self.obs, self.epsilon(), self.rng, E)
        nxt, r, term, trunc, info = self.env.step(a)
        boot = info.get("final_obs", nxt)
        zeros = torch.zeros(E, 1)
        self.replay.add(
            torch.as_tensor(self.obs),
            zeros,
            torch.as_tensor(a),
            torch.as_tensor(r),
            torch.as_tensor(term),
            torch.as_tensor(trunc),
            torch.as_tensor(boot),
            zeros,
        )
        if "_episode" in info:
            self.train_returns += info["episode"]["r"][info["_episode"]].tolist()
        self.obs = nxt
        before = self.global_step
        self.global_step += E
        stats: dict[str, float] = {}
        if self.global_step < c.learning_starts:
            return stats
        for _ in range(self.global_step // c.train_every - before // c.train_every):
            weight = index = None
            if c.prioritized:
                pb = self.replay.sample_prioritized(
                    c.batch_size, beta=self.beta(), generator=self.gen
                )
                b, weight, index = pb.batch, pb.weight, pb.index
            else:
                b = self.replay.sample(c.batch_size, generator=self.gen)
            disc = c.gamma * (~b.terminal[:, 0]).float()
            out = double_q_loss(
                self.q,
                self.target,
                b.obs.float(),
                b.action,
                b.reward[:, 0],
                disc,
                b.next_obs[:, 0].float(),
                weight=weight,
                next_mask=self.legal_mask(b.next_obs[:, 0]),
            )
            td_abs = out.pop("td_abs")
            if index is not None:
                self.replay.update_priorities(index, td_abs)
            self.opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            nn.utils.clip_grad_norm_(self.q.parameters(), 10.0)
            self.opt.step()
            self.grad_steps += 1
            if self.grad_steps % c.target_every == 0:
                self.target.load_state_dict(self.q.state_dict())
            stats = {k: float(v.detach()) for k, v in out.items()}
        return stats

    @torch.no_grad()
    def evaluate(self, eps: float) -> np.ndarray:
        """Return of the first episode of each eval env (epsilon-greedy), seeded per eval."""
        env, E = self.eval_env, self.cfg.eval_episodes
        rng = np.random.default_rng(self.cfg.seed * 1000 + self.num_evals)
        obs, _ = env.reset(seed=self.cfg.seed + 10_000 + self.num_evals)
        ret, finished = np.zeros(E), np.zeros(E, dtype=bool)
        for _ in range(self.cfg.eval_max_steps):
            if finished.all():
                break
            obs, r, term, trunc, _ = env.step(self._act(obs, eps, rng, E))
            ret += np.where(finished, 0.0, r)
            finished |= term | trunc
        return ret

    def state_dict(self) -> dict:
        return {
            "kind": "dqn",
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.cfg),
            "net": {
                "obs_shape": list(self.obs_shape),
                "num_actions": self.q.num_actions,
                "hidden": self.q.hidden,
            },
            "q": self.q.state_dict(),
            "target": self.target.state_dict(),
            "opt": self.opt.state_dict(),
            "replay": self.replay.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),  # noqa: NPY002
                "torch": torch.get_rng_state(),
                "gen": self.gen.get_state(),
                "np_gen": self.rng.bit_generator.state,
            },
            "env": self.env.get_state(),
            "env_obs": np.array(self.obs, copy=True),
            "counters": {
                "global_step": self.global_step,
                "grad_steps": self.grad_steps,
                "num_evals": self.num_evals,
                "last_eval": self.last_eval,
                "wall": self.wall,
            },
        }

    def load_state_dict(self, s: dict) -> None:
        if s.get("kind") != "dqn" or s.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a DQN checkpoint (kind {s.get('kind')!r})")
        self.q.load_state_dict(s["q"])
        self.target.load_state_dict(s["target"])
        self.opt.load_state_dict(s["opt"])
        self.replay.load_state_dict(s["replay"])
        random.setstate(s["rng"]["python"])
        np.random.set_state(s["rng"]["numpy"])  # noqa: NPY002
        torch.set_rng_state(s["rng"]["torch"])
        self.gen.set_state(s["rng"]["gen"])
        self.rng.bit_generator.state = s["rng"]["np_gen"]
        self.env.set_state(s["env"])
        self.obs = s["env_obs"]
        c = s["counters"]
        self.global_step, self.grad_steps = c["global_step"], c["grad_steps"]
        self.num_evals, self.last_eval, self.wall = c["num_evals"], c["last_eval"], c["wall"]

    def train(self) -> dict:
        """Run to ``total_steps``; returns the last evaluation."""
        cfg = self.cfg
        log = RunLog(cfg, self.global_step, TRAIN_COLUMNS, EVAL_COLUMNS)
        next_log = self.global_step + 1000
        last: dict = {}
        t_log, s_log = time.perf_counter(), self.global_step
        with log:
            while self.global_step < cfg.total_steps:
                t0 = time.perf_counter()
                stats = self.step()
                self.wall += time.perf_counter() - t0
                final = self.global_step >= cfg.total_steps
                if self.global_step >= next_log or final:
                    now = time.perf_counter()
                    sps = (self.global_step - s_log) / (now - t_log)
                    log.train_row(
                        {
                            "step": self.global_step,
                            "loss": stats.get("loss", float("nan")),
                            "q_mean": stats.get("q_mean", float("nan")),
                            "epsilon": self.epsilon(),
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
                    t_log, s_log, next_log = now, self.global_step, self.global_step + 1000
                    log.progress(0, sps, self.last_eval)
                log.progress(cfg.num_envs)
                if log.evals.due(self.global_step, final):
                    re, rg = self.evaluate(0.05), self.evaluate(0.0)
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
                if log.checkpoints.due(self.global_step, final):
                    save_checkpoint(os.path.join(cfg.run_dir, "checkpoint.pt"), self.state_dict())
        plot_curve(cfg.run_dir, title=f"DQN on {cfg.env} (seed {cfg.seed})")
        return last

    @classmethod
    def resumed(cls, run_dir: str, **overrides) -> DQNTrainer:
        """A trainer restored from ``run_dir/checkpoint.pt``."""
        state = load_checkpoint(os.path.join(run_dir, "checkpoint.pt"))
        cfg = DQNConfig(**{**state["config"], **overrides, "resume": run_dir, "run_dir": run_dir})
        trainer = cls(cfg)
        trainer.load_state_dict(state)
        return trainer


def main(argv: list[str] | None = None) -> int:
    """Train a DQN blueprint (flags: every field of :class:`DQNConfig`); exit 2 on bad input."""

    argv = list(sys.argv[1:] if argv is None else argv)
    trainer = trainer_from_argv("dqn-train", DQNConfig, DQNTrainer, PRESETS, argv)
    if isinstance(trainer, int):
        return trainer
    last = trainer.train()
    if last:
        print(
            f"DQN on {trainer.cfg.env}: step {last['step']}, greedy eval return "
            f"{last['return_mean_greedy']:.3f}; checkpoint: {trainer.cfg.run_dir}/checkpoint.pt"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
