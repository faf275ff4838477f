"""``awr_loss``: the advantage-weighted log-likelihood of QWR / AWR, fused with its backward.

Gradient of the loss (all sums over the sampled actions; ``c_ij = -g * w_ij * sw_ij / S`` with
``g`` the upstream gradient and ``S = sum(sw)``; ``w`` carries no gradient, nor do ``q``,
``sample_weight`` and ``beta``)::

    loss = -sum_ij w_ij sw_ij log pi(a_ij | s_i) / S,   so  g * d loss / d log pi(a_ij | s_i) = c_ij

    gaussian   log pi = sum_k -z_k^2 / 2 - log_std_k - log(2 pi) / 2,   z = (a - mean) exp(-log_std)
               d mean_ik    = sum_j c_ij z_ijk exp(-log_std_ik)
               d log_std_ik = sum_j c_ij (z_ijk^2 - 1)         (summed over i for log_std[A])
    categorical log pi = logits[a] - logsumexp(logits)
               d logits_ik  = sum_j c_ij [a_ij == k] - softmax(logits_i)_k sum_j c_ij

The forward saves only ``c / -g`` (``[B, n]``, as small as ``q``); the backward recomputes ``z``
and the softmax from the inputs instead of saving ``[B, n, A]`` or ``[B, K]`` activations.

Triton path, three launches per direction and no host synchronisation: a stats kernel writes
per-block partials (count, sum and centred second moment of the advantages, sum of sample
weights) that are combined on the device (Chan et al.'s parallel variance); the forward kernel
recomputes each row's baseline, writes the weights and a partial loss per block; the backward
kernel loops over the n samples of a row block.

Excluded samples (``q = -inf``, as in ``lse_backup``) get ``sw = 0`` and ``w = 0``: they leave
the baseline, the normalisation statistics and ``S``, and contribute exactly 0 to the loss
(also when their log-probability is ``-inf``) and to every gradient.
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
    value_checks_enabled,
)

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_STD_EPS = 1e-5


@triton.jit
def _awr_loss_stats_kernel(
    q_ptr,
    sw_ptr,
    part_ptr,
    B,
    n,
    stride_qb,
    stride_qn,
    stride_swb,
    stride_swn,
    HAS_SW: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows < B)[:, None] & (cols < n)[None, :]
    q = tl.load(q_ptr + rows[:, None] * stride_qb + cols[None, :] * stride_qn, mask=mask, other=0.0)
    q = q.to(tl.float32)  # [BLOCK_B, BLOCK_N]
    keep = mask & (q != float("-inf"))  # -inf marks an excluded sample
    q_kept = tl.where(keep, q, 0.0)
    if HAS_SW:
        sw = tl.load(
            sw_ptr + rows[:, None] * stride_swb + cols[None, :] * stride_swn, mask=mask, other=0.0
        ).to(tl.float32)
        sw = tl.where(keep, sw, 0.0)
        v = tl.sum(sw * q_kept, axis=1)  # [BLOCK_B]
        sw_sum = tl.sum(tl.sum(sw, axis=1), axis=0)
    else:
        v = tl.sum(q_kept, axis=1) / tl.maximum(tl.sum(keep.to(tl.float32), axis=1), 1.0)
    adv = tl.where(keep, q - v[:, None], 0.0)
    count = tl.sum(tl.sum(keep.to(tl.float32), axis=1), axis=0)
    total = tl.sum(tl.sum(adv, axis=1), axis=0)
    centred = tl.where(keep, adv - total / count, 0.0)
    m2 = tl.sum(tl.sum(centred * centred, axis=1), axis=0)
    if not HAS_SW:
        sw_sum = count
    tl.store(part_ptr + pid * 4 + 0, count)
    tl.store(part_ptr + pid * 4 + 1, total)
    tl.store(part_ptr + pid * 4 + 2, m2)
    tl.store(part_ptr + pid * 4 + 3, sw_sum)


@triton.jit
def _awr_row_baseline(
    q_ptr, sw_ptr, rows, B, n, stride_qb, stride_qn, stride_swb, stride_swn, HAS_SW, BLOCK_N
):
    cols = tl.arange(0, BLOCK_N)
    mask = (rows < B)[:, None] & (cols < n)[None, :]
    q = tl.load(q_ptr + rows[:, None] * stride_qb + cols[None, :] * stride_qn, mask=mask, other=0.0)
    q = q.to(tl.float32)  # [BLOCK_B, BLOCK_N]
    keep = mask & (q != float("-inf"))
    q_kept = tl.where(keep, q, 0.0)
    if HAS_SW:
        sw = tl.load(
            sw_ptr + rows[:, None] * stride_swb + cols[None, :] * stride_swn, mask=mask, other=0.0
        ).to(tl.float32)
        v = tl.sum(tl.where(keep, sw, 0.0) * q_kept, axis=1)
    else:
        v = tl.sum(q_kept, axis=1) / tl.maximum(tl.sum(keep.to(tl.float32), axis=1), 1.0)
    return v  # [BLOCK_B]


@triton.jit
def _awr_column_coef(
    q_ptr,
    sw_ptr,
    rows,
    j,
    v,
    adv_mean,
    adv_den,
    inv_sw_total,
    inv_beta,
    max_weight,
    B,
    stride_qb,
    stride_qn,
    stride_swb,
    stride_swn,
    HAS_SW,
    NORMALIZE,
):
    rmask = rows < B
    qj = tl.load(q_ptr + rows * stride_qb + j * stride_qn, mask=rmask, other=0.0).to(tl.float32)
    adv = qj - v  # -inf for an excluded sample, whose weight is then exp(-inf) = 0
    if NORMALIZE:
        adv = (adv - adv_mean) / adv_den
    w = tl.minimum(tl.exp(adv * inv_beta), max_weight)
    if HAS_SW:
        w = w * tl.load(sw_ptr + rows * stride_swb + j * stride_swn, mask=rmask, other=0.0).to(
            tl.float32
        )
    return w * inv_sw_total, qj != float("-inf")  # [BLOCK_B] each


@triton.jit
def _awr_loss_gaussian_fwd_kernel(
    mean_ptr,
    log_std_ptr,
    act_ptr,
    q_ptr,
    sw_ptr,
    beta_ptr,
    stats_ptr,
    coef_ptr,
    part_ptr,
    B,
    n,
    A,
    max_weight,
    stride_mb,
    stride_ma,
    stride_lb,
    stride_la,
    stride_ab,
    stride_an,
    stride_aa,
    stride_qb,
    stride_qn,
    stride_swb,
    stride_swn,
    HAS_SW: tl.constexpr,
    NORMALIZE: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_A: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    rmask = rows < B
    ka = tl.arange(0, BLOCK_A)
    mask = rmask[:, None] & (ka < A)[None, :]
    mu = tl.load(mean_ptr + rows[:, None] * stride_mb + ka[None, :] * stride_ma, mask=mask, other=0)
    mu = mu.to(tl.float32)  # [BLOCK_B, BLOCK_A]
    ls = tl.load(
        log_std_ptr + rows[:, None] * stride_lb + ka[None, :] * stride_la, mask=mask, other=0
    )
    ls = ls.to(tl.float32)  # [BLOCK_B, BLOCK_A]
    inv_std = tl.exp(-ls)
    lp_const = -tl.sum(tl.where(mask, ls + 0.9189385332046727, 0.0), axis=1)  # [BLOCK_B]
    adv_mean = tl.load(stats_ptr)
    adv_den = tl.load(stats_ptr + 1)
    inv_sw_total = 1.0 / tl.load(stats_ptr + 2)
    inv_beta = tl.minimum(1.0 / tl.load(beta_ptr).to(tl.float32), 3.4028234663852886e38)
    v = _awr_row_baseline(
        q_ptr, sw_ptr, rows, B, n, stride_qb, stride_qn, stride_swb, stride_swn, HAS_SW, BLOCK_N
    )
    acc = tl.zeros([BLOCK_B], dtype=tl.float32)
    for j in range(n):
        a = tl.load(
            act_ptr + rows[:, None] * stride_ab + j * stride_an + ka[None, :] * stride_aa,
            mask=mask,
            other=0.0,
        ).to(tl.float32)  # [BLOCK_B, BLOCK_A]
        z = tl.where(mask, (a - mu) * inv_std, 0.0)
        lp = lp_const - 0.5 * tl.sum(z * z, axis=1)  # [BLOCK_B]
        c, keep = _awr_column_coef(
            q_ptr, sw_ptr, rows, j, v, adv_mean, adv_den, inv_sw_total, inv_beta, max_weight,
            B, stride_qb, stride_qn, stride_swb, stride_swn, HAS_SW, NORMALIZE,
        )  # fmt: skip
        tl.store(coef_ptr + rows * n + j, c, mask=rmask)
        lp = tl.where(keep, lp, 0.0)  # an excluded sample (c = 0) may have lp = -inf
        acc += tl.where(rmask & keep, c * lp, 0.0)
    tl.store(part_ptr + pid, tl.sum(acc, axis=0))


@triton.jit
def _awr_loss_categorical_fwd_kernel(
    logits_ptr,
    act_ptr,
    q_ptr,
    sw_ptr,
    beta_ptr,
    stats_ptr,
    coef_ptr,
    part_ptr,
    B,
    n,
    K,
    max_weight,
    stride_lb,
    stride_lk,
    stride_ab,
    stride_an,
    stride_qb,
    stride_qn,
    stride_swb,
    stride_swn,
    HAS_SW: tl.constexpr,
    NORMALIZE: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    rmask = rows < B
    kk = tl.arange(0, BLOCK_K)
    mask = rmask[:, None] & (kk < K)[None, :]
    x = tl.load(
        logits_ptr + rows[:, None] * stride_lb + kk[None, :] * stride_lk,
        mask=mask,
        other=-float("inf"),
    ).to(tl.float32)  # [BLOCK_B, BLOCK_K]
    row_max = tl.where(rmask, tl.max(x, axis=1), 0.0)
    sum_exp = tl.where(rmask, tl.sum(tl.exp(x - row_max[:, None]), axis=1), 1.0)
    lse = row_max + tl.log(sum_exp)  # [BLOCK_B]
    adv_mean = tl.load(stats_ptr)
    adv_den = tl.load(stats_ptr + 1)
    inv_sw_total = 1.0 / tl.load(stats_ptr + 2)
    inv_beta = tl.minimum(1.0 / tl.load(beta_ptr).to(tl.float32), 3.4028234663852886e38)
    v = _awr_row_baseline(
        q_ptr, sw_ptr, rows, B, n, stride_qb, stride_qn, stride_swb, stride_swn, HAS_SW, BLOCK_N
    )
    acc = tl.zeros([BLOCK_B], dtype=tl.float32)
    for j in range(n):
        a = tl.load(act_ptr + rows * stride_ab + j * stride_an, mask=rmask, other=0)  # [BLOCK_B]
        x_a = tl.load(logits_ptr + rows * stride_lb + a * stride_lk, mask=rmask, other=0.0)
        lp = x_a.to(tl.float32) - lse
        c, keep = _awr_column_coef(
            q_ptr, sw_ptr, rows, j, v, adv_mean, adv_den, inv_sw_total, inv_beta, max_weight,
            B, stride_qb, stride_qn, stride_swb, stride_swn, HAS_SW, NORMALIZE,
        )  # fmt: skip
        tl.store(coef_ptr + rows * n + j, c, mask=rmask)
        lp = tl.where(keep, lp, 0.0)  # an excluded sample (c = 0) may have lp = -inf
        acc += tl.where(rmask & keep, c * lp, 0.0)
    tl.store(part_ptr + pid, tl.sum(acc, axis=0))


@triton.jit
def _awr_loss_gaussian_bwd_kernel(
    grad_ptr,
    mean_ptr,
    log_std_ptr,
    act_ptr,
    coef_ptr,
    dmean_ptr,
    dls_ptr,
    B,
    n,
    A,
    stride_mb,
    stride_ma,
    stride_lb,
    stride_la,
    stride_ab,
    stride_an,
    stride_aa,
    BLOCK_B: tl.constexpr,
    BLOCK_A: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    rmask = rows < B
    ka = tl.arange(0, BLOCK_A)
    mask = rmask[:, None] & (ka < A)[None, :]
    mu = tl.load(mean_ptr + rows[:, None] * stride_mb + ka[None, :] * stride_ma, mask=mask, other=0)
    mu = mu.to(tl.float32)  # [BLOCK_B, BLOCK_A]
    ls = tl.load(
        log_std_ptr + rows[:, None] * stride_lb + ka[None, :] * stride_la, mask=mask, other=0
    )
    inv_std = tl.exp(-ls.to(tl.float32))
    neg_g = -tl.load(grad_ptr).to(tl.float32)
    d_mu = tl.zeros([BLOCK_B, BLOCK_A], dtype=tl.float32)
    d_ls = tl.zeros([BLOCK_B, BLOCK_A], dtype=tl.float32)
    for j in range(n):
        a = tl.load(
            act_ptr + rows[:, None] * stride_ab + j * stride_an + ka[None, :] * stride_aa,
            mask=mask,
            other=0.0,
        ).to(tl.float32)
        z = (a - mu) * inv_std  # [BLOCK_B, BLOCK_A]
        c = neg_g * tl.load(coef_ptr + rows * n + j, mask=rmask, other=0.0)  # [BLOCK_B]
        d_mu += c[:, None] * z * inv_std
        d_ls += c[:, None] * (z * z - 1.0)
    out = rows[:, None] * A + ka[None, :]
    tl.store(dmean_ptr + out, d_mu.to(dmean_ptr.dtype.element_ty), mask=mask)
    tl.store(dls_ptr + out, d_ls.to(dls_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _awr_loss_categorical_bwd_kernel(
    grad_ptr,
    logits_ptr,
    act_ptr,
    coef_ptr,
    dlogits_ptr,
    B,
    n,
    K,
    stride_lb,
    stride_lk,
    stride_ab,
    stride_an,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    rmask = rows < B
    kk = tl.arange(0, BLOCK_K)
    mask = rmask[:, None] & (kk < K)[None, :]
    x = tl.load(
        logits_ptr + rows[:, None] * stride_lb + kk[None, :] * stride_lk,
        mask=mask,
        other=-float("inf"),
    ).to(tl.float32)  # [BLOCK_B, BLOCK_K]
    row_max = tl.where(rmask, tl.max(x, axis=1), 0.0)
    e = tl.exp(x - row_max[:, None])
    p = e / tl.where(rmask, tl.sum(e, axis=1), 1.0)[:, None]  # softmax, [BLOCK_B, BLOCK_K]
    neg_g = -tl.load(grad_ptr).to(tl.float32)
    hit = tl.zeros([BLOCK_B, BLOCK_K], dtype=tl.float32)
    c_sum = tl.zeros([BLOCK_B], dtype=tl.float32)
    for j in range(n):
        a = tl.load(act_ptr + rows * stride_ab + j * stride_an, mask=rmask, other=-1)  # [BLOCK_B]
        c = neg_g * tl.load(coef_ptr + rows * n + j, mask=rmask, other=0.0)
        hit += tl.where(kk[None, :] == a[:, None], c[:, None], 0.0)
        c_sum += c
    d = hit - p * c_sum[:, None]
    tl.store(
        dlogits_ptr + rows[:, None] * K + kk[None, :], d.to(dlogits_ptr.dtype.element_ty), mask=mask
    )


def _block_b(B: int, width: int, cap: int = 32) -> int:
    """Rows per program: about 2048 elements per [BLOCK_B, width] tile, at most ``cap``."""
    return max(1, min(cap, next_power_of_2(B), 2048 // width))


def _stats_triton(q: torch.Tensor, sw: torch.Tensor | None) -> torch.Tensor:
    """Device tensor ``[mean(A), std(A) + 1e-5, sum(sw)]`` over all B*n advantages."""
    B, n = q.shape
    block_n = next_power_of_2(n)
    block_b = _block_b(B, block_n, cap=128)
    grid = triton.cdiv(B, block_b)
    part = empty((grid, 4), dtype=torch.float32, device=q.device)
    sw_arg = q if sw is None else sw
    _awr_loss_stats_kernel[(grid,)](
        q, sw_arg, part, B, n, q.stride(0), q.stride(1), sw_arg.stride(0), sw_arg.stride(1),
        HAS_SW=sw is not None, BLOCK_B=block_b, BLOCK_N=block_n,
    )  # fmt: skip
    count, total, m2, sw_sum = part.unbind(1)
    n_all = count.sum()
    mean = total.sum() / n_all
    m2_all = m2.sum() + (count * (total / count - mean).square()).sum()
    return torch.stack([mean, (m2_all / n_all).sqrt() + _STD_EPS, sw_sum.sum()])


def _awr_loss_gaussian_fwd_triton(mean, log_std, actions, q, sw, beta, max_weight, normalize):
    B, n, A = actions.shape
    stats = _stats_triton(q, sw)
    block_a = next_power_of_2(A)
    block_b = _block_b(B, max(block_a, next_power_of_2(n)))
    grid = triton.cdiv(B, block_b)
    coef = empty((B, n), dtype=torch.float32, device=q.device)
    part = empty((grid,), dtype=torch.float32, device=q.device)
    ls_stride_b = log_std.stride(0) if log_std.dim() == 2 else 0
    sw_arg = q if sw is None else sw
    _awr_loss_gaussian_fwd_kernel[(grid,)](
        mean, log_std, actions, q, sw_arg, beta, stats, coef, part, B, n, A, max_weight,
        mean.stride(0), mean.stride(1), ls_stride_b, log_std.stride(-1),
        actions.stride(0), actions.stride(1), actions.stride(2), q.stride(0), q.stride(1),
        sw_arg.stride(0), sw_arg.stride(1),
        HAS_SW=sw is not None, NORMALIZE=normalize,
        BLOCK_B=block_b, BLOCK_N=next_power_of_2(n), BLOCK_A=block_a,
    )  # fmt: skip
    return (-part.sum()).to(mean.dtype), coef


def _awr_loss_categorical_fwd_triton(logits, actions, q, sw, beta, max_weight, normalize):
    B, n = actions.shape
    K = logits.shape[1]
    stats = _stats_triton(q, sw)
    block_k = next_power_of_2(K)
    block_b = _block_b(B, max(block_k, next_power_of_2(n)))
    grid = triton.cdiv(B, block_b)
    coef = empty((B, n), dtype=torch.float32, device=q.device)
    part = empty((grid,), dtype=torch.float32, device=q.device)
    sw_arg = q if sw is None else sw
    _awr_loss_categorical_fwd_kernel[(grid,)](
        logits, actions, q, sw_arg, beta, stats, coef, part, B, n, K, max_weight,
        logits.stride(0), logits.stride(1), actions.stride(0), actions.stride(1),
        q.stride(0), q.stride(1), sw_arg.stride(0), sw_arg.stride(1),
        HAS_SW=sw is not None, NORMALIZE=normalize,
        BLOCK_B=block_b, BLOCK_N=next_power_of_2(n), BLOCK_K=block_k,
    )  # fmt: skip
    return (-part.sum()).to(logits.dtype), coef


def _awr_loss_gaussian_bwd_triton(grad, mean, log_std, actions, coef):
    B, n, A = actions.shape
    block_a = next_power_of_2(A)
    block_b = _block_b(B, block_a)
    d_mean = empty((B, A), dtype=mean.dtype, device=mean.device)
    per_row = log_std.dim() == 2
    ls_dtype = log_std.dtype if per_row else torch.float32
    d_ls = empty((B, A), dtype=ls_dtype, device=mean.device)
    _awr_loss_gaussian_bwd_kernel[(triton.cdiv(B, block_b),)](
        grad, mean, log_std, actions, coef, d_mean, d_ls, B, n, A,
        mean.stride(0), mean.stride(1), log_std.stride(0) if per_row else 0, log_std.stride(-1),
        actions.stride(0), actions.stride(1), actions.stride(2),
        BLOCK_B=block_b, BLOCK_A=block_a,
    )  # fmt: skip
    return d_mean, d_ls if per_row else d_ls.sum(0).to(log_std.dtype)


def _awr_loss_categorical_bwd_triton(grad, logits, actions, coef):
    B, n = actions.shape
    K = logits.shape[1]
    block_k = next_power_of_2(K)
    block_b = _block_b(B, block_k)
    d_logits = empty((B, K), dtype=logits.dtype, device=logits.device)
    _awr_loss_categorical_bwd_kernel[(triton.cdiv(B, block_b),)](
        grad, logits, actions, coef, d_logits, B, n, K,
        logits.stride(0), logits.stride(1), actions.stride(0), actions.stride(1),
        BLOCK_B=block_b, BLOCK_K=block_k,
    )  # fmt: skip
    return d_logits


def awr_loss_reference(
    dist: tuple,
    actions: torch.Tensor,
    q: torch.Tensor,
    *,
    beta: float | torch.Tensor = 1.0,
    max_weight: float = 20.0,
    normalize: bool = True,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain PyTorch with ``torch.distributions``: the ground truth for the fast paths (in the
    inputs' dtype, twice differentiable, no input checks)."""
    q = q.detach()
    if dist[0] == "gaussian":
        _, mean, log_std = dist
        policy = torch.distributions.Normal(mean.unsqueeze(1), log_std.exp().unsqueeze(-2))
        log_prob = policy.log_prob(actions).sum(-1)  # [B, n]
    else:
        _, logits = dist
        policy = torch.distributions.Categorical(logits=logits.unsqueeze(1))
        log_prob = policy.log_prob(actions)  # [B, n]
    keep = ~torch.isneginf(q)  # -inf marks an excluded sample
    q_kept = q.masked_fill(~keep, 0.0)
    if sample_weight is None:
        sw = keep.to(q.dtype)
        baseline = q_kept.sum(dim=1, keepdim=True) / sw.sum(dim=1, keepdim=True)
    else:
        sw = sample_weight.detach() * keep
        baseline = (sw * q_kept).sum(dim=1, keepdim=True)
    adv = q - baseline
    if normalize:
        kept = adv[keep]
        adv = (adv - kept.mean()) / (kept.std(unbiased=False) + _STD_EPS)
    weight = torch.clamp(torch.exp(adv / beta), max=max_weight)
    log_prob = torch.where(keep, log_prob, 0.0)
    return -(weight * sw * log_prob).sum() / sw.sum()


