"""``lse_backup``: the QWR critic target, backup operator F fused with the multi-step return.

Recursion (one row b; ``i`` indexes the margin, ``V_i`` is the value of s_{t+i+1})::

    V_i     = F(q_next[b, i, :])
    G_{T-1} = r_{T-1} + d_{T-1} V_{T-1}
    G_i     = r_i + d_i * (V_i                          if stop_i
                           (1 - lam) V_i + lam G_{i+1}  otherwise)

It is the TD(lambda) return truncated at the margin: ``G_{i+1}`` is the lambda-return from
s_{t+i+1}, so the bootstrap at that state mixes the one-step value ``V_i`` with it. At a slice
end (``stop_i``) nothing past s_{t+i+1} belongs to the episode, so the bootstrap is ``V_i``
alone; a termination is already in ``d_i = 0``, a truncation keeps ``d_i = gamma`` and
bootstraps through ``V_i``. Writing ``lam_i = lam * (1 - stop_i)`` (and ``lam_{T-1} = 0``),
``a_i = r_i + d_i (1 - lam_i) V_i`` and ``c_i = d_i lam_i``, the recursion is
``G_i = a_i + c_i G_{i+1}``: a first-order linear recurrence, evaluated backwards from
i = T-1 (the Triton kernel keeps ``G`` in registers and reads q_next exactly once; the CPU
path runs the same recurrence vectorised over B).

Stable log-mean-exp: ``tau * (logsumexp(q / tau) - log n) = m + tau * (log sum exp((q - m) /
tau) - log n)`` with ``m = max q``; every exponent is <= 0, so |q|/tau up to 1e4 (and beyond)
neither overflows nor loses the leading term. ``-inf`` entries contribute ``exp(-inf) = 0``
and are left out of ``n``. A tau so small that ``1 / tau`` overflows the compute dtype uses the
largest finite ``1 / tau`` instead: every ``q < m`` still gets ``exp(...) = 0`` and the maxima
``exp(0) = 1``, which is the limit the exact formula takes there (a plain ``0 * inf`` at the
maxima would be NaN).

Overflow-safe mean: when the plain sum of a row overflows (``|q|`` near the float max), the
row is summed again as ``q * 2^-64`` (exact) and the mean rescaled by ``2^64``.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    AOTSpec,
    check_positive,
    check_scores,
    check_tensor,
    empty,
    next_power_of_2,
    resolve_backend,
)

MODES = ("lse", "max", "mean")
_MODE_ID = {mode: i for i, mode in enumerate(MODES)}
_MAX_BLOCK_N = 1024
_TILE = 512
_MEAN_SCALE = 2.0**-64  # overflow-safe mean: rows whose plain sum overflows are summed scaled


@triton.jit(do_not_specialize=["B", "T", "n", "lam"])
def _lse_backup_fwd_kernel(
    q_ptr,
    r_ptr,
    d_ptr,
    stop_ptr,
    tau_ptr,
    out_ptr,
    B,
    T,
    n,
    lam,
    stride_qb,
    stride_qt,
    stride_qn,
    stride_rb,
    stride_rt,
    stride_db,
    stride_dt,
    stride_sb,
    stride_st,
    MODE: tl.constexpr,
    HAS_STOP: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    row0 = pid * BLOCK_B
    offs_b = tl.arange(0, BLOCK_B)  # [BLOCK_B]; in-tile offsets stay int32 (checked on the host)
    row_mask = row0 + offs_b < B
    cols = tl.arange(0, BLOCK_N)  # [BLOCK_N]
    tau = tl.load(tau_ptr).to(tl.float32)
    inv_tau = tl.minimum(1.0 / tau, 3.4028234663852886e38)  # finite for a denormal tau
    q_tile = q_ptr + row0 * stride_qb
    q_rows = offs_b[:, None] * stride_qb  # [BLOCK_B, 1]
    r_tile = r_ptr + row0 * stride_rb
    d_tile = d_ptr + row0 * stride_db
    s_tile = stop_ptr + row0 * stride_sb
    g = tl.zeros([BLOCK_B], dtype=tl.float32)
    for k in range(0, T):
        i = T - 1 - k
        m = tl.full([BLOCK_B], float("-inf"), dtype=tl.float32)
        acc = tl.zeros([BLOCK_B], dtype=tl.float32)
        acc_scaled = tl.zeros([BLOCK_B], dtype=tl.float32)
        cnt = tl.zeros([BLOCK_B], dtype=tl.float32)
        for c0 in range(0, n, BLOCK_N):
            c = c0 + cols
            mask = row_mask[:, None] & (c < n)[None, :]
            q = tl.load(
                q_tile + i * stride_qt + (q_rows + c[None, :] * stride_qn),
                mask=mask,
                other=float("-inf"),
            ).to(tl.float32)  # [BLOCK_B, BLOCK_N]
            finite = q > float("-inf")
            cnt += tl.sum(finite.to(tl.float32), axis=1)
            m_new = tl.maximum(m, tl.max(q, axis=1))
            if MODE == 0:
                # online log-sum-exp; a row still all -inf keeps a shift of 0 (exp(-inf) = 0)
                shift = tl.where(m_new > float("-inf"), m_new, 0.0)
                acc = acc * tl.exp((m - shift) * inv_tau) + tl.sum(
                    tl.exp((q - shift[:, None]) * inv_tau), axis=1
                )
            elif MODE == 2:
                acc += tl.sum(tl.where(finite, q, 0.0), axis=1)
                acc_scaled += tl.sum(tl.where(finite, q * 2.0**-64, 0.0), axis=1)
            m = m_new
        # padded rows: m = -inf, acc = cnt = 0; valid rows have acc >= 1 (lse) and cnt >= 1
        m = tl.where(row_mask, m, 0.0)
        cnt = tl.maximum(cnt, 1.0)
        if MODE == 0:
            v = m + tau * (tl.log(tl.maximum(acc, 1.0)) - tl.log(cnt))
        elif MODE == 1:
            v = m
        else:
            # a sum that overflowed (|q| near the float max) is taken from the scaled sum
            v = tl.where(tl.abs(acc) < float("inf"), acc / cnt, acc_scaled / cnt * 2.0**64)
        r = tl.load(r_tile + i * stride_rt + offs_b * stride_rb, mask=row_mask, other=0.0)
        d = tl.load(d_tile + i * stride_dt + offs_b * stride_db, mask=row_mask, other=0.0)
        lam_i = tl.where(i == T - 1, 0.0, lam)
        boot = (1.0 - lam_i) * v + lam_i * g
        if HAS_STOP:
            s = tl.load(s_tile + i * stride_st + offs_b * stride_sb, mask=row_mask, other=0)
            boot = tl.where(s != 0, v, boot)
        g = r.to(tl.float32) + d.to(tl.float32) * boot
    tl.store(out_ptr + row0 + offs_b, g.to(out_ptr.dtype.element_ty), mask=row_mask)


def _block_sizes(n: int) -> tuple[int, int]:
    block_n = min(next_power_of_2(n), _MAX_BLOCK_N)
    return max(1, _TILE // block_n), block_n


def _tile_extent(t: torch.Tensor, block_b: int) -> int:
    """Largest element offset inside one [BLOCK_B, ...] tile (the kernel keeps it in int32)."""
    inner = sum(
        (size - 1) * stride for size, stride in zip(t.shape[1:], t.stride()[1:], strict=True)
    )
    return (block_b - 1) * t.stride(0) + inner


def _lse_backup_fwd_triton(
    q_next: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    stop: torch.Tensor | None,
    tau: torch.Tensor,
    mode: str,
    lam: float,
) -> torch.Tensor:
    B, T, n = q_next.shape
    out = empty((B,), dtype=q_next.dtype, device=q_next.device)
    if B == 0:
        return out
    block_b, block_n = _block_sizes(n)
    for name, t in (("q_next", q_next), ("reward", reward), ("discount", discount), ("stop", stop)):
        if t is not None and _tile_extent(t, block_b) >= 2**31:
            raise ValueError(f"{name}: per-tile offsets of strides {t.stride()} exceed int32")
    stop_arg = stop if stop is not None else reward
    stop_strides = stop.stride() if stop is not None else (0, 0)
    _lse_backup_fwd_kernel[(triton.cdiv(B, block_b),)](
        q_next,
        reward,
        discount,
        stop_arg,
        tau.to(torch.float32),
        out,
        B,
        T,
        n,
        float(lam),
        *q_next.stride(),
        *reward.stride(),
        *discount.stride(),
        *stop_strides,
        MODE=_MODE_ID[mode],
        HAS_STOP=stop is not None,
        BLOCK_B=block_b,
        BLOCK_N=block_n,
        num_warps=4,
    )
    return out


def lse_backup_reference(
    q_next: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    *,
    mode: str = "lse",
    tau: float | torch.Tensor = 1.0,
    lam: float = 1.0,
    stop: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain-PyTorch ground truth of :func:`lse_backup` (float64 inside, no input checks)."""
    with torch.no_grad():
        q = q_next.double()
        r = reward.double()
        d = discount.double()
        tau = tau.double() if isinstance(tau, torch.Tensor) else float(tau)
        T = q.shape[1]
        values = []
        for i in range(T):
            q_i = q[:, i, :]
            valid = torch.isfinite(q_i)
            count = valid.sum(-1).double()
            if mode == "lse":
                v = tau * (torch.logsumexp(q_i / tau, dim=-1) - torch.log(count))
            elif mode == "max":
                v = q_i.max(dim=-1).values
            elif mode == "mean":
                v = torch.where(valid, q_i, 0.0).sum(-1) / count
            else:
                raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
            values.append(v)
        g = r[:, T - 1] + d[:, T - 1] * values[T - 1]
        for i in reversed(range(T - 1)):
            bootstrap = (1.0 - lam) * values[i] + lam * g
            if stop is not None:
                bootstrap = torch.where(stop[:, i], values[i], bootstrap)
            g = r[:, i] + d[:, i] * bootstrap
        return g.to(q_next.dtype)


