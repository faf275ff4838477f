"""Overhead of the loop vector envs (MuJoCo, MinAtar, Atari) over their raw single envs.

For each family, ``qwr_fast.envs.make(id, 8, copy=False)`` against the same single envs it
wraps, stepped in a plain Python loop with a reset at episode end, in two forms: the raw loop
writes each env's observation, reward and termination flag into batch arrays (the least a
vector env has to do, since its caller needs them as batches), the bare loop drops them. For
reference, ``gymnasium.vector.SyncVectorEnv`` of ``gymnasium.make(id)`` (MinAtar: its
``MinAtar/<Game>-v0`` registration; Atari: the same preprocessing wrappers). Same actions, same
env count, one core. Goal: overhead < 15% over the raw loop. The last column repeats the
comparison at 64 envs (MuJoCo and MinAtar), where the fixed cost of a vector step is spread
over more envs.

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
    elif impl == "bare_loop":
        step_batch = _raw_loop(env, collect=False)
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


def _raw_loop(env, collect: bool = True):
    """The single envs inside ``env``, stepped with no vector-env machinery: a reset at episode
    end and, with ``collect``, each env's observation, reward and termination flag written into
    batch arrays (the least a vector env has to do: its caller needs them as batches).
    ``collect=False`` is the bare loop that drops them (what the earlier tables compared with)."""
    n = env.num_envs
    obs = np.zeros((n, *env.single_observation_space.shape), env.single_observation_space.dtype)
    reward = np.zeros(n, np.float32)
    terminated = np.zeros(n, np.bool_)
    if isinstance(env, envs.MinAtarVectorEnv):
        games = env._games

        def step(actions):
            for i, (g, a) in enumerate(zip(games, actions.tolist(), strict=True)):
                r, te = g.act(a)
                if te:
                    g.reset()
                o = g.state()
                if collect:
                    obs[i] = o
                    reward[i] = r
                    terminated[i] = te

        return step
    singles = env._stacks if isinstance(env, envs.AtariVectorEnv) else env._envs

    def step(actions):
        batch = actions.tolist() if actions.ndim == 1 else actions
        for i, (e, a) in enumerate(zip(singles, batch, strict=True)):
            o, r, te, tr, _ = e.step(a)
            if te or tr:
                o, _ = e.reset()
            if collect:
                obs[i] = o
                reward[i] = r
                terminated[i] = te

    return step


def _skip_if_missing(env_id: str) -> None:
    pytest.importorskip(FAMILIES[env_id], reason=f"{env_id} needs its qwr_fast extra")


@pytest.mark.parametrize("impl", ["qwr_fast", "raw_loop", "bare_loop", "gymnasium_sync"])
@pytest.mark.parametrize("env_id", list(FAMILIES))
def test_step_overhead(benchmark, env_id, impl):
    _skip_if_missing(env_id)
    step = _setup(env_id, impl)
    benchmark.pedantic(step, rounds=20, iterations=10)
    benchmark.extra_info["env_steps_per_s"] = NUM_ENVS / benchmark.stats.stats.median


def _paired_seconds(env_id: str, num_envs: int, impls: tuple[str, ...], rounds: int):
    """Seconds per vector step of each impl, ``rounds`` short blocks each, interleaved: on a
    shared machine whose speed drifts, the ratio of two blocks run back to back is far steadier
    than the ratio of two medians taken minutes apart."""
    steps = {impl: _setup(env_id, impl, num_envs) for impl in impls}
    iterations = max(2, 20 * NUM_ENVS // num_envs)
    sec = {impl: [] for impl in impls}
    for _ in range(rounds):
        for impl, fn in steps.items():
            t0 = time.perf_counter()
            for _ in range(iterations):
                fn()
            sec[impl].append((time.perf_counter() - t0) / iterations)
    return {impl: np.array(s) for impl, s in sec.items()}


def _overhead(sec: dict[str, np.ndarray], baseline: str) -> str:
    """Median (and quartiles) over rounds of qwr_fast's time / the baseline's time - 1."""
    q25, q50, q75 = np.quantile(sec["qwr_fast"] / sec[baseline] - 1.0, [0.25, 0.5, 0.75]) * 100
    return f"{q50:+.1f}% ({q25:+.0f}..{q75:+.0f})"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved blocks per impl")
    parser.add_argument("--env", action="append", help="env ids (default: all three)")
    args = parser.parse_args()
    print(f"| env ({NUM_ENVS} envs) | qwr_fast steps/s | raw loop steps/s | overhead vs raw | "
          f"bare loop steps/s | overhead vs bare | gymnasium SyncVectorEnv steps/s | "
          f"at {WIDE_NUM_ENVS} envs: overhead vs raw | vs bare |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for env_id in args.env or list(FAMILIES):
        impls = ("qwr_fast", "raw_loop", "bare_loop", "gymnasium_sync")
        sec = _paired_seconds(env_id, NUM_ENVS, impls, args.rounds)
        rate = {impl: NUM_ENVS / float(np.median(s)) for impl, s in sec.items()}
        wide_raw = wide_bare = "not run"
        if env_id in WIDE_FAMILIES:
            wide = _paired_seconds(env_id, WIDE_NUM_ENVS, impls[:3], args.rounds)
            wide_raw, wide_bare = _overhead(wide, "raw_loop"), _overhead(wide, "bare_loop")
        print(
            f"| {env_id} | {rate['qwr_fast']:.4g} | {rate['raw_loop']:.4g} | "
            f"{_overhead(sec, 'raw_loop')} | {rate['bare_loop']:.4g} | "
            f"{_overhead(sec, 'bare_loop')} | {rate['gymnasium_sync']:.4g} | "
            f"{wide_raw} | {wide_bare} |"
        )


if __name__ == "__main__":
    main()
