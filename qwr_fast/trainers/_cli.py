"""The command-line front shared by the trainers' entry points (qwr-, aql-, ppo-, dqn-train)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qwr_fast.checkpoint import CheckpointError


def error(prog: str, msg: str) -> int:
    """Print ``prog: error: msg`` to stderr; return the exit status 2."""
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return 2


def trainer_from_argv(
    prog: str, config_cls: type, trainer_cls: type, presets: dict, argv: list[str]
) -> Any:
    """Build a trainer from ``argv``: ``--preset`` first (its values become the defaults that
    explicit flags override), then the typed config via tyro; ``--resume RUN_DIR`` continues a
    run (``--total-steps`` may extend it). Returns the trainer, or 2 after a one-line error."""
    import tyro

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="none")
    known, _ = pre.parse_known_args(argv)
    if known.preset not in presets:
        return error(prog, f"--preset must be one of {', '.join(presets)}, got {known.preset!r}")
    default = config_cls(**presets[known.preset], preset=known.preset)
    cfg = tyro.cli(config_cls, default=default, args=argv, prog=prog)
    try:
        if cfg.resume is None:
            return trainer_cls(cfg)
        overrides: dict = {"progress": cfg.progress}
        if any(a.startswith("--total-steps") for a in argv):
            overrides["total_steps"] = cfg.total_steps
        return trainer_cls.resumed(cfg.resume, **overrides)
    except (ValueError, TypeError, CheckpointError, FileNotFoundError) as e:
        return error(prog, str(e).splitlines()[0] if str(e) else type(e).__name__)
