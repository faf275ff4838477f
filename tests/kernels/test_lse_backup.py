import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qwr_fast.kernels._common import poison_outputs
from qwr_fast.kernels.lse_backup import MODES, lse_backup, lse_backup_reference
from tests.conftest import INTERPRET

pytestmark = pytest.mark.kernel
# the interpreter's numpy warns about the inf / NaN intermediates that these inputs are meant
# to produce (and the kernels then mask or clamp)
INTENDED_INF_NAN = pytest.mark.filterwarnings("ignore::RuntimeWarning")

RTOL, ATOL = 1e-5, 1e-5


def make_inputs(B, T, n, *, exclude=0.0, with_stop=False, scale=1.0, generator=None):
    """Random q_next/reward/discount/stop; ``exclude`` is the fraction of -inf samples
    (every row keeps at least one finite entry)."""
    q = torch.randn(B, T, n, generator=generator) * scale
    if exclude > 0:
        drop = torch.rand(B, T, n, generator=generator) < exclude
        keep = torch.randint(0, n, (B, T, 1), generator=generator)
        drop.scatter_(2, keep, False)
        q = q.masked_fill(drop, float("-inf"))
    reward = torch.randn(B, T, generator=generator)
    discount = 0.99 * (torch.rand(B, T, generator=generator) > 0.1).float()
    stop = torch.rand(B, T, generator=generator) < 0.3 if with_stop else None
    return q, reward, discount, stop


def check_against_reference(backend, q, reward, discount, stop, **kw):
    expected = lse_backup(q, reward, discount, stop=stop, backend="reference", **kw)
    with poison_outputs():
        got = lse_backup(q, reward, discount, stop=stop, backend=backend, **kw)
    assert got.shape == (q.shape[0],) and got.dtype == q.dtype
    scale = max(1.0, q[torch.isfinite(q)].abs().max().item())
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL * scale)
    return got


SHAPES = [(1, 1, 1), (1, 3, 8), (7, 3, 3), (7, 5, 17), (130, 3, 8), (33, 1, 17), (256, 3, 4)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("B", "T", "n"), SHAPES)
def test_matches_reference(fast_backend, mode, B, T, n):
    q, reward, discount, stop = make_inputs(B, T, n, with_stop=True)
    check_against_reference(fast_backend, q, reward, discount, stop, mode=mode, tau=0.3, lam=0.95)


@pytest.mark.parametrize("mode", MODES)
def test_excluded_samples_are_ignored(fast_backend, mode):
    q, reward, discount, stop = make_inputs(19, 3, 9, exclude=0.5)
    got = check_against_reference(fast_backend, q, reward, discount, stop, mode=mode, tau=0.7)
    # same rows with the -inf samples physically removed
    for b in (0, 7, 18):
        finite = [q[b, i][torch.isfinite(q[b, i])].unsqueeze(0).unsqueeze(0) for i in range(3)]
        values = [
            lse_backup(
                f, torch.zeros(1, 1), torch.ones(1, 1), mode=mode, tau=0.7, backend="reference"
            )
            for f in finite
        ]
        g = reward[b, 2] + discount[b, 2] * values[2]
        for i in (1, 0):
            g = reward[b, i] + discount[b, i] * g
        torch.testing.assert_close(got[b : b + 1], g, rtol=RTOL, atol=ATOL)


def test_many_samples_chunked(fast_backend):
    # n > 1024 walks the samples in several blocks (online log-sum-exp)
    q, reward, discount, stop = make_inputs(3, 2, 1500, exclude=0.2, with_stop=True, scale=5.0)
    for mode in MODES:
        check_against_reference(fast_backend, q, reward, discount, stop, mode=mode, tau=0.5)


@pytest.mark.parametrize("mode", MODES)
def test_stable_for_huge_q_over_tau(fast_backend, mode):
    tau = 0.01
    q = 1e4 * tau * (1.0 + 0.01 * torch.randn(16, 3, 8))
    q[:, :, 0] = -1e4 * tau
    reward, discount = torch.randn(16, 3), torch.full((16, 3), 0.9)
    got = check_against_reference(fast_backend, q, reward, discount, None, mode=mode, tau=tau)
    assert torch.isfinite(got).all()


