"""Hanabi: belief-sampling speed and the vector env's overhead over a raw pyspiel loop.

- ``test_belief_sampling``: ``sample_beliefs`` of 64 states on ``Hanabi-Full`` after 30 random
  moves (hands carrying hints), private and public (both hands re-dealt); samples/s = 64 / time.
- ``test_step``: ``make("Hanabi-Full", 8, copy=False).step`` against a bare Python loop over 8
  pyspiel states doing the same work (apply the move, deal with a numpy Generator, observation
  tensor of the mover, legal mask, reset at the end of a game). Same policy: a random legal
  move drawn from the mask, vectorised.

pytest-benchmark: ``pytest bench/test_bench_hanabi.py``. Side-by-side table:
``python bench/test_bench_hanabi.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from qwr_fast import envs

pyspiel = pytest.importorskip("pyspiel", reason="needs the extra: pip install qwr_fast[hanabi]")
from qwr_fast.envs.hanabi import legal_mask, sample_beliefs  # noqa: E402

NUM_ENVS = 8
NUM_SAMPLES = 64


def _midgame_state():
    env = envs.make("Hanabi-Full", 1, seed=0)
    obs = env.reset()[0]
    rng = np.random.default_rng(0)
    for _ in range(30):
        mask = legal_mask(obs, env)
        obs = env.step(np.argmax(mask * rng.random(mask.shape), axis=1))[0]
    return env.game_state(0)


def _belief_setup(public: bool):
    state = _midgame_state()
    rng = np.random.default_rng(1)
    player = state.current_player()
    return lambda: sample_beliefs(state, player, NUM_SAMPLES, rng, public=public)


def _step_setup(impl: str):
    rng = np.random.default_rng(0)
    if impl == "qwr_fast":
        env = envs.make("Hanabi-Full", NUM_ENVS, seed=0, copy=False)
        obs = [env.reset()[0]]
        sl = env.action_mask_slice

        def step():
            mask = obs[0][:, sl]
            obs[0] = env.step(np.argmax(mask * rng.random(mask.shape), axis=1))[0]

        return step
    return _raw_loop(rng)


def _raw_loop(rng):
    """The least a vector env over pyspiel can do per step."""
    game = pyspiel.load_game(
        "hanabi",
        {"players": 2, "colors": 5, "ranks": 5, "hand_size": 5, "max_information_tokens": 8,
         "max_life_tokens": 3},
    )  # fmt: skip
    from open_spiel.python.observation import make_observation

    observer = make_observation(game)
    d, a = game.observation_tensor_size(), game.num_distinct_actions()
    obs = np.zeros((NUM_ENVS, d + 2 + a), dtype=np.float32)
    rngs = [np.random.default_rng(i) for i in range(NUM_ENVS)]

    def deal(state, r):
        while state.is_chance_node():
            u, acc = r.random(), 0.0
            outcomes = state.chance_outcomes()
            chosen = outcomes[-1][0]
            for outcome, p in outcomes:
                acc += p
                if u < acc:
                    chosen = outcome
                    break
            state.apply_action(chosen)

    def write(i, state):
        p = state.current_player()
        observer.set_from(state, p)
        obs[i, :d] = observer.tensor
        obs[i, d : d + 2] = 0.0
        obs[i, d + p] = 1.0
        obs[i, d + 2 :] = state.legal_actions_mask(p)

    states = []
    for i in range(NUM_ENVS):
        s = game.new_initial_state()
        deal(s, rngs[i])
        states.append(s)
        write(i, s)

    def step():
        mask = obs[:, d + 2 :]
        actions = np.argmax(mask * rng.random(mask.shape), axis=1).tolist()
        for i, s in enumerate(states):
            s.apply_action(actions[i])
            s.rewards()
            deal(s, rngs[i])
            if s.is_terminal():
                s = states[i] = game.new_initial_state()
                deal(s, rngs[i])
            write(i, s)

    return step


@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
def test_belief_sampling(benchmark, public):
    benchmark.group = "hanabi-belief-64"
    benchmark(_belief_setup(public))


@pytest.mark.parametrize("impl", ["qwr_fast", "raw_loop"])
def test_step(benchmark, impl):
    benchmark.group = "hanabi-full-step-8"
    benchmark(_step_setup(impl))


def _time(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t) / repeat)
    return best


if __name__ == "__main__":
    for public in (False, True):
        t = _time(_belief_setup(public), 20)
        kind = "public" if public else "private"
        print(f"belief sampling Hanabi-Full mid-game ({kind}): {NUM_SAMPLES / t:,.0f} samples/s")
    for impl in ("qwr_fast", "raw_loop"):
        t = _time(_step_setup(impl), 200)
        print(f"Hanabi-Full x{NUM_ENVS} step {impl:9s}: {NUM_ENVS / t:,.0f} env steps/s")
