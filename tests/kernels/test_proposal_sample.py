import itertools
import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qwr_fast.kernels._common import poison_outputs
from qwr_fast.kernels.proposal_sample import proposal_sample, proposal_sample_reference

pytestmark = pytest.mark.kernel

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

RTOL = ATOL = 1e-5


def make_inputs(B, D, K, E, dtype=torch.float32, scale=1.0):
    z0 = torch.randn(B, E, dtype=dtype)
    heads_w = torch.randn(D, K, E, dtype=dtype) * (scale / math.sqrt(E))
    heads_b = torch.randn(D, K, dtype=dtype)
    emb = torch.randn(D, K, E, dtype=dtype)
    return z0, heads_w, heads_b, emb


def gumbel_noise(B, N, D, K, dtype=torch.float32):
    return -torch.log(-torch.log(torch.rand(B, N, D, K, dtype=dtype).clamp_min(1e-30)))


def teacher_forced_logp(z0, heads_w, heads_b, emb, actions, sizes):
    """log pi(actions) recomputed step by step in float64, independent of any sampling code."""
    B, N, D = actions.shape
    K = heads_w.shape[1]
    z = z0.double()[:, None, :].expand(B, N, -1)
    logp = torch.zeros(B, N, dtype=torch.float64)
    for d in range(D):
        logits = torch.relu(z) @ heads_w[d].double().T + heads_b[d].double()
        logits[..., sizes[d] : K] = float("-inf")
        logp += torch.log_softmax(logits, -1).gather(-1, actions[..., d : d + 1])[..., 0]
        z = z + emb[d].double()[actions[..., d]]
    return logp


def check_against_reference(backend, B, N, D, K, E, sizes, temperature, dtype=torch.float32):
    inputs = make_inputs(B, D, K, E, dtype)
    gumbel = gumbel_noise(B, N, D, K, dtype)
    kwargs = dict(sizes=sizes, gumbel=gumbel, temperature=temperature)
    ref_actions, ref_logp = proposal_sample(*inputs, N, backend="reference", **kwargs)
    with poison_outputs():
        actions, logp = proposal_sample(*inputs, N, backend=backend, **kwargs)
    assert actions.shape == (B, N, D) and actions.dtype == torch.int64
    assert logp.shape == (B, N) and logp.dtype == dtype
    assert torch.equal(actions, ref_actions)
    torch.testing.assert_close(logp, ref_logp, rtol=RTOL, atol=ATOL)
    size_list = [K] * D if sizes is None else [int(s) for s in sizes]
    assert bool((actions < torch.tensor(size_list)).all()) and bool((actions >= 0).all())
    expected = teacher_forced_logp(*inputs, actions, size_list).to(dtype)
    torch.testing.assert_close(logp, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("B", "N", "D", "K", "E", "sizes"),
    [
        (1, 1, 1, 1, 16, None),
        (1, 3, 1, 5, 1, (3,)),
        (3, 17, 5, 7, 40, (7, 3, 1, 5, 6)),
        (2, 8, 17, 11, 256, None),
        (5, 33, 3, 5, 64, (5, 2, 4)),
        (2, 16, 2, 18, 100, (18, 9)),
    ],
)
def test_matches_reference_with_given_noise(fast_backend, B, N, D, K, E, sizes):
    check_against_reference(fast_backend, B, N, D, K, E, sizes, temperature=1.0)


@pytest.mark.parametrize("temperature", [0.3, torch.tensor(2.5)])
def test_temperature_float_or_tensor(fast_backend, temperature):
    check_against_reference(fast_backend, 3, 9, 4, 6, 24, (6, 2, 5, 3), temperature)


def test_sizes_as_tensor_and_float64(fast_backend):
    sizes = torch.tensor([2, 7, 4])
    check_against_reference(fast_backend, 2, 5, 3, 7, 20, sizes, 0.8, dtype=torch.float64)