def test_constant_rows_give_the_constant_for_every_mode(fast_backend):
    c = torch.tensor([-2.5e3, 0.0, 7.0, 4e3])
    q = c.view(4, 1, 1).expand(4, 2, 5).clone()
    q[1, 0, 3] = float("-inf")
    zero, one = torch.zeros(4, 2), torch.ones(4, 2)
    for mode in MODES:
        for tau in (1e-3, 1.0, 50.0):
            with poison_outputs():
                got = lse_backup(q, zero, one, mode=mode, tau=tau, backend=fast_backend)
            torch.testing.assert_close(got, c, rtol=1e-6, atol=1e-6)


def test_known_answer_with_stop_and_lambda(fast_backend):
    # one row, T = 3, n = 2, lse at tau = 1: V_i = log((e^a + e^b) / 2)
    q = torch.tensor([[[0.0, 0.0], [1.0, 3.0], [2.0, float("-inf")]]])
    reward = torch.tensor([[1.0, 2.0, 3.0]])
    discount = torch.tensor([[0.5, 0.9, 0.8]])
    v0, v1, v2 = 0.0, math.log((math.e + math.e**3) / 2), 2.0
    lam = 0.25
    g2 = 3.0 + 0.8 * v2
    g1 = 2.0 + 0.9 * ((1 - lam) * v1 + lam * g2)
    g0 = 1.0 + 0.5 * ((1 - lam) * v0 + lam * g1)
    got = lse_backup(q, reward, discount, lam=lam, backend=fast_backend)
    torch.testing.assert_close(got, torch.tensor([g0]), rtol=1e-6, atol=1e-6)
    stop = torch.tensor([[False, True, False]])  # slice ends at s_{t+2}: G_1 uses V_1 alone
    got = lse_backup(q, reward, discount, lam=lam, stop=stop, backend=fast_backend)
    g1_stop = 2.0 + 0.9 * v1
    expected = 1.0 + 0.5 * ((1 - lam) * v0 + lam * g1_stop)
    torch.testing.assert_close(got, torch.tensor([expected]), rtol=1e-6, atol=1e-6)


def test_lambda_zero_is_the_one_step_target(fast_backend):
    q, reward, discount, _ = make_inputs(11, 4, 6)
    got = lse_backup(q, reward, discount, tau=0.3, lam=0.0, backend=fast_backend)
    v0 = 0.3 * (torch.logsumexp(q[:, 0] / 0.3, -1) - math.log(6))
    torch.testing.assert_close(got, reward[:, 0] + discount[:, 0] * v0, rtol=RTOL, atol=ATOL)


def test_tensor_tau_matches_float_tau(fast_backend):
    q, reward, discount, stop = make_inputs(9, 3, 8, with_stop=True)
    a = lse_backup(q, reward, discount, tau=0.3, stop=stop, backend=fast_backend)
    b = lse_backup(q, reward, discount, tau=torch.tensor(0.3), stop=stop, backend=fast_backend)
    torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)


def test_non_contiguous_inputs(fast_backend):
    q, reward, discount, stop = make_inputs(10, 3, 8, with_stop=True)
    q_nc = q.transpose(0, 2).contiguous().transpose(0, 2)
    r_nc = reward.t().contiguous().t()
    d_nc = torch.stack([discount, discount], -1)[..., 0]
    s_nc = stop.t().contiguous().t()
    assert not (q_nc.is_contiguous() or r_nc.is_contiguous() or d_nc.is_contiguous())
    expected = lse_backup(q, reward, discount, stop=stop, lam=0.9, backend="reference")
    with poison_outputs():
        got = lse_backup(q_nc, r_nc, d_nc, stop=s_nc, lam=0.9, backend=fast_backend)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)


def test_float64_keeps_dtype(fast_backend):
    q, reward, discount, _ = make_inputs(5, 3, 4)
    got = lse_backup(q.double(), reward.double(), discount.double(), backend=fast_backend)
    assert got.dtype == torch.float64
    expected = lse_backup_reference(q.double(), reward.double(), discount.double())
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)


