"""Shared fixtures of the benchmarks."""

import os

import pytest


@pytest.fixture
def batch_scale() -> int:
    """``$QWR_FAST_BENCH_BATCH_SCALE`` (default 1): the op benchmarks multiply their batch by it,
    from the trainers' CPU shapes to GPU-sized ones (``bench/gpu_check.py`` uses 64)."""
    value = os.environ.get("QWR_FAST_BENCH_BATCH_SCALE", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"QWR_FAST_BENCH_BATCH_SCALE must be an integer >= 1, got {value!r}")
    return int(value)
