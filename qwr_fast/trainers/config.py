"""The config fields several trainers share, declared once (each trainer's own config dataclass,
in its trainer file, adds its fields to one of these bases):

- :class:`RunConfig`: every trainer (preset, seed, run directory, wall-time checkpoints, threads,
  progress bar; tracking and video from :class:`~qwr_fast.trainers.tracking.TrackingConfig`).
- :class:`EpochConfig`: the epoch trainers ``qwr-train`` and ``aql-train`` (device, actor
  ranks, checkpoints kept, TensorBoard).
- :class:`QLearnerConfig`: the Q-learners ``aql-train`` and ``dqn-train`` (prioritised replay,
  epsilon-greedy exploration, the compiled update step).

A field's docstring is its ``--help`` line; a trainer that redeclares a field (its own preset
choices, another default) keeps the docstring declared here. The flags, their defaults and the
keys of ``config.json`` are those the trainers always had; only their order in ``--help`` (and
in ``config.json``) follows the bases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qwr_fast.trainers.tracking import TrackingConfig

__all__ = ["EpochConfig", "QLearnerConfig", "RunConfig"]


@dataclass
class RunConfig(TrackingConfig):
    """The flags every trainer's config shares (its base class)."""

    preset: str = "auto"
    """family preset applied before the explicit flags (flags given on the command line win);
    auto: the env's family preset (BitFlip, MuJoCo, ALE, MinAtar, Hanabi ids) when this trainer
    has one, else none. config.json records the preset applied. A config built in Python applies
    no preset (auto there means none)"""
    seed: int = 0
    """seed of every RNG (python, numpy, torch, envs)"""
    resume: str | None = None
    """continue the run in this directory from its latest checkpoint"""
    overwrite: bool = False
    """start afresh in a run directory that holds another run's checkpoints or logs
    (config.json, train.csv, eval.csv, curve.png, tb/), deleting or replacing them (without
    it, such a directory is an error, never silently clobbered)"""
    checkpoint_minutes: float = 5.0
    """minutes of wall time between checkpoints besides checkpoint_every (0: off); written
    between epochs only, so a resume from one still equals an uninterrupted run"""
    threads: int = 1
    """torch CPU threads"""
    progress: bool = True
    """tqdm progress bar"""


@dataclass
class EpochConfig(RunConfig):
    """The flags of the epoch trainers (``qwr-train``, ``aql-train``): collect
    ``steps_per_epoch`` env steps, then update."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """torch device (auto: cuda when available)"""
    actors: int = 0
    """under torchrun: the last ACTORS ranks only collect (CPU, one thread each, acting one
    epoch behind the learners with the weights they broadcast after every epoch) and ship
    their steps to the learners (README: Scaling out); 0: every rank learns"""
    keep_checkpoints: int = 2
    """checkpoints kept in the run directory"""
    tensorboard: bool = True
    """TensorBoard logs in RUN_DIR/tb"""


@dataclass
class QLearnerConfig:
    """The flags of the Q-learners (``aql-train``, ``dqn-train``); a mixin beside
    :class:`RunConfig`."""

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
    eps_start: float = 1.0
    """epsilon-greedy: initial probability of a uniform random action"""
    eps_end: float = 0.05
    """epsilon-greedy: final probability"""
    compile: bool = False
    """torch.compile each whole update step: replay sample, losses, backward, gradient
    clipping, optimiser steps and target sync (qwr_fast.trainers.step; not with --prioritized,
    whose sampler walks a sum tree on the host)"""