def _lse_backup_torch(
    q_next: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    stop: torch.Tensor | None,
    tau_t: torch.Tensor | None,
    tau: float,
    mode: str,
    lam: float,
    may_exclude: bool,
) -> torch.Tensor:
    """Vectorised path: F over all [B, T] rows at once, then the recursion over the margin
    with two fused ops per step (``lerp`` for the lambda mix, ``addcmul`` for r + d * x)."""
    dtype = torch.promote_types(q_next.dtype, torch.float32)
    q, r, d = (t if t.dtype == dtype else t.to(dtype) for t in (q_next, reward, discount))
    T, n = q.shape[1], q.shape[2]
    if tau_t is not None and tau_t.dtype != dtype:
        # a tau below the dtype's smallest denormal would round to 0: keep it > 0
        finfo = torch.finfo(dtype)
        tau_t = tau_t.to(dtype).clamp_min_(finfo.smallest_normal * finfo.eps)
    if may_exclude:
        excluded = torch.isneginf(q)
        count = n - excluded.sum(-1, dtype=dtype)  # [B, T]
    if mode == "lse":
        # by hand: torch.logsumexp on a contiguous last dim runs a parallel kernel even at
        # [256, 3, 8], which stalled for ~10 ms per call on the shared 2-core CPU
        m = q.amax(dim=-1, keepdim=True)  # [B, T, 1]
        inv_tau = min(1.0 / tau, torch.finfo(dtype).max)  # finite for a denormal tau
        z = (q - m).mul_(inv_tau) if tau_t is None else (q - m).div_(tau_t)
        lme = z.exp_().sum(-1).log_() - (count.log() if may_exclude else math.log(n))
        v = m.squeeze(-1) + lme * (tau if tau_t is None else tau_t)  # [B, T]
    elif mode == "max":
        v = q.amax(dim=-1)
    else:
        kept = q.masked_fill(excluded, 0.0) if may_exclude else q
        v = kept.sum(-1) / count if may_exclude else q.mean(dim=-1)
        # rows whose plain sum overflowed: the sum of q * 2^-64 (exact) cannot (on CPU only
        # when needed, as the check is free there; elsewhere without a host sync)
        if v.device.type != "cpu" or not bool(torch.isfinite(v).all()):
            scaled = (kept * _MEAN_SCALE).sum(-1).div_(count if may_exclude else n).mul_(2.0**64)
            v = torch.where(torch.isfinite(v), v, scaled)
    lam_bt = None if stop is None else torch.where(stop, 0.0, lam)  # [B, T]
    if lam_bt is not None and lam_bt.dtype != dtype:
        lam_bt = lam_bt.to(dtype)
    g = torch.addcmul(r[:, T - 1], d[:, T - 1], v[:, T - 1])
    for i in range(T - 2, -1, -1):
        bootstrap = torch.lerp(v[:, i], g, lam if lam_bt is None else lam_bt[:, i])
        g = torch.addcmul(r[:, i], d[:, i], bootstrap)
    return g if g.dtype == q_next.dtype else g.to(q_next.dtype)


