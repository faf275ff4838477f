"""``make(..., autoreset_mode=...)``: NEXT_STEP and SAME_STEP for every family, exact
get/set_state in both, gymnasium's own vector wrappers on top, and the misuse errors (issue 21)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as W

from qwr_fast import envs
from qwr_fast.envs.hanabi import legal_mask

NEXT, SAME = AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP

# Small, fast configurations whose episodes end within a few dozen steps.
FAMILIES = {
    "BitFlip-8": dict(horizon=3),
    "BitFlipSubset-8": dict(horizon=2),
    "MinAtar/Breakout": dict(max_episode_steps=12),
    "ALE/Pong-v5": dict(max_episode_steps=4, noop_max=2, stack_size=2, screen_size=32),
    "HalfCheetah-v5": dict(max_episode_steps=5),
    "Hanabi-Small": {},
}
IDS = list(FAMILIES)


def _make(env_id, n, mode, seed=0, **extra):
    return envs.make(env_id, n, seed=seed, autoreset_mode=mode, **FAMILIES[env_id], **extra)


def _actions(env, obs, rng):
    space = env.single_action_space
    n = env.num_envs
    if isinstance(env.unwrapped if not hasattr(env, "env") else env.env, envs.HanabiVectorEnv):
        mask = legal_mask(obs, env if not hasattr(env, "env") else env.env)
        return np.argmax(mask * rng.random(mask.shape) + mask, axis=1)
    if isinstance(space, gymnasium.spaces.Discrete):
        return rng.integers(0, space.n, n)
    if isinstance(space, gymnasium.spaces.MultiBinary):
        return rng.integers(0, 2, (n, *space.shape)).astype(np.int8)
    return rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)


def _roll(env, obs, steps, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        a = _actions(env, obs, rng)
        obs, r, te, tr, info = env.step(a)
        out.append((obs.copy(), r.copy(), te.copy(), tr.copy(), sorted(info)))
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("env_id", IDS)
def test_next_step_is_same_step_with_a_reset_step(env_id):
    """One env: NEXT_STEP shows the last obs at the ending step, then the reset obs with reward
    0 and no flags (its action ignored); everything else equals SAME_STEP bit for bit."""
    same, nxt = _make(env_id, 1, SAME), _make(env_id, 1, NEXT)
    assert nxt.metadata["autoreset_mode"] == NEXT and same.metadata["autoreset_mode"] == SAME
    o_s, _ = same.reset(seed=3)
    o_n, _ = nxt.reset(seed=3)
    np.testing.assert_array_equal(o_s, o_n)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(40):
        a = _actions(same, o_s, rng)
        o_s, r_s, te_s, tr_s, info_s = same.step(a)
        o_n, r_n, te_n, tr_n, info_n = nxt.step(a)
        np.testing.assert_array_equal(r_n, r_s)
        np.testing.assert_array_equal(te_n, te_s)
        np.testing.assert_array_equal(tr_n, tr_s)
        assert "final_obs" not in info_n
        if te_s[0] or tr_s[0]:
            ends += 1
            np.testing.assert_array_equal(o_n, info_s["final_obs"])
            assert info_n["_episode_stats"][0]
            np.testing.assert_array_equal(
                info_n["episode_stats"]["r"], info_s["episode_stats"]["r"]
            )
            np.testing.assert_array_equal(
                info_n["episode_stats"]["l"], info_s["episode_stats"]["l"]
            )
            bad = np.full_like(np.asarray(a), 10**6) if env_id == "Hanabi-Small" else a
            o_n, r_n, te_n, tr_n, info_n = nxt.step(bad)  # the reset step: action ignored
            np.testing.assert_array_equal(o_n, o_s)
            assert r_n[0] == 0 and not te_n[0] and not tr_n[0] and info_n == {}
        else:
            np.testing.assert_array_equal(o_n, o_s)
            assert info_n == {}
    assert ends >= 1


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", [NEXT, SAME])
def test_get_set_state_exact_in_both_modes(env_id, mode):
    env = _make(env_id, 2, mode)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)
    pending_seen = False
    for _ in range(30):  # stop right after an episode ends: in NEXT_STEP, a pending env
        obs, r, te, tr, _ = env.step(_actions(env, obs, rng))
        if (te | tr).any():
            pending_seen = True
            break
    assert pending_seen
    state = env.get_state()
    if mode == NEXT:
        assert state.arrays["next_step_pending"].any()
    first = _roll(env, obs, 12, seed=5)
    np.testing.assert_array_equal(env.set_state(state), obs)
    again = _roll(env, obs, 12, seed=5)
    _assert_same(again, first)
    # written into other rows of another env, the state shows the same observations
    other = _make(env_id, 2, mode, seed=9)
    other.reset()
    shown = other.set_state(env.get_state(), [1, 0])
    np.testing.assert_array_equal(shown[[1, 0]], again[-1][0])
    mid = env.get_state([1])  # and a 1-env state broadcasts: clone_states agrees with it
    np.testing.assert_array_equal(other.set_state(mid), other.clone_states(0))


def _wrappers(env):
    box = isinstance(env.single_action_space, gymnasium.spaces.Box)
    space = env.single_observation_space
    out = {
        "NormalizeObservation": lambda e: W.NormalizeObservation(e),
        "TransformObservation": lambda e: W.TransformObservation(
            e, lambda o: o * 2, e.observation_space
        ),
        "FlattenObservation": lambda e: W.FlattenObservation(e),
        "DtypeObservation": lambda e: W.DtypeObservation(e, np.float64),
        "RecordEpisodeStatistics": lambda e: W.RecordEpisodeStatistics(e),
        "NormalizeReward": lambda e: W.NormalizeReward(e),
    }
    if box:
        out["ClipAction"] = lambda e: W.ClipAction(e)
        out["RescaleAction"] = lambda e: W.RescaleAction(e, -0.5, 0.5)
    assert space is not None
    return out


OBS_WRAPPERS = {
    "NormalizeObservation",
    "TransformObservation",
    "FlattenObservation",
    "DtypeObservation",
}


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_vector_wrappers(env_id):
    """Every wrapper works in NEXT_STEP; in SAME_STEP those that allow it work and the
    observation wrappers refuse as gymnasium does. RecordEpisodeStatistics adds "episode"
    (our own statistics are under "episode_stats") and agrees with ours."""
    for mode in (NEXT, SAME):
        env = _make(env_id, 2, mode)  # each wrapper resets it (with one seed)
        for name, wrap in _wrappers(env).items():
            if mode == SAME and name in OBS_WRAPPERS:
                with pytest.raises(ValueError, match="NEXT_STEP or DISABLED"):
                    wrap(env)
                continue
            w = wrap(env)
            obs, _ = w.reset(seed=2)
            rng = np.random.default_rng(0)
            ended = 0
            for _ in range(40 if env_id.startswith("Hanabi") else 14):
                a = _actions(env, obs if name not in OBS_WRAPPERS else env._obs, rng)
                if name == "RescaleAction":
                    a = (a * 0.5 / env.single_action_space.high).astype(np.float32)
                obs, r, te, tr, info = w.step(a)
                assert obs.shape[0] == 2 and r.shape == (2,)
                if (te | tr).any():
                    ended += 1
                    if name == "RecordEpisodeStatistics":
                        d = info["_episode"]
                        np.testing.assert_array_equal(d, info["_episode_stats"])
                        np.testing.assert_allclose(
                            info["episode"]["r"][d], info["episode_stats"]["r"][d], rtol=1e-5
                        )
                        np.testing.assert_array_equal(
                            info["episode"]["l"][d], info["episode_stats"]["l"][d]
                        )
            assert ended >= 1, (name, mode)
        w.close()
        assert env.closed


@pytest.mark.parametrize("env_id", ["BitFlip-8", "MinAtar/Breakout", "Hanabi-Small"])
def test_seed_list_with_none_continues_those_envs(env_id):
    a, b, c = (_make(env_id, 2, SAME, seed=4) for _ in range(3))
    for e in (a, b, c):
        e.reset()
        e.step(_actions(e, e.reset()[0], np.random.default_rng(0)))
    oa, _ = a.reset(seed=[None, 5])
    ob, _ = b.reset()  # env 0 continues its stream
    oc, _ = c.reset(seed=[8, 5])
    np.testing.assert_array_equal(oa[0], ob[0])
    np.testing.assert_array_equal(oa[1], oc[1])
    assert _make(env_id, 2, SAME).reset(seed=[None, None])[0].shape[0] == 2


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", [NEXT, SAME])
def test_misuse_errors(env_id, mode):
    for bad in (-1, 0):
        with pytest.raises(ValueError, match="num_envs"):
            envs.make(env_id, bad, autoreset_mode=mode)
    env = _make(env_id, 2, mode)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step(env.action_space.sample())
    a = _actions(env, env.reset()[0], np.random.default_rng(0))
    state = env.get_state()
    for idx in ([-1], [2], -1, [0, -2]):
        with pytest.raises(ValueError, match="indices"):
            env.get_state(idx)
        with pytest.raises(ValueError, match="indices"):
            env.set_state(state.select([0]), idx)
    with pytest.raises(ValueError, match="source"):
        env.clone_states(-1)
    env.step(a)
    env.close()
    with pytest.raises(RuntimeError, match="env is closed"):
        env.step(a)
    fresh = _make(env_id, 2, mode)
    fresh.set_state(state)  # a restored env may step without reset()
    fresh.step(a)
    with pytest.raises(ValueError, match="autoreset_mode"):
        envs.make(env_id, 1, autoreset_mode=AutoresetMode.DISABLED)


def test_next_step_through_discretize_and_copy_false():
    env = envs.make(
        "HalfCheetah-v5", 2, seed=0, bins=3, max_episode_steps=2, autoreset_mode=NEXT, copy=False
    )
    assert env.max_episode_steps == 2 and env.bins.tolist() == [3] * 6  # attributes reach through
    obs, _ = env.reset()
    a = np.ones((2, 6), np.int64)
    _, r, _, tr, info = env.step(a)
    _, r, _, tr, info = env.step(a)
    assert tr.all() and info["_episode_stats"].all()
    last = obs.copy()
    obs, r, te, tr, info = env.step(a)
    assert not (te | tr).any() and (r == 0).all() and info == {}
    assert not np.array_equal(obs, last)
    env.close()
    with pytest.raises(RuntimeError, match="env is closed"):
        env.step(a)
