"""Argument handling shared by the entry points: presets before flags, ``--resume``, one-line
errors (exit status 2), the run directory's lock, and a one-line stop at SIGINT / SIGTERM
(exit status 130 / 143)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from typing import Any

from qwr_fast.checkpoint import CheckpointError
from qwr_fast.distributed import env_world, exit_process, restarted
from qwr_fast.trainers.runlog import (
    RunDirBusy,
    RunDirError,
    RunInterrupted,
    hold_run_dir,
    run_checkpoints,
)

__all__ = [
    "RESUME_FIELDS",
    "USER_ERRORS",
    "env_family",
    "error",
    "parse_config",
    "resolve_preset",
    "trainer_from_argv",
    "train_main",
]

USER_ERRORS = (ValueError, TypeError, CheckpointError, FileNotFoundError, RunDirBusy, RunDirError)
"""The exceptions an entry point reports as one line (bad flags, files, checkpoints, a run
directory in use, a file or not writable)."""


def error(prog: str, msg: str) -> int:
    """Print ``prog: error: msg`` to stderr; return the exit status 2."""
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return 2


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


RESUME_FIELDS = (
    "total_steps",
    "progress",
    "threads",
    "checkpoint_every",
    "checkpoint_minutes",
    "keep_checkpoints",
    "tensorboard",
)
"""The fields a ``--resume`` may change (those of them the trainer's config has): the budget
(never below the step the run reached), the progress bar, torch threads, the checkpoint
schedule and TensorBoard logging; none of them changes the training computation. Any other
explicit flag next to ``--resume`` is an error."""


def env_family(env_id: str) -> str:
    """The preset family of ``env_id``: ``bitflip`` (BitFlip-N, BitFlipSubset-N), ``mujoco``
    (the MuJoCo task ids, any version), ``atari`` (``ALE/...``), ``minatar`` (``MinAtar/...``),
    ``hanabi`` (``Hanabi-...``); ``none`` for anything else."""
    import re

    from qwr_fast.envs.mujoco import MUJOCO_IDS

    tasks = {i.rsplit("-v", 1)[0] for i in MUJOCO_IDS}
    if re.fullmatch(r"BitFlip(Subset)?-[0-9]+", env_id):
        return "bitflip"
    m = re.fullmatch(r"(.+)-v[0-9]+", env_id)
    if env_id in MUJOCO_IDS or (m is not None and m.group(1) in tasks):
        return "mujoco"
    if env_id.startswith("ALE/"):
        return "atari"
    if env_id.startswith("MinAtar/"):
        return "minatar"
    if env_id.startswith("Hanabi"):
        return "hanabi"
    return "none"


def resolve_preset(env_id: str, presets: dict) -> str:
    """``--preset auto``: the preset of ``env_id``'s family (:func:`env_family`) when the
    trainer has one (``presets``), else ``none``."""
    family = env_family(env_id)
    return family if family in presets else "none"


def explicit_fields(config_cls: type, argv: list[str]) -> list[tuple[str, str]]:
    """The ``(flag, field)`` pairs given explicitly in ``argv`` (``--flag VALUE``,
    ``--flag=VALUE``, ``--no-flag`` of a bool), in order; unknown flags are left to tyro."""
    import dataclasses

    names = {f.name.replace("_", "-"): f.name for f in dataclasses.fields(config_cls)}
    out = []
    for a in argv:
        if not a.startswith("--"):
            continue
        flag = a.split("=", 1)[0]
        name = flag[2:].replace("_", "-")
        if name not in names and name.startswith("no-") and name[3:] in names:
            name = name[3:]
        if name in names:
            out.append((flag, names[name]))
    return out


def parse_config(
    prog: str, config_cls: type, presets: dict, argv: list[str], notes: list | None = None
) -> Any:
    """The typed config of ``argv``: ``--preset`` first (its values become the defaults that
    explicit flags override), then the flags via tyro. Returns the config, or 2 after a
    one-line error.

    ``--preset auto`` (the default) picks the preset of the env's family (:func:`env_family`;
    ``none`` when this trainer has no preset for it) and says so in one line on stderr; the
    config (and so ``config.json`` and the checkpoint) records the preset it resolved to. A
    config built in Python (``QWRConfig(...)``) applies no preset whatever its ``preset``
    field says: ``auto`` there means what ``none`` means. With ``--resume`` the saved config
    is used and no preset is applied; with ``--help`` the defaults shown are those of no
    preset. ``notes``: where the line about ``auto`` goes instead of stderr (the entry points
    print it once the trainer is built, so that an error stays one line)."""
    import dataclasses

    import tyro

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--preset", default="auto")
    pre.add_argument("--env", default=None)
    pre.add_argument("--resume", default=None)
    pre.add_argument("-h", "--help", action="store_true")
    known, _ = pre.parse_known_args(argv)
    name = known.preset
    if name not in presets and name != "auto":
        return error(
            prog, f"--preset must be one of auto, {', '.join(presets)}, got {known.preset!r}"
        )
    if name == "auto" and known.resume is None and not known.help:
        env = known.env
        if env is None:
            env = {f.name: f.default for f in dataclasses.fields(config_cls)}["env"]
        name = resolve_preset(env, presets)
        note = f"{prog}: --preset auto: applied preset {name} (env {env})"
        if notes is None:
            print(note, file=sys.stderr)
        else:
            notes.append(note)
    default = config_cls(**presets.get(name, {}), preset=name)
    cfg = tyro.cli(config_cls, default=default, args=argv, prog=prog)
    if cfg.preset != name:  # an explicit --preset auto: record what it resolved to
        cfg = dataclasses.replace(cfg, preset=name)
    return cfg


def check_resume_flags(config_cls: type, argv: list[str]) -> None:
    """ValueError naming the explicit flags of ``argv`` that a ``--resume`` may not change
    (all but ``--resume`` and :data:`RESUME_FIELDS`)."""
    import dataclasses

    have = {f.name for f in dataclasses.fields(config_cls)}
    allowed = [f for f in RESUME_FIELDS if f in have]
    given = explicit_fields(config_cls, argv)
    bad = [flag for flag, field in given if field not in allowed and field != "resume"]
    if bad:
        ok = ", ".join("--" + f.replace("_", "-") for f in allowed)
        raise ValueError(
            f"--resume continues a run with its saved config; {', '.join(dict.fromkeys(bad))} "
            f"cannot change on resume (only {ok} may)"
        )


def run_writer(run_dir: str, config_cls: type) -> None:
    """ValueError when ``run_dir/config.json`` was written by another trainer than the one of
    ``config_cls`` (it has fields this config lacks), naming the trainer whose config has
    them all."""
    import dataclasses
    import importlib
    import json

    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            keys = set(json.load(f))
    except (OSError, ValueError, TypeError):
        return
    keys.discard("world")  # a multi-process run's world size and roles
    if keys <= {f.name for f in dataclasses.fields(config_cls)}:
        return
    writer = "another program"
    for prog, module, cls in TRAINERS:
        config = getattr(importlib.import_module(module), cls)
        if keys <= {f.name for f in dataclasses.fields(config)}:
            writer = prog
            break
    again = f": continue it with {writer} --resume {run_dir}" if writer != "another program" else ""
    raise ValueError(f"--resume {run_dir}: this run was written by {writer}{again}")


def _written_by(run_dir: str, cfg) -> bool:
    """Whether ``run_dir/config.json`` holds ``cfg`` (a failed attempt of this very run)."""
    import dataclasses
    import json

    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return False
    saved.pop("world", None)
    return saved == json.loads(json.dumps(dataclasses.asdict(cfg)))


TRAINERS = (
    ("qwr-train", "qwr_fast.trainers.qwr", "QWRConfig"),
    ("aql-train", "qwr_fast.trainers.aql", "AQLConfig"),
    ("ppo-train", "qwr_fast.trainers.ppo", "PPOConfig"),
    ("dqn-train", "qwr_fast.trainers.dqn", "DQNConfig"),
)
"""The training entry points and their configs (to name the writer of a run directory)."""


def _build(cfg, trainer_cls: type, argv: list[str]) -> Any:
    """The trainer of ``cfg``: a fresh one, or (``--resume RUN_DIR``) the run restored from its
    checkpoint with the flags of :data:`RESUME_FIELDS` given in ``argv`` applied (any other
    explicit flag: ValueError). A missing optional extra (an ImportError naming its
    ``pip install``): ValueError."""
    try:
        if cfg.resume is None and restarted():  # torchrun --max-restarts restarted the workers
            if run_checkpoints(cfg.run_dir):  # continue from the checkpoint
                return trainer_cls.resumed(cfg.run_dir, progress=cfg.progress)
            if _written_by(cfg.run_dir, cfg):  # the failed attempt's logs, no checkpoint yet
                cfg.overwrite = True
        if cfg.resume is None:
            return trainer_cls(cfg)
        if os.path.exists(cfg.resume) and not os.path.isdir(cfg.resume):
            raise ValueError(f"--resume {cfg.resume} is a file, not a run directory")
        run_writer(cfg.resume, type(cfg))
        check_resume_flags(type(cfg), argv)
        given = {field for _, field in explicit_fields(type(cfg), argv)}
        overrides = {f: getattr(cfg, f) for f in RESUME_FIELDS if f in given}
        overrides["progress"] = cfg.progress
        trainer = trainer_cls.resumed(cfg.resume, **overrides)
    except ImportError as e:
        if "pip install" not in str(e):
            raise
        raise ValueError(first_line(e)) from e
    if "total_steps" in overrides and trainer.global_step > cfg.total_steps:
        raise ValueError(
            f"--total-steps {cfg.total_steps} is below the step this run has reached "
            f"({trainer.global_step}); give at least {trainer.global_step}"
        )
    return trainer


def trainer_from_argv(
    prog: str, config_cls: type, trainer_cls: type, presets: dict, argv: list[str]
) -> Any:
    """Build a trainer from ``argv`` (:func:`parse_config`; ``--resume RUN_DIR`` continues a
    run, ``--total-steps`` may extend it). Returns the trainer, or 2 after a one-line error."""
    notes: list[str] = []
    cfg = parse_config(prog, config_cls, presets, argv, notes)
    if isinstance(cfg, int):
        return cfg
    try:
        trainer = _build(cfg, trainer_cls, argv)
    except USER_ERRORS as e:
        return error(prog, first_line(e))
    for note in notes:
        print(note, file=sys.stderr)
    return trainer


_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def train_main(
    prog: str, config_cls: type, trainer_cls: type, presets: dict, argv: list[str] | None
) -> int:
    """A training entry point: parse ``argv`` (``sys.argv[1:]`` when None), lock the run
    directory, build the trainer, train, print the trainer's ``summary(last_eval)``. Exit
    status 0; 2 after a one-line error (another process holding the run directory is one,
    naming its pid); 130 / 143 after SIGINT / SIGTERM, with one line naming the checkpoint
    written and the ``--resume`` that continues the run. Under ``torchrun`` each rank ends
    here with that status (:func:`qwr_fast.distributed.exit_process`)."""
    return exit_process(_train_main(prog, config_cls, trainer_cls, presets, argv))


def _train_main(
    prog: str, config_cls: type, trainer_cls: type, presets: dict, argv: list[str] | None
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    notes: list[str] = []  # the --preset auto line, printed once the trainer is built
    cfg = parse_config(prog, config_cls, presets, argv, notes)
    if isinstance(cfg, int):
        return cfg
    run_dir = cfg.run_dir if cfg.resume is None else cfg.resume
    main = env_world().is_main
    existed = os.path.isdir(run_dir)
    failed: BaseException | None = None
    try:
        # the lock first: the guard of a fresh run and the checkpoint of a resumed one are
        # read under it, so a second process cannot slip in between the check and the run
        # under torchrun rank 0 holds it for the run; the other ranks write only their shards
        lock = (
            hold_run_dir(run_dir, create=cfg.resume is None) if main else contextlib.nullcontext()
        )
        with lock:
            try:
                trainer = _build(cfg, trainer_cls, argv)
            except USER_ERRORS as e:
                failed = e
            else:
                for note in notes if main else ():
                    print(note, file=sys.stderr)
                last = trainer.train()
    except (RunDirBusy, RunDirError) as e:  # in use, a file, not writable
        return error(prog, first_line(e))
    except RunInterrupted as e:
        print(f"{prog}: {e.describe(prog)}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            raise
        # e.g. the run directory became read-only or the disk filled up mid-run: checkpoints
        # are written atomically, so the last one that completed is intact
        return error(
            prog,
            f"cannot write {e.filename or run_dir}: {e.strerror}; the last completed checkpoint "
            f"in {run_dir} is intact: make the directory writable and continue with "
            f"{prog} --resume {run_dir}",
        )
    except KeyboardInterrupt:  # outside the training loop: before it started or after it ended
        print(
            f"{prog}: interrupted; nothing saved since the last checkpoint in {run_dir}",
            file=sys.stderr,
        )
        return 130
    if failed is not None:
        if not existed:  # leave no empty run directory behind a bad command line
            with contextlib.suppress(OSError):
                os.rmdir(run_dir)
        return error(prog, first_line(failed))
    if last and main:
        print(trainer.summary(last))
    return 0
