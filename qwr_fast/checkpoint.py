"""Atomic, integrity-checked checkpoints.

A checkpoint file is ``MAGIC`` (8 bytes) + the SHA-256 of the payload (32 bytes) + the payload
(``torch.save`` of a dict). It is written to a temporary file in the same directory, flushed to
disk and moved into place with ``os.replace``, so a crash leaves either the old or the new file,
never a partial one. Loading a truncated or corrupt file raises :class:`CheckpointError` naming
the file; nothing ever silently restarts from scratch.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import re
import tempfile

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint"]

MAGIC = b"QWRCKPT1"
_DIGEST = 32


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (missing, truncated, corrupt, or of another format)."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temp file + ``os.replace``)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            f.write(hashlib.sha256(payload).digest())
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`CheckpointError` if it is
    missing, truncated or corrupt."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    if len(data) < len(MAGIC) + _DIGEST or data[: len(MAGIC)] != MAGIC:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a qwr_fast checkpoint "
            f"({len(data)} bytes, header {data[:8]!r})"
        )
    digest = data[len(MAGIC) : len(MAGIC) + _DIGEST]
    payload = data[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt (SHA-256 mismatch over {len(payload)} "
            "payload bytes); refusing to resume from it"
        )
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
    except Exception as e:  # a valid digest over an unreadable payload
        raise CheckpointError(f"checkpoint {path} cannot be unpickled: {e}") from e


def _step_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, str]]:
    """``(step, path)`` of every ``ckpt_<step>.pt`` in ``run_dir``, oldest first."""
    steps = []
    for p in glob.glob(os.path.join(run_dir, "ckpt_*.pt")):
        m = re.fullmatch(r"ckpt_(\d+)\.pt", os.path.basename(p))
        if m:
            steps.append((int(m.group(1)), p))
    return sorted(steps)


def checkpoint_paths(run_dir: str | os.PathLike) -> list[str]:
    """Paths of every ``ckpt_<step>.pt`` in ``run_dir``, oldest first (``[]`` if none or no
    such directory)."""
    return [path for _, path in _step_checkpoints(run_dir)]


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest ``ckpt_<step>.pt`` of ``run_dir``.

    ``keep <= 0`` keeps them all.
    """
    if keep <= 0:
        return
    for _, path in _step_checkpoints(run_dir)[:-keep]:
        os.unlink(path)


def latest_checkpoint(run_dir: str | os.PathLike) -> str:
    """Path of the checkpoint with the highest step in ``run_dir`` (``ckpt_<step>.pt``)."""
    steps = _step_checkpoints(run_dir)
    if not steps:
        raise CheckpointError(f"no checkpoint (ckpt_<step>.pt) in run directory {run_dir}")
    return max(steps)[1]
