"""Atomic, integrity-checked checkpoints that hold only data.

A checkpoint file is ``MAGIC`` (8 bytes) + the SHA-256 of the payload (32 bytes) + the payload
(``torch.save`` of a dict). It is written to a temporary file in the same directory, flushed to
disk and moved into place with ``os.replace``, so a crash leaves either the old or the new file,
never a partial one. Loading a truncated or corrupt file raises :class:`CheckpointError` naming
the file; nothing ever silently restarts from scratch.

The SHA-256 only detects corruption; what keeps a checkpoint from someone else from running
code is what it may hold. The payload is read with ``torch.load(weights_only=True)`` (a
restricted unpickler, which imports and calls nothing outside an allow-list) and the allow-list
is :data:`ALLOWED_GLOBALS`: tensors, numpy arrays, dtypes and scalars, and
``qwr_fast.envs.EnvState``; besides these only what the restricted unpickler allows by
itself: dicts (also ``OrderedDict``), lists, tuples, sets, str, bytes, numbers, bools, None,
``torch.Size`` and ``torch.device``. Anything else (a class, a function) is refused before
unpickling starts, with a one-line :class:`CheckpointError` naming the file and the global. Env
snapshots are stored as plain data (``qwr_fast.envs._loop.plain_state``: ALE, MuJoCo and
OpenSpiel states as those libraries' own bytes or text, MinAtar games as their fields);
:func:`save_checkpoint` refuses (TypeError) a state that would need any other global.

Checkpoints written before snapshots were stored as data pickled the snapshot objects
themselves (MinAtar's ``Environment`` and game with a ``RandomState``, ALE's ``ALEState``,
MuJoCo's ``MjData``, OpenSpiel's ``State``). :data:`LEGACY_GLOBALS` reads exactly those names,
but into inert stand-ins (:class:`_LegacyObject`) that only hold the pickled data; no class or
function of those libraries is imported or called while unpickling, and the loaded state
carries the snapshots as plain data, which ``set_state`` checks against the live env.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import re
import tempfile
import threading
from typing import Any

import numpy as np
import torch

__all__ = [
    "ALLOWED_GLOBALS",
    "LEGACY_GLOBALS",
    "CheckpointError",
    "CorruptCheckpointError",
    "checkpoint_paths",
    "atomic_write",
    "save_checkpoint",
    "umask_mode",
    "load_checkpoint",
    "latest_checkpoint",
]

MAGIC = b"QWRCKPT1"
_DIGEST = 32


def umask_mode(fd: int) -> None:
    """Give the file open at ``fd`` the mode a plain ``open()`` would (``0o666`` less the
    umask) instead of ``tempfile.mkstemp``'s ``0o600``, so that run files in a shared results
    directory are readable by whoever may read the directory."""
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)


def atomic_write(path: str | os.PathLike, write, *, mode: str = "wb") -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the same folder (with
    the umask's mode), which is flushed to disk and moved into place with ``os.replace``, so a
    crash leaves either the old file or the new one, never a partial one."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}-",
        suffix=".tmp",
        dir=os.path.dirname(os.path.abspath(path)),
    )
    umask_mode(fd)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (missing, truncated, corrupt, of another format, or
    holding something other than data)."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file that is truncated or corrupt (bad header or SHA-256 mismatch): a
    damaged file, as opposed to one that holds what a checkpoint may not."""


# ---------------------------------------------------------------------------- the allow-list
def _numpy_globals() -> dict[str, Any]:
    """The numpy names that ``torch.save`` writes for arrays, dtypes and scalars (under numpy
    2's ``numpy._core`` and numpy 1's ``numpy.core``), and the dtype classes that unpickling a
    dtype sets the state of."""
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    out: dict[str, Any] = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[f"{module}._reconstruct"] = reconstruct
        out[f"{module}.scalar"] = scalar
    for code in "?bBhHiIlLqQefdgFDGUSO":  # bool, ints, floats, complex, str, bytes, object
        t = type(np.dtype(code))
        out[f"{t.__module__}.{t.__qualname__}"] = t
    return out


class _LegacyObject:
    """What an old checkpoint's pickled snapshot object (of :data:`LEGACY_GLOBALS`) is read
    into: its pickled state and nothing else. A dict state becomes attributes (MinAtar's
    plain-Python game objects); any other (the bytes or text of ALE, MuJoCo and OpenSpiel
    states) is what ``__getstate__`` returns, as those libraries' own objects would."""

    def __setstate__(self, state: Any) -> None:
        if type(state) is dict:
            vars(self).update(state)
        else:
            vars(self)["_pickled"] = state

    def __getstate__(self) -> Any:
        if "_pickled" not in vars(self):
            raise TypeError("this snapshot object of an old checkpoint holds no serialised state")
        return vars(self)["_pickled"]


class _LegacyRandomState:
    """What an old checkpoint's pickled ``numpy.random.RandomState`` is read into: the state
    dict it was pickled with, returned by ``get_state`` as the real one would."""

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def get_state(self, legacy: bool = False) -> Any:
        if legacy:
            raise TypeError("only the dict form of an old RandomState's state is kept")
        return self._state


def _legacy_random_state(*args: Any) -> _LegacyRandomState:
    """Stands for ``numpy.random._pickle.__randomstate_ctor`` and ``__bit_generator_ctor``;
    ignores its arguments (a bit generator, its class or its name)."""
    return _LegacyRandomState()


class _LegacyToken:
    """Stands for a bit generator class named by an old ``RandomState`` pickle, which is only
    ever an argument of :func:`_legacy_random_state`."""


_MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
LEGACY_GLOBALS: dict[str, Any] = {
    "minatar.environment.Environment": _LegacyObject,
    **{f"minatar.environments.{game}.Env": _LegacyObject for game in _MINATAR_GAMES},
    "ale_py._ale_py.ALEState": _LegacyObject,
    "mujoco._structs.MjData": _LegacyObject,
    "pyspiel.State": _LegacyObject,
    "numpy.random._pickle.__randomstate_ctor": _legacy_random_state,
    "numpy.random._pickle.__bit_generator_ctor": _legacy_random_state,
    "numpy.random._mt19937.MT19937": _LegacyToken,
    "qwr_fast.checkpoint._LegacyRandomState": _LegacyRandomState,
}
"""The globals of the env snapshots that checkpoints pickled before they stored snapshots as
data, each mapped to an inert stand-in (see the module docstring). Read, never written."""


def _allowed_globals() -> dict[str, Any]:
    from qwr_fast.envs._vector import EnvState

    return {**_numpy_globals(), "qwr_fast.envs._vector.EnvState": EnvState}


ALLOWED_GLOBALS: tuple[str, ...] = (
    *_numpy_globals(),
    "qwr_fast.envs._vector.EnvState",
)
"""The global names (besides torch's own tensor types) that a checkpoint may hold: numpy's
array, dtype and scalar reconstruction, and ``EnvState``."""

_LOAD_LOCK = threading.Lock()


def _allowing(names: dict[str, Any]):
    """``torch.serialization.safe_globals`` for the entries of ``names`` that the process has
    not allowed already, so that leaving it takes back exactly what it added (and nothing is
    left allowed after a load)."""
    present = set(torch.serialization.get_safe_globals())
    return torch.serialization.safe_globals(
        [(obj, name) for name, obj in names.items() if (obj, name) not in present]
    )


def _foreign_globals(payload: bytes, allowed: set[str]) -> list[str]:
    """The globals of ``payload`` that are neither torch's own safe ones nor in ``allowed``
    (``[]`` if the payload cannot be scanned: the restricted unpickler then decides)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(payload))
    except Exception:
        return []
    return sorted(set(names) - allowed)


def _unpickler_reason(e: BaseException) -> str:
    """The restricted unpickler's own reason, without torch's advice to load unsafely."""
    text = str(e)
    marker = "WeightsUnpickler error: "
    if marker in text:
        return text.split(marker, 1)[1].splitlines()[0].split(" Please use")[0]
    return text.splitlines()[0] if text else type(e).__name__


def _map_env_states(obj: Any, fn) -> Any:
    """``obj`` with ``fn`` applied to each ``EnvState`` in it, looking through dicts, lists and
    tuples; containers are rebuilt only where something inside changed (so a module's
    ``state_dict``, an ``OrderedDict`` with metadata, is passed through as it is)."""
    from qwr_fast.envs._vector import EnvState

    if isinstance(obj, EnvState):
        return fn(obj)
    if type(obj) is dict:
        new = {k: _map_env_states(v, fn) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else new
    if type(obj) in (list, tuple):
        items = [_map_env_states(v, fn) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else type(obj)(items)
    return obj


def _plain_env_states(state: Any) -> Any:
    from qwr_fast.envs._loop import plain_state

    return _map_env_states(state, plain_state)


# ----------------------------------------------------------------------------- save and load
def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temp file + ``os.replace``). Env snapshots in it
    are stored as plain data; TypeError, before anything is written, if the state holds
    anything a checkpoint may not (a global outside :data:`ALLOWED_GLOBALS`)."""
    buf = io.BytesIO()
    torch.save(_plain_env_states(state), buf)
    payload = buf.getvalue()
    foreign = _foreign_globals(payload, set(ALLOWED_GLOBALS))
    if foreign:
        raise TypeError(
            f"cannot save checkpoint {path}: the state holds {', '.join(foreign)}, and a "
            "checkpoint may hold only tensors, numpy arrays, plain Python data and EnvState"
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(f) -> None:
        f.write(MAGIC)
        f.write(hashlib.sha256(payload).digest())
        f.write(payload)

    atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`CheckpointError` if it is
    missing, truncated or corrupt, or holds anything but data (a global outside
    :data:`ALLOWED_GLOBALS` and :data:`LEGACY_GLOBALS`: refused without running it). Env
    snapshots come back as plain data (also those of old checkpoints), which ``set_state``
    takes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    if len(data) < len(MAGIC) + _DIGEST or data[: len(MAGIC)] != MAGIC:
        raise CorruptCheckpointError(
            f"checkpoint {path} is truncated or not a qwr_fast checkpoint "
            f"({len(data)} bytes, header {data[:8]!r})"
        )
    digest = data[len(MAGIC) : len(MAGIC) + _DIGEST]
    payload = data[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptCheckpointError(
            f"checkpoint {path} is truncated or corrupt (SHA-256 mismatch over {len(payload)} "
            "payload bytes); refusing to resume from it"
        )
    allowed = {**_allowed_globals(), **LEGACY_GLOBALS}
    foreign = _foreign_globals(payload, set(allowed))
    if foreign:
        raise CheckpointError(
            f"checkpoint {path} holds {', '.join(foreign)}, which a qwr_fast checkpoint may not "
            "hold (only tensors, numpy arrays, plain Python data and EnvState); refusing to "
            "load it"
        )
    try:
        with _LOAD_LOCK, _allowing(allowed):
            state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:  # a valid digest over a payload the restricted unpickler refuses
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded as data: {_unpickler_reason(e)}"
        ) from e
    try:
        return _plain_env_states(state)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} holds an unreadable env state: {e}") from e


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