def test_output_carries_no_gradient(fast_backend):
    q, reward, discount, _ = make_inputs(4, 3, 5)
    q.requires_grad_(True)
    reward.requires_grad_(True)
    for backend in (fast_backend, "reference"):
        assert not lse_backup(q, reward, discount, backend=backend).requires_grad


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_empty_batch(fast_backend, backend):
    backend = fast_backend if backend == "fast" else backend
    got = lse_backup(torch.zeros(0, 3, 4), torch.zeros(0, 3), torch.zeros(0, 3), backend=backend)
    assert got.shape == (0,)


@INTENDED_INF_NAN
@pytest.mark.parametrize(
    "tau", [1e-39, 1e-50, torch.tensor(1e-39), torch.tensor(1e-50, dtype=torch.float64)]
)
def test_denormal_tau_is_finite(fast_backend, tau):
    """1 / tau overflows fp32 (or tau itself rounds to 0 there): the limit is the max."""
    q, reward, discount, stop = make_inputs(9, 3, 6, exclude=0.3, with_stop=True)
    q[0, 0] = 2.0  # ties at the max
    got = check_against_reference(fast_backend, q, reward, discount, stop, tau=tau)
    assert torch.isfinite(got).all()
    max_target = lse_backup(q, reward, discount, stop=stop, mode="max", backend="reference")
    torch.testing.assert_close(got, max_target, rtol=RTOL, atol=ATOL)


@INTENDED_INF_NAN
@pytest.mark.parametrize("exclude", [0.0, 0.3])
def test_mean_of_q_near_the_float_max_does_not_overflow(fast_backend, exclude):
    q, reward, discount, stop = make_inputs(5, 2, 7, exclude=exclude, with_stop=True)
    q = q.clamp(-1.0, 1.0) * 3e38  # the plain sum of a row overflows
    q[1] = 3.3e38
    discount = discount * 0.1  # keep G itself finite
    got = check_against_reference(fast_backend, q, reward, discount, stop, mode="mean")
    assert torch.isfinite(got).all()


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_meta_tensors_give_the_shape(fast_backend, backend):
    """Meta tensors carry no values: the value checks are skipped, the shape propagates."""
    backend = fast_backend if backend == "fast" else backend
    meta = torch.device("meta")
    q = torch.zeros(5, 3, 4, device=meta)
    reward = discount = torch.zeros(5, 3, device=meta)
    tau = torch.tensor(0.5, device=meta)
    for mode in MODES:
        got = lse_backup(q, reward, discount, mode=mode, tau=tau, backend=backend)
        assert got.shape == (5,) and got.device == meta


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 40),
    T=st.integers(1, 5),
    n=st.integers(1, 20),
    mode=st.sampled_from(MODES),
    lam=st.floats(0.0, 1.0),
    tau=st.floats(1e-2, 10.0),
    exclude=st.sampled_from([0.0, 0.5, 0.9]),
    with_stop=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_matches_reference(B, T, n, mode, lam, tau, exclude, with_stop, seed):
    backend = "triton" if INTERPRET else "torch"  # function-scoped fixtures clash with @given
    gen = torch.Generator().manual_seed(seed)
    q, reward, discount, stop = make_inputs(
        B, T, n, exclude=exclude, with_stop=with_stop, scale=3.0, generator=gen
    )
    check_against_reference(backend, q, reward, discount, stop, mode=mode, tau=tau, lam=lam)


def test_torch_compile_fullgraph(fast_backend):
    q, reward, discount, stop = make_inputs(6, 3, 8, with_stop=True)
    tau = torch.tensor(0.3)

    def target(q, reward, discount, stop, tau):
        return lse_backup(q, reward, discount, tau=tau, lam=0.9, stop=stop, backend=fast_backend)

    compiled = torch.compile(target, fullgraph=True, backend="aot_eager")
    expected = lse_backup_reference(q, reward, discount, tau=tau, lam=0.9, stop=stop)
    torch.testing.assert_close(compiled(q, reward, discount, stop, tau), expected)
    tau.fill_(2.0)  # a changed tensor tau is read, not baked in
    expected = lse_backup_reference(q, reward, discount, tau=2.0, lam=0.9, stop=stop)
    torch.testing.assert_close(compiled(q, reward, discount, stop, tau), expected)


