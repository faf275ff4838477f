"""Shared helpers of the op core: backend dispatch, input validation, AOT specs.

This is the one small module every op file imports; it holds no op logic and does not import
Triton. The op files do, at module level (``import triton`` to define their ``@triton.jit``
kernels), so importing ``qwr_fast.kernels`` needs the ``triton`` package even on a CPU-only
machine (``pyproject.toml`` requires it on Linux); there the kernels run only under
``TRITON_INTERPRET=1``. :func:`triton_available` asks for it again before ``backend="triton"``
is chosen; only ``aot.py`` imports Triton lazily, inside its functions.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch

BACKENDS = ("auto", "triton", "torch", "reference")

_value_checks_on_cuda = True
_poison_outputs = False


def interpret_mode() -> bool:
    """True when ``TRITON_INTERPRET=1``: Triton kernels then run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX tiles).

    Elsewhere (e.g. AVX2-only CPUs such as AMD EPYC Zen 3) torch emulates bf16 products: there
    a [3072, 256] x [256, 256] bf16 GEMM ran 65x slower than in fp32, and a QWR HalfCheetah
    training step 9x slower (docs/results.md).
    A torch without the probes counts as native (no warning)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: True)() for name in probes)


def warn_if_bf16_emulated(what: str) -> None:
    """Warn (``UserWarning``, once per call site) that ``what`` asks for bf16 products on a
    CPU that emulates them; ``what`` names the argument the caller set."""
    if not cpu_has_native_bf16():
        warnings.warn(
            f"{what}: this CPU has neither AVX512-BF16 nor AMX, so torch emulates bfloat16 "
            "products, 10-60x slower than fp32 (docs/results.md); fp32 is faster here",
            stacklevel=3,
        )


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> str:
    """Pick the implementation for tensors on ``device``.

    ``auto``: Triton for CUDA tensors (and for CPU tensors under ``TRITON_INTERPRET=1``), the
    optimised PyTorch path otherwise. ``triton`` on CPU tensors without the interpreter, or on
    a machine without Triton, is an error rather than a silent fallback.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        if (device.type == "cuda" or interpret_mode()) and triton_available():
            return "triton"
        return "torch"
    if backend == "triton":
        if not triton_available():
            raise ValueError("backend='triton' needs the triton package (pip install triton)")
        if device.type != "cuda" and not interpret_mode():
            raise ValueError(
                f"backend='triton' needs CUDA tensors (got {device.type}) or TRITON_INTERPRET=1 "
                "set before triton is imported"
            )
    return backend


def value_checks_enabled(device: torch.device) -> bool:
    """Range checks (which read tensor values) always run on CPU; on CUDA they sync the host,
    so they can be switched off with :func:`skip_value_checks` for CUDA-graph capture. Meta
    tensors have no values: they are never value-checked (shape propagation still works)."""
    if torch.compiler.is_compiling() or device.type == "meta":
        return False
    return device.type != "cuda" or _value_checks_on_cuda


@contextlib.contextmanager
def skip_value_checks() -> Iterator[None]:
    """Context manager: skip the host-syncing value-range checks on CUDA tensors.

    Use it around a CUDA-graph capture or a ``torch.compile`` region; shape, dtype and device
    checks still run. CPU tensors are always checked.
    """
    global _value_checks_on_cuda
    previous = _value_checks_on_cuda
    _value_checks_on_cuda = False
    try:
        yield
    finally:
        _value_checks_on_cuda = previous


@contextlib.contextmanager
def poison_outputs() -> Iterator[None]:
    """Test hook: inside this context :func:`empty` fills new outputs with NaN (ints with -1),
    so that an element a kernel forgets to write fails the comparison."""
    global _poison_outputs
    previous = _poison_outputs
    _poison_outputs = True
    try:
        yield
    finally:
        _poison_outputs = previous


def empty(shape: tuple[int, ...], *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Allocate an op output (every launcher uses this, so tests can poison outputs)."""
    if not _poison_outputs:
        return torch.empty(shape, dtype=dtype, device=device)
    fill = float("nan") if dtype.is_floating_point else -1
    return torch.full(shape, fill, dtype=dtype, device=device)


def check_tensor(
    name: str,
    t: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    kind: str | None = None,
    shape: tuple[int | None, ...] | None = None,
    device: torch.device | None = None,
    what: str = "",
) -> torch.Tensor:
    """Validate one tensor argument; raise ``TypeError``/``ValueError`` naming it.

    ``kind`` is ``"float"`` (floating point), ``"int"`` (int64/int32) or ``"bool"``.
    ``shape`` entries of ``None`` match any size. ``what`` describes the expected layout
    (e.g. ``"[B, T, n]"``) and is quoted in the message.
    """
    layout = f" {what}" if what else ""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{layout}, got {type(t).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if t.dim() not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dims{layout}, "
                f"got shape {tuple(t.shape)}"
            )
    if shape is not None and (
        t.dim() != len(shape)
        or any(s is not None and s != ts for s, ts in zip(shape, t.shape, strict=True))
    ):
        expected = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {expected}{layout}, got {tuple(t.shape)}")
    if kind == "float" and not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor{layout}, got {t.dtype}")
    if kind == "int" and t.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 (or int32) tensor{layout}, got {t.dtype}")
    if kind == "bool" and t.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor{layout}, got {t.dtype}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the other inputs are on {device}")
    return t


def check_positive(name: str, value: float | torch.Tensor, device: torch.device) -> None:
    """``value`` (a float or a 0-dim tensor) must be finite and > 0."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(
                f"{name} must be a float or a 0-dim tensor, got shape {tuple(value.shape)}"
            )
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
        if value.device != device:
            raise ValueError(f"{name} is on {value.device} but the other inputs are on {device}")
        if value_checks_enabled(value.device) and not bool(value > 0):
            raise ValueError(f"{name} must be > 0, got {value.item()}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float or a 0-dim tensor, got {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


def check_scores(name: str, t: torch.Tensor, *, what: str, row: str) -> bool:
    """Value checks of scores whose ``-inf`` entries mark excluded samples (the samples are the
    last dim): NaN and +inf are errors, and every row (``row`` names its index, e.g. ``"b"``)
    needs a finite entry. Returns False only when ``t`` is known to hold no ``-inf``, so that
    the caller can skip its exclusion masks; True when the checks are off."""
    if not value_checks_enabled(t.device) or t.numel() == 0:
        return True
    if math.isfinite(float(t.detach().sum())):
        return False
    finite = torch.isfinite(t)
    if bool(finite.all()):  # finite entries whose sum overflowed
        return False
    if bool((torch.isnan(t) | torch.isposinf(t)).any()):
        raise ValueError(f"{name} must not contain NaN or +inf (-inf marks an excluded sample)")
    if not bool(finite.any(-1).all()):
        raise ValueError(
            f"{name} {what} needs at least one finite entry per {row} row; a row is all -inf"
        )
    return True


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


class AOTSpec(NamedTuple):
    """One kernel instance to compile ahead of time (``python -m qwr_fast.kernels.aot``).

    ``signature`` maps every kernel parameter to its Triton type (``"*fp32"``, ``"i32"``,
    ``"fp32"``, ``"constexpr"``...); ``constexprs`` gives the constexpr values of one config.
    """

    name: str
    fn: Callable[..., Any]
    signature: dict[str, str]
    constexprs: dict[str, Any]
