import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwr_fast.kernels._common import poison_outputs
from qwr_fast.kernels.sampled_q_head import (
    QHeadParams,
    aot_specs,
    sampled_q_head,
    sampled_q_head_reference,
)

pytestmark = pytest.mark.kernel

RTOL = 1e-5


def make_params(H: int, *, A: int | None = None, K: int | None = None) -> QHeadParams:
    w_a = torch.randn(K, H) if K is not None else torch.randn(H, A)
    return QHeadParams(
        w_a,
        0.5 * torch.randn(H),
        1.0 + 0.1 * torch.randn(H),
        0.1 * torch.randn(H),
        torch.randn(H, H) / H**0.5,
        0.1 * torch.randn(H),
        torch.randn(H) / H**0.5,
        torch.randn(()),
    )


def assert_matches_reference(gate, actions, params, backend, **kwargs):
    expected = sampled_q_head(gate, actions, params, backend="reference")
    with poison_outputs():
        got = sampled_q_head(gate, actions, params, backend=backend, **kwargs)
    assert got.shape == expected.shape
    assert got.dtype == gate.dtype
    assert not got.requires_grad
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize(
    ("B", "n", "A", "H"),
    [(1, 1, 1, 64), (7, 3, 6, 64), (5, 8, 17, 256), (3, 17, 3, 100), (2, 5, 6, 256)],
)
def test_continuous_matches_reference(fast_backend, B, n, A, H):
    params = make_params(H, A=A)
    assert_matches_reference(torch.randn(B, H), torch.randn(B, n, A), params, fast_backend)


@pytest.mark.parametrize(
    ("B", "n", "K", "H"), [(1, 1, 1, 64), (7, 8, 18, 64), (3, 17, 11, 256), (2, 3, 50, 64)]
)
def test_discrete_matches_reference(fast_backend, B, n, K, H):
    params = make_params(H, K=K)
    actions = torch.randint(0, K, (B, n))
    assert_matches_reference(torch.randn(B, H), actions, params, fast_backend)


def test_int32_actions(fast_backend):
    params = make_params(64, K=5)
    actions = torch.randint(0, 5, (3, 4), dtype=torch.int32)
    assert_matches_reference(torch.randn(3, 64), actions, params, fast_backend)


def test_non_contiguous_inputs(fast_backend):
    H, B, n, A = 64, 5, 3, 6
    params = make_params(H, A=A)
    params = params._replace(w_1=params.w_1.T.contiguous().T, w_a=torch.randn(A, H).T)
    gate = torch.randn(H, B).T
    actions = torch.randn(B, A, n).transpose(1, 2)
    assert not (gate.is_contiguous() or actions.is_contiguous() or params.w_1.is_contiguous())
    assert_matches_reference(gate, actions, params, fast_backend)


