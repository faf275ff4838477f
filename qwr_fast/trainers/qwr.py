"""QWR (and its AWR baseline) trainer: collect, update critic, update actor, evaluate, log,
checkpoint.

Kozakowski et al., "Q-Value Weighted Regression: Reinforcement Learning with Limited Data"
(arXiv 2102.06782), Algorithm 2, with the final-config choices of the reference implementation
(google/trax ``rl/actor_critic.py``, ``SamplingAWR``). Truncation bootstraps (the reference
treated it as termination). Usage: ``qwr-train --help`` (:mod:`qwr_fast.cli.train`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from qwr_fast.actions import ActionAdapter
from qwr_fast.checks import check_fields
from qwr_fast.data.collect import make_env
from qwr_fast.data.datasets import dataset_replay, load_dataset
from qwr_fast.data.replay import Replay
from qwr_fast.distributed import data_parallel
from qwr_fast.kernels import skip_value_checks, warn_if_bf16_emulated
from qwr_fast.nn.policy import CategoricalPolicy, GaussianPolicy, init_uniform, sample_from_mu
from qwr_fast.nn.sampled_q import SampledQ
from qwr_fast.nn.torsos import RunningNorm, make_body, share_first_layer
from qwr_fast.nn.value import StateValue
from qwr_fast.objectives.qwr import (
    awr_actor_loss,
    awr_critic_loss,
    bc_actor_loss,
    qwr_actor_loss,
    qwr_critic_loss,
)
from qwr_fast.objectives.target_sync import TargetSync
from qwr_fast.trainers._common import (
    Trainer,
    eval_returns,
    optimizer_step,
    retain_freed_memory,
    seed_everything,
)
from qwr_fast.trainers.config import EpochConfig
from qwr_fast.trainers.runlog import plot_eval_curve
from qwr_fast.trainers.step import (
    UpdateStep,
    check_step_mode,
    step_mode,
    trainer_generator_as_default,
)

__all__ = ["QWRConfig", "PRESETS", "QWRTrainer"]

EVAL_COLUMNS = ["step", "return_mean", "return_std", "return_mean_t05", "return_std_t05"]
TRAIN_COLUMNS = [
    "step",
    "epoch",
    "critic_loss",
    "actor_loss",
    "q_mean",
    "target_mean",
    "train_return",
    "steps_per_s",
    "wall_s",
]


@dataclass
class QWRConfig(EpochConfig):
    """Train QWR (LSE / MAX / AVG backup) or the AWR baseline on a vector env."""

    env: str = "BitFlip-16"
    """env id: qwr_fast.envs ids (BitFlip-16, ...) or any gymnasium id (Pendulum-v1, ...)"""
    algo: Literal["qwr-lse", "qwr-max", "qwr-avg", "awr", "bc"] = "qwr-lse"
    """algorithm: QWR with backup F = lse / max / mean, the AWR state-value baseline, or
    behaviour cloning (bc: maximum likelihood of the replay's actions, no critic; the offline
    baseline)"""
    preset: Literal["auto", "none", "bitflip", "mujoco", "atari", "minatar"] = "auto"
    total_steps: int = 100_000
    """env steps to train for (offline: pseudo env steps, steps_per_epoch per epoch)"""
    run_dir: str = "runs/qwr"
    """run directory: config.json, eval.csv, train.csv, checkpoints, curve.png, tb/"""
    dataset: str | None = None
    """offline training from this .npz dataset (written by qwr-collect); no env interaction"""
    num_envs: int = 1
    """parallel training envs (one collection step steps all of them)"""
    steps_per_epoch: int = 1000
    """K: env steps collected per epoch (over all envs)"""
    critic_steps: int = 1000
    """C: critic gradient steps per epoch"""
    actor_steps: int = 1000
    """P: actor gradient steps per epoch"""
    batch_size: int = 256
    """states per gradient step"""
    replay_size: int = 100_000
    """replay capacity in env steps"""
    policy_lr: float = 1e-4
    """Adam learning rate of the policy"""
    q_lr: float = 1e-3
    """Adam learning rate of the critic"""
    grad_clip: float = 50.0
    """global grad-norm clip of both networks (0: off)"""
    n_samples: int = 0
    """n: actions sampled from the stored mu per state (0: 4 for Box, 8 for Discrete)"""
    enumerate_actions: bool = False
    """discrete only: actor scores all K actions weighted by mu(a|s) instead of n samples"""
    tau: float = 0.3
    """LSE temperature (qwr-lse), in the units of the unscaled Q (the paper's; with
    --normalize-q, of the normalised Q)"""
    normalize_q: bool = True
    """divide Q by mean|Q - mean Q| + 1e-5 before the LSE (as in the reference)"""
    margin: int = 3
    """T: multi-step margin of the critic target"""
    lam: float = 0.95
    """lambda of the TD(lambda) mix over the margin (1 = pure T-step)"""
    gamma: float = 0.99
    """discount"""
    bootstrap_truncation: bool = True
    """bootstrap through time-limit truncation; off treats it as termination (the reference's
    choice, and the poster's BitFlip, whose 5-step limit ends the task)"""
    value_scale: bool = True
    """networks predict (1 - gamma) * value (rewards scaled by 1 - gamma)"""
    target_every: int = 50
    """critic steps between hard target-network syncs"""
    beta: float = 1.0
    """advantage temperature of the actor weights"""
    max_weight: float = 20.0
    """clip of the actor weights"""
    normalize_adv: bool = True
    """standardise advantages over the batch before exp(A / beta)"""
    policy_std: float = 0.4
    """std of the Gaussian policy (initial value when learned)"""
    learn_std: bool = False
    """learn a state-independent log std"""
    policy_mean: Literal["tanh", "linear"] = "tanh"
    """Gaussian mean: tanh-squashed, samples clipped to the action bounds; or linear with
    unclipped samples (the reference's; the env's bounds clip what reaches it, the replay keeps
    the unclipped action)"""
    init_scale: float = 0.0
    """> 0: the policy's and the Q network's output layers start at U(-init_scale,
    init_scale) (the reference: 0.01); 0: PyTorch's default init"""
    adam_eps: float = 1e-8
    """Adam's epsilon of both optimisers (the reference: 1e-5)"""
    hidden: int = 256
    """width of the MLP bodies and of the Q head"""
    shared_first_layer: bool = False
    """the critic's body uses the policy body's first layer (the same parameters, trained by
    both losses; the target network keeps its own copy)"""
    normalize_obs: bool = True
    """running observation normaliser (vector observations; updated while collecting)"""
    norm_clip: float = 10.0
    """clip of the normalised observations (0: none, as the reference)"""
    norm_eps: float = 1e-8
    """epsilon added to the normaliser's variance (the reference: 1e-5)"""
    norm_max_count: int = 0
    """> 0: the normaliser's statistics stop at this many observations (the reference:
    300000); 0: never"""
    eval_every: int = 1000
    """env steps between evaluations (rounded up to whole epochs)"""
    eval_episodes: int = 5
    """episodes per evaluation (one per eval env) at temperature 0 and 0.5"""
    eval_max_steps: int = 27_000
    """cap on the steps of one evaluation (an unfinished episode counts its partial return)"""
    checkpoint_every: int = 10_000
    """env steps between checkpoints (rounded up to whole epochs; one at the end always)"""
    retain_heap: bool = True
    """CPU, glibc: keep freed memory in the process heap (mallopt: mmap threshold 32 MB, trim
    threshold 512 MB) so each step's MB-sized activations stop page-faulting anew
    (docs/results.md)"""
    precision: Literal["fp32", "bf16"] = "fp32"
    """matrix products of the gradient steps: fp32, or bf16 (torch.autocast: bfloat16
    operands, fp32 accumulation; output layers, losses, optimiser state, replay, collection
    and evaluation stay fp32). bf16 is several times faster on CPUs with AMX or AVX512-BF16
    (docs/results.md) and on Ampere+ GPUs (where the fused head uses tf32); CPUs without
    them emulate it 10-60x slower than fp32 (a warning says so)"""
    compile: bool = False
    """torch.compile each whole update step: replay sample, loss, backward, gradient
    clipping, Adam step and target sync (qwr_fast.trainers.step)"""
    cuda_graphs: bool = False
    """CUDA only: capture each update step in a CUDA graph after three warm-up steps and
    replay it (with --compile: the compiled step); needs an env with same-step or disabled
    autoreset (every qwr_fast env and every gymnasium id here)"""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        positive = (
            "total_steps num_envs steps_per_epoch batch_size replay_size margin target_every "
            "eval_every eval_episodes eval_max_steps checkpoint_every keep_checkpoints threads "
            "hidden"
        )
        check_fields(self, positive, ">= 1")
        check_fields(self, "checkpoint_minutes", ">= 0")
        check_fields(self, "critic_steps actor_steps n_samples", ">= 0")
        check_fields(self, "tau beta max_weight policy_std policy_lr q_lr adam_eps", "> 0")
        check_fields(self, "init_scale norm_clip norm_eps norm_max_count", ">= 0")
        check_fields(self, "lam", "[0, 1]")
        check_fields(self, "gamma", "[0, 1)")


PRESETS: dict[str, dict] = {
    "none": {},
    # gamma 0.5: the 5-step limit ends the episode, but the step count is not in the
    # observation, so the discounted return after the next step (0 to 3.9 at gamma 0.99, std
    # 1.4) is noise the critic cannot explain, next to the 2-unit gap between flipping a 0 bit
    # and a 1 bit; at gamma 0.5 it is 0 to 0.94 (std 0.34). The optimal policy (flip a 0 bit)
    # is the same at every gamma. docs/results.md, BitFlip-32.
    "bitflip": dict(
        gamma=0.5,
        steps_per_epoch=500,
        critic_steps=500,
        actor_steps=500,
        batch_size=128,
        hidden=128,
        n_samples=8,
        q_lr=3e-3,
        policy_lr=1e-3,
        num_envs=4,
        eval_every=1000,
        eval_episodes=32,
        normalize_obs=False,
        bootstrap_truncation=False,
    ),
    "mujoco": dict(grad_clip=50.0, n_samples=4, hidden=256),
    "atari": dict(grad_clip=0.5, n_samples=8, normalize_obs=False, hidden=512, replay_size=100_000),
    "minatar": dict(grad_clip=0.5, n_samples=8, normalize_obs=False, hidden=128),
}


class QWRTrainer(Trainer):
    """Owns the loop of one run (see the module docstring); ``train()`` runs it to the end.

    It is also the behaviour its collector acts with (:meth:`act`, :meth:`to_env`,
    :meth:`next_mu`): the policy's ``mu`` at each observation and one action sampled from it.
    """

    config_cls = QWRConfig
    LABEL = "QWR"
    EVAL_NOTE = " (temperature 0)"
    SINGLE_LEARNER_FLAGS = ("shared_first_layer", "compile", "cuda_graphs")
    TRAIN_COLUMNS, EVAL_COLUMNS = TRAIN_COLUMNS, EVAL_COLUMNS
    SAVED = ("policy", "critic", "target", "norm", "opt_pi", "opt_q")

    def __init__(self, cfg: QWRConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.join_world()  # under torchrun: this rank's place and shares (README: Scaling out)
        check_step_mode(cfg.cuda_graphs, self.device)
        if cfg.precision == "bf16" and self.device.type == "cpu":
            warn_if_bf16_emulated("--precision bf16")
        if cfg.retain_heap and self.device.type == "cpu":
            retain_freed_memory()
        self.gen = seed_everything(cfg.seed, self.device)
        dataset = None if cfg.dataset is None else load_dataset(cfg.dataset, cfg.env)
        world = self.world
        collecting = None if dataset is not None else self.collecting_envs()
        env = None if collecting is None else make_env(cfg.env, *collecting)
        self.eval_env = make_env(cfg.env, cfg.eval_episodes, cfg.seed + 1)
        self.obs_shape = tuple(self.eval_env.single_observation_space.shape)
        self.actions = ActionAdapter.from_space(self.eval_env.single_action_space)
        self.kind = self.actions.policy_kind
        self.n = cfg.n_samples or (4 if self.kind == "gaussian" else 8)
        pixels = len(self.obs_shape) == 3 and self.obs_shape[1:] == (84, 84)
        self.obs_dtype = torch.uint8 if pixels else torch.float32
        self.bc = cfg.algo == "bc"
        self.awr = cfg.algo in ("awr", "bc")  # bc keeps AWR's (untrained) value net
        self._build_networks()
        self.rank_streams()
        if world.learners > 1 and not world.is_actor:
            self.critic_fn = data_parallel(self.critic, self.critic_fn, self.device)
            self.actor_fn = data_parallel(self.policy, self.actor_fn, self.device)
        # an actor acts with the normaliser the learners broadcast (frozen in a chunk)
        self.collector_norm = None if world.is_actor else self.norm_synced(self.norm)

        mu_dim = self.policy.mu_dim
        if dataset is not None:
            self.replay = dataset_replay(
                dataset,
                self.actions,
                mu_dim,
                policy_std=cfg.policy_std,
                obs_to_tensor=self.obs_tensor,
                obs_dtype=self.obs_dtype,
                device=self.device,
            )
            if self.norm is not None:
                self.norm.update(self.replay.obs[:, 0])
            self.collector = None
        else:
            gaussian = self.kind == "gaussian"
            action_shape = (self.actions.action_dim,) if gaussian else ()
            action_dtype = torch.float32 if gaussian else torch.int64
            if cfg.actors:  # mode 2: chunks from the actors (the learner's own to receive into)
                self.make_chunks(self.obs_shape, mu_dim, action_shape, action_dtype, self.obs_dtype)
            self.replay = (
                None
                if world.is_actor
                else Replay(
                    self.local_replay,
                    self.local_envs,
                    self.obs_shape,
                    mu_dim,
                    action_shape,
                    action_dtype=action_dtype,
                    obs_dtype=self.obs_dtype,
                    device=self.device,
                )
            )
            self.collector = self.make_collector(
                env, self.obs_tensor, bootstrap_truncation=cfg.bootstrap_truncation
            )
            collector_mode = None if self.collector is None else self.collector.mode
            if cfg.cuda_graphs and collector_mode == AutoresetMode.NEXT_STEP:
                raise ValueError(
                    f"--cuda-graphs: --env {cfg.env!r} autoresets on the next step, whose "
                    "reset steps the replay must skip when sampling (not capturable); "
                    "drop --cuda-graphs"
                )
        mode = step_mode(cfg.compile, cfg.cuda_graphs)
        self.critic_update = UpdateStep(self.critic_update_step, mode)
        self.actor_update = UpdateStep(self.actor_update_step, mode)
        self.global_step = 0
        self.epoch = 0
        self.num_evals = 0
        self.last_eval = float("nan")
        self.wall = 0.0

    def _build_networks(self) -> None:
        """Normaliser, policy, critic (Q, or V for AWR/BC), target, optimisers, loss fns."""
        cfg, dev = self.cfg, self.device
        self.norm = (
            RunningNorm(
                self.obs_shape,
                eps=cfg.norm_eps,
                clip=cfg.norm_clip,
                max_count=cfg.norm_max_count,
            ).to(dev)
            if cfg.normalize_obs and len(self.obs_shape) == 1
            else None
        )
        if self.kind == "gaussian":
            self.policy = GaussianPolicy(
                self.obs_shape,
                self.actions.action_dim,
                hidden=cfg.hidden,
                std=cfg.policy_std,
                learn_std=cfg.learn_std,
                mean=cfg.policy_mean,
                init_scale=cfg.init_scale,
            ).to(dev)
        else:
            self.policy = CategoricalPolicy(
                self.obs_shape, self.actions.num_actions, hidden=cfg.hidden
            ).to(dev)
        if self.awr:
            self.critic: torch.nn.Module = StateValue(self.obs_shape, hidden=cfg.hidden).to(dev)
            if cfg.shared_first_layer:
                share_first_layer(self.policy.body, self.critic.body)
        else:
            body = make_body(self.obs_shape, cfg.hidden).to(dev)
            if cfg.shared_first_layer:
                share_first_layer(self.policy.body, body)
            action_kw = (
                {"action_dim": self.actions.action_dim}
                if self.kind == "gaussian"
                else {"num_actions": self.actions.num_actions}
            )
            obs_dim = int(np.prod(self.obs_shape))
            self.critic = SampledQ(
                obs_dim, hidden=cfg.hidden, body=body, body_dim=cfg.hidden, **action_kw
            ).to(dev)
        self.clip_samples = getattr(self.policy, "clip_samples", True)
        if cfg.init_scale > 0:  # the Q (or V) output layer near zero, as the policy's head
            init_uniform(self.critic.out, cfg.init_scale)
        self.target = copy.deepcopy(self.critic)
        self.sync = TargetSync(self.critic, self.target, every=cfg.target_every)
        # fused: one kernel per step for all parameters (CPU and CUDA); 0.33 vs 0.80 ms per
        # critic Adam step on one CPU thread at the MuJoCo config (bench/qwr_step_breakdown.py)
        # (capturable: its step count stays on the device, so a CUDA graph can hold the step)
        adam = functools.partial(
            torch.optim.Adam, eps=cfg.adam_eps, fused=True, capturable=cfg.cuda_graphs
        )
        self.opt_pi = adam(self.policy.parameters(), lr=cfg.policy_lr)
        self.opt_q = adam(self.critic.parameters(), lr=cfg.q_lr)
        self.critic_fn = self.critic_loss
        self.actor_fn = self.actor_loss
        # a fresh region per loss: autocast's cache of bf16 weight copies must not outlive
        # an optimiser step or a target sync
        self.autocast = functools.partial(
            torch.autocast, dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
        )

    @property
    def env(self):
        """The training vector env (None offline)."""
        return None if self.collector is None else self.collector.env

    # ------------------------------------------------------------------ acting
    def obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Env observations as stored in the replay (on the trainer's device)."""
        return torch.as_tensor(np.asarray(obs), device=self.device).to(self.obs_dtype)

    def net_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Network input: normalised vectors, raw images (the torsos scale them)."""
        if self.norm is not None:
            return self.norm(obs)
        return obs if self.obs_dtype == torch.uint8 else obs.to(torch.float32)

    @torch.no_grad()
    def policy_mu(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's behaviour parameters ``mu`` at stored observations ``obs``."""
        return self.policy.mu(self.net_obs(obs))

    def act(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Collector behaviour: ``(one action sampled from mu, mu)``."""
        mu = self.policy_mu(obs)
        a = sample_from_mu(self.kind, mu, 1, generator=self.gen, clip=self.clip_samples)
        return a.squeeze(1), mu

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        return self.actions.to_env(action)

    def next_mu(self, boot_obs: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        return self.policy_mu(boot_obs)

    def acting_modules(self) -> list:
        return [self.policy, self.norm]

    # ---------------------------------------------------------------- losses
    def sample_batch(self):
        """A replay batch of ``batch_size`` margin slices, observations as network input
        (drawn from the default generator: :meth:`update_steps` lends it the trainer's)."""
        b = self.replay.sample(self.local_batch, self.cfg.margin)
        B, T = b.reward.shape
        next_obs = self.net_obs(b.next_obs.reshape(B * T, *self.obs_shape))
        return dataclasses.replace(
            b, obs=self.net_obs(b.obs), next_obs=next_obs.view(B, T, *next_obs.shape[1:])
        )

    def critic_loss(self, batch):
        c = self.cfg
        if self.awr:
            return awr_critic_loss(
                self.critic, self.target, batch, gamma=c.gamma, lam=c.lam, value_scale=c.value_scale
            )
        return qwr_critic_loss(
            self.critic,
            self.target,
            batch,
            kind=self.kind,
            n=self.n,
            gamma=c.gamma,
            mode={"qwr-lse": "lse", "qwr-max": "max", "qwr-avg": "mean"}[c.algo],
            tau=c.tau,
            lam=c.lam,
            normalize_q=c.normalize_q,
            value_scale=c.value_scale,
            clip_samples=self.clip_samples,
        )

    def actor_loss(self, batch):
        c = self.cfg
        if self.bc:
            return bc_actor_loss(self.policy, batch)
        if self.awr:
            return awr_actor_loss(
                self.policy,
                self.target,
                batch,
                gamma=c.gamma,
                lam=c.lam,
                value_scale=c.value_scale,
                beta=c.beta,
                max_weight=c.max_weight,
                normalize=c.normalize_adv,
            )
        return qwr_actor_loss(
            self.policy,
            self.target,
            batch,
            n=self.n,
            beta=c.beta,
            max_weight=c.max_weight,
            normalize=c.normalize_adv,
            enumerate_actions=c.enumerate_actions,
        )

    def update(self) -> dict[str, float]:
        """C critic steps then P actor steps; returns the last losses (the one host read)."""
        return {k: float(v) for k, v in self.update_steps().items()}

    def critic_step(self, batch) -> dict[str, torch.Tensor]:
        """One critic gradient step on ``batch`` and the target sync; returns the losses."""
        with self.autocast():
            out = self.critic_fn(batch)
        optimizer_step(self.opt_q, self.critic.parameters(), out["critic_loss"], self.cfg.grad_clip)
        self.sync.step()
        return out

    def actor_step(self, batch) -> dict[str, torch.Tensor]:
        """One actor gradient step on ``batch``; returns the losses."""
        with self.autocast():
            out = self.actor_fn(batch)
        optimizer_step(self.opt_pi, self.policy.parameters(), out["actor_loss"], self.cfg.grad_clip)
        return out

    def critic_update_step(self) -> dict[str, torch.Tensor]:
        """The whole critic update step, as :attr:`critic_update` runs it (eager, compiled or
        captured): a replay sample, the loss, its gradient step and the target sync."""
        return {k: v.detach() for k, v in self.critic_step(self.sample_batch()).items()}

    def actor_update_step(self) -> dict[str, torch.Tensor]:
        """The whole actor update step, as :attr:`actor_update` runs it."""
        return {k: v.detach() for k, v in self.actor_step(self.sample_batch()).items()}

    def update_steps(self) -> dict[str, torch.Tensor]:
        """C critic steps then P actor steps (the reference's order, so the update is two step
        functions, each compiled or captured whole) without reading a tensor value on the host,
        so on CUDA the steps queue without a sync (the fused ops' value-range checks, which
        read values, are skipped: the trainer builds their inputs itself; CPU tensors are
        still checked). Their random draws continue the trainer's generator. Returns the last
        step's losses as detached tensors."""
        if self.cfg.cuda_graphs and not self.replay.all_valid:
            raise ValueError(
                "--cuda-graphs: the replay holds steps that may not start a slice "
                "(a next-step-autoreset env or dataset); drop --cuda-graphs"
            )
        stats: dict[str, torch.Tensor] = {}
        with skip_value_checks(), trainer_generator_as_default(self.gen):
            for _ in range(0 if self.bc else self.cfg.critic_steps):
                stats.update(self.critic_update())
            for _ in range(self.cfg.actor_steps):
                stats.update(self.actor_update())
        return stats

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, temperature: float) -> np.ndarray:
        """Return of the first episode of each eval env, seeded per evaluation."""
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 1000 + self.num_evals)

        def act(obs):
            mu = self.policy_mu(self.obs_tensor(obs))
            a = sample_from_mu(
                self.kind, mu, 1, temperature=temperature, generator=gen, clip=self.clip_samples
            )
            return self.actions.to_env(a.squeeze(1))

        seed = self.cfg.seed + 10_000 + self.num_evals
        return eval_returns(self.eval_env, act, seed=seed, max_steps=self.cfg.eval_max_steps)

    # -------------------------------------------------------------------- loop
    def eval_row(self) -> tuple[dict, dict]:
        with self.recording():
            r0 = self.evaluate(0.0)
        r5 = self.evaluate(0.5)
        row = {
            "step": self.global_step,
            "return_mean": float(r0.mean()),
            "return_std": float(r0.std()),
            "return_mean_t05": float(r5.mean()),
            "return_std_t05": float(r5.std()),
        }
        return row, {"return_t0": row["return_mean"], "return_t05": row["return_mean_t05"]}

    def plot(self) -> None:
        cfg = self.cfg
        plot_eval_curve(
            cfg.run_dir,
            [("return_mean", "temperature 0"), ("return_mean_t05", "temperature 0.5")],
            title=f"{cfg.algo} on {cfg.env} (seed {cfg.seed})",
        )