def _compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """The torch path's dtype: fp32, or the widest float input when wider (float64)."""
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _coef_torch(q, sw, beta, max_weight, normalize, may_exclude, dtype):
    """``w * sw / sum(sw)`` in ``dtype``, ``[B, n]``; 0 at excluded samples (``q = -inf``)."""
    q = q.to(dtype)
    if may_exclude:
        return _coef_excluding_torch(q, sw, beta, max_weight, normalize)
    if sw is None:
        adv = q - q.mean(dim=1, keepdim=True)
        scale = 1.0 / q.numel()
    else:
        sw = sw.to(dtype)
        adv = q - (sw * q).sum(dim=1, keepdim=True)
        scale = sw / sw.sum()
    if normalize:
        std, mean = torch.std_mean(adv, correction=0)
        adv = (adv - mean) / (std + _STD_EPS)
    return torch.exp(adv / beta).clamp_(max=max_weight).mul_(scale)


def _coef_excluding_torch(q, sw, beta, max_weight, normalize):
    """:func:`_coef_torch` for a q that may hold -inf: masked sums, no host sync."""
    drop = torch.isneginf(q)
    q_kept = q.masked_fill(drop, 0.0)
    if sw is None:
        sw = (~drop).to(q.dtype)
        adv = q - q_kept.sum(dim=1, keepdim=True) / sw.sum(dim=1, keepdim=True)
    else:
        sw = sw.to(q.dtype).masked_fill(drop, 0.0)
        adv = q - (sw * q_kept).sum(dim=1, keepdim=True)  # -inf where excluded
    if normalize:
        count = (~drop).sum()
        mean = adv.masked_fill(drop, 0.0).sum() / count
        std = (adv - mean).masked_fill_(drop, 0.0).square_().sum().div_(count).sqrt_()
        adv = (adv - mean) / (std + _STD_EPS)
    return torch.exp(adv / beta).clamp_(max=max_weight).mul_(sw / sw.sum())


