"""Reseeded restores (``set_state(..., reseed=...)``, ``clone_states(..., reseed=...)``): a
simulator restored from a real env's snapshot keeps the state and draws fresh chance.

Every stochastic family goes through ``check_reseed``, on the real envs: different reseeds
diverge, equal reseeds agree step for step, ``reseed=None`` still replays the real env, and the
real env's future does not depend on what reseeded simulators did.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from qwr_fast import envs
from tests.envs.loop_contract import assert_same, rollout


def _need(module: str, extra: str) -> None:
    pytest.importorskip(module, reason=f"needs the extra: pip install qwr_fast[{extra}]")


def _row(steps: list[tuple], i: int) -> list[tuple]:
    """Env i's part of a rollout: obs, reward, flags, and its final obs and episode statistics
    at the steps where its episode ended."""
    out = []
    for s in steps:
        row = [s[0][i], s[1][i], s[2][i], s[3][i]]
        if len(s) > 4 and s[5][i]:
            row += [s[4][i], s[6][i], s[7][i]]
        out.append(tuple(row))
    return out


def _divergence(x: list[tuple], y: list[tuple]) -> int | None:
    """The first step whose obs or reward differ between two row views, or None."""
    for t, (u, v) in enumerate(zip(x, y, strict=True)):
        if not np.array_equal(u[0], v[0]) or u[1] != v[1]:
            return t
    return None


def check_reseed(make, act, *, warmup: int, n_steps: int) -> dict:
    """The reseed contract on ``make(num_envs)`` (a fresh env, reset with a fixed seed inside);
    ``act(k, n)`` is the batched action of step k, the same in every row. Returns the rollouts
    for the family's own checks: ``"split"`` (3 rows restored with reseeds [7, 8, 7]) and
    ``"state"`` (the real env's snapshot)."""
    real = make(1)
    real.reset(seed=0)
    for k in range(warmup):
        real.step(act(k, 1))
    state = real.get_state()
    ref = make(1)
    exact_obs = ref.set_state(state)  # an exact copy, taken before any simulator runs
    actions = [act(warmup + k, 3) for k in range(n_steps)]

    sim = make(3)
    obs = sim.set_state(state, reseed=[7, 8, 7])
    np.testing.assert_array_equal(obs, np.repeat(exact_obs, 3, axis=0))
    after = sim.get_state()
    for key, value in state.arrays.items():
        if key not in ("game", "rng"):  # the deterministic part is the exact restore's
            np.testing.assert_array_equal(after.arrays[key], np.repeat(value, 3, axis=0), key)
    split = rollout(sim, actions)
    assert_same(_row(split, 0), _row(split, 2))  # (b) equal reseeds, equal futures
    first = _divergence(_row(split, 0), _row(split, 1))
    assert first is not None, f"reseeds 7 and 8 agreed for {n_steps} steps"  # (a)

    # An int reseed: env i gets (reseed, i), so rows differ and the same call replays.
    sim.set_state(state, reseed=5)
    by_int = rollout(sim, actions)
    assert _divergence(_row(by_int, 0), _row(by_int, 1)) is not None, "rows share a stream"
    sim.set_state(state, reseed=5)
    assert_same(by_int, rollout(sim, actions))

    # (d) the real env goes on as the copy restored before the simulators ran.
    real_future = rollout(real, [a[:1] for a in actions])
    assert_same(real_future, rollout(ref, [a[:1] for a in actions]))

    # (c) reseed=None still replays the real env (the snapshot is unchanged by the reseeded
    # restores); clones reseeded alike agree with each other and not with the real env.
    sim.set_state(state, indices=[0])
    sim.clone_states(0, [1, 2], reseed=[9, 9])
    cloned = rollout(sim, actions)
    assert_same(_row(cloned, 0), _row(real_future, 0))
    assert_same(_row(cloned, 1), _row(cloned, 2))
    assert _divergence(_row(cloned, 0), _row(cloned, 1)) is not None
    return {"split": split, "first": first, "state": state, "sim": sim}


def test_bitflip_reseed_redraws_the_next_random_start():
    result = check_reseed(
        lambda n: envs.make("BitFlip-64", n, seed=1),
        lambda k, n: np.full(n, k % 64),
        warmup=2,
        n_steps=12,
    )
    # The bits are deterministic until the episode ends (horizon 5, 2 steps taken): the fresh
    # stream shows first in the reset at the 3rd step.
    assert result["first"] == 2
    np.testing.assert_array_equal(result["split"][2][4][0], result["split"][2][4][1])


def test_bitflip_reseed_rejects_bad_values_before_any_change():
    env = envs.make("BitFlip-8", 3, seed=0)
    env.reset()
    state = env.get_state(0)
    before = env.get_state()
    with pytest.raises(ValueError, match=r"one int per restored env \(3\), got 2"):
        env.set_state(state, reseed=[1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        env.set_state(state, reseed=-1)
    for bad in (True, 1.5, "7"):
        with pytest.raises(TypeError, match="reseed must be None, an int or a sequence"):
            env.set_state(state, reseed=bad)
    for key, value in before.arrays.items():
        np.testing.assert_array_equal(env.get_state().arrays[key], value, key)
    env.set_state(state, [1], reseed=[4])
    assert env.get_state(1).arrays["rng"][0] != state.arrays["rng"][0]
    np.testing.assert_array_equal(env.get_state(1).arrays["bits"], state.arrays["bits"])


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("MinAtar/Breakout", {}),  # sticky actions (p = 0.1) are the chance mid-episode
        ("MinAtar/Asterix", {"sticky_action_prob": 0.0}),  # spawns only
    ],
)
def test_minatar_reseed(env_id, kwargs):
    _need("minatar", "minatar")
    check_reseed(
        lambda n: envs.make(env_id, n, seed=3, max_episode_steps=30, **kwargs),
        lambda k, n: np.full(n, k % 6),
        warmup=4,
        n_steps=60,
    )


def test_minatar_reseed_rejects_bad_values_before_any_change():
    _need("minatar", "minatar")
    env = envs.make("MinAtar/Breakout", 2, seed=0)
    state = env.get_state(0)
    before = [g.random.get_state()[1].copy() for g in env._games]
    with pytest.raises(ValueError, match=r"one int per restored env \(2\), got 3"):
        env.set_state(state, reseed=[1, 2, 3])
    for g, b in zip(env._games, before, strict=True):
        np.testing.assert_array_equal(g.random.get_state()[1], b)


def test_atari_reseed_with_sticky_actions():
    _need("ale_py", "atari")
    _need("cv2", "atari")
    result = check_reseed(
        lambda n: envs.make("ALE/Breakout-v5", n, seed=2, sticky_action_prob=0.25),
        lambda k, n: np.full(n, 2 + k % 2),  # RIGHT, LEFT, ...: a sticky frame moves the paddle
        warmup=3,
        n_steps=25,
    )
    # The reseed leaves ALE's own RNG as restored; that is sound only while ALE's sticky
    # actions are off (the family applies them with the env's np_random instead).
    for base in result["sim"]._bases:
        assert base.ale.getFloat("repeat_action_probability") == 0.0


def test_atari_without_sticky_actions_is_deterministic_after_any_reseed():
    """``sticky_action_prob=0`` (qwr-search ``--sticky-action-prob 0``, the deterministic
    game): the only chance left is the no-op count of a reset, so simulators restored with
    different reseeds agree step for step within an episode."""
    _need("ale_py", "atari")
    _need("cv2", "atari")
    real = envs.make("ALE/Breakout-v5", 1, seed=2, sticky_action_prob=0.0)
    assert real.sticky_action_prob == 0.0  # what qwr-search's CSV records
    real.reset(seed=0)
    for k in range(3):
        real.step(np.full(1, 2 + k % 2))
    sim = envs.make("ALE/Breakout-v5", 3, seed=2, sticky_action_prob=0.0)
    sim.set_state(real.get_state(), reseed=[7, 8, 9])
    split = rollout(sim, [np.full(3, 2 + k % 2) for k in range(25)])
    assert not any(s[2].any() or s[3].any() for s in split)  # no episode ended
    assert_same(_row(split, 0), _row(split, 1))
    assert_same(_row(split, 0), _row(split, 2))


def test_mujoco_reseed_changes_only_the_reset_noise():
    _need("mujoco", "mujoco")
    result = check_reseed(  # through discretize: the wrapper forwards reseed
        lambda n: envs.make("Hopper-v5", n, seed=0, bins=3, max_episode_steps=4),
        lambda k, n: np.ones((n, 3), np.int64),  # the middle bins: zero torque
        warmup=1,
        n_steps=6,
    )
    # Deterministic dynamics: the rows agree until the episode that the reset noise starts.
    assert result["first"] == 2
    split = result["split"]
    assert split[2][3].all(), "the episode ends by truncation at the 3rd step"
    np.testing.assert_array_equal(split[2][4][0], split[2][4][1])


def test_hanabi_reseed_redraws_the_deck():
    _need("pyspiel", "hanabi")
    play_slot_0 = 5  # Hanabi-Full: discard slots 0-4, then play slots 0-4
    result = check_reseed(
        lambda n: envs.make("Hanabi-Full", n, seed=4),
        lambda k, n: np.full(n, play_slot_0),  # always legal; every play draws a card
        warmup=2,
        n_steps=20,
    )
    sim, state = result["sim"], result["state"]
    # The hands, the history and the obs are the snapshot's; only the undealt order is new.
    sim.set_state(state, reseed=[1, 2, 3])
    history = state.arrays["game"][0][0].history()
    for i in range(3):
        assert sim.game_state(i).history() == history


def test_hanabi_reseeded_draws_follow_the_chance_model():
    """The card drawn after a reseeded restore is distributed as the chance node of the
    snapshot's deck says (copies left / cards left), not fixed by the real env's stream."""
    _need("pyspiel", "hanabi")
    real = envs.make("Hanabi-Small", 1, seed=0)
    real.reset()
    state = real.get_state()
    n = 400
    sim = envs.make("Hanabi-Small", n, seed=0)
    sim.set_state(state, reseed=11)
    play_slot_0 = 2  # Hanabi-Small: discard slots 0-1, then play slots 0-1
    sim.step(np.full(n, play_slot_0))
    at = len(state.arrays["game"][0][0].history()) + 1  # the chance action after the play
    drawn = Counter(sim.game_state(i).history()[at] for i in range(n))
    node = real.game_state(0)
    node.apply_action(play_slot_0)
    expected = dict(node.chance_outcomes())
    assert set(drawn) <= set(expected)
    for card, p in expected.items():
        sd = np.sqrt(p * (1 - p) / n)
        assert abs(drawn[card] / n - p) < 4 * sd, (card, drawn[card] / n, p)
    assert len(drawn) > 1, "the simulators drew different cards"