def _bad(**overrides):
    q, reward, discount, _ = make_inputs(4, 3, 5)
    args = {"q_next": q, "reward": reward, "discount": discount}
    args.update(overrides)
    return args


NEG_ROW = torch.randn(4, 3, 5)
NEG_ROW[2, 1] = float("-inf")
NAN_Q = torch.randn(4, 3, 5)
NAN_Q[0, 0, 0] = float("nan")
POS_INF_Q = torch.randn(4, 3, 5)
POS_INF_Q[3, 2, 4] = float("inf")

BAD_INPUTS = [
    (_bad(q_next=torch.randn(4, 5)), ValueError, r"q_next must have 3 dims \[B, T, n\]"),
    (_bad(q_next=torch.randn(4, 0, 5)), ValueError, "q_next must have T >= 1"),
    (_bad(q_next=torch.randn(4, 3, 0)), ValueError, "q_next must have n >= 1"),
    (_bad(q_next=torch.zeros(4, 3, 5, dtype=torch.int64)), TypeError, "q_next must be a floating"),
    (_bad(q_next=[[[0.0]]]), TypeError, "q_next must be a torch.Tensor"),
    (_bad(q_next=NEG_ROW), ValueError, "q_next .* at least one finite entry"),
    (_bad(q_next=NAN_Q), ValueError, "q_next must not contain NaN"),
    (_bad(q_next=POS_INF_Q), ValueError, r"q_next must not contain NaN or \+inf"),
    (_bad(reward=torch.randn(4, 2)), ValueError, r"reward must have shape \[4, 3\]"),
    (_bad(reward=torch.randn(4, 3, 1)), ValueError, "reward must have shape"),
    (_bad(reward=torch.ones(4, 3, dtype=torch.int64)), TypeError, "reward must be a floating"),
    (_bad(reward=torch.randn(4, 3, device="meta")), ValueError, "reward is on meta"),
    (_bad(discount=torch.randn(5, 3)), ValueError, r"discount must have shape \[4, 3\]"),
    (_bad(discount=torch.randn(4, 3, device="meta")), ValueError, "discount is on meta"),
    (_bad(stop=torch.zeros(4, 3)), TypeError, "stop must be a bool"),
    (_bad(stop=torch.zeros(4, 2, dtype=torch.bool)), ValueError, r"stop must have shape \[4, 3\]"),
    (_bad(mode="softmax"), ValueError, "mode must be one of"),
    (_bad(tau=0.0), ValueError, "tau must be a finite number > 0"),
    (_bad(tau=-1.0), ValueError, "tau must be a finite number > 0"),
    (_bad(tau=float("inf")), ValueError, "tau must be a finite number > 0"),
    (_bad(tau=torch.tensor(-0.5)), ValueError, "tau must be > 0"),
    (_bad(tau=torch.tensor([0.5])), ValueError, "tau must be a float or a 0-dim tensor"),
    (_bad(tau=torch.tensor(1)), TypeError, "tau must be a floating-point tensor"),
    (_bad(tau=torch.tensor(1.0, device="meta")), ValueError, "tau is on meta"),
    (_bad(tau="1.0"), TypeError, "tau must be a float or a 0-dim tensor"),
    (_bad(lam=1.5), ValueError, r"lam must be in \[0, 1\]"),
    (_bad(lam=-0.1), ValueError, r"lam must be in \[0, 1\]"),
    (_bad(lam=torch.tensor(0.5)), TypeError, "lam must be a float"),
    (_bad(backend="cuda"), ValueError, "backend must be one of"),
]


@pytest.mark.parametrize(("kwargs", "exc", "match"), BAD_INPUTS)
def test_bad_input_is_rejected(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lse_backup(**kwargs)
