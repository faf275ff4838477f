"""Command-line entry points: ``qwr-train`` and ``qwr-collect``.

``qwr-train --env ENV_ID --algo {qwr-lse,qwr-max,qwr-avg,awr,bc} --total-steps N --seed S
--run-dir DIR [--preset P] [--dataset FILE] [--resume DIR]``; every field of
:class:`qwr_fast.trainers.qwr.QWRConfig` is a flag (``qwr-train --help``). A preset sets the
defaults of its family; flags given explicitly win. Exit code 0 on success, 2 on bad arguments
with a one-line message.

``qwr-collect`` writes an offline dataset, a ``.npz`` file with these arrays (N steps, time
ordered; the steps of each env are contiguous, and the last step of each env's chunk is marked
truncated if its episode was still running):

- ``schema_version`` (int, currently 1), ``env_id`` (str), ``policy`` (str: random / checkpoint)
- ``obs[N, *O]``, ``next_obs[N, *O]`` (the bootstrap observation: the final observation when
  the episode ended at this step)
- ``action[N, *A]`` in the env's own action space (int for Discrete)
- ``reward[N]`` float32, ``terminal[N]`` / ``truncated[N]`` bool
- ``mu[N, P]`` / ``next_mu[N, P]`` float32: the behaviour distribution parameters
  (``cat(mean, log_std)`` in the policy's ``[-1, 1]`` action scale, or logits); present only
  when the behaviour policy is a Gaussian/categorical one (not for uniform random Box actions,
  where offline QWR uses the logged action with the fixed std as ``mu``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from qwr_fast.checkpoint import CheckpointError
from qwr_fast.trainers._cli import error, trainer_from_argv

__all__ = ["qwr_train_main", "qwr_collect_main", "CollectConfig", "collect_dataset"]


def qwr_train_main(argv: list[str] | None = None) -> int:
    """``qwr-train``: parse flags (preset first), train, print the final evaluation."""
    from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

    argv = list(sys.argv[1:] if argv is None else argv)
    trainer = trainer_from_argv("qwr-train", QWRConfig, QWRTrainer, PRESETS, argv)
    if isinstance(trainer, int):
        return trainer
    last = trainer.train()
    run_dir = trainer.cfg.run_dir
    if last:
        print(
            f"{trainer.cfg.algo} on {trainer.cfg.env}: step {last['step']}, eval return "
            f"{last['return_mean']:.3f} +- {last['return_std']:.3f} (temperature 0); "
            f"curve: {run_dir}/curve.png"
        )
    return 0


@dataclass
class CollectConfig:
    """Write an offline dataset (.npz, schema in qwr_fast.cli) by running a behaviour policy."""

    env: str = "BitFlip-16"
    """env id"""
    steps: int = 10_000
    """env steps to record (over all envs)"""
    out: str = "dataset.npz"
    """output .npz file"""
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


def collect_dataset(cfg: CollectConfig) -> str:
    """Run the behaviour policy for ``cfg.steps`` env steps and write ``cfg.out``."""
    from gymnasium.vector import AutoresetMode

    from qwr_fast.nn.policy import sample_from_mu
    from qwr_fast.trainers.qwr import (
        DATASET_SCHEMA_VERSION,
        QWRTrainer,
        _Actor,
        _autoreset_mode,
        make_env,
    )

    if cfg.steps < 1 or cfg.num_envs < 1:
        raise ValueError("--steps and --num-envs must be >= 1")
    if cfg.temperature <= 0:
        raise ValueError(f"--temperature must be > 0, got {cfg.temperature}")
    if cfg.policy == "checkpoint" and cfg.checkpoint is None:
        raise ValueError("--policy checkpoint needs --checkpoint RUN_DIR")
    env = make_env(cfg.env, cfg.num_envs, cfg.seed)
    actor = _Actor(env.single_action_space)
    trainer = None
    if cfg.policy == "checkpoint":
        trainer = QWRTrainer.resumed(cfg.checkpoint, progress=False, tensorboard=False)
        if trainer.cfg.env != cfg.env:
            raise ValueError(f"--checkpoint was trained on {trainer.cfg.env}, not {cfg.env}")
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    mode = _autoreset_mode(env)
    E = cfg.num_envs

    @torch.no_grad()
    def behaviour(obs):
        if trainer is None:
            if actor.kind == "categorical":
                a = rng.integers(0, actor.num_actions, size=E)
                return a + actor.start, np.zeros((E, actor.num_actions), np.float32)
            u = rng.uniform(-1.0, 1.0, size=(E, actor.action_dim))
            return actor.to_env(torch.as_tensor(u)), None
        mu = behaviour_mu(trainer, obs, actor, cfg)
        a = sample_from_mu(actor.kind, torch.as_tensor(mu), 1, generator=gen).squeeze(1)
        return actor.to_env(a), mu

    keys = ("obs", "action", "reward", "terminal", "truncated", "next_obs", "valid")
    rec: dict[str, list] = {k: [] for k in (*keys, "mu", "next_mu")}
    obs, _ = env.reset(seed=cfg.seed)
    prev_done = np.zeros(E, dtype=bool)
    for _ in range(max(1, cfg.steps // E)):
        action, mu = behaviour(obs)
        next_obs, reward, term, trunc, infos = env.step(action)
        done = np.logical_or(term, trunc)
        boot = np.array(next_obs, copy=True)
        if mode == AutoresetMode.SAME_STEP and done.any():
            for i in np.flatnonzero(done):
                boot[i] = infos["final_obs"][i]
        valid = ~prev_done if mode == AutoresetMode.NEXT_STEP else np.ones(E, dtype=bool)
        if mode == AutoresetMode.DISABLED and done.any():
            next_obs, _ = env.reset(options={"reset_mask": done})
        for k, v in zip(keys, (obs, action, reward, term, trunc, boot, valid), strict=True):
            rec[k].append(np.array(v, copy=True))
        if mu is not None:
            rec["mu"].append(mu)
            rec["next_mu"].append(behaviour_mu(trainer, boot, actor, cfg) if trainer else mu)
        prev_done = done & valid
        obs = next_obs
    arrays = {k: np.stack(v, axis=1) for k, v in rec.items() if v}  # [E, S, ...]
    arrays["truncated"][:, -1] |= ~arrays["terminal"][:, -1]
    valid = arrays.pop("valid").reshape(-1)
    out = {k: v.reshape(-1, *v.shape[2:])[valid] for k, v in arrays.items()}
    np.savez_compressed(
        cfg.out,
        schema_version=np.int64(DATASET_SCHEMA_VERSION),
        env_id=np.str_(cfg.env),
        policy=np.str_(cfg.policy),
        **{
            k: v.astype(np.float32) if k in ("reward", "mu", "next_mu") else v
            for k, v in out.items()
        },
    )
    return cfg.out


@torch.no_grad()
def behaviour_mu(trainer, obs: np.ndarray, actor, cfg: CollectConfig) -> np.ndarray:
    """Behaviour parameters at ``obs`` with the collection temperature applied."""
    mu = trainer._mu(trainer._obs_tensor(obs))
    if actor.kind == "gaussian":
        mu[:, actor.action_dim :] += math.log(cfg.temperature)
    else:
        mu = mu / cfg.temperature
    return mu.cpu().numpy()


def qwr_collect_main(argv: list[str] | None = None) -> int:
    """``qwr-collect``: write an offline dataset; prints its path and size."""
    import tyro

    cfg = tyro.cli(CollectConfig, args=argv, prog="qwr-collect")
    try:
        path = collect_dataset(cfg)
    except (ValueError, TypeError, CheckpointError) as e:
        return error("qwr-collect", str(e).splitlines()[0])
    with np.load(path) as d:
        print(f"wrote {path}: {d['reward'].shape[0]} steps of {cfg.env} ({cfg.policy} policy)")
    return 0