def _gaussian_z(mean, log_std, actions, dtype):
    inv_std = torch.exp(-log_std.to(dtype)).unsqueeze(-2)  # [B or 1, 1, A]
    return (actions.to(dtype) - mean.to(dtype).unsqueeze(1)) * inv_std, inv_std


def _awr_loss_gaussian_fwd_torch(
    mean, log_std, actions, q, sw, beta, max_weight, normalize, may_exclude
):
    dtype = _compute_dtype(mean, log_std, actions, q, sw)
    coef = _coef_torch(q, sw, beta, max_weight, normalize, may_exclude, dtype)
    z, _ = _gaussian_z(mean, log_std, actions, dtype)
    const = (log_std.to(dtype) + _HALF_LOG_2PI).sum(-1, keepdim=log_std.dim() == 2)  # [B, 1]/[]
    log_prob = -0.5 * z.square().sum(-1) - const  # [B, n]
    if may_exclude:
        log_prob = log_prob.masked_fill(torch.isneginf(q), 0.0)
    return -(coef * log_prob).sum().to(mean.dtype), coef


def _awr_loss_categorical_fwd_torch(
    logits, actions, q, sw, beta, max_weight, normalize, may_exclude
):
    dtype = _compute_dtype(logits, q, sw)
    coef = _coef_torch(q, sw, beta, max_weight, normalize, may_exclude, dtype)
    x = logits.to(dtype)
    log_prob = torch.log_softmax(x, dim=1).gather(1, actions.long())  # [B, n]
    if may_exclude:
        log_prob = log_prob.masked_fill(torch.isneginf(q), 0.0)
    return -(coef * log_prob).sum().to(logits.dtype), coef