def test_large_logits_are_stable(fast_backend):
    B, N, D, K, E = 2, 6, 3, 5, 32
    inputs = make_inputs(B, D, K, E, scale=1e3)
    with poison_outputs():
        actions, logp = proposal_sample(
            *inputs, N, gumbel=gumbel_noise(B, N, D, K), backend=fast_backend
        )
    assert bool(torch.isfinite(logp).all()) and bool((logp <= 0).all())
    torch.testing.assert_close(
        logp, teacher_forced_logp(*inputs, actions, [K] * D).float(), rtol=RTOL, atol=1e-3
    )


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 4),
    N=st.integers(1, 20),
    D=st.integers(1, 5),
    K=st.integers(1, 9),
    E=st.integers(1, 40),
    data=st.data(),
)
def test_property_random_shapes(B, N, D, K, E, data):
    backend = "triton" if INTERPRET else "torch"  # hypothesis cannot take function fixtures
    sizes = tuple(data.draw(st.integers(1, K)) for _ in range(D))
    temperature = data.draw(st.floats(0.1, 5.0))
    check_against_reference(backend, B, N, D, K, E, sizes, temperature)


def test_generator_noise_is_reproducible_and_logp_consistent(fast_backend):
    B, N, D, K, E = 3, 40, 4, 6, 32
    sizes = (6, 3, 1, 4)
    inputs = make_inputs(B, D, K, E)

    def draw(seed):
        gen = torch.Generator().manual_seed(seed)
        with poison_outputs():
            return proposal_sample(*inputs, N, sizes=sizes, generator=gen, backend=fast_backend)

    a1, l1 = draw(7)
    a2, l2 = draw(7)
    a3, _ = draw(8)
    assert torch.equal(a1, a2) and torch.equal(l1, l2)
    assert not torch.equal(a1, a3)
    assert bool((a1 < torch.tensor(sizes)).all()) and bool((a1 >= 0).all())
    torch.testing.assert_close(
        l1, teacher_forced_logp(*inputs, a1, sizes).float(), rtol=RTOL, atol=ATOL
    )


def exact_probabilities(z0, heads_w, heads_b, emb, sizes, temperature):
    """p(a) at ``temperature`` for every action of the product space, by enumeration."""
    space = list(itertools.product(*(range(s) for s in sizes)))
    actions = torch.tensor(space)[None].expand(z0.shape[0], -1, -1)
    logp = teacher_forced_logp(
        z0, heads_w / temperature, heads_b / temperature, emb, actions, sizes
    )
    return space, logp.exp()


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_chi_squared_sample_frequencies(fast_backend, temperature):
    B, D, K, E = 2, 2, 3, 8
    sizes = (3, 2)
    N = 2000 if INTERPRET else 40000
    z0, heads_w, heads_b, emb = make_inputs(B, D, K, E, scale=1.0)
    inputs = (z0, heads_w, heads_b * 0.3, emb * 0.5)
    space, probs = exact_probabilities(*inputs, sizes, temperature)
    gen = torch.Generator().manual_seed(123)
    actions, _ = proposal_sample(
        *inputs, N, sizes=sizes, temperature=temperature, generator=gen, backend=fast_backend
    )
    cells = actions[..., 0] * sizes[1] + actions[..., 1]  # [B, N]
    for b in range(B):
        counts = torch.bincount(cells[b], minlength=len(space)).double()
        expected = probs[b] * N
        assert torch.isclose(probs[b].sum(), torch.tensor(1.0, dtype=torch.float64))
        rare = expected < 5  # pooled into one cell, so the chi-squared law applies
        counts = torch.cat([counts[~rare], counts[rare].sum(0, keepdim=True)])
        expected = torch.cat([expected[~rare], expected[rare].sum(0, keepdim=True)])
        assert int((~rare).sum()) >= 4
        stat = ((counts - expected) ** 2 / expected.clamp_min(1e-12)).sum()
        dof = len(counts) - 1 - int(expected[-1] == 0)
        p_value = torch.special.gammaincc(torch.tensor(dof / 2.0), stat / 2.0).item()
        assert p_value > 1e-4, (b, counts.tolist(), expected.tolist(), p_value)


