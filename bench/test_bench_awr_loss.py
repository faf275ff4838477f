"""awr_loss forward + backward at the QWR trainers' shapes vs the eager composite and its
``torch.compile``. Run: ``python -m pytest bench/test_bench_awr_loss.py -q
--benchmark-columns=median,iqr,rounds``."""

import pytest
import torch

from qwr_fast.kernels.awr_loss import awr_loss, awr_loss_reference

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

SHAPES = {  # name: (kind, B, n, A or K)
    "mujoco_n4": ("gaussian", 256, 4, 6),
    "mujoco_n8": ("gaussian", 256, 8, 6),
    "atari_n8": ("categorical", 256, 8, 18),
}


def _inputs(kind, B, n, width):
    q = torch.randn(B, n, device=DEVICE)
    if kind == "gaussian":
        mean = torch.randn(B, width, device=DEVICE, requires_grad=True)
        log_std = torch.full((width,), -0.9, device=DEVICE, requires_grad=True)
        actions = torch.randn(B, n, width, device=DEVICE)
        return (mean, log_std), actions, q
    logits = torch.randn(B, width, device=DEVICE, requires_grad=True)
    return (logits,), torch.randint(0, width, (B, n), device=DEVICE), q


def _floor(kind, B, n, width):
    """Floor FLOPs and minimum bytes of forward + backward (see the awr_loss docstring)."""
    if kind == "gaussian":
        flops = 20 * B * n * width
        nbytes = 4 * (2 * B * n * width + B * n + 2 * 2 * B * width + 2 * B * n + 2 * B * width)
    else:
        flops = 6 * B * n + 8 * B * width
        nbytes = 2 * 8 * B * n + 4 * (B * n + 2 * B * width + 2 * B * n + B * width)
    return flops, nbytes


def _naive(kind):
    """The composite a user writes: torch.distributions log_prob, then the weighting."""

    def loss_fn(params, actions, q):
        return awr_loss_reference((kind, *params), actions, q, beta=1.0, max_weight=20.0)

    return loss_fn


def _fused(kind):
    def loss_fn(params, actions, q):
        return awr_loss((kind, *params), actions, q, beta=1.0, max_weight=20.0)

    return loss_fn


def _step(loss_fn, params, actions, q):
    def run():
        loss = loss_fn(params, actions, q)
        grads = torch.autograd.grad(loss, params)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return grads

    return run


@pytest.mark.parametrize("impl", ["awr_loss", "eager", "compiled"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_bench_awr_loss(benchmark, shape, impl, batch_scale):
    kind, B, n, width = SHAPES[shape]
    B *= batch_scale
    params, actions, q = _inputs(kind, B, n, width)
    if impl == "awr_loss":
        loss_fn = _fused(kind)
    elif impl == "eager":
        loss_fn = _naive(kind)
    else:
        loss_fn = torch.compile(_naive(kind), fullgraph=True)
    run = _step(loss_fn, params, actions, q)
    for _ in range(3):
        run()
    benchmark.group = (
        f"awr_loss {shape} ({kind}, B={B}, n={n}, {'A' if kind == 'gaussian' else 'K'}={width})"
    )
    grads = benchmark(run)
    assert all(torch.isfinite(g).all() for g in grads)
    flops, nbytes = _floor(kind, B, n, width)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        device=str(DEVICE),
        floor_flops=flops,
        floor_bytes=nbytes,
        gflops=flops / median / 1e9,
        gbytes_per_s=nbytes / median / 1e9,
    )
