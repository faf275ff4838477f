import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwr_fast.kernels._common import poison_outputs
from qwr_fast.kernels.awr_loss import awr_loss, awr_loss_reference

pytestmark = pytest.mark.kernel
# the interpreter's numpy warns about the inf / NaN intermediates that these inputs are meant
# to produce (and the kernels then mask or clamp)
INTENDED_INF_NAN = pytest.mark.filterwarnings("ignore::RuntimeWarning")

RTOL, ATOL = 1e-5, 1e-6


def _gaussian(B, n, A, ls_1d, dtype=torch.float32):
    mean = torch.randn(B, A, dtype=dtype, requires_grad=True)
    log_std = (0.3 * torch.randn(*((A,) if ls_1d else (B, A)), dtype=dtype)).requires_grad_()
    actions = mean.detach().unsqueeze(1) + torch.randn(B, n, A, dtype=dtype)
    return ("gaussian", mean, log_std), actions


def _categorical(B, n, K, dtype=torch.float32):
    logits = (2.0 * torch.randn(B, K, dtype=dtype)).requires_grad_()
    return ("categorical", logits), torch.randint(0, K, (B, n))


def _loss_and_grads(dist, actions, q, backend, upstream, **kw):
    params = list(dist[1:])
    for p in params:
        p.grad = None
    with poison_outputs():
        loss = awr_loss(dist, actions, q, backend=backend, **kw)
    (loss * upstream).backward()
    return [loss.detach()] + [p.grad.clone() for p in params]


