"""BitFlip-64 / BitFlipSubset-64 throughput: Numba vector env vs pure Python under
SyncVectorEnv, one core, at 1, 64 and 4096 envs; get_state/set_state at 4096 envs.

pytest-benchmark: ``pytest bench/test_bench_envs.py`` (each result's ``extra_info`` holds
``env_steps_per_s``). Side-by-side table: ``python bench/test_bench_envs.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from envs_python_bitflip import make_python_vector_env  # noqa: E402

from qwr_fast import envs  # noqa: E402

numba.set_num_threads(1)
N_BITS = 64
SIZES = (1, 64, 4096)
FAMILIES = ("BitFlip", "BitFlipSubset")


def _setup(family: str, impl: str, num_envs: int):
    """A reset env and a step callable that cycles through 8 pre-drawn action batches."""
    subset = family == "BitFlipSubset"
    if impl == "numba":
        env = envs.make(f"{family}-{N_BITS}", num_envs, seed=0, copy=False)
    else:
        env = make_python_vector_env(N_BITS, num_envs, subset)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    if subset:
        actions = [rng.integers(0, 2, (num_envs, N_BITS), dtype=np.int8) for _ in range(8)]
    else:
        actions = [rng.integers(0, N_BITS, num_envs) for _ in range(8)]
    counter = [0]

    def step():
        counter[0] += 1
        env.step(actions[counter[0] & 7])

    for _ in range(8):
        step()
    return env, step


def _rounds(impl: str, num_envs: int) -> tuple[int, int]:
    """(rounds, steps per round); a round spans whole 5-step episodes, so autoreset steps
    are counted at their true share."""
    work = num_envs * (100 if impl == "python" else 1)
    iterations = 10 * max(1, 2_000 // work)
    return max(3, min(100, 2_000_000 // (work * iterations))), iterations


@pytest.mark.parametrize("num_envs", SIZES)
@pytest.mark.parametrize("impl", ["numba", "python"])
@pytest.mark.parametrize("family", FAMILIES)
def test_step_throughput(benchmark, family, impl, num_envs):
    _, step = _setup(family, impl, num_envs)
    rounds, iterations = _rounds(impl, num_envs)
    benchmark.pedantic(step, rounds=rounds, iterations=iterations)
    benchmark.extra_info["env_steps_per_s"] = num_envs / benchmark.stats.stats.median


@pytest.mark.parametrize("op", ["get_state", "set_state"])
def test_state_copy_4096(benchmark, op):
    env, _ = _setup("BitFlip", "numba", 4096)
    state = env.get_state()
    fn = env.get_state if op == "get_state" else (lambda: env.set_state(state))
    fn()
    benchmark.pedantic(fn, rounds=200, iterations=1)


def _median_seconds(fn, repeats: int, iterations: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        times.append((time.perf_counter() - t0) / iterations)
    return float(np.median(times))


def _print_store_floor(num_envs: int) -> None:
    """The floor under a BitFlipSubset step: it rewrites every float32 obs row (num_envs x
    N_BITS x 4 bytes), and at a step where the horizon-5 episodes end it writes a second buffer
    (final_obs and the reset rows), so on average (1 + 1/5) buffers per step. A memset of one
    buffer (``ndarray.fill``, the fastest store this core does) bounds the step rate from above,
    with no compute at all."""
    buf = np.zeros((num_envs, N_BITS), dtype=np.float32)
    fill_s = _median_seconds(lambda: buf.fill(1.0), 50, 20)
    floor = num_envs / (1.2 * fill_s)
    print(
        f"\nstore floor: fill of one {buf.nbytes / 2**20:.0f} MiB obs buffer {fill_s * 1e6:.1f} us "
        f"({buf.nbytes / fill_s / 1e9:.1f} GB/s); a BitFlipSubset-{N_BITS} step at {num_envs} envs "
        f"stores 1.2 buffers on average, so it cannot exceed {floor:.3g} steps/s on this core"
    )


def main() -> None:
    print("| env | envs | numba steps/s | python steps/s | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for family in FAMILIES:
        for n in SIZES:
            rate = {}
            for impl in ("numba", "python"):
                _, step = _setup(family, impl, n)
                rounds, iterations = _rounds(impl, n)
                rate[impl] = n / _median_seconds(step, min(rounds, 30), iterations)
            print(
                f"| {family}-{N_BITS} | {n} | {rate['numba']:.3g} | {rate['python']:.3g} | "
                f"{rate['numba'] / rate['python']:.0f}x |"
            )
    _print_store_floor(4096)
    env, _ = _setup("BitFlip", "numba", 4096)
    state = env.get_state()
    get_s = _median_seconds(env.get_state, 50, 10)
    set_s = _median_seconds(lambda: env.set_state(state), 50, 10)
    print(f"\nBitFlip-{N_BITS}, 4096 envs: get_state {get_s * 1e6:.0f} us, ", end="")
    print(f"set_state {set_s * 1e6:.0f} us")


if __name__ == "__main__":
    main()
