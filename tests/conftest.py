import os

import pytest
import torch

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


@pytest.fixture
def fast_backend() -> str:
    """The fast path under test: Triton through the interpreter when TRITON_INTERPRET=1,
    the optimised PyTorch path otherwise (both are compared against ``*_reference``)."""
    return "triton" if INTERPRET else "torch"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