def test_large_preactivations_saturate(fast_backend):
    """tanh saturates to +-1 and tiny pre-activations stay accurate (the kernel's own tanh)."""
    H, A = 64, 2
    params = make_params(H, A=A)
    params = params._replace(
        w_a=torch.cat([torch.full((H // 2, A), 50.0), 1e-4 * torch.ones(H // 2, A)])
    )
    assert_matches_reference(torch.randn(4, H), torch.randn(4, 3, A), params, fast_backend)


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("scale", [1e15, 1e20, 3e38])
def test_huge_gate_is_finite_and_exact(fast_backend, discrete, scale):
    """From |gate| ~ 1e19 the LayerNorm's fp32 sum of squares would overflow (the torch path
    gave NaN, the fp32 reference a wrong finite value); the rows are rescaled exactly, so
    every path matches the float64 reference."""
    H, B, n = 64, 3, 4
    params = make_params(H, K=5) if discrete else make_params(H, A=3)
    gate = torch.randn(B, H).clamp_(-1.0, 1.0) * scale
    gate[1] = torch.randn(H)  # an ordinary row next to the huge ones
    actions = torch.randint(0, 5, (B, n)) if discrete else torch.randn(B, n, 3)
    params64 = QHeadParams(*(p.double() for p in params))
    actions64 = actions if discrete else actions.double()
    want = sampled_q_head(gate.double(), actions64, params64, backend="reference")
    for backend in (fast_backend, "reference"):
        with poison_outputs():
            got = sampled_q_head(gate, actions, params, backend=backend)
        assert torch.isfinite(got).all(), backend
        torch.testing.assert_close(got.double(), want, rtol=RTOL, atol=RTOL * 10)


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("discrete", [False, True])
def test_empty_batch(fast_backend, backend, discrete):
    params = make_params(64, K=5) if discrete else make_params(64, A=3)
    actions = torch.zeros(0, 4, dtype=torch.int64) if discrete else torch.zeros(0, 4, 3)
    backend = fast_backend if backend == "fast" else backend
    got = sampled_q_head(torch.zeros(0, 64), actions, params, backend=backend)
    assert got.shape == (0, 4) and got.dtype == torch.float32


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_meta_tensors_give_the_shape(fast_backend, backend):
    meta = torch.device("meta")
    params = QHeadParams(*(p.to(meta) for p in make_params(16, K=5)))
    actions = torch.zeros(3, 4, dtype=torch.int64, device=meta)
    backend = fast_backend if backend == "fast" else backend
    got = sampled_q_head(torch.zeros(3, 16, device=meta), actions, params, backend=backend)
    assert got.shape == (3, 4) and got.device == meta


def test_reference_matches_plain_modules():
    """The reference is nn.Linear / nn.LayerNorm written out: check it against them."""
    H, A = 64, 6
    params = make_params(H, A=A)
    gate, actions = torch.randn(4, H), torch.randn(4, 3, A)
    x = gate[:, None] * torch.tanh(torch.nn.functional.linear(actions, params.w_a, params.b_a))
    x = torch.nn.functional.layer_norm(x, (H,), params.ln_w, params.ln_b, 1e-5)
    x = torch.relu(torch.nn.functional.linear(x, params.w_1, params.b_1))
    expected = x @ params.w_o + params.b_o
    torch.testing.assert_close(sampled_q_head_reference(gate, actions, params), expected)


def test_torch_backend_matches_reference():
    params = make_params(96, A=5)
    assert_matches_reference(torch.randn(6, 96), torch.randn(6, 4, 5), params, "torch")


def test_output_never_requires_grad(fast_backend):
    params = QHeadParams(*(p.requires_grad_() for p in make_params(64, A=3)))
    gate = torch.randn(2, 64, requires_grad=True)
    q = sampled_q_head(gate, torch.randn(2, 3, 3), params, backend=fast_backend)
    assert not q.requires_grad


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    B=st.integers(1, 6),
    n=st.integers(1, 9),
    H=st.sampled_from([16, 33, 64]),
    A=st.integers(1, 7),
    discrete=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_random_shapes(fast_backend, B, n, H, A, discrete, seed):
    torch.manual_seed(seed)
    params = make_params(H, K=A) if discrete else make_params(H, A=A)
    actions = torch.randint(0, A, (B, n)) if discrete else 3 * torch.randn(B, n, A)
    assert_matches_reference(torch.randn(B, H), actions, params, fast_backend)


def test_torch_compile_fullgraph():
    params = make_params(64, A=6)
    gate, actions = torch.randn(3, 64), torch.randn(3, 5, 6)

    @torch.compile(fullgraph=True, backend="aot_eager")
    def f(g, a):
        return sampled_q_head(g, a, params).max(dim=1).values

    expected = sampled_q_head(gate, actions, params, backend="reference").max(dim=1).values
    torch.testing.assert_close(f(gate, actions), expected, rtol=RTOL, atol=RTOL * 10)


def _errors_case():
    H, B, n, A = 16, 3, 4, 5
    return make_params(H, A=A), torch.randn(B, H), torch.randn(B, n, A)


@pytest.mark.parametrize(
    ("mutate", "exc", "match"),
    [
        (lambda p, g, a: (p, g[0], a), ValueError, "gate"),
        (lambda p, g, a: (p, g.long(), a), TypeError, "gate"),
        (lambda p, g, a: (p, g, a[0]), ValueError, "actions"),
        (lambda p, g, a: (p, g, a[:2]), ValueError, "actions"),
        (lambda p, g, a: (p, g, a[:, :0]), ValueError, "n == 0"),
        (lambda p, g, a: (p, g, a[..., :3]), ValueError, "w_a"),
        (lambda p, g, a: (p._replace(ln_w=p.ln_w[:-1]), g, a), ValueError, "ln_w"),
        (lambda p, g, a: (p._replace(w_1=p.w_1[:, :-1]), g, a), ValueError, "w_1"),
        (lambda p, g, a: (p._replace(b_o=p.b_o[None]), g, a), ValueError, "b_o"),
        (lambda p, g, a: (p._replace(w_o=p.w_o.long()), g, a), TypeError, "w_o"),
        (lambda p, g, a: (p, g, a.long()), TypeError, "actions"),
        (lambda p, g, a: (tuple(p)[:3], g, a), TypeError, "params"),
        (lambda p, g, a: (p, g, torch.zeros(3, 4)), TypeError, "int64"),
        (lambda p, g, a: (p, g, a.to("meta")), ValueError, "actions is on meta"),
        (lambda p, g, a: (p._replace(b_1=p.b_1.to("meta")), g, a), ValueError, "b_1"),
        (
            lambda p, g, a: (p, g.double(), a),
            TypeError,
            r"actions must have the dtype of gate \(torch.float64\), got torch.float32",
        ),
        (
            lambda p, g, a: (p, g.double(), a.double()),
            TypeError,
            r"params.w_a must have the dtype of gate \(torch.float64\), got torch.float32",
        ),
        (lambda p, g, a: (p._replace(w_1=p.w_1.double()), g, a), TypeError, "params.w_1 .* dtype"),
        (
            lambda p, g, a: (p._replace(b_o=p.b_o.bfloat16()), g, a),
            TypeError,
            "params.b_o .* dtype",
        ),
    ],
)
def test_bad_inputs(mutate, exc, match):
    params, gate, actions = mutate(*_errors_case())
    with pytest.raises(exc, match=match):
        sampled_q_head(gate, actions, params)


@pytest.mark.parametrize("bad", [-1, 7])
def test_discrete_actions_out_of_range(fast_backend, bad):
    params = make_params(16, K=7)
    actions = torch.randint(0, 7, (2, 3))
    actions[1, 2] = bad
    with pytest.raises(ValueError, match=r"actions must be in \[0, K=7\)"):
        sampled_q_head(torch.randn(2, 16), actions, params, backend=fast_backend)


def test_discrete_table_width_mismatch():
    params = make_params(16, K=7)._replace(w_a=torch.randn(7, 15))
    with pytest.raises(ValueError, match="w_a"):
        sampled_q_head(torch.randn(2, 16), torch.zeros(2, 3, dtype=torch.long), params)


def test_bad_backend_and_precision():
    params, gate, actions = _errors_case()
    with pytest.raises(ValueError, match="backend"):
        sampled_q_head(gate, actions, params, backend="cuda")
    with pytest.raises(ValueError, match="precision"):
        sampled_q_head(gate, actions, params, precision="fp16")


def test_aot_specs_cover_both_variants():
    specs = aot_specs()
    names = [s.name for s in specs]
    assert len(set(names)) == len(names)
    assert {s.constexprs["DISCRETE"] for s in specs} == {False, True}
    for s in specs:
        params = s.fn.arg_names
        assert set(s.signature) == set(params), s.name
        assert all(s.signature[k] == "constexpr" for k in s.constexprs)


def test_tf32_precision_close(fast_backend):
    """tf32 is selectable; exact under the interpreter and on CPU, ~1e-3 on tensor cores."""
    params = make_params(64, A=6)
    gate, actions = torch.randn(5, 64), torch.randn(5, 4, 6)
    expected = sampled_q_head(gate, actions, params, backend="reference")
    got = sampled_q_head(gate, actions, params, backend=fast_backend, precision="tf32")
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("discrete", [False, True])
def test_bf16_precision_close(discrete):
    """bf16 operands for the W_1 product (torch path): ~1e-2 relative to exact fp32, fp32
    out, and really rounded (not silently ignored)."""
    params = make_params(64, K=5) if discrete else make_params(64, A=6)
    gate = torch.randn(7, 64)
    actions = torch.randint(0, 5, (7, 4)) if discrete else torch.randn(7, 4, 6)
    expected = sampled_q_head(gate, actions, params, backend="reference")
    got = sampled_q_head(gate, actions, params, backend="torch", precision="bf16")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=3e-2, atol=3e-2)
    assert not torch.equal(got, expected)


def test_bf16_on_a_cpu_that_emulates_it_warns(cpu_bf16_support):
    """The torch path's bf16 product is emulated (slow) on CPUs without AVX512-BF16 or AMX:
    warn there, and nowhere else (native CPUs, other precisions, the exact reference)."""
    params, gate, actions = _errors_case()

    def bf16_warnings(**kw) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sampled_q_head(gate, actions, params, **kw)
        return [str(w.message) for w in caught if "AVX512-BF16" in str(w.message)]

    cpu_bf16_support(avx512_bf16=False, amx=False)
    (message,) = bf16_warnings(backend="torch", precision="bf16")
    assert message.startswith("sampled_q_head(precision='bf16') on CPU tensors: this CPU")
    assert bf16_warnings(backend="torch", precision="ieee") == []
    assert bf16_warnings(backend="reference", precision="bf16") == []
    cpu_bf16_support(avx512_bf16=False, amx=True)
    assert bf16_warnings(backend="torch", precision="bf16") == []


def test_bf16_precision_refused_by_triton_kernel():
    params, gate, actions = _errors_case()
    with pytest.raises(ValueError, match="precision 'bf16' is not available in the Triton"):
        sampled_q_head(gate, actions, params, backend="triton", precision="bf16")
    # auto picks the torch path, which has it (on CUDA tensors too)
    auto = sampled_q_head(gate, actions, params, backend="auto", precision="bf16")
    torch.testing.assert_close(
        auto, sampled_q_head(gate, actions, params, backend="torch", precision="bf16")
    )


def test_head_ignores_enclosing_autocast():
    """Under torch.autocast the op keeps fp32 unless precision asks otherwise."""
    params = make_params(64, A=6)
    gate, actions = torch.randn(5, 64), torch.randn(5, 4, 6)
    expected = sampled_q_head(gate, actions, params, backend="torch")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = sampled_q_head(gate, actions, params, backend="torch")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