def test_torch_compile_fullgraph(fast_backend):
    B, N, D, K, E = 2, 5, 3, 4, 16
    inputs = make_inputs(B, D, K, E)
    gumbel = gumbel_noise(B, N, D, K)

    def step(z0, w, b, emb, g):
        actions, logp = proposal_sample(
            z0, w, b, emb, N, sizes=(4, 2, 3), gumbel=g, backend=fast_backend
        )
        return actions * 2, logp.sum(-1)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    a_c, l_c = compiled(*inputs, gumbel)
    a_e, l_e = step(*inputs, gumbel)
    assert torch.equal(a_c, a_e)
    torch.testing.assert_close(l_c, l_e, rtol=RTOL, atol=ATOL)

    def sample(z0, w, b, emb):
        return proposal_sample(z0, w, b, emb, N, temperature=0.5, backend=fast_backend)

    actions, logp = torch.compile(sample, fullgraph=True, backend="aot_eager")(*inputs)
    assert actions.shape == (B, N, D) and logp.shape == (B, N)
    torch.testing.assert_close(
        logp, teacher_forced_logp(*inputs, actions, [K] * D).float(), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_empty_batch(fast_backend, backend):
    inputs = make_inputs(0, 2, 3, 8)
    backend = fast_backend if backend == "fast" else backend
    actions, logp = proposal_sample(*inputs, 4, backend=backend)
    assert actions.shape == (0, 4, 2) and logp.shape == (0, 4)


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("given_noise", [False, True])
def test_logp_never_requires_grad(fast_backend, backend, given_noise):
    """Sampling carries no gradient: logp is detached even when every input requires grad
    (it used to require grad and then fail in backward)."""
    B, N, D, K, E = 2, 3, 2, 4, 8
    inputs = [t.requires_grad_() for t in make_inputs(B, D, K, E)]
    gumbel = gumbel_noise(B, N, D, K).requires_grad_() if given_noise else None
    temperature = torch.tensor(0.7, requires_grad=True)
    backend = fast_backend if backend == "fast" else backend
    actions, logp = proposal_sample(
        *inputs, N, gumbel=gumbel, temperature=temperature, backend=backend
    )
    assert not logp.requires_grad and not actions.requires_grad


@pytest.mark.parametrize("noise", [float("inf"), float("-inf")])
def test_infinite_gumbel_noise_stays_inside_sizes(fast_backend, noise):
    """+inf noise on masked choices is ignored (the reference used to pick them: -inf + inf is
    NaN, which argmax takes); on valid choices it decides, first index on ties."""
    B, N, D, K, E = 3, 4, 3, 6, 16
    sizes = (6, 2, 4)
    inputs = make_inputs(B, D, K, E)
    gumbel = gumbel_noise(B, N, D, K)
    for d, size in enumerate(sizes):
        gumbel[:, :, d, size:] = noise
    gumbel[0, :, 1, 1] = noise
    gumbel[1, 0, 2, :] = noise
    kwargs = dict(sizes=sizes, gumbel=gumbel)
    ref_actions, ref_logp = proposal_sample(*inputs, N, backend="reference", **kwargs)
    with poison_outputs():
        actions, logp = proposal_sample(*inputs, N, backend=fast_backend, **kwargs)
    assert torch.equal(actions, ref_actions)
    assert bool((actions < torch.tensor(sizes)).all()) and bool((actions >= 0).all())
    if noise > 0:
        assert bool((actions[0, :, 1] == 1).all()) and bool((actions[1, 0, 2] == 0).all())
    torch.testing.assert_close(logp, ref_logp, rtol=RTOL, atol=ATOL)
    want = teacher_forced_logp(*inputs, actions, sizes).float()
    torch.testing.assert_close(logp, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_meta_tensors_give_the_shape(fast_backend, backend):
    meta = torch.device("meta")
    inputs = [t.to(meta) for t in make_inputs(3, 2, 4, 8)]
    backend = fast_backend if backend == "fast" else backend
    sizes = torch.tensor([4, 2], device=meta)
    actions, logp = proposal_sample(*inputs, 5, sizes=sizes, backend=backend)
    assert actions.shape == (3, 5, 2) and logp.shape == (3, 5) and logp.device == meta


def test_reference_is_exported_and_plain():
    inputs = make_inputs(2, 3, 4, 8)
    g = gumbel_noise(2, 3, 3, 4)
    a, logp = proposal_sample_reference(*inputs, 3, gumbel=g)
    a2, logp2 = proposal_sample(*inputs, 3, gumbel=g, backend="reference")
    assert torch.equal(a, a2) and torch.equal(logp, logp2)


B0, D0, K0, E0, N0 = 2, 3, 4, 8, 5


def _good():
    z0, w, b, emb = make_inputs(B0, D0, K0, E0)
    return dict(z0=z0, heads_w=w, heads_b=b, emb=emb, num_samples=N0)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(z0=torch.randn(B0, 1, E0)), ValueError, "z0"),
        (dict(z0=torch.randint(0, 3, (B0, E0))), TypeError, "z0"),
        (dict(z0=[[0.0] * E0] * B0), TypeError, "z0"),
        (dict(heads_w=torch.randn(D0, K0, E0 + 1)), ValueError, "heads_w"),
        (dict(heads_w=torch.randn(K0, E0)), ValueError, "heads_w"),
        (dict(heads_w=torch.randn(D0, K0, E0, dtype=torch.float64)), TypeError, "heads_w"),
        (dict(heads_b=torch.randn(D0, K0 + 1)), ValueError, "heads_b"),
        (dict(heads_b=torch.randn(D0)), ValueError, "heads_b"),
        (dict(emb=torch.randn(D0, K0, E0 - 1)), ValueError, "emb"),
        (dict(emb=torch.randn(D0 + 1, K0, E0)), ValueError, "emb"),
        (dict(emb=torch.zeros(D0, K0, E0, dtype=torch.int64)), TypeError, "emb"),
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(num_samples=2.0), TypeError, "num_samples"),
        (dict(sizes=(4, 0, 2)), ValueError, "sizes"),
        (dict(sizes=(4, 5, 2)), ValueError, "sizes"),
        (dict(sizes=(4, 2)), ValueError, "sizes"),
        (dict(sizes=torch.tensor([4, 2, 9])), ValueError, "sizes"),
        (dict(sizes=torch.tensor([4, 2])), ValueError, "sizes"),
        (dict(sizes=torch.tensor([4.0, 2.0, 1.0])), TypeError, "sizes"),
        (dict(sizes=(4, 2.5, 1)), TypeError, "sizes"),
        (dict(temperature=0.0), ValueError, "temperature"),
        (dict(temperature=-1.0), ValueError, "temperature"),
        (dict(temperature=torch.tensor(-0.5)), ValueError, "temperature"),
        (dict(temperature=torch.tensor([1.0])), ValueError, "temperature"),
        (dict(gumbel=torch.randn(B0, N0, D0, K0 + 1)), ValueError, "gumbel"),
        (dict(gumbel=torch.randn(B0, N0 + 1, D0, K0)), ValueError, "gumbel"),
        (dict(gumbel=torch.zeros(B0, N0, D0, K0, dtype=torch.int64)), TypeError, "gumbel"),
        (dict(generator=123), TypeError, "generator"),
        (dict(z0=torch.randn(B0, E0, device="meta")), ValueError, "heads_w"),
        (dict(backend="cuda"), ValueError, "backend"),
    ],
)
def test_bad_inputs(fast_backend, change, error, match):
    kwargs = {**_good(), "backend": fast_backend, **change}
    with pytest.raises(error, match=match):
        proposal_sample(**kwargs)


