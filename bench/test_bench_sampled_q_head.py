"""sampled_q_head vs the naive composite a user would write, at the trainers' shapes.

Every variant maps (obs [B, O], actions [B, n, A] or int [B, n]) -> Q [B, n] without grad, so
all three time the same thing end to end:
- ``op``: ``SampledQ.q_sampled``: the body and gate once per state, then the fused head.
- ``naive``: the observation repeated n times through the whole Q network (``SampledQ.forward``
  on B*n single actions), eager.
- ``naive_compiled``: ``torch.compile`` of ``naive`` (compiled and warmed up outside the timing).
- ``op_head_only``: the fused head alone, gate precomputed (what a trainer that already has
  the gate pays).
GB/s and GFLOP/s in ``extra_info`` use the op's floor (head only, see the op's docstring).

Run::

    python -m pytest bench/test_bench_sampled_q_head.py -q --benchmark-columns=median,iqr,rounds
"""

import pytest
import torch

from qwr_fast.kernels.sampled_q_head import sampled_q_head
from qwr_fast.nn.sampled_q import SampledQ

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# name: (B, n, O, A or None, K or None, H)
SHAPES = {
    "qwr_mujoco_n4": (256, 4, 17, 6, None, 256),
    "qwr_mujoco_n8": (256, 8, 17, 6, None, 256),
    "qwr_atari_K18_n8": (256, 8, 17, None, 18, 256),
    "aql_K18_n500": (32, 500, 17, None, 18, 256),
    "aql_A17_n500": (32, 500, 17, 17, None, 256),
}
VARIANTS = ("op", "op_head_only", "naive", "naive_compiled")


def floor(B, n, A, K, H):
    """(FLOPs, bytes) floor of the fused head: W_1 GEMM, action projection, elementwise."""
    M = B * n
    flops = 2 * M * H * H + (2 * M * H * A if A else M * H) + 15 * M * H
    action_bytes = 4 * M * A if A else 8 * M
    table = 4 * H * A if A else 4 * K * H
    bytes_ = 4 * B * H + action_bytes + table + 4 * (H * H + 5 * H + 1) + 4 * M
    return flops, bytes_


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_sampled_q_head(benchmark, shape, variant, batch_scale):
    B, n, O, A, K, H = SHAPES[shape]
    B *= batch_scale
    torch.manual_seed(0)
    kwargs = {"action_dim": A} if A else {"num_actions": K}
    net = SampledQ(O, hidden=H, **kwargs).to(DEVICE)
    obs = torch.randn(B, O, device=DEVICE)
    if A:
        actions = torch.randn(B, n, A, device=DEVICE)
    else:
        actions = torch.randint(0, K, (B, n), device=DEVICE)

    def naive(obs, actions):
        flat = actions.reshape(B * n, -1) if A else actions.reshape(B * n)
        return net(obs.repeat_interleave(n, dim=0), flat).view(B, n)

    if variant == "op":
        fn = lambda: net.q_sampled(obs, actions)
    elif variant == "op_head_only":
        with torch.no_grad():
            gate = net.gate(obs)
        params = tuple(p.detach() for p in net.head_params())
        fn = lambda: sampled_q_head(gate, actions, params)
    elif variant == "naive":
        fn = lambda: naive(obs, actions)
    else:
        compiled = torch.compile(naive)
        fn = lambda: compiled(obs, actions)

    expected = net.q_sampled(obs, actions, backend="reference")

    def timed():
        with torch.no_grad():
            out = fn()
        sync()
        return out

    out = timed()  # warm-up (and compilation for naive_compiled)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    benchmark.group = shape
    rounds = 15 if B * n <= 2048 else 4  # keeps the CPU run under 2 minutes
    result = benchmark.pedantic(timed, rounds=rounds, warmup_rounds=1)
    assert result.shape == (B, n)
    flops, bytes_ = floor(B, n, A, K, H)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        device=str(DEVICE),
        floor_gflop=flops / 1e9,
        floor_mb=bytes_ / 1e6,
        gflops=flops / median / 1e9,
        gbs=bytes_ / median / 1e9,
    )
