import warnings

import pytest
import torch

from qwr_fast.kernels._common import (
    check_positive,
    check_scores,
    check_tensor,
    cpu_has_native_bf16,
    empty,
    poison_outputs,
    resolve_backend,
    skip_value_checks,
    value_checks_enabled,
    warn_if_bf16_emulated,
)
from tests.conftest import INTERPRET

pytestmark = pytest.mark.kernel
CPU = torch.device("cpu")


def test_resolve_backend_auto_follows_device_and_interpreter():
    assert resolve_backend("auto", CPU) == ("triton" if INTERPRET else "torch")
    assert resolve_backend("reference", CPU) == "reference"
    assert resolve_backend("torch", CPU) == "torch"


def test_resolve_backend_rejects_unknown_name():
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("cuda", CPU)


@pytest.mark.skipif(INTERPRET, reason="under TRITON_INTERPRET=1 triton runs on CPU tensors")
def test_triton_backend_on_cpu_without_interpreter_is_an_error():
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        resolve_backend("triton", CPU)


def test_check_tensor_messages_name_the_argument():
    with pytest.raises(TypeError, match="q_next must be a torch.Tensor"):
        check_tensor("q_next", [1.0])
    with pytest.raises(ValueError, match=r"q_next must have 3 dims \[B, T, n\]"):
        check_tensor("q_next", torch.zeros(2, 3), ndim=3, what="[B, T, n]")
    with pytest.raises(ValueError, match=r"reward must have shape \[2, \*\]"):
        check_tensor("reward", torch.zeros(3, 4), shape=(2, None))
    with pytest.raises(TypeError, match="q must be a floating-point tensor"):
        check_tensor("q", torch.zeros(2, dtype=torch.int64), kind="float")
    with pytest.raises(TypeError, match="actions must be an int64"):
        check_tensor("actions", torch.zeros(2), kind="int")
    with pytest.raises(ValueError, match="is on meta"):
        check_tensor("x", torch.zeros(2, device="meta"), device=CPU)


def test_check_positive():
    check_positive("tau", 0.3, CPU)
    check_positive("tau", torch.tensor(0.3), CPU)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="tau must be"):
            check_positive("tau", bad, CPU)
    with pytest.raises(ValueError, match="beta must be > 0"):
        check_positive("beta", torch.tensor(-1.0), CPU)
    with pytest.raises(ValueError, match="0-dim"):
        check_positive("beta", torch.ones(2), CPU)
    with pytest.raises(TypeError, match="beta must be a float"):
        check_positive("beta", "1", CPU)


def test_value_checks_always_on_for_cpu_and_switchable_on_cuda():
    cuda = torch.device("cuda")
    with skip_value_checks():
        assert value_checks_enabled(CPU)
        assert not value_checks_enabled(cuda)
    assert value_checks_enabled(cuda)


def test_poison_outputs_fills_nan_and_minus_one():
    with poison_outputs():
        assert torch.isnan(empty((3,), dtype=torch.float32, device=CPU)).all()
        assert (empty((3,), dtype=torch.int64, device=CPU) == -1).all()


@pytest.mark.parametrize(("avx512_bf16", "amx"), [(False, False), (True, False), (False, True)])
def test_bf16_emulation_warning_follows_the_cpu_probes(cpu_bf16_support, avx512_bf16, amx):
    """Either AVX512-BF16 or AMX counts as native bf16; with neither, a warning names the
    caller's argument."""
    cpu_bf16_support(avx512_bf16, amx)
    native = avx512_bf16 or amx
    assert cpu_has_native_bf16() == native
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_bf16_emulated("--some-flag")
    messages = [str(w.message) for w in caught]
    if native:
        assert messages == []
    else:
        assert len(messages) == 1
        assert messages[0].startswith("--some-flag: this CPU has neither AVX512-BF16 nor AMX")


def test_meta_tensors_are_never_value_checked():
    meta = torch.device("meta")
    assert not value_checks_enabled(meta)
    check_positive("tau", torch.tensor(-1.0, device=meta), meta)  # no values to read
    assert check_scores("q", torch.zeros(2, 3, device=meta), what="[B, n]", row="b")


def test_check_scores_marks_minus_inf_as_excluded():
    assert not check_scores("q", torch.randn(2, 3), what="[B, n]", row="b")
    assert not check_scores("q", torch.full((2, 3), 3e38), what="[B, n]", row="b")
    q = torch.randn(2, 3)
    q[0, 1] = float("-inf")
    assert check_scores("q", q, what="[B, n]", row="b")
    for bad in (float("nan"), float("inf")):
        q[1, 2] = bad
        with pytest.raises(ValueError, match=r"q must not contain NaN or \+inf"):
            check_scores("q", q, what="[B, n]", row="b")
    q[1] = float("-inf")
    with pytest.raises(ValueError, match=r"q \[B, n\] needs at least one finite entry per b row"):
        check_scores("q", q, what="[B, n]", row="b")
