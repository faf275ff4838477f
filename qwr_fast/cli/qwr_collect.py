"""``qwr-collect``: write an offline dataset (``.npz``, the schema of
:mod:`qwr_fast.data.datasets`) by running a behaviour policy: uniform random actions, or the
policy of a ``qwr-train`` run at a collection temperature. It steps the env through the same
collector the trainers use (:class:`qwr_fast.data.collect.Collector`)."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from qwr_fast.actions import ActionAdapter
from qwr_fast.cli.common import USER_ERRORS, error, first_line
from qwr_fast.data.collect import Collector, make_env
from qwr_fast.data.datasets import DatasetRecorder
from qwr_fast.nn.policy import sample_from_mu
from qwr_fast.trainers.runlog import FileLock

__all__ = ["CollectConfig", "collect_dataset", "main"]


@dataclass
class CollectConfig:
    """Record an offline .npz dataset (qwr_fast.data.datasets) with a behaviour policy."""

    env: str = "BitFlip-16"
    """env id"""
    steps: int = 10_000
    """env steps to record (over all envs)"""
    out: str = "dataset.npz"
    """output .npz file (locked while collecting: OUT.lock beside it holds the pid)"""
    policy: Literal["random", "checkpoint"] = "random"
    """behaviour policy: uniform random actions, or the policy of a qwr-train run"""
    checkpoint: str | None = None
    """run directory whose latest checkpoint gives the policy (policy=checkpoint)"""
    temperature: float = 1.0
    """behaviour temperature (scales the Gaussian std / divides the logits; >1 is noisier)"""
    num_envs: int = 1
    """parallel envs"""
    seed: int = 0
    """seed of the envs and of the action sampling"""


class RandomBehaviour:
    """Uniform random actions (numpy stream); ``mu`` zeros for Discrete, none for Box."""

    def __init__(self, adapter: ActionAdapter, seed: int) -> None:
        self.adapter, self.rng = adapter, np.random.default_rng(seed)

    def act(self, obs):
        E = len(obs)
        if self.adapter.kind == "discrete":
            return self.rng.integers(0, self.adapter.num_actions, size=E), np.zeros(
                (E, self.adapter.num_actions), np.float32
            )
        return self.rng.uniform(-1.0, 1.0, size=(E, self.adapter.action_dim)), None

    def to_env(self, action) -> np.ndarray:
        return self.adapter.to_env(torch.as_tensor(action))

    def next_mu(self, boot_obs, mu):
        return mu


class PolicyBehaviour:
    """The policy of a qwr-train run at the collection temperature."""

    def __init__(self, trainer, adapter: ActionAdapter, temperature: float, seed: int) -> None:
        self.trainer, self.adapter, self.temperature = trainer, adapter, temperature
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def mu(self, obs: np.ndarray) -> np.ndarray:
        """Behaviour parameters at ``obs`` with the collection temperature applied."""
        mu = self.trainer.policy_mu(self.trainer.obs_tensor(obs))
        if self.adapter.kind == "box":
            mu[:, self.adapter.action_dim :] += math.log(self.temperature)
        else:
            mu = mu / self.temperature
        return mu.cpu().numpy()

    def act(self, obs):
        mu = self.mu(obs)
        kind = self.adapter.policy_kind
        clip = self.trainer.clip_samples  # a linear-mean policy's samples stay unclipped
        a = sample_from_mu(kind, torch.as_tensor(mu), 1, generator=self.gen, clip=clip)
        a = a.squeeze(1)
        return a, mu

    def to_env(self, action) -> np.ndarray:
        return self.adapter.to_env(action)

    def next_mu(self, boot_obs, mu):
        return self.mu(boot_obs)


def collect_dataset(cfg: CollectConfig) -> str:
    """Run the behaviour policy for ``cfg.steps`` env steps and write ``cfg.out``, holding
    the lock ``OUT.lock`` meanwhile (:class:`qwr_fast.trainers.runlog.FileLock`; RunDirBusy,
    naming the holder's pid, while another process collects into ``cfg.out``)."""
    if cfg.steps < 1 or cfg.num_envs < 1:
        raise ValueError("--steps and --num-envs must be >= 1")
    if cfg.temperature <= 0:
        raise ValueError(f"--temperature must be > 0, got {cfg.temperature}")
    if cfg.policy == "checkpoint" and cfg.checkpoint is None:
        raise ValueError("--policy checkpoint needs --checkpoint RUN_DIR")
    out_dir = os.path.dirname(os.path.abspath(cfg.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"--out {cfg.out}: directory {out_dir} does not exist")
    # two collections into one file would interleave their writes: the second is refused
    with FileLock(f"{cfg.out}.lock", f"--out {cfg.out}"):
        return _collect(cfg)


def _collect(cfg: CollectConfig) -> str:
    from qwr_fast.trainers.qwr import QWRTrainer

    env = make_env(cfg.env, cfg.num_envs, cfg.seed)
    adapter = ActionAdapter.from_space(env.single_action_space)
    if cfg.policy == "checkpoint":
        trainer = QWRTrainer.resumed(cfg.checkpoint, progress=False, tensorboard=False)
        if trainer.cfg.env != cfg.env:
            raise ValueError(f"--checkpoint was trained on {trainer.cfg.env}, not {cfg.env}")
        behaviour = PolicyBehaviour(trainer, adapter, cfg.temperature, cfg.seed)
    else:
        behaviour = RandomBehaviour(adapter, cfg.seed)
    recorder = DatasetRecorder(adapter)
    Collector(env, seed=cfg.seed).collect(cfg.steps, behaviour, recorder)
    recorder.save(cfg.out, env_id=cfg.env, policy=cfg.policy)
    return cfg.out


def main(argv: list[str] | None = None) -> int:
    """``qwr-collect``: write an offline dataset; prints its path and size."""
    import tyro

    cfg = tyro.cli(CollectConfig, args=argv, prog="qwr-collect")
    try:
        path = collect_dataset(cfg)
    except USER_ERRORS as e:
        return error("qwr-collect", first_line(e))
    with np.load(path) as d:
        print(f"wrote {path}: {d['reward'].shape[0]} steps of {cfg.env} ({cfg.policy} policy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
