"""Overhead of the loop vector envs (MuJoCo, MinAtar, Atari) over their raw single envs.

For each family, ``qwr_fast.envs.make(id, 8, copy=False)`` against the same single envs it
wraps, stepped in a bare Python loop with a reset at episode end (the least any vector env
can do), and, for reference, ``gymnasium.vector.SyncVectorEnv`` of ``gymnasium.make(id)``.
(MinAtar: its ``MinAtar/<Game>-v0`` registration; Atari: the same preprocessing wrappers).
Same actions, same env count, one core. Goal: overhead < 15% over the bare loop. The last
column repeats qwr_fast vs the bare loop at 64 envs (MuJoCo and MinAtar), where the fixed cost
of a vector step is spread over more envs.

pytest-benchmark: ``pytest bench/test_bench_envs_wrapped.py``. Side-by-side table:
``python bench/test_bench_envs_wrapped.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from qwr_fast import envs

NUM_ENVS = 8
WIDE_NUM_ENVS = 64  # a second column, for the families cheap enough to run it (not ALE: ~1 min)
WIDE_FAMILIES = ("HalfCheetah-v5", "MinAtar/Breakout")
FAMILIES = {
    "HalfCheetah-v5": "mujoco",
    "MinAtar/Breakout": "minatar",
    "ALE/Pong-v5": "ale_py",
}


def _actions(space, rng, n, num_envs):
    if hasattr(space, "n"):
        return [rng.integers(0, space.n, num_envs) for _ in range(n)]
    return [
        rng.uniform(space.low, space.high, (num_envs, *space.shape)).astype(space.dtype)
        for _ in range(n)
    ]


def _setup(env_id: str, impl: str, num_envs: int = NUM_ENVS):
    """A step callable cycling through 16 pre-drawn action batches, after a warm-up."""
    env = envs.make(env_id, num_envs, seed=0, copy=False)
    env.reset()
    actions = _actions(env.single_action_space, np.random.default_rng(0), 16, num_envs)
    if impl == "qwr_fast":
        step_batch = env.step
    elif impl == "raw_loop":
        step_batch = _raw_loop(env)
    else:
        import gymnasium

        sync = gymnasium.vector.SyncVectorEnv(
            [lambda: _gymnasium_single(env_id)] * num_envs,
            autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP,
        )
        sync.reset(seed=0)
        step_batch = sync.step
    counter = [0]

    def step():
        counter[0] += 1
        step_batch(actions[counter[0] & 15])

    for _ in range(16):
        step()
    return step


def _gymnasium_single(env_id: str):
    """The same env as gymnasium users build it: ``gymnasium.make`` (with its checker,
    order-enforcing and time-limit wrappers), MinAtar's own gym registration, and for Atari
    the same preprocessing wrappers as ``qwr_fast.envs.atari``."""
    import gymnasium

    if env_id.startswith("MinAtar/"):
        from minatar.gym import register_envs

        if env_id + "-v0" not in gymnasium.registry:
            register_envs()
        return gymnasium.make(env_id + "-v0")
    if env_id.startswith("ALE/"):
        import ale_py
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, StickyAction

        gymnasium.register_envs(ale_py)
        env = gymnasium.make(env_id, frameskip=1, repeat_action_probability=0.0)
        env = AtariPreprocessing(StickyAction(env, 0.25), noop_max=30, frame_skip=4)
        return FrameStackObservation(env, 4)
    return gymnasium.make(env_id)


def _raw_loop(env):
    """The single envs inside ``env``, stepped with no vector-env machinery at all."""
    if isinstance(env, envs.MinAtarVectorEnv):
        games = env._games

        def step(actions):
            for g, a in zip(games, actions.tolist(), strict=True):
                _, terminal = g.act(a)
                if terminal:
                    g.reset()
                g.state()

        return step
    singles = env._stacks if isinstance(env, envs.AtariVectorEnv) else env._envs

    def step(actions):
        for e, a in zip(singles, actions.tolist() if actions.ndim == 1 else actions, strict=True):
            _, _, terminated, truncated, _ = e.step(a)
            if terminated or truncated:
                e.reset()

    return step


def _skip_if_missing(env_id: str) -> None:
    pytest.importorskip(FAMILIES[env_id], reason=f"{env_id} needs its qwr_fast extra")


@pytest.mark.parametrize("impl", ["qwr_fast", "raw_loop", "gymnasium_sync"])
@pytest.mark.parametrize("env_id", list(FAMILIES))
def test_step_overhead(benchmark, env_id, impl):
    _skip_if_missing(env_id)
    step = _setup(env_id, impl)
    benchmark.pedantic(step, rounds=20, iterations=10)
    benchmark.extra_info["env_steps_per_s"] = NUM_ENVS / benchmark.stats.stats.median


def _median_seconds(fn, repeats: int, iterations: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        times.append((time.perf_counter() - t0) / iterations)
    return float(np.median(times))


def _rates(env_id: str, num_envs: int, impls: tuple[str, ...]) -> dict[str, float]:
    steps = {impl: _setup(env_id, impl, num_envs) for impl in impls}
    sec = {impl: [] for impl in steps}
    for _ in range(5):  # interleaved, so that machine noise hits all of them alike
        for impl, fn in steps.items():
            sec[impl].append(_median_seconds(fn, 5, max(2, 20 * NUM_ENVS // num_envs)))
    return {impl: num_envs / float(np.median(s)) for impl, s in sec.items()}


def main() -> None:
    print(f"| env ({NUM_ENVS} envs) | qwr_fast steps/s | raw loop steps/s | overhead | "
          f"gymnasium SyncVectorEnv steps/s | overhead at {WIDE_NUM_ENVS} envs |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for env_id in FAMILIES:
        rate = _rates(env_id, NUM_ENVS, ("qwr_fast", "raw_loop", "gymnasium_sync"))
        overhead = rate["raw_loop"] / rate["qwr_fast"] - 1.0
        wide = "not run"
        if env_id in WIDE_FAMILIES:
            wide_rate = _rates(env_id, WIDE_NUM_ENVS, ("qwr_fast", "raw_loop"))
            wide = f"{100 * (wide_rate['raw_loop'] / wide_rate['qwr_fast'] - 1.0):+.1f}%"
        print(
            f"| {env_id} | {rate['qwr_fast']:.4g} | {rate['raw_loop']:.4g} | "
            f"{100 * overhead:+.1f}% | {rate['gymnasium_sync']:.4g} | {wide} |"
        )


if __name__ == "__main__":
    main()