def _awr_loss_gaussian_bwd_torch(grad, mean, log_std, actions, coef):
    c = (-grad.to(coef.dtype) * coef).unsqueeze(-1)  # [B, n, 1]
    z, inv_std = _gaussian_z(mean, log_std, actions, coef.dtype)
    d_mean = (c * z).sum(1) * inv_std.squeeze(-2)
    d_ls = (c * (z.square() - 1.0)).sum(1)
    if log_std.dim() == 1:
        d_ls = d_ls.sum(0)
    return d_mean.to(mean.dtype), d_ls.to(log_std.dtype)


def _awr_loss_categorical_bwd_torch(grad, logits, actions, coef):
    c = -grad.to(coef.dtype) * coef  # [B, n]
    x = logits.to(coef.dtype)
    d = torch.zeros_like(x).scatter_add_(1, actions.long(), c)
    d -= torch.log_softmax(x, dim=1).exp_() * c.sum(1, keepdim=True)
    return d.to(logits.dtype)


class _AWRLossTorchFn(torch.autograd.Function):
    """Eager CPU path without the custom-op dispatcher (same fwd/bwd functions as the op).

    The ``torch.library`` dispatch (schema checks, autograd registration) is a sizeable part
    of a ~0.3 ms CPU loss at B=256 (docs/results.md); the custom op is still what
    ``torch.compile`` traces and what the Triton path runs through."""

    @staticmethod
    def forward(ctx, kind, p0, p1, actions, q, sw, beta, max_weight, normalize, may_exclude):
        if kind == "gaussian":
            loss, coef = _awr_loss_gaussian_fwd_torch(
                p0, p1, actions, q, sw, beta, max_weight, normalize, may_exclude
            )
        else:
            loss, coef = _awr_loss_categorical_fwd_torch(
                p0, actions, q, sw, beta, max_weight, normalize, may_exclude
            )
        ctx.kind = kind
        ctx.save_for_backward(p0, p1, actions, coef)
        return loss

    @staticmethod
    def backward(ctx, grad):
        p0, p1, actions, coef = ctx.saved_tensors
        if ctx.kind == "gaussian":
            d0, d1 = _awr_loss_gaussian_bwd_torch(grad, p0, p1, actions, coef)
        else:
            d0, d1 = _awr_loss_categorical_bwd_torch(grad, p0, actions, coef), None
        return None, d0, d1, None, None, None, None, None, None, None


