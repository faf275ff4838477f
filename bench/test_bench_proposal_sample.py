"""proposal_sample vs the step-by-step sampler a user would write, at the AQL shapes.

Every variant maps (z0 [B, E], heads, emb) -> (actions [B, N, D], logp [B, N]) without grad:
- ``op``: the fused op, ``backend="auto"`` (Triton on CUDA, the vectorised torch path on CPU).
- ``naive``: z0 repeated N times, then per sub-action a Linear, ``Categorical(logits)``,
  ``sample()``, ``log_prob()`` and the embedding update, eager.
- ``naive_compiled``: the per-step computation in Gumbel-argmax form under ``torch.compile``
  (compiled and warmed up outside the timing), called D times.
GB/s and GFLOP/s in ``extra_info`` use the op's floor (see the op's docstring).

Run::

    python -m pytest bench/test_bench_proposal_sample.py -q \\
        --benchmark-columns=median,iqr,rounds
"""

import pytest
import torch
from torch.distributions import Categorical

from qwr_fast.kernels.proposal_sample import proposal_sample

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# name: (B, N, D, K, E)
SHAPES = {
    "aql_B32_N100_D17_K11_E256": (32, 100, 17, 11, 256),
    "small_B256_N8_D3_K5_E64": (256, 8, 3, 5, 64),
}
VARIANTS = ("op", "naive", "naive_compiled")


def floor(B, N, D, K, E):
    """(FLOPs, bytes) floor: per sample and step a [K, E] GEMV, relu and the z update."""
    M = B * N
    flops = M * D * (2 * K * E + 2 * E)
    bytes_ = 4 * (2 * D * K * E + D * K + B * E) + M * (8 * D + 4)
    return flops, bytes_


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def naive(z0, heads_w, heads_b, emb, N):
    z = z0.repeat_interleave(N, dim=0)  # [B * N, E]
    actions, logp = [], 0.0
    for d in range(heads_w.shape[0]):
        dist = Categorical(logits=torch.nn.functional.linear(torch.relu(z), heads_w[d], heads_b[d]))
        a = dist.sample()
        logp = logp + dist.log_prob(a)
        z = z + emb[d][a]
        actions.append(a)
    return torch.stack(actions, -1).view(z0.shape[0], N, -1), logp.view(z0.shape[0], N)


def gumbel_step(z, w_d, b_d, emb_d):
    logits = torch.nn.functional.linear(torch.relu(z), w_d, b_d)
    g = -torch.log(-torch.log(torch.rand_like(logits)))
    a = torch.argmax(logits + g, dim=-1)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, a[:, None])[:, 0]
    return z + emb_d[a], a, logp


def composite(step, z0, heads_w, heads_b, emb, N):
    z = z0.repeat_interleave(N, dim=0)
    actions, logp = [], 0.0
    for d in range(heads_w.shape[0]):
        z, a, lp = step(z, heads_w[d], heads_b[d], emb[d])
        logp = logp + lp
        actions.append(a)
    return torch.stack(actions, -1).view(z0.shape[0], N, -1), logp.view(z0.shape[0], N)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_proposal_sample(benchmark, shape, variant, batch_scale):
    B, N, D, K, E = SHAPES[shape]
    B *= batch_scale
    torch.manual_seed(0)
    z0 = torch.randn(B, E, device=DEVICE)
    heads_w = torch.randn(D, K, E, device=DEVICE) / E**0.5
    heads_b = torch.randn(D, K, device=DEVICE)
    emb = torch.randn(D, K, E, device=DEVICE)
    args = (z0, heads_w, heads_b, emb, N)

    if variant == "op":
        fn = lambda: proposal_sample(*args)
    elif variant == "naive":
        fn = lambda: naive(*args)
    else:
        compiled_step = torch.compile(gumbel_step)
        fn = lambda: composite(compiled_step, *args)

    def timed():
        out = fn()
        sync()
        return out

    with torch.no_grad():
        for _ in range(3):
            actions, logp = timed()
        assert actions.shape == (B, N, D) and logp.shape == (B, N)
        benchmark.group = shape
        benchmark(timed)
    flops, bytes_ = floor(B, N, D, K, E)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {"device": str(DEVICE), "GFLOP/s": flops / median / 1e9, "GB/s": bytes_ / median / 1e9}
    )
