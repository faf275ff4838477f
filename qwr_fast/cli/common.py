"""Argument handling shared by the entry points: presets before flags, ``--resume``, one-line
errors (exit status 2), the run directory's lock, and a one-line stop at SIGINT / SIGTERM
(exit status 130 / 143)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from qwr_fast.checkpoint import CheckpointError
from qwr_fast.trainers.runlog import RunDirBusy, RunInterrupted, hold_run_dir

__all__ = ["USER_ERRORS", "error", "parse_config", "trainer_from_argv", "train_main"]

USER_ERRORS = (ValueError, TypeError, CheckpointError, FileNotFoundError, RunDirBusy)
"""The exceptions an entry point reports as one line (bad flags, files, checkpoints, a run
directory in use)."""


def error(prog: str, msg: str) -> int:
    """Print ``prog: error: msg`` to stderr; return the exit status 2."""
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return 2


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def parse_config(prog: str, config_cls: type, presets: dict, argv: list[str]) -> Any:
    """The typed config of ``argv``: ``--preset`` first (its values become the defaults that
    explicit flags override), then the flags via tyro. Returns the config, or 2 after a
    one-line error."""
    import tyro

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="none")
    known, _ = pre.parse_known_args(argv)
    if known.preset not in presets:
        return error(prog, f"--preset must be one of {', '.join(presets)}, got {known.preset!r}")
    default = config_cls(**presets[known.preset], preset=known.preset)
    return tyro.cli(config_cls, default=default, args=argv, prog=prog)


def _build(cfg, trainer_cls: type, argv: list[str]) -> Any:
    """The trainer of ``cfg``: a fresh one, or (``--resume RUN_DIR``) the run restored from its
    checkpoint, ``--total-steps`` extending it."""
    if cfg.resume is None:
        return trainer_cls(cfg)
    overrides: dict = {"progress": cfg.progress}
    if any(a.startswith("--total-steps") for a in argv):
        overrides["total_steps"] = cfg.total_steps
    return trainer_cls.resumed(cfg.resume, **overrides)


def trainer_from_argv(
    prog: str, config_cls: type, trainer_cls: type, presets: dict, argv: list[str]
) -> Any:
    """Build a trainer from ``argv`` (:func:`parse_config`; ``--resume RUN_DIR`` continues a
    run, ``--total-steps`` may extend it). Returns the trainer, or 2 after a one-line error."""
    cfg = parse_config(prog, config_cls, presets, argv)
    if isinstance(cfg, int):
        return cfg
    try:
        return _build(cfg, trainer_cls, argv)
    except USER_ERRORS as e:
        return error(prog, first_line(e))


def train_main(
    prog: str, config_cls: type, trainer_cls: type, presets: dict, argv: list[str] | None
) -> int:
    """A training entry point: parse ``argv`` (``sys.argv[1:]`` when None), lock the run
    directory, build the trainer, train, print the trainer's ``summary(last_eval)``. Exit
    status 0; 2 after a one-line error (another process holding the run directory is one,
    naming its pid); 130 / 143 after SIGINT / SIGTERM, with one line naming the checkpoint
    written and the ``--resume`` that continues the run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(prog, config_cls, presets, argv)
    if isinstance(cfg, int):
        return cfg
    run_dir = cfg.run_dir if cfg.resume is None else cfg.resume
    existed = os.path.isdir(run_dir)
    failed: BaseException | None = None
    try:
        # the lock first: the guard of a fresh run and the checkpoint of a resumed one are
        # read under it, so a second process cannot slip in between the check and the run
        with hold_run_dir(run_dir, create=cfg.resume is None):
            try:
                trainer = _build(cfg, trainer_cls, argv)
            except USER_ERRORS as e:
                failed = e
            else:
                last = trainer.train()
    except RunDirBusy as e:
        return error(prog, first_line(e))
    except RunInterrupted as e:
        print(f"{prog}: {e.describe(prog)}", file=sys.stderr)
        return e.exit_code
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
    if last:
        print(trainer.summary(last))
    return 0
