"""The CPU path of ``sampled_q_head`` vs the same path with ``torch.tanh``, side by side.

``_sampled_q_head_torch`` computes the gated action term ``gate * tanh(z)`` as
``2 * gate * sigmoid(2z) - gate`` (one sigmoid pass, one addcmul pass), because torch's CPU
``tanh_`` took 3x as long as ``sigmoid_`` on an AVX2-only CPU (docs/results.md). This times
both forms of the whole head, one process, one thread by default, at the trainers' shapes, and
prints the largest deviation of each from ``sampled_q_head_reference``.

    python bench/qwr_head_tanh_forms.py [--threads 1] [--iters 100]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from qwr_fast.kernels.sampled_q_head import (
    LN_EPS,
    QHeadParams,
    _sampled_q_head_torch,
    sampled_q_head_reference,
)

# name: (B, n, A or None, K or None); H = 256
SHAPES = {
    "qwr_mujoco_critic_target (n=4 x T=3)": (256, 12, 6, None),
    "qwr_mujoco_actor (n=4)": (256, 4, 6, None),
    "aql_A17_n500": (32, 500, 17, None),
    "aql_K18_n500 (tanh over the K rows, unchanged)": (32, 500, None, 18),
}


def head_with_tanh(gate: torch.Tensor, actions: torch.Tensor, params: QHeadParams) -> torch.Tensor:
    """The head as written with ``torch.tanh`` (the torch path before the sigmoid form)."""
    w_a, b_a, ln_w, ln_b, w_1, b_1, w_o, b_o = params
    B, H = gate.shape
    n = actions.shape[1]
    if actions.dim() == 2 and w_a.shape[0] <= B * n:
        action_term = F.embedding(actions.reshape(B * n), (w_a + b_a).tanh_())
    elif actions.dim() == 2:
        action_term = F.embedding(actions.reshape(B * n), w_a).add_(b_a).tanh_()
    else:
        action_term = torch.addmm(b_a, actions.reshape(B * n, -1), w_a.T).tanh_()
    x = action_term.view(B, n, H).mul_(gate[:, None, :]).view(B * n, H)
    x = F.layer_norm(x, (H,), ln_w, ln_b, LN_EPS)
    y = torch.addmm(b_1, x, w_1.T).relu_()
    return torch.mv(y, w_o).add_(b_o).view(B, n)


def make_case(B: int, n: int, A: int | None, K: int | None, H: int = 256):
    g = torch.Generator().manual_seed(0)
    w_a = torch.randn(H, A, generator=g) / A**0.5 if A else torch.randn(K, H, generator=g)
    params = QHeadParams(
        w_a,
        0.1 * torch.randn(H, generator=g),
        torch.ones(H),
        torch.zeros(H),
        torch.randn(H, H, generator=g) / 16,
        torch.zeros(H),
        torch.randn(H, generator=g) / 16,
        torch.tensor(0.0),
    )
    gate = torch.randn(B, H, generator=g)
    if A:
        actions = torch.randn(B, n, A, generator=g).clamp_(-1, 1)
    else:
        actions = torch.randint(0, K, (B, n), generator=g)
    return gate, actions, params


def ms_per_call(fn, args, iters: int) -> float:
    for _ in range(10):
        fn(*args)
    start = time.perf_counter()
    for _ in range(iters):
        fn(*args)
    return (time.perf_counter() - start) / iters * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"tanh_ vs sigmoid_ on [3072, 256] fp32, {args.threads} thread(s):", end=" ")
    z = torch.randn(3072, 256)
    print(
        f"{ms_per_call(lambda: z.clone().tanh_(), (), args.iters):.3f} / "
        f"{ms_per_call(lambda: z.clone().sigmoid_(), (), args.iters):.3f} ms (with a clone each)"
    )
    print(
        "| shape | rows | torch.tanh form, ms | sigmoid form (qwr_fast), ms | speed-up | "
        "max abs err vs reference: tanh / sigmoid |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, (B, n, A, K) in SHAPES.items():
        case = make_case(B, n, A, K)
        expected = sampled_q_head_reference(*case)
        errs = [
            (f(*case) - expected).abs().max().item()
            for f in (head_with_tanh, _sampled_q_head_torch)
        ]
        # interleaved, twice, so that drift on a shared machine hits both forms alike
        t_tanh = t_sig = 0.0
        for _ in range(2):
            t_tanh += ms_per_call(head_with_tanh, case, args.iters) / 2
            t_sig += ms_per_call(_sampled_q_head_torch, case, args.iters) / 2
        print(
            f"| {name} | {B * n} | {t_tanh:.3f} | {t_sig:.3f} | {t_tanh / t_sig:.2f}x | "
            f"{errs[0]:.1e} / {errs[1]:.1e} |"
        )


if __name__ == "__main__":
    main()