def _compare(dist, actions, q, backend, **kw):
    upstream = torch.randn(())
    want = _loss_and_grads(dist, actions, q, "reference", upstream, **kw)
    got = _loss_and_grads(dist, actions, q, backend, upstream, **kw)
    names = ["loss", "d_mean", "d_log_std"] if dist[0] == "gaussian" else ["loss", "d_logits"]
    for name, g, w in zip(names, got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype, name
        torch.testing.assert_close(
            g, w, rtol=RTOL, atol=ATOL, msg=lambda m, name=name: f"{name}: {m}"
        )


@pytest.mark.parametrize("B", [1, 7, 32])
@pytest.mark.parametrize("n", [1, 3, 8, 17])
@pytest.mark.parametrize("A", [1, 6])
@pytest.mark.parametrize("ls_1d", [False, True])
def test_gaussian_matches_reference(fast_backend, B, n, A, ls_1d):
    dist, actions = _gaussian(B, n, A, ls_1d)
    _compare(dist, actions, torch.randn(B, n), fast_backend, beta=0.7, max_weight=5.0)


@pytest.mark.parametrize("B", [1, 7, 32])
@pytest.mark.parametrize("n", [1, 3, 8, 17])
@pytest.mark.parametrize("K", [1, 5, 18])
def test_categorical_matches_reference(fast_backend, B, n, K):
    dist, actions = _categorical(B, n, K)
    _compare(dist, actions, torch.randn(B, n), fast_backend, beta=1.3, max_weight=20.0)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("normalize", [True, False])
def test_sample_weight_and_normalize(fast_backend, kind, normalize):
    B, n = 9, 5
    dist, actions = _gaussian(B, n, 3, False) if kind == "gaussian" else _categorical(B, n, 5)
    sw = torch.rand(B, n).softmax(dim=1)
    q = 3.0 * torch.randn(B, n) + 1.0
    _compare(dist, actions, q, fast_backend, normalize=normalize, sample_weight=sw, beta=0.5)


def test_enumerated_discrete_actions(fast_backend):
    """The "enumerate all K actions" mode: n == K, sample_weight = mu(a|s)."""
    B, K = 6, 7
    dist, _ = _categorical(B, K, K)
    actions = torch.arange(K).expand(B, K)
    mu = torch.randn(B, K).softmax(dim=1)
    _compare(dist, actions, torch.randn(B, K), fast_backend, sample_weight=mu)


def test_weights_clip_and_temperature(fast_backend):
    """Large advantages and small beta: most weights sit at the clip."""
    dist, actions = _gaussian(16, 8, 4, True)
    q = 10.0 * torch.randn(16, 8)
    _compare(dist, actions, q, fast_backend, beta=0.05, max_weight=2.0, normalize=False)
    _compare(dist, actions, q, fast_backend, beta=torch.tensor(0.2), max_weight=2.0)


def test_non_contiguous_inputs(fast_backend):
    B, n, A = 5, 4, 3
    mean = torch.randn(A, B).t().requires_grad_()
    log_std = (0.2 * torch.randn(B, 2 * A)[:, ::2]).requires_grad_()
    actions = torch.randn(B, A, n).transpose(1, 2)
    q = torch.randn(n, B).t()
    _compare(("gaussian", mean, log_std), actions, q, fast_backend)
    logits = torch.randn(7, B).t().requires_grad_()
    cat_actions = torch.randint(0, 7, (n, B)).t()
    _compare(("categorical", logits), cat_actions, q, fast_backend)


def test_loss_value_by_hand():
    """normalize=False, beta large: w = 1 and the loss is the mean negative log-likelihood."""
    dist, actions = _categorical(3, 4, 5)
    q = torch.randn(3, 4)
    loss = awr_loss(dist, actions, q, beta=1e9, normalize=False, backend="reference")
    nll = -torch.log_softmax(dist[1], dim=1).gather(1, actions).mean()
    torch.testing.assert_close(loss, nll)
    mean, log_std = torch.zeros(2, 1), torch.zeros(1)
    actions = torch.zeros(2, 1, 1)
    loss = awr_loss(("gaussian", mean, log_std), actions, torch.zeros(2, 1), backend="reference")
    torch.testing.assert_close(loss, torch.tensor(0.5 * math.log(2 * math.pi)))


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_no_gradient_into_q_or_sample_weight(backend):
    dist, actions = _categorical(4, 3, 6)
    q = torch.randn(4, 3, requires_grad=True)
    sw = torch.rand(4, 3).softmax(1).requires_grad_()
    loss = awr_loss(dist, actions, q, sample_weight=sw, backend=backend)
    assert loss.requires_grad
    assert torch.autograd.grad(loss, [q, sw], allow_unused=True) == (None, None)


def test_torch_path_vs_reference_float64():
    dist, actions = _gaussian(4, 3, 2, False, dtype=torch.float64)
    q = torch.randn(4, 3, dtype=torch.float64)
    _compare(dist, actions, q, "torch")


@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize(
    ("kind", "ls_1d"), [("gaussian", False), ("gaussian", True), ("categorical", None)]
)
@pytest.mark.parametrize("use_sw", [False, True])
def test_float64_gradcheck(backend, kind, ls_1d, use_sw):
    """float64 is computed in float64 (the Triton kernels accumulate in fp32, so not them)."""
    B, n, f64 = 3, 4, torch.float64
    if kind == "categorical":
        dist, actions = _categorical(B, n, 5, dtype=f64)
    else:
        dist, actions = _gaussian(B, n, 2, ls_1d, dtype=f64)
    q = torch.randn(B, n, dtype=f64)
    q[1, 2] = float("-inf")  # an excluded sample
    sw = torch.rand(B, n, dtype=f64) if use_sw else None

    def loss(*params):
        kw = {"beta": 0.7, "sample_weight": sw, "backend": backend}
        return awr_loss((kind, *params), actions, q, **kw)

    assert loss(*dist[1:]).dtype == f64
    assert torch.autograd.gradcheck(loss, tuple(dist[1:]))
    if backend == "reference":
        assert torch.autograd.gradgradcheck(loss, tuple(dist[1:]))


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_actions_requiring_grad_are_refused(fast_backend, backend):
    dist, actions = _gaussian(3, 4, 2, True)
    with pytest.raises(ValueError, match="actions requires grad, but awr_loss gives no gradient"):
        awr_loss(
            dist,
            actions.requires_grad_(),
            torch.randn(3, 4),
            backend=fast_backend if backend == "fast" else backend,
        )


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("use_sw", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_minus_inf_q_excludes_the_sample(fast_backend, kind, use_sw, normalize):
    """q = -inf: the sample weighs nothing and leaves the baseline and the normalisation, i.e.
    the loss and gradients equal those of the batch with that sample removed; an excluded
    illegal action whose logit is -inf contributes 0, not 0 * -inf."""
    B, n, K = 7, 5, 6
    rows = torch.arange(B)
    drop = torch.randint(0, n, (B,))
    keep = torch.ones(B, n, dtype=torch.bool)
    keep[rows, drop] = False
    if kind == "gaussian":
        dist, actions = _gaussian(B, n, 3, True)
        removed = actions[keep].view(B, n - 1, 3)
    else:
        dist, _ = _categorical(B, n, K)
        actions = torch.randint(0, K - 1, (B, n))
        actions[rows, drop] = K - 1
        with torch.no_grad():
            dist[1][:, K - 1] = float("-inf")
        removed = actions[keep].view(B, n - 1)
    q = 2.0 * torch.randn(B, n)
    q_excluded = q.masked_fill(~keep, float("-inf"))
    sw = torch.rand(B, n) if use_sw else None
    kw = {"beta": 0.6, "normalize": normalize}
    _compare(dist, actions, q_excluded, fast_backend, sample_weight=sw, **kw)
    upstream = torch.randn(())
    got = _loss_and_grads(dist, actions, q_excluded, fast_backend, upstream, sample_weight=sw, **kw)
    sw_removed = None if sw is None else sw[keep].view(B, n - 1)
    want = _loss_and_grads(
        dist, removed, q[keep].view(B, n - 1), "reference", upstream, sample_weight=sw_removed, **kw
    )
    assert torch.isfinite(got[0])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)


@INTENDED_INF_NAN
def test_denormal_beta_is_finite(fast_backend):
    dist, actions = _gaussian(5, 4, 2, True)
    _compare(dist, actions, torch.randn(5, 4), fast_backend, beta=1e-39, max_weight=3.0)


def test_meta_tensors_give_the_shape(fast_backend):
    meta = torch.device("meta")
    mean = torch.zeros(3, 2, device=meta, requires_grad=True)
    dist = ("gaussian", mean, torch.zeros(2, device=meta))
    q, sw = torch.zeros(3, 4, device=meta), torch.ones(3, 4, device=meta)
    loss = awr_loss(dist, torch.zeros(3, 4, 2, device=meta), q, sample_weight=sw)
    assert loss.shape == () and loss.device == meta and loss.requires_grad
    logits = torch.zeros(3, 5, device=meta)
    actions = torch.zeros(3, 4, dtype=torch.int64, device=meta)
    loss = awr_loss(("categorical", logits), actions, q, backend=fast_backend)
    assert loss.shape == () and loss.device == meta


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    B=st.integers(1, 12),
    n=st.integers(1, 9),
    width=st.integers(1, 20),
    gaussian=st.booleans(),
    ls_1d=st.booleans(),
    normalize=st.booleans(),
    use_sw=st.booleans(),
    beta=st.floats(0.05, 5.0),
    max_weight=st.floats(0.5, 50.0),
    q_scale=st.sampled_from([0.0, 1e-3, 1.0, 100.0]),
)
def test_property_matches_reference(
    fast_backend, B, n, width, gaussian, ls_1d, normalize, use_sw, beta, max_weight, q_scale
):
    if gaussian:
        dist, actions = _gaussian(B, n, width, ls_1d)
    else:
        dist, actions = _categorical(B, n, width)
    q = q_scale * torch.randn(B, n)
    sw = torch.rand(B, n).softmax(dim=1) if use_sw else None
    _compare(
        dist,
        actions,
        q,
        fast_backend,
        beta=beta,
        max_weight=max_weight,
        normalize=normalize,
        sample_weight=sw,
    )


