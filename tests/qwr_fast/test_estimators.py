import math

import pytest
import torch

from qwr_fast.estimators import discounts, q_scale, qwr_margin_target, td_lambda


def _loop_target(q, r, d, stop, *, mode, tau, lam, normalize):
    """The reference's recipe written out element by element (float64 python floats)."""
    finite = [x for x in q.flatten().tolist() if math.isfinite(x)]
    mean = sum(finite) / len(finite)
    scale = sum(abs(x - mean) for x in finite) / len(finite) + 1e-5 if normalize else 1.0
    B, T, n = q.shape
    out = []
    for b in range(B):
        values = []
        for i in range(T):
            row = [x / scale for x in q[b, i].tolist() if math.isfinite(x)]
            if mode == "lse":
                m = max(row)
                v = tau * (m / tau + math.log(sum(math.exp((x - m) / tau) for x in row) / len(row)))
            elif mode == "max":
                v = max(row)
            else:
                v = sum(row) / len(row)
            values.append(v * scale)
        g = r[b, T - 1].item() + d[b, T - 1].item() * values[T - 1]
        for i in range(T - 2, -1, -1):
            boot = values[i] if stop[b, i] else (1 - lam) * values[i] + lam * g
            g = r[b, i].item() + d[b, i].item() * boot
        out.append(g)
    return torch.tensor(out, dtype=torch.float32)


@pytest.mark.parametrize("mode", ["lse", "max", "mean"])
@pytest.mark.parametrize("T", [1, 3, 5])
@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
@pytest.mark.parametrize("normalize", [False, True])
def test_margin_target_matches_loop(mode, T, lam, normalize):
    B, n = 7, 5
    q = torch.randn(B, T, n) * 3
    q[0, 0, 1] = -float("inf")  # an excluded sample
    r = torch.randn(B, T)
    terminal = torch.rand(B, T) < 0.2
    stop = terminal | (torch.rand(B, T) < 0.2)
    d = discounts(terminal, 0.9)
    got = qwr_margin_target(q, r, d, stop=stop, mode=mode, tau=0.3, lam=lam, normalize_q=normalize)
    want = _loop_target(q, r, d, stop, mode=mode, tau=0.3, lam=lam, normalize=normalize)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("T", [1, 2, 4])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_td_lambda_matches_loop_and_margin_target(T, lam):
    B = 6
    r, v = torch.randn(B, T), torch.randn(B, T)
    d = discounts(torch.rand(B, T) < 0.3, 0.97)
    stop = torch.rand(B, T) < 0.3
    got = td_lambda(r, d, v, lam=lam, stop=stop)
    want = _loop_target(v[..., None], r, d, stop, mode="mean", tau=1.0, lam=lam, normalize=False)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    fused = qwr_margin_target(v[..., None], r, d, stop=stop, mode="mean", lam=lam)
    torch.testing.assert_close(got, fused, rtol=1e-5, atol=1e-5)


def test_stop_cuts_the_recursion():
    r = torch.tensor([[1.0, 100.0, 100.0]])
    v = torch.tensor([[2.0, 50.0, 50.0]])
    stop = torch.tensor([[True, False, False]])
    g = td_lambda(r, torch.full((1, 3), 0.5), v, lam=1.0, stop=stop)
    assert g.item() == pytest.approx(1.0 + 0.5 * 2.0)


def test_q_scale_and_discounts():
    q = torch.tensor([[1.0, 3.0, -float("inf")]])
    assert q_scale(q).item() == pytest.approx(1.0 + 1e-5)
    d = discounts(torch.tensor([True, False]), 0.9)
    assert d.tolist() == pytest.approx([0.0, 0.9])


def test_td_lambda_bad_input():
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        td_lambda(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="lam"):
        td_lambda(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), lam=2.0)


def test_n_step_target_by_the_recursion_equals_the_closed_form():
    """The n-step target runs the one recursion; it equals the closed form
    sum_{i<=k} (prod_{j<i} d_j) r_i + (prod_{j<=k} d_j) v_boot (k: first stop) to rounding."""
    from qwr_fast.estimators import bootstrap_index, n_step_target

    torch.manual_seed(0)
    B, T = 64, 5
    r, d, v = torch.randn(B, T), torch.rand(B, T), torch.randn(B)
    stop = torch.rand(B, T) < 0.3
    k = bootstrap_index(stop)
    expected = torch.zeros(B)
    for b in range(B):
        disc = 1.0
        for i in range(int(k[b]) + 1):
            expected[b] += disc * r[b, i]
            disc *= d[b, i]
        expected[b] += disc * v[b]
    torch.testing.assert_close(n_step_target(r, d, v, stop), expected, rtol=1e-5, atol=1e-5)
