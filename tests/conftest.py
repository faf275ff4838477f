import os

import pytest
import torch
from hypothesis import settings

# CI runs a fixed set of hypothesis examples (same on every run, so a red CI is reproducible);
# HYPOTHESIS_PROFILE=explore draws fresh examples for local bug hunting.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


@pytest.fixture
def fast_backend() -> str:
    """The fast path under test: Triton through the interpreter when TRITON_INTERPRET=1,
    the optimised PyTorch path otherwise (both are compared against ``*_reference``)."""
    return "triton" if INTERPRET else "torch"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def cpu_bf16_support(monkeypatch):
    """``set(avx512_bf16, amx)`` makes torch's CPU probes report these features, so that
    ``cpu_has_native_bf16`` (cached) answers for that CPU until the test ends."""
    from qwr_fast.kernels._common import cpu_has_native_bf16

    def set_support(avx512_bf16: bool, amx: bool) -> None:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        cpu_has_native_bf16.cache_clear()

    yield set_support
    cpu_has_native_bf16.cache_clear()


@pytest.fixture(scope="session")
def blueprint(tmp_path_factory) -> str:
    """An untrained ppo-train blueprint of BitFlip-4 (its checkpoint path), for the planners'
    end-to-end tests; read only."""
    from qwr_fast.trainers.ppo import PPOConfig, PPOTrainer

    cfg = PPOConfig(
        env="BitFlip-4",
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        hidden=8,
        eval_episodes=1,
        run_dir=str(tmp_path_factory.mktemp("bp") / "bp"),
        progress=False,
        tensorboard=False,
    )
    return PPOTrainer(cfg).save()