def test_torch_compile_fullgraph(fast_backend):
    dist, actions = _gaussian(6, 4, 3, True)
    cat_dist, cat_actions = _categorical(6, 4, 5)
    q = torch.randn(6, 4)

    def step(mean, log_std, logits, actions, cat_actions, q):
        a = awr_loss(("gaussian", mean, log_std), actions, q, beta=0.5, backend=fast_backend)
        b = awr_loss(("categorical", logits), cat_actions, q, backend=fast_backend)
        return a + b

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    args = (dist[1], dist[2], cat_dist[1], actions, cat_actions, q)
    out = compiled(*args)
    grads = torch.autograd.grad(out, [dist[1], dist[2], cat_dist[1]])
    want = awr_loss_reference(dist, actions, q, beta=0.5) + awr_loss_reference(
        cat_dist, cat_actions, q
    )
    want_grads = torch.autograd.grad(want, [dist[1], dist[2], cat_dist[1]])
    torch.testing.assert_close(out, want, rtol=RTOL, atol=ATOL)
    for g, w in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)


def _bad_inputs():
    mean, log_std = torch.randn(4, 3), torch.zeros(3)
    act, q = torch.randn(4, 5, 3), torch.randn(4, 5)
    logits, cat = torch.randn(4, 6), torch.randint(0, 6, (4, 5))
    g = ("gaussian", mean, log_std)
    c = ("categorical", logits)
    g0, c0 = ("gaussian", mean[:0], log_std), ("categorical", logits[:0])
    nan, inf, zero = torch.tensor(math.nan), torch.tensor(math.inf), torch.tensor(0.0)
    i0, j0 = torch.tensor([2]), torch.tensor([1])
    sw = torch.rand(4, 5) + 0.1
    sw0 = sw[2, 1]
    only_j0 = sw.index_put((i0,), zero).index_put((i0, j0), sw0)
    return [
        ((("beta", mean), act, q), {}, ValueError, "dist kind"),
        ((("gaussian", mean), act, q), {}, ValueError, "gaussian"),
        ((g, act, q), {"beta": 0.0}, ValueError, "beta"),
        ((g, act, q), {"beta": torch.tensor(-1.0)}, ValueError, "beta"),
        ((g, act, q), {"max_weight": 0.0}, ValueError, "max_weight"),
        ((("gaussian", mean[0], log_std), act, q), {}, ValueError, "mean"),
        ((("gaussian", mean, torch.zeros(4)), act, q), {}, ValueError, "log_std"),
        ((("gaussian", mean, torch.zeros(3, 3)), act, q), {}, ValueError, "log_std"),
        ((g, act[:, :, :2], q), {}, ValueError, "actions"),
        ((g, act[0], q), {}, ValueError, "actions"),
        ((g, act[:, :0], q[:, :0]), {}, ValueError, "n >= 1"),
        ((g, cat, q), {}, ValueError, "actions"),
        ((g, act.long(), q), {}, TypeError, "actions"),
        ((c, cat.float(), q), {}, TypeError, "actions"),
        ((c, cat + 6, q), {}, ValueError, "actions"),
        ((c, cat - 7, q), {}, ValueError, "actions"),
        ((c, cat, q.long()), {}, TypeError, "q"),
        ((c, cat, q[:, :4]), {}, ValueError, "q"),
        ((c, cat, q), {"sample_weight": torch.rand(4, 4)}, ValueError, "sample_weight"),
        ((c, cat, q), {"backend": "cuda"}, ValueError, "backend"),
        ((c, cat, q.to("meta")), {}, ValueError, "q"),
        ((("categorical", logits.long()), cat, q), {}, TypeError, "logits"),
        ((c, cat, q), {"max_weight": torch.tensor(2.0)}, TypeError, "max_weight"),
        ((c, cat, q.index_put((i0, j0), nan)), {}, ValueError, r"q must not contain NaN or \+inf"),
        ((c, cat, q.index_put((i0, j0), inf)), {}, ValueError, r"q must not contain NaN or \+inf"),
        ((c, cat, q.index_put((i0,), -inf)), {}, ValueError, r"q \[B, n\] needs at least one"),
        ((c, cat, q), {"sample_weight": sw.index_put((i0, j0), -sw0)}, ValueError, ">= 0"),
        ((c, cat, q), {"sample_weight": sw.index_put((i0,), zero)}, ValueError, "b=2 is all zero"),
        ((c, cat, q), {"sample_weight": sw.index_put((i0, j0), nan)}, ValueError, "finite"),
        ((c, cat, q), {"sample_weight": sw.index_put((i0, j0), inf)}, ValueError, "finite"),
        # row 2 weighs only its excluded sample
        ((c, cat, q.index_put((i0, j0), -inf)), {"sample_weight": only_j0}, ValueError, "b=2"),
        ((g0, act[:0], q[:0]), {}, ValueError, "B >= 1"),
        ((c0, cat[:0], q[:0]), {}, ValueError, "B >= 1"),
        ((g, act.clone().requires_grad_(), q), {}, ValueError, "actions requires grad"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_inputs())))
def test_bad_inputs(case):
    args, kwargs, error, match = _bad_inputs()[case]
    with pytest.raises(error, match=match):
        awr_loss(*args, **kwargs)
