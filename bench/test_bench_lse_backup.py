"""lse_backup at the QWR trainers' shapes vs the eager composite a user writes and its
``torch.compile``. Run: ``python -m pytest bench/test_bench_lse_backup.py -q
--benchmark-columns=median,iqr,rounds``."""

import math

import pytest
import torch

from qwr_fast.kernels.lse_backup import lse_backup

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TAU, LAM = 0.3, 0.95

SHAPES = {  # name: (B, T, n); QWR MuJoCo uses n=4 (or 8), QWR Atari n=8
    "qwr_mujoco_n4": (256, 3, 4),
    "qwr_mujoco_atari_n8": (256, 3, 8),
    "large_n8": (65536, 3, 8),
}


def _inputs(B, T, n):
    q_next = torch.randn(B, T, n, device=DEVICE)
    reward = torch.randn(B, T, device=DEVICE)
    discount = 0.99 * (torch.rand(B, T, device=DEVICE) > 0.05).float()
    stop = torch.rand(B, T, device=DEVICE) < 0.05
    return q_next, reward, discount, stop


def _floor(B, T, n):
    """Floor FLOPs and minimum bytes (fp32, with stop; see the lse_backup docstring)."""
    return B * T * (5 * n + 6), 4 * B * T * n + 8 * B * T + B * T + 4 * B


def naive_backup(q_next, reward, discount, stop):
    """The composite a user writes: logsumexp per step, then a Python loop over the margin."""
    T, n = q_next.shape[1], q_next.shape[2]
    values = [TAU * (torch.logsumexp(q_next[:, i] / TAU, dim=-1) - math.log(n)) for i in range(T)]
    g = reward[:, T - 1] + discount[:, T - 1] * values[T - 1]
    for i in reversed(range(T - 1)):
        bootstrap = torch.where(stop[:, i], values[i], (1 - LAM) * values[i] + LAM * g)
        g = reward[:, i] + discount[:, i] * bootstrap
    return g


def fused_backup(q_next, reward, discount, stop):
    return lse_backup(q_next, reward, discount, tau=TAU, lam=LAM, stop=stop)


@pytest.mark.parametrize("impl", ["lse_backup", "eager", "compiled"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_bench_lse_backup(benchmark, shape, impl, batch_scale):
    B, T, n = SHAPES[shape]
    B *= batch_scale
    inputs = _inputs(B, T, n)
    if impl == "compiled":
        fn = torch.compile(naive_backup, fullgraph=True)
    else:
        fn = fused_backup if impl == "lse_backup" else naive_backup

    def run():
        out = fn(*inputs)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return out

    expected = naive_backup(*inputs)
    for _ in range(3):
        torch.testing.assert_close(run(), expected, rtol=1e-5, atol=1e-5)
    benchmark.group = f"lse_backup {shape} (B={B}, T={T}, n={n})"
    benchmark(run)
    flops, nbytes = _floor(B, T, n)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        device=str(DEVICE),
        floor_flops=flops,
        floor_bytes=nbytes,
        gflops=flops / median / 1e9,
        gbytes_per_s=nbytes / median / 1e9,
    )