def _coef_fake(q, backend, *tensors):
    dtype = torch.float32 if backend == "triton" else _compute_dtype(*tensors)
    return q.new_empty(q.shape, dtype=dtype)


@torch.library.custom_op("qwr_fast::awr_loss_gaussian", mutates_args=())
def _awr_loss_gaussian_op(
    mean: torch.Tensor,
    log_std: torch.Tensor,
    actions: torch.Tensor,
    q: torch.Tensor,
    sample_weight: torch.Tensor | None,
    beta: torch.Tensor,
    max_weight: float,
    normalize: bool,
    may_exclude: bool,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    args = (mean, log_std, actions, q, sample_weight, beta, max_weight, normalize)
    if backend == "triton":  # the kernels mask -inf samples unconditionally
        return _awr_loss_gaussian_fwd_triton(*args)
    return _awr_loss_gaussian_fwd_torch(*args, may_exclude)


@_awr_loss_gaussian_op.register_fake
def _(mean, log_std, actions, q, sample_weight, beta, max_weight, normalize, may_exclude, backend):
    return mean.new_empty(()), _coef_fake(q, backend, mean, log_std, actions, q, sample_weight)


@torch.library.custom_op("qwr_fast::awr_loss_gaussian_bwd", mutates_args=())
def _awr_loss_gaussian_bwd_op(
    grad: torch.Tensor,
    mean: torch.Tensor,
    log_std: torch.Tensor,
    actions: torch.Tensor,
    coef: torch.Tensor,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    bwd = _awr_loss_gaussian_bwd_triton if backend == "triton" else _awr_loss_gaussian_bwd_torch
    return bwd(grad, mean, log_std, actions, coef)


@_awr_loss_gaussian_bwd_op.register_fake
def _(grad, mean, log_std, actions, coef, backend):
    return torch.empty_like(mean), torch.empty_like(log_std)


def _gaussian_setup_context(ctx, inputs, output):
    mean, log_std, actions, *_, backend = inputs
    ctx.save_for_backward(mean, log_std, actions, output[1])
    ctx.backend = backend


def _gaussian_backward(ctx, grad_loss, grad_coef):
    mean, log_std, actions, coef = ctx.saved_tensors
    d_mean, d_ls = torch.ops.qwr_fast.awr_loss_gaussian_bwd(
        grad_loss, mean, log_std, actions, coef, ctx.backend
    )
    return d_mean, d_ls, None, None, None, None, None, None, None, None


_awr_loss_gaussian_op.register_autograd(_gaussian_backward, setup_context=_gaussian_setup_context)


@torch.library.custom_op("qwr_fast::awr_loss_categorical", mutates_args=())
def _awr_loss_categorical_op(
    logits: torch.Tensor,
    actions: torch.Tensor,
    q: torch.Tensor,
    sample_weight: torch.Tensor | None,
    beta: torch.Tensor,
    max_weight: float,
    normalize: bool,
    may_exclude: bool,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    args = (logits, actions, q, sample_weight, beta, max_weight, normalize)
    if backend == "triton":
        return _awr_loss_categorical_fwd_triton(*args)
    return _awr_loss_categorical_fwd_torch(*args, may_exclude)


@_awr_loss_categorical_op.register_fake
def _(logits, actions, q, sample_weight, beta, max_weight, normalize, may_exclude, backend):
    return logits.new_empty(()), _coef_fake(q, backend, logits, q, sample_weight)


@torch.library.custom_op("qwr_fast::awr_loss_categorical_bwd", mutates_args=())
def _awr_loss_categorical_bwd_op(
    grad: torch.Tensor,
    logits: torch.Tensor,
    actions: torch.Tensor,
    coef: torch.Tensor,
    backend: str,
) -> torch.Tensor:
    bwd = (
        _awr_loss_categorical_bwd_triton if backend == "triton" else _awr_loss_categorical_bwd_torch
    )
    return bwd(grad, logits, actions, coef)


@_awr_loss_categorical_bwd_op.register_fake
def _(grad, logits, actions, coef, backend):
    return torch.empty_like(logits)


def _categorical_setup_context(ctx, inputs, output):
    logits, actions, *_, backend = inputs
    ctx.save_for_backward(logits, actions, output[1])
    ctx.backend = backend


def _categorical_backward(ctx, grad_loss, grad_coef):
    logits, actions, coef = ctx.saved_tensors
    d_logits = torch.ops.qwr_fast.awr_loss_categorical_bwd(
        grad_loss, logits, actions, coef, ctx.backend
    )
    return d_logits, None, None, None, None, None, None, None, None


_awr_loss_categorical_op.register_autograd(
    _categorical_backward, setup_context=_categorical_setup_context
)


def _check_sample_weight(sw: torch.Tensor, q: torch.Tensor, may_exclude: bool) -> None:
    """Value checks of ``sample_weight``: finite, >= 0, and a positive weight in every row
    (on a sample that is not excluded), so that no baseline or normaliser is 0 / 0."""
    sw = sw.detach()
    if not bool(torch.isfinite(sw).all()):
        raise ValueError("sample_weight must be finite, got NaN or inf")
    low = sw.amin()
    if bool(low < 0):
        raise ValueError(f"sample_weight must be >= 0, got {low.item()}")
    if may_exclude:
        sw = sw.masked_fill(torch.isneginf(q), 0.0)
    empty_rows = sw.sum(1) <= 0
    if bool(empty_rows.any()):
        b = int(empty_rows.nonzero()[0, 0])
        raise ValueError(
            "sample_weight [B, n] needs a positive weight in every row (on a sample whose q "
            f"is not -inf); row b={b} is all zero"
        )


def _validate(dist, actions, q, beta, max_weight, normalize, sample_weight) -> bool:
    """Raise on bad input; return False only when q is known to hold no -inf."""
    if not isinstance(dist, (tuple, list)) or len(dist) == 0 or not isinstance(dist[0], str):
        raise TypeError(
            "dist must be ('gaussian', mean[B, A], log_std[B, A] or [A]) or "
            f"('categorical', logits[B, K]), got {type(dist).__name__}"
        )
    kind = dist[0]
    if kind == "gaussian":
        if len(dist) != 3:
            raise ValueError("dist must be ('gaussian', mean[B, A], log_std[B, A] or [A])")
        mean = check_tensor("mean", dist[1], ndim=2, kind="float", what="[B, A]")
        device = mean.device
        B, A = mean.shape
        log_std = check_tensor(
            "log_std", dist[2], ndim=(1, 2), kind="float", device=device, what="[B, A] or [A]"
        )
        expected = (B, A) if log_std.dim() == 2 else (A,)
        check_tensor("log_std", log_std, shape=expected, what="[B, A] or [A]")
        check_tensor("actions", actions, ndim=3, kind="float", device=device, what="[B, n, A]")
        check_tensor("actions", actions, shape=(B, None, A), what="[B, n, A]")
        if A == 0:
            raise ValueError("mean must have A >= 1 action dims [B, A], got shape (B, 0)")
        if actions.requires_grad:
            raise ValueError(
                "actions requires grad, but awr_loss gives no gradient to actions (samples of "
                "the behaviour policy): pass actions.detach()"
            )
    elif kind == "categorical":
        if len(dist) != 2:
            raise ValueError("dist must be ('categorical', logits[B, K])")
        logits = check_tensor("logits", dist[1], ndim=2, kind="float", what="[B, K]")
        device = logits.device
        B, K = logits.shape
        if K == 0:
            raise ValueError("logits must have K >= 1 choices [B, K], got shape (B, 0)")
        check_tensor("actions", actions, ndim=2, kind="int", device=device, what="[B, n] int64")
        check_tensor("actions", actions, shape=(B, None), what="[B, n] int64")
    else:
        raise ValueError(f"dist kind must be 'gaussian' or 'categorical', got {kind!r}")
    if B == 0:
        raise ValueError("the batch must hold B >= 1 states, got B == 0")
    n = actions.shape[1]
    if n == 0:
        raise ValueError(f"actions must hold n >= 1 samples per state, got shape {actions.shape}")
    check_tensor("q", q, ndim=2, kind="float", device=device, shape=(B, n), what="[B, n]")
    if sample_weight is not None:
        check_tensor(
            "sample_weight", sample_weight, kind="float", device=device, shape=(B, n), what="[B, n]"
        )
    check_positive("beta", beta, device)
    if isinstance(max_weight, torch.Tensor):
        raise TypeError("max_weight must be a Python float, got a tensor")
    check_positive("max_weight", max_weight, device)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    if kind == "categorical" and value_checks_enabled(device):
        low, high = torch.aminmax(actions)
        if bool(low < 0) or bool(high >= K):
            raise ValueError(f"actions must lie in [0, K) = [0, {K}) for logits [B, K]")
    may_exclude = check_scores("q", q, what="[B, n]", row="b")
    if sample_weight is not None and value_checks_enabled(device):
        _check_sample_weight(sample_weight, q, may_exclude)
    return may_exclude


def awr_loss(
    dist: tuple,
    actions: torch.Tensor,
    q: torch.Tensor,
    *,
    beta: float | torch.Tensor = 1.0,
    max_weight: float = 20.0,
    normalize: bool = True,
    sample_weight: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Advantage-weighted log-likelihood of sampled actions (the QWR / AWR actor loss), fused.

    Shapes: B states, n sampled actions per state, A action dims, K discrete choices.

    Args:
        dist: the policy at the B states, ``("gaussian", mean[B, A], log_std[B, A] or [A])``
            or ``("categorical", logits[B, K])``.
        actions: ``[B, n, A]`` float (gaussian) or ``[B, n]`` int64 in ``[0, K)`` (categorical),
            sampled from the behaviour policy stored in the replay. The op gives them no
            gradient: actions that require grad are an error.
        q: ``[B, n]`` Q(s_i, a_ij), float. Treated as detached: no gradient flows into it.
            ``-inf`` marks an excluded sample (e.g. an illegal action), as in ``lse_backup``:
            it gets weight 0 and is left out of the baseline, the normalisation and the
            normaliser ``sum(sw)``; every row needs a finite entry. NaN/+inf are errors.
        beta: temperature, a float or a 0-dim tensor, > 0.
        max_weight: clip of the weights, > 0.
        normalize: standardise the advantages over all B*n entries before the exponential.
        sample_weight: optional ``[B, n]`` float, finite and >= 0, e.g. mu(a|s) when all K
            discrete actions are enumerated; it weights both the baseline and the loss, and
            every row needs a positive weight on a non-excluded sample. No gradient flows
            into it.
        backend: ``"auto"`` (Triton on CUDA or under ``TRITON_INTERPRET=1``, vectorised
            PyTorch on CPU), ``"triton"``, ``"torch"`` or ``"reference"``.

    Value checks (NaN/+inf in q, an all ``-inf`` row, a negative, non-finite or all-zero row
    of sample_weight, out-of-range categorical actions, a tensor beta <= 0) read the data:
    always on CPU; on CUDA they sync, and :func:`qwr_fast.kernels.skip_value_checks` (or
    ``torch.compile``) turns them off, after which such inputs give a NaN loss.

    Returns:
        The 0-dim loss, in the dtype of ``mean`` / ``logits``; gradients flow to ``mean``,
        ``log_std`` and ``logits``. The torch and reference paths compute in fp32 or in the
        inputs' dtype when wider (float64 passes ``torch.autograd.gradcheck``); the Triton
        kernels accumulate in fp32.

    Formula, with ``sw = 1`` when ``sample_weight`` is not given (and ``sw = 0`` at excluded
    samples)::

        V_i  = mean_j q_ij                 (or sum_j sw_ij q_ij)
        A_ij = q_ij - V_i
        A    = (A - mean(A)) / (std(A) + 1e-5)        if normalize (population std over B*n)
        w_ij = min(exp(A_ij / beta), max_weight)      (no gradient)
        loss = -sum_ij w_ij sw_ij log pi(a_ij | s_i) / sum_ij sw_ij

    The gaussian log pi sums ``Normal(mean, exp(log_std)).log_prob`` over the A dims. Paper:
    Kozakowski et al., "Q-Value Weighted Regression" (arXiv 2102.06782), Algorithm 2, with the
    advantage normalisation and weight clip of its reference implementation (google/trax
    ``SamplingAWR``); Peng et al., "Advantage-Weighted Regression" (arXiv 1910.00177). The
    gradient derivation is in the module docstring.

    Example:
        >>> import torch
        >>> from qwr_fast.kernels import awr_loss
        >>> mean = torch.zeros(4, 6, requires_grad=True)
        >>> log_std = torch.full((6,), -0.9, requires_grad=True)
        >>> actions, q = torch.randn(4, 8, 6), torch.randn(4, 8)
        >>> loss = awr_loss(("gaussian", mean, log_std), actions, q, beta=1.0)
        >>> loss.backward()
        >>> loss.shape, mean.grad.shape, log_std.grad.shape
        (torch.Size([]), torch.Size([4, 6]), torch.Size([6]))

    Cost (fp32, forward + backward; trainer shapes QWR MuJoCo B=256, n=8, A=6 and QWR Atari
    B=256, n=8, K=18):
        FLOPs: about 20 B n A (gaussian: ~0.25 MFLOP) or 6 B n + 8 B K (categorical: ~50 KFLOP),
        nothing a GPU notices. Minimum bytes: read actions twice (2 * 4 B n A = 98 KB, or
        2 * 8 B n = 33 KB int64), q (8 KB), mean/log_std or logits twice (25 KB / 37 KB), write
        and re-read the weights (16 KB) and the gradients (12 KB / 18 KB): ~160 KB gaussian,
        ~110 KB categorical, i.e. ~0.05 us at 3.0 TB/s on an H100. The op is latency-bound:
        expected H100 time ~15-25 us for forward + backward, set by its 3 + 1 kernel launches
        and the handful of tiny device-side reductions between them (no host sync).
    """
    may_exclude = _validate(dist, actions, q, beta, max_weight, normalize, sample_weight)
    kind = dist[0]
    if kind == "gaussian":
        _, mean, log_std = dist
        device = mean.device
    else:
        _, logits = dist
        device = logits.device
    backend = resolve_backend(backend, device)
    if backend == "reference":
        return awr_loss_reference(
            dist,
            actions,
            q,
            beta=beta,
            max_weight=max_weight,
            normalize=normalize,
            sample_weight=sample_weight,
        )
    if backend == "triton":
        beta_dtype = torch.float32  # the kernels read beta as fp32
    elif kind == "gaussian":
        beta_dtype = _compute_dtype(mean, log_std, actions, q, sample_weight)
    else:
        beta_dtype = _compute_dtype(logits, q, sample_weight)
    beta_t = (
        beta.detach().to(beta_dtype)
        if isinstance(beta, torch.Tensor)
        else torch.full((), float(beta), dtype=beta_dtype, device=device)
    )
    q = q.detach()
    if sample_weight is not None:
        sample_weight = sample_weight.detach()
    if backend == "torch" and not torch.compiler.is_compiling():
        p0, p1 = (mean, log_std) if kind == "gaussian" else (logits, logits.new_empty(0))
        return _AWRLossTorchFn.apply(
            kind, p0, p1, actions, q, sample_weight, beta_t, float(max_weight), normalize,
            may_exclude,
        )  # fmt: skip
    if kind == "gaussian":
        loss, _ = torch.ops.qwr_fast.awr_loss_gaussian(
            mean, log_std, actions, q, sample_weight, beta_t, float(max_weight), normalize,
            may_exclude, backend,
        )  # fmt: skip
    else:
        loss, _ = torch.ops.qwr_fast.awr_loss_categorical(
            logits, actions, q, sample_weight, beta_t, float(max_weight), normalize,
            may_exclude, backend,
        )  # fmt: skip
    return loss


def _fwd_signature(kind: str) -> dict[str, str]:
    if kind == "gaussian":
        pointers = ["mean_ptr", "log_std_ptr", "act_ptr"]
        sizes = ["B", "n", "A"]
        strides = ["stride_mb", "stride_ma", "stride_lb", "stride_la"]
        strides += ["stride_ab", "stride_an", "stride_aa"]
        block = "BLOCK_A"
    else:
        pointers = ["logits_ptr", "act_ptr"]
        sizes = ["B", "n", "K"]
        strides = ["stride_lb", "stride_lk", "stride_ab", "stride_an"]
        block = "BLOCK_K"
    sig = {p: "*fp32" for p in pointers}
    if kind == "categorical":
        sig["act_ptr"] = "*i64"
    sig |= {p: "*fp32" for p in ("q_ptr", "sw_ptr", "beta_ptr", "stats_ptr", "coef_ptr")}
    sig |= {"part_ptr": "*fp32"} | {s: "i32" for s in sizes} | {"max_weight": "fp32"}
    sig |= {s: "i32" for s in [*strides, "stride_qb", "stride_qn", "stride_swb", "stride_swn"]}
    sig |= {c: "constexpr" for c in ("HAS_SW", "NORMALIZE", "BLOCK_B", "BLOCK_N", block)}
    return sig


def aot_specs() -> list[AOTSpec]:
    """Every kernel x every config it launches with at the trainers' shapes (B=256; MuJoCo
    A=6, n in {4, 8}; Atari K=18, n=8 sampled or K enumerated with sample weights)."""
    B = 256
    specs = []
    stats_sig = {p: "*fp32" for p in ("q_ptr", "sw_ptr", "part_ptr")}
    stats_sig |= {s: "i32" for s in ("B", "n", "stride_qb", "stride_qn", "stride_swb")}
    stats_sig |= {"stride_swn": "i32", "HAS_SW": "constexpr", "BLOCK_B": "constexpr"}
    stats_sig |= {"BLOCK_N": "constexpr"}
    for n in (4, 8, 18):
        block_n = next_power_of_2(n)
        for has_sw in (False, True):
            constexprs = {"HAS_SW": has_sw, "BLOCK_B": _block_b(B, block_n, 128)}
            constexprs["BLOCK_N"] = block_n
            specs.append(
                AOTSpec(
                    f"stats_n{n}_sw{int(has_sw)}", _awr_loss_stats_kernel, stats_sig, constexprs
                )
            )
    shapes = [("gaussian", 4, 6), ("gaussian", 8, 6), ("categorical", 8, 18)]
    shapes.append(("categorical", 18, 18))
    for kind, n, width in shapes:
        block_w = next_power_of_2(width)
        block_b = _block_b(B, max(block_w, next_power_of_2(n)))
        block = "BLOCK_A" if kind == "gaussian" else "BLOCK_K"
        fwd = (
            _awr_loss_gaussian_fwd_kernel
            if kind == "gaussian"
            else _awr_loss_categorical_fwd_kernel
        )
        for has_sw in (False, True):
            for normalize in (True, False):
                constexprs = {"HAS_SW": has_sw, "NORMALIZE": normalize, "BLOCK_B": block_b}
                constexprs |= {"BLOCK_N": next_power_of_2(n), block: block_w}
                name = f"{kind}_fwd_n{n}_sw{int(has_sw)}_norm{int(normalize)}"
                specs.append(AOTSpec(name, fwd, _fwd_signature(kind), constexprs))
    gauss_bwd = {p: "*fp32" for p in ("grad_ptr", "mean_ptr", "log_std_ptr", "act_ptr")}
    gauss_bwd |= {p: "*fp32" for p in ("coef_ptr", "dmean_ptr", "dls_ptr")}
    gauss_bwd |= {s: "i32" for s in ("B", "n", "A", "stride_mb", "stride_ma", "stride_lb")}
    gauss_bwd |= {s: "i32" for s in ("stride_la", "stride_ab", "stride_an", "stride_aa")}
    gauss_bwd |= {"BLOCK_B": "constexpr", "BLOCK_A": "constexpr"}
    specs.append(
        AOTSpec(
            "gaussian_bwd_A6",
            _awr_loss_gaussian_bwd_kernel,
            gauss_bwd,
            {"BLOCK_B": _block_b(B, 8), "BLOCK_A": 8},
        )
    )
    cat_bwd = {p: "*fp32" for p in ("grad_ptr", "logits_ptr", "coef_ptr", "dlogits_ptr")}
    cat_bwd = {**cat_bwd, "act_ptr": "*i64"}
    cat_bwd |= {s: "i32" for s in ("B", "n", "K", "stride_lb", "stride_lk", "stride_ab")}
    cat_bwd |= {"stride_an": "i32", "BLOCK_B": "constexpr", "BLOCK_K": "constexpr"}
    specs.append(
        AOTSpec(
            "categorical_bwd_K18",
            _awr_loss_categorical_bwd_kernel,
            cat_bwd,
            {"BLOCK_B": _block_b(B, 32), "BLOCK_K": 32},
        )
    )
    return [  # signatures in parameter order
        AOTSpec(s.name, s.fn, {k: s.signature[k] for k in s.fn.arg_names}, s.constexprs)
        for s in specs
    ]