def test_non_contiguous_inputs(fast_backend):
    B, N, D, K, E = 3, 5, 4, 6, 24
    z0, heads_w, heads_b, emb = make_inputs(B, D, K, E)
    z0_nc = torch.randn(E, B).T.copy_(z0)  # column-major view
    heads_w_nc = torch.randn(D, E, K).transpose(1, 2).copy_(heads_w)
    gumbel = gumbel_noise(B, N, D, K)
    gumbel_nc = torch.empty(K, D, N, B).permute(3, 2, 1, 0).copy_(gumbel)
    ref = proposal_sample(z0, heads_w, heads_b, emb, N, gumbel=gumbel, backend="reference")
    with poison_outputs():
        out = proposal_sample(
            z0_nc, heads_w_nc, heads_b, emb, N, gumbel=gumbel_nc, backend=fast_backend
        )
    assert not z0_nc.is_contiguous() and not gumbel_nc.is_contiguous()
    assert torch.equal(out[0], ref[0])
    torch.testing.assert_close(out[1], ref[1], rtol=RTOL, atol=ATOL)


def test_cpu_path_at_many_samples_matches_reference():
    # 5000 samples of 50 states through the CPU kernel, given noise and drawn noise
    B, N, D, K, E = 50, 100, 3, 5, 16
    sizes = (5, 2, 4)
    check_against_reference("torch", B, N, D, K, E, sizes, temperature=0.7)
    inputs = make_inputs(B, D, K, E)
    gen = torch.Generator().manual_seed(5)
    actions, logp = proposal_sample(*inputs, N, sizes=sizes, generator=gen, backend="torch")
    assert bool((actions < torch.tensor(sizes)).all()) and bool((actions >= 0).all())
    torch.testing.assert_close(
        logp, teacher_forced_logp(*inputs, actions, sizes).float(), rtol=RTOL, atol=ATOL
    )
    assert not torch.equal(actions[:10], actions[40:])  # every state draws its own noise