@torch.library.custom_op("qwr_fast::lse_backup", mutates_args=())
def _lse_backup_op(
    q_next: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    stop: torch.Tensor | None,
    tau_t: torch.Tensor | None,
    tau: float,
    mode: str,
    lam: float,
    may_exclude: bool,
    backend: str,
) -> torch.Tensor:
    if backend == "triton":
        if tau_t is None:
            tau_t = torch.full((), tau, dtype=torch.float32, device=q_next.device)
        return _lse_backup_fwd_triton(q_next, reward, discount, stop, tau_t, mode, lam)
    args = (q_next, reward, discount, stop, tau_t, tau, mode, lam, may_exclude)
    return _lse_backup_torch(*args)


@_lse_backup_op.register_fake
def _(q_next, reward, discount, stop, tau_t, tau, mode, lam, may_exclude, backend):
    return q_next.new_empty((q_next.shape[0],))


def _validate(q_next, reward, discount, stop, mode, tau, lam) -> bool:
    """Raise on bad input; return False only when q_next is known to hold no -inf."""
    check_tensor("q_next", q_next, ndim=3, kind="float", what="[B, T, n]")
    B, T, n = q_next.shape
    device = q_next.device
    if T == 0:
        raise ValueError("q_next must have T >= 1 steps [B, T, n], got shape (B, 0, n)")
    if n == 0:
        raise ValueError("q_next must have n >= 1 sampled actions [B, T, n], got n == 0")
    check_tensor("reward", reward, kind="float", shape=(B, T), device=device, what="[B, T]")
    check_tensor("discount", discount, kind="float", shape=(B, T), device=device, what="[B, T]")
    if stop is not None:
        check_tensor("stop", stop, kind="bool", shape=(B, T), device=device, what="[B, T]")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_positive("tau", tau, device)
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise TypeError(f"lam must be a float in [0, 1], got {type(lam).__name__}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    return check_scores("q_next", q_next, what="[B, T, n]", row="(b, t)")


def lse_backup(
    q_next: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    *,
    mode: str = "lse",
    tau: float | torch.Tensor = 1.0,
    lam: float = 1.0,
    stop: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Multi-step critic target of QWR with a sampled backup operator, fused.

    Kozakowski et al., "Q-Value Weighted Regression: Reinforcement Learning with Limited
    Data", arXiv 2102.06782 (critic target of Algorithm 2; the margin-T TD(lambda) return of
    its reference implementation, google/trax ``SamplingAWR``, with truncation handled by
    ``stop``).

    Args:
        q_next: ``[B, T, n]`` float. Target-network Q at s_{t+1..t+T} for n actions sampled
            from the stored behaviour policy. ``-inf`` marks an excluded sample (e.g. an
            illegal action); every row needs at least one finite entry. NaN/+inf are errors.
        reward: ``[B, T]`` float, r_{t..t+T-1}.
        discount: ``[B, T]`` float, ``gamma * (1 - terminal)``.
        mode: backup operator F over the n samples of a row: ``"lse"``
            ``tau * (logsumexp(q / tau) - log n)`` (QWR-LSE), ``"max"`` (QWR-MAX) or
            ``"mean"`` (QWR-AVG). n counts only the finite entries of the row.
        tau: LSE temperature, a float or a 0-dim tensor on q_next's device (> 0). A tensor is
            read by the kernel from memory, so changing its value neither recompiles nor
            breaks a captured CUDA graph.
        lam: lambda of the TD(lambda) mix, in [0, 1]; ``lam=1`` is the T-step return,
            ``lam=0`` the one-step target ``r_0 + d_0 V_0``.
        stop: optional ``[B, T]`` bool, True at the last valid step of a slice (episode end
            or truncation): the return bootstraps from ``V_i`` there. ``stop[:, T-1]`` is
            irrelevant.
        backend: ``"auto"`` (Triton on CUDA, vectorised PyTorch on CPU), ``"triton"``,
            ``"torch"`` or ``"reference"``.

    Value checks (NaN/+inf in q_next, an all ``-inf`` row, a tensor tau <= 0) read the data:
    always on CPU; on CUDA they sync, and :func:`qwr_fast.kernels.skip_value_checks` (or
    ``torch.compile``) turns them off, after which such inputs give NaN targets.

    Returns:
        ``G_0``, shape ``[B]``, dtype of q_next (computed in fp32 or wider). The target
        carries no gradient: the output never requires grad, even when q_next does.

    Formula (V_i = F(q_next[:, i, :])): ``G_{T-1} = r_{T-1} + d_{T-1} V_{T-1}``,
    ``G_i = r_i + d_i * (V_i if stop_i else (1 - lam) V_i + lam G_{i+1})``; the derivation is
    in the module docstring.

    Example:
        >>> import torch
        >>> from qwr_fast.kernels import lse_backup
        >>> q_next = torch.zeros(2, 3, 4)
        >>> reward, discount = torch.ones(2, 3), torch.full((2, 3), 0.5)
        >>> lse_backup(q_next, reward, discount, mode="mean")
        tensor([1.7500, 1.7500])

    Cost (floor; q fp32, T=3): FLOPs ~ B*T*(5n + 6) (max, shift, scale, exp and sum per
    sample; the recursion per step); bytes = 4*B*T*n (q_next) + 8*B*T (reward, discount)
    + B*T (stop) + 4*B (out). QWR MuJoCo/Atari (B=256, T=3, n=8): 33 KB, 33 kFLOP: ~11 ns
    of H100 bandwidth (3.0 TB/s), so one launch (~3-5 us) is the whole cost. B=65536, n=8:
    8.3 MB, 8.4 MFLOP: ~2.8 us at 3.0 TB/s vs 0.14 us of fp32 SIMT compute (60 TFLOP/s), so
    memory-bound; the kernel reads every input once.
    """
    may_exclude = _validate(q_next, reward, discount, stop, mode, tau, lam)
    backend = resolve_backend(backend, q_next.device)
    q_next, reward, discount = q_next.detach(), reward.detach(), discount.detach()
    if backend == "reference":
        return lse_backup_reference(
            q_next, reward, discount, mode=mode, tau=tau, lam=lam, stop=stop
        )
    tau_t, tau_f = (tau.detach(), 1.0) if isinstance(tau, torch.Tensor) else (None, float(tau))
    if backend == "torch" and not torch.compiler.is_compiling():
        # eager CPU: skip the custom-op dispatcher (~20 us a call), same implementation
        args = (q_next, reward, discount, stop, tau_t, tau_f, mode, float(lam), may_exclude)
        return _lse_backup_torch(*args)
    return torch.ops.qwr_fast.lse_backup(
        q_next, reward, discount, stop, tau_t, tau_f, mode, float(lam), may_exclude, backend
    )


def aot_specs() -> list[AOTSpec]:
    """The kernel at the trainers' shapes: n = 4, 8 (QWR MuJoCo/Atari), 18 (all Atari actions
    enumerated) and 500 (an AQL-sized candidate set), every mode, with and without ``stop``."""
    signature = {
        "q_ptr": "*fp32",
        "r_ptr": "*fp32",
        "d_ptr": "*fp32",
        "stop_ptr": "*i1",
        "tau_ptr": "*fp32",
        "out_ptr": "*fp32",
        "B": "i32",
        "T": "i32",
        "n": "i32",
        "lam": "fp32",
        **{f"stride_{s}": "i32" for s in ("qb", "qt", "qn", "rb", "rt", "db", "dt", "sb", "st")},
        "MODE": "constexpr",
        "HAS_STOP": "constexpr",
        "BLOCK_B": "constexpr",
        "BLOCK_N": "constexpr",
    }
    specs = []
    for n in (4, 8, 18, 500):
        block_b, block_n = _block_sizes(n)
        for mode in MODES:
            for has_stop in (False, True):
                constexprs = {
                    "MODE": _MODE_ID[mode],
                    "HAS_STOP": has_stop,
                    "BLOCK_B": block_b,
                    "BLOCK_N": block_n,
                }
                name = f"_lse_backup_fwd_kernel[{mode},stop={int(has_stop)},{block_b}x{block_n}]"
                specs.append(AOTSpec(name, _lse_backup_fwd_kernel, signature, constexprs))
    return specs
