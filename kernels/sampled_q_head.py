"""Fused sampled-action Q head: Q(s, a_j) for n sampled actions per state, forward only.

The Q network of QWR (Kozakowski et al., 2021, arXiv 2102.06782) and AQL (Van de Wiele et al.,
2020, arXiv 2001.08116) injects the action after the state body: ``x = gate * tanh(W_a a +
b_a)``, LayerNorm, one ReLU layer and a scalar output. The state part (``gate``) is computed
once per state; this op evaluates the action part for all n samples without writing any
``[B*n, H]`` intermediate to memory.

Overflow-safe LayerNorm: a row whose largest ``|x|`` reaches ``2^50`` (a gate that large) is
first multiplied by the power of two that brings it below, which is exact; LayerNorm is
invariant to that factor except through ``eps``, and such a row's variance is either 0 or far
above ``eps``. Its sum of squares then stays finite in fp32 (it would overflow from
``|x| ~ 1e19``), and every other row is computed exactly as without the rescale.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ._common import (
    AOTSpec,
    check_tensor,
    empty,
    next_power_of_2,
    resolve_backend,
    value_checks_enabled,
    warn_if_bf16_emulated,
)

LN_EPS = 1e-5
_LN_SAFE_EXP = tl.constexpr(50)  # rows with max |x| >= 2^50 are rescaled before the LayerNorm
PRECISIONS = ("ieee", "tf32", "bf16")
# The Triton kernel's tl.dot precisions. No bf16 there: Triton's interpreter multiplies the raw
# bit patterns of bf16 dot operands (triton-lang/triton#11584, "not supported yet"), so a bf16
# kernel could not be verified on CPU; the torch path has it (AMX / AVX512-BF16 CPUs).
KERNEL_PRECISIONS = ("ieee", "tf32")


@triton.jit
def _tanh(x):
    # exp-based tanh (tl has none); the odd Taylor series keeps relative accuracy near 0
    ax = tl.abs(x)
    t = tl.exp(-2.0 * ax)
    big = (1.0 - t) / (1.0 + t)
    x2 = ax * ax
    small = ax * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0)))
    y = tl.where(ax < 0.05, small, big)
    return tl.where(x < 0, -y, y)


@triton.jit
def _sampled_q_head_fwd_kernel(
    gate_ptr,
    act_ptr,
    wa_ptr,
    ba_ptr,
    lnw_ptr,
    lnb_ptr,
    w1_ptr,
    b1_ptr,
    wo_ptr,
    bo_ptr,
    out_ptr,
    M,
    n,
    H,
    A,
    stride_gb,
    stride_gh,
    stride_ab,
    stride_an,
    stride_aa,
    stride_wa0,
    stride_wa1,
    stride_w10,
    stride_w11,
    DISCRETE: tl.constexpr,
    EPS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M).to(tl.int64)  # [BLOCK_M] flat (b, j)
    row_mask = rows < M
    b = rows // n
    j = rows % n
    cols = tl.arange(0, BLOCK_H)
    col_mask = cols < H
    mask2 = row_mask[:, None] & col_mask[None, :]

    ba = tl.load(ba_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)  # [BLOCK_H]
    if DISCRETE:
        idx = tl.load(act_ptr + b * stride_ab + j * stride_an, mask=row_mask, other=0).to(tl.int64)
        valid = (idx >= 0) & (idx < A)  # A is the table size K here
        pre = tl.load(
            wa_ptr + idx[:, None] * stride_wa0 + cols[None, :] * stride_wa1,
            mask=mask2 & valid[:, None],
            other=0.0,
        ).to(tl.float32)  # [BLOCK_M, BLOCK_H]
    else:
        pre = tl.zeros((BLOCK_M, BLOCK_H), dtype=tl.float32)
        for k in range(A):
            a_k = tl.load(
                act_ptr + b * stride_ab + j * stride_an + k * stride_aa, mask=row_mask, other=0.0
            ).to(tl.float32)  # [BLOCK_M]
            w_k = tl.load(wa_ptr + cols * stride_wa0 + k * stride_wa1, mask=col_mask, other=0.0).to(
                tl.float32
            )  # [BLOCK_H]
            pre += a_k[:, None] * w_k[None, :]
    g = tl.load(
        gate_ptr + b[:, None] * stride_gb + cols[None, :] * stride_gh, mask=mask2, other=0.0
    ).to(tl.float32)  # [BLOCK_M, BLOCK_H]
    x = g * _tanh(pre + ba[None, :])
    # rows reaching |x| >= 2^50: times 2^-(e - 50) (exact; e the frexp exponent of max |x|)
    e = ((tl.max(tl.abs(x), axis=1).to(tl.int32, bitcast=True) >> 23) & 0xFF) - 126
    shift = tl.maximum(e - _LN_SAFE_EXP, 0)  # [BLOCK_M]
    x = x * ((127 - shift) << 23).to(tl.float32, bitcast=True)[:, None]

    mean = tl.sum(x, axis=1) / H  # [BLOCK_M]
    xc = tl.where(col_mask[None, :], x - mean[:, None], 0.0)
    var = tl.sum(xc * xc, axis=1) / H
    rstd = 1.0 / tl.sqrt(var + EPS)
    lnw = tl.load(lnw_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    lnb = tl.load(lnb_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    xn = xc * rstd[:, None] * lnw[None, :] + lnb[None, :]  # padded columns are 0

    q = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for c in range(0, H, BLOCK_N):
        outs = c + tl.arange(0, BLOCK_N)
        out_mask = outs < H
        w1t = tl.load(
            w1_ptr + outs[None, :] * stride_w10 + cols[:, None] * stride_w11,
            mask=out_mask[None, :] & col_mask[:, None],
            other=0.0,
        ).to(tl.float32)  # [BLOCK_H, BLOCK_N] = W_1[c:c+BLOCK_N, :]^T
        b1 = tl.load(b1_ptr + outs, mask=out_mask, other=0.0).to(tl.float32)
        wo = tl.load(wo_ptr + outs, mask=out_mask, other=0.0).to(tl.float32)
        y = tl.dot(xn, w1t, input_precision=PRECISION) + b1[None, :]  # [BLOCK_M, BLOCK_N]
        q += tl.sum(tl.maximum(y, 0.0) * wo[None, :], axis=1)
    q += tl.load(bo_ptr).to(tl.float32)
    if DISCRETE:
        q = tl.where(valid, q, float("nan"))  # only reachable with value checks off
    tl.store(out_ptr + rows, q.to(out_ptr.dtype.element_ty), mask=row_mask)


def _launch_config(H: int) -> dict[str, int]:
    block_h = max(16, next_power_of_2(H))
    return {
        "BLOCK_M": 32 if block_h <= 128 else 16,
        "BLOCK_H": block_h,
        "BLOCK_N": 32 if block_h <= 128 else 16,
    }


def _sampled_q_head_fwd_triton(
    gate: torch.Tensor, actions: torch.Tensor, params: QHeadParams, precision: str
) -> torch.Tensor:
    B, H = gate.shape
    n = actions.shape[1]
    discrete = actions.dim() == 2
    M = B * n
    out = empty((B, n), dtype=gate.dtype, device=gate.device)
    if M == 0:
        return out
    w1 = params.w_1
    cfg = _launch_config(H)
    if discrete:
        act_strides = (actions.stride(0), actions.stride(1), 0)
        a_size = params.w_a.shape[0]
    else:
        act_strides = actions.stride()
        a_size = actions.shape[2]
    grid = (triton.cdiv(M, cfg["BLOCK_M"]),)
    _sampled_q_head_fwd_kernel[grid](
        gate,
        actions,
        params.w_a,
        params.b_a.contiguous(),
        params.ln_w.contiguous(),
        params.ln_b.contiguous(),
        w1,
        params.b_1.contiguous(),
        params.w_o.contiguous(),
        params.b_o,
        out,
        M,
        n,
        H,
        a_size,
        gate.stride(0),
        gate.stride(1),
        *act_strides,
        params.w_a.stride(0),
        params.w_a.stride(1),
        w1.stride(0),
        w1.stride(1),
        DISCRETE=discrete,
        EPS=LN_EPS,
        PRECISION=precision,
        num_warps=4,
        **cfg,
    )
    return out


class QHeadParams(NamedTuple):
    """Parameters of the sampled-action Q head (shapes for hidden width H).

    ``w_a``: ``[H, A]`` (``nn.Linear`` layout) for float actions, or the embedding table
    ``[K, H]`` for int actions; ``b_a``, ``ln_w``, ``ln_b``, ``b_1``, ``w_o``: ``[H]``;
    ``w_1``: ``[H, H]`` (``nn.Linear`` layout, out x in); ``b_o``: 0-dim.
    """

    w_a: torch.Tensor
    b_a: torch.Tensor
    ln_w: torch.Tensor
    ln_b: torch.Tensor
    w_1: torch.Tensor
    b_1: torch.Tensor
    w_o: torch.Tensor
    b_o: torch.Tensor


def _ln_rescale(amax: torch.Tensor) -> torch.Tensor:
    """The exact power of two that brings a row's ``amax`` (max |x|) below ``2^50``; 1 for
    rows already below (see the module docstring)."""
    _, e = torch.frexp(amax)
    return torch.ldexp(torch.ones_like(amax), (_LN_SAFE_EXP.value - e).clamp_(max=0))


def sampled_q_head_reference(
    gate: torch.Tensor, actions: torch.Tensor, params: QHeadParams
) -> torch.Tensor:
    """Plain-PyTorch ground truth of :func:`sampled_q_head` (differentiable, not fast)."""
    w_a, b_a, ln_w, ln_b, w_1, b_1, w_o, b_o = params
    embedded = w_a[actions] if actions.dim() == 2 else actions @ w_a.T  # [B, n, H]
    x = gate[:, None, :] * torch.tanh(embedded + b_a)
    x = x * _ln_rescale(x.detach().abs().amax(dim=-1, keepdim=True))  # 1 but for |x| >= 2^50
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + LN_EPS) * ln_w + ln_b
    x = torch.relu(x @ w_1.T + b_1)
    return x @ w_o + b_o


def _sampled_q_head_torch(
    gate: torch.Tensor, actions: torch.Tensor, params: QHeadParams, precision: str = "ieee"
) -> torch.Tensor:
    """Vectorised CPU path: gate broadcast over n, one [B*n, H] x [H, H] GEMM, in-place ops.

    ``precision="bf16"`` runs that GEMM on bfloat16 operands (AMX / AVX512-BF16 on CPUs that
    have them); everything else stays in ``gate.dtype``. Autocast is off inside, so an
    enclosing ``torch.autocast`` region changes nothing but what the caller asks for."""
    w_a, b_a, ln_w, ln_b, w_1, b_1, w_o, b_o = params
    B, H = gate.shape
    n = actions.shape[1]
    if B == 0:
        return empty((0, n), dtype=gate.dtype, device=gate.device)
    # |x| <= |gate| row by row: rescaling a state's gate rescales its n rows (module docstring)
    gate = gate * _ln_rescale(gate.abs().amax(dim=1, keepdim=True))
    with torch.autocast(gate.device.type, enabled=False):
        if actions.dim() == 2 and w_a.shape[0] <= B * n:  # tanh over the K rows, then gather
            action_term = F.embedding(actions.reshape(B * n), (w_a + b_a).tanh_())
            x = action_term.view(B, n, H).mul_(gate[:, None, :])
        else:
            # gate * tanh(z) = 2 gate sigmoid(2z) - gate: a sigmoid pass and an addcmul pass
            # over the [B*n, H] rows: on an AVX2-only CPU torch's tanh_ took 2.66 ms and
            # sigmoid_ 0.88 ms at [3072, 256] (docs/results.md); z's 2 goes into W_a and b_a,
            # or, for a table with more rows than B*n, into the B*n gathered rows (x2 is exact)
            if actions.dim() == 2:
                z2 = F.embedding(actions.reshape(B * n), w_a).add_(b_a).mul_(2.0)
            else:
                z2 = torch.addmm(b_a * 2.0, actions.reshape(B * n, -1), w_a.T * 2.0)
            x = z2.sigmoid_().view(B, n, H)
            torch.addcmul(gate.neg()[:, None, :], x, gate[:, None, :], value=2.0, out=x)
        x = F.layer_norm(x.view(B * n, H), (H,), ln_w, ln_b, LN_EPS)
        if precision == "bf16":
            y = torch.addmm(b_1.bfloat16(), x.bfloat16(), w_1.bfloat16().T).relu_()
            y = y.to(gate.dtype)
        else:
            y = torch.addmm(b_1, x, w_1.T).relu_()
        out = empty((B * n,), dtype=gate.dtype, device=gate.device)
        return torch.mv(y, w_o, out=out).add_(b_o).view(B, n)


@torch.library.custom_op("qwr_fast::sampled_q_head", mutates_args=())
def _sampled_q_head_op(
    gate: torch.Tensor,
    actions: torch.Tensor,
    w_a: torch.Tensor,
    b_a: torch.Tensor,
    ln_w: torch.Tensor,
    ln_b: torch.Tensor,
    w_1: torch.Tensor,
    b_1: torch.Tensor,
    w_o: torch.Tensor,
    b_o: torch.Tensor,
    backend: str,
    precision: str,
) -> torch.Tensor:
    params = QHeadParams(w_a, b_a, ln_w, ln_b, w_1, b_1, w_o, b_o)
    if backend == "triton":
        return _sampled_q_head_fwd_triton(gate, actions, params, precision)
    return _sampled_q_head_torch(gate, actions, params, precision)


@_sampled_q_head_op.register_fake
def _(gate, actions, w_a, b_a, ln_w, ln_b, w_1, b_1, w_o, b_o, backend, precision):
    return gate.new_empty((gate.shape[0], actions.shape[1]))


def _validate(gate: torch.Tensor, actions: torch.Tensor, params: QHeadParams) -> None:
    check_tensor("gate", gate, ndim=2, kind="float", what="[B, H]")
    B, H = gate.shape
    device = gate.device
    if not isinstance(params, tuple) or len(params) != 8:
        raise TypeError(
            "params must be a QHeadParams(w_a, b_a, ln_w, ln_b, w_1, b_1, w_o, b_o), "
            f"got {type(params).__name__}"
        )
    params = QHeadParams(*params)
    check_tensor("actions", actions, ndim=(2, 3), device=device, what="[B, n, A] or [B, n]")
    if actions.shape[0] != B:
        raise ValueError(
            f"actions must have batch size B={B} like gate [B, H], got shape {tuple(actions.shape)}"
        )
    if actions.shape[1] == 0:
        raise ValueError("actions must hold n >= 1 sampled actions per state, got n == 0")
    if actions.dim() == 3:
        check_tensor("actions", actions, kind="float", what="[B, n, A] (float)")
        A = actions.shape[2]
        check_tensor(
            "params.w_a",
            params.w_a,
            kind="float",
            shape=(H, A),
            device=device,
            what="[H, A] for float actions",
        )
    else:
        check_tensor("actions", actions, kind="int", what="[B, n] (int64 indices)")
        check_tensor(
            "params.w_a",
            params.w_a,
            ndim=2,
            kind="float",
            shape=(None, H),
            device=device,
            what="[K, H] embedding table for int actions",
        )
        K = params.w_a.shape[0]
        if value_checks_enabled(device) and actions.numel() > 0:
            bad = (actions < 0) | (actions >= K)
            if bool(bad.any()):
                value = actions[bad][0].item()
                raise ValueError(
                    f"actions must be in [0, K={K}) for params.w_a [K, H], got {value}"
                )
    for name in ("b_a", "ln_w", "ln_b", "b_1", "w_o"):
        check_tensor(
            f"params.{name}",
            getattr(params, name),
            kind="float",
            shape=(H,),
            device=device,
            what="[H]",
        )
    check_tensor("params.w_1", params.w_1, kind="float", shape=(H, H), device=device, what="[H, H]")
    check_tensor("params.b_o", params.b_o, kind="float", shape=(), device=device, what="0-dim")
    float_actions = [("actions", actions)] if actions.dim() == 3 else []
    for name, t in float_actions + [(f"params.{f}", getattr(params, f)) for f in params._fields]:
        if t.dtype != gate.dtype:
            raise TypeError(
                f"{name} must have the dtype of gate ({gate.dtype}), got {t.dtype}: gate, "
                "params and float actions must share one dtype"
            )


def sampled_q_head(
    gate: torch.Tensor,
    actions: torch.Tensor,
    params: QHeadParams,
    *,
    precision: str = "ieee",
    backend: str = "auto",
) -> torch.Tensor:
    """Q(s, a_j) for n sampled actions per state, from the per-state gate (forward only).

    The Q network (QWR, Kozakowski et al. 2021, arXiv 2102.06782, as in trax's ``rl.py``;
    also the action-in critic of AQL, Van de Wiele et al. 2020, arXiv 2001.08116) is
    ``h = body(s)``, ``gate = W_s h + b_s`` (``[B, H]``, computed once per state by the
    caller), then per sampled action::

        x = gate * tanh(W_a a + b_a)        # float actions a [A]; W_a = w_a [H, A]
        x = gate * tanh(E[a] + b_a)         # int actions a in [0, K); E = w_a [K, H]
        x = LayerNorm(x) * ln_w + ln_b      # eps LN_EPS = 1e-5, over H (overflow-safe)
        x = relu(W_1 x + b_1)               # W_1 = w_1 [H, H]
        q = w_o . x + b_o

    Args:
        gate: ``[B, H]`` float, the state features ``W_s h + b_s``.
        actions: ``[B, n, A]`` float, or ``[B, n]`` int64 indices into ``params.w_a [K, H]``.
        params: :class:`QHeadParams` (``SampledQ.head_params()`` gives them).
        precision: operands of the ``W_1`` product: ``"ieee"`` (exact fp32, default),
            ``"tf32"`` (Triton kernel on tensor cores, ~1e-3 relative; the torch paths run it
            in fp32) or ``"bf16"`` (bfloat16 operands with fp32 accumulation, ~1e-2 relative;
            the torch path only, where CPUs with AMX or AVX512-BF16 run it several times
            faster and other CPUs emulate it 10-60x slower, with a ``UserWarning``;
            ``"auto"`` picks it, ``"triton"`` raises, see ``KERNEL_PRECISIONS``). The
            ``"reference"`` backend is always exact fp32.
        backend: ``"auto"`` | ``"triton"`` | ``"torch"`` | ``"reference"``.

    Returns:
        ``[B, n]`` in ``gate.dtype`` (``[0, n]`` for an empty batch). The result never
        requires grad (targets, baselines and argmax only); train the critic through
        ``SampledQ.forward``. Finite for every finite gate: rows whose ``|x|`` would overflow
        the LayerNorm's sum of squares are rescaled first (module docstring).

    Raises ``ValueError`` on wrong ranks, batch or H mismatches, n == 0, mismatched devices or
    (always on CPU, switchable on CUDA) int actions outside ``[0, K)``; ``TypeError`` on a
    non-float ``gate`` or params, non-int discrete actions, or params / float actions whose
    dtype is not ``gate.dtype``.

    Example::

        >>> import torch
        >>> from qwr_fast.kernels import QHeadParams, sampled_q_head
        >>> B, n, A, H = 4, 8, 6, 64
        >>> p = QHeadParams(torch.randn(H, A), torch.zeros(H), torch.ones(H), torch.zeros(H),
        ...                 torch.randn(H, H) / 8, torch.zeros(H), torch.randn(H), torch.tensor(0.))
        >>> sampled_q_head(torch.randn(B, H), torch.randn(B, n, A), p).shape
        torch.Size([4, 8])

    Cost (QWR Atari/MuJoCo shape B=256, n=8, H=256, A=6; M = B*n = 2048 rows):
        FLOPs ~ 2*M*H*H (W_1) + 2*M*H*A + ~15*M*H = 268M + 6M + 8M ~ 0.28 GFLOP.
        Minimum bytes: gate 4*B*H + actions 4*M*A + w_1 4*H*H + out 4*M ~ 0.58 MB (the
        [M, H] intermediates, 2 MB each, never touch memory).
        H100: compute bound; ~4.7 us at 60 TFLOP/s fp32 (``"ieee"``), ~0.6 us with tf32 tensor
        cores, 0.2 us for the bytes at 3.0 TB/s, so in practice launch latency (~3 us) rules.
        AQL (B=32, n=500): M = 16000 rows, ~2.2 GFLOP, ~36 us fp32 / ~5 us tf32.
    """
    _validate(gate, actions, params)
    params = QHeadParams(*params)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision not in KERNEL_PRECISIONS:
        if backend == "triton":
            raise ValueError(
                f"precision {precision!r} is not available in the Triton kernel (it has "
                f"{KERNEL_PRECISIONS}); use backend='torch' or 'auto'"
            )
        if backend == "auto":
            backend = "torch"  # the implementation that has this precision
    backend = resolve_backend(backend, gate.device)
    if precision == "bf16" and backend == "torch" and gate.device.type == "cpu":
        warn_if_bf16_emulated("sampled_q_head(precision='bf16') on CPU tensors")
    with torch.no_grad():
        if backend == "reference":
            return sampled_q_head_reference(gate, actions, params)
        if backend == "torch" and not torch.compiler.is_compiling() and not gate.is_meta:
            # eager CPU: skip the custom-op dispatcher, same implementation (meta tensors
            # take the op, whose fake gives the shape)
            return _sampled_q_head_torch(gate.detach(), actions.detach(), params, precision)
        return torch.ops.qwr_fast.sampled_q_head(
            gate.detach(), actions.detach(), *(p.detach() for p in params), backend, precision
        )


def aot_specs() -> list[AOTSpec]:
    """The forward kernel at the trainers' widths (H=256; H=64 for the small tests), both the
    continuous and the discrete variant, ieee and tf32 for H=256."""
    specs = []
    for H, precisions in ((256, KERNEL_PRECISIONS), (64, ("ieee",))):
        for discrete in (False, True):
            for precision in precisions:
                cfg = _launch_config(H)
                signature = {
                    "gate_ptr": "*fp32",
                    "act_ptr": "*i64" if discrete else "*fp32",
                    **{p: "*fp32" for p in ("wa_ptr", "ba_ptr", "lnw_ptr", "lnb_ptr", "w1_ptr")},
                    **{p: "*fp32" for p in ("b1_ptr", "wo_ptr", "bo_ptr", "out_ptr")},
                    **{p: "i32" for p in ("M", "n", "H", "A")},
                    **{
                        p: "i64"
                        for p in (
                            "stride_gb",
                            "stride_gh",
                            "stride_ab",
                            "stride_an",
                            "stride_aa",
                            "stride_wa0",
                            "stride_wa1",
                            "stride_w10",
                            "stride_w11",
                        )
                    },
                    **{p: "constexpr" for p in ("DISCRETE", "EPS", "PRECISION", *cfg)},
                }
                constexprs = {"DISCRETE": discrete, "EPS": LN_EPS, "PRECISION": precision, **cfg}
                kind = "discrete" if discrete else "continuous"
                name = (
                    f"_sampled_q_head_fwd_kernel[{kind},H={H},{precision},"
                    f"BM={cfg['BLOCK_M']},BN={cfg['BLOCK_N']}]"
                )
                specs.append(AOTSpec(name, _sampled_q_head_fwd_kernel, signature, constexprs))
    return specs
