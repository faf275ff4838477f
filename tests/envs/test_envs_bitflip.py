"""BitFlip / BitFlipSubset against a plain-Python reference, and the vector-env contract."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from qwr_fast import envs

M64 = (1 << 64) - 1


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class RefBitFlip:
    """One env, written for clarity: SplitMix64 initial bits, flip, reward, time limit."""

    def __init__(self, n_bits, horizon, subset, init, stop_all_ones, seed, index):
        self.n, self.horizon, self.subset = n_bits, horizon, subset
        self.init, self.stop_all_ones = init, stop_all_ones
        self.rng = _mix((_mix(seed) + index) & M64)
        self.reset()

    def reset(self):
        if self.init == "zeros":
            self.bits = [0] * self.n
        else:
            self.bits = []
            while len(self.bits) < self.n:
                self.rng = (self.rng + 0x9E3779B97F4A7C15) & M64
                z = _mix(self.rng)
                self.bits += [(z >> k) & 1 for k in range(64)]
            self.bits = self.bits[: self.n]
        self.t, self.ret = 0, 0.0
        return list(self.bits)

    def step(self, action):
        flips = [j for j in range(self.n) if action[j]] if self.subset else [int(action)]
        reward = 0
        for j in flips:
            reward += 1 if self.bits[j] == 0 else -1
            self.bits[j] ^= 1
        self.t += 1
        self.ret += reward
        terminated = self.stop_all_ones and all(self.bits)
        truncated = self.t >= self.horizon
        if terminated or truncated:
            final, stats = list(self.bits), (self.ret, self.t)
            return self.reset(), reward, terminated, truncated, final, stats
        return list(self.bits), reward, False, False, None, None


def _random_actions(env, rng):
    n, n_bits = env.num_envs, env.n_bits
    if isinstance(env, envs.BitFlipSubsetVectorEnv):
        return rng.integers(0, 2, (n, n_bits)).astype(rng.choice([np.bool_, np.uint8, np.int64]))
    return rng.integers(0, n_bits, n).astype(rng.choice([np.int64, np.int32, np.uint8]))


CONFIGS = [
    ("BitFlip-8", 4, {}),
    ("BitFlip-1", 3, {"horizon": 2}),
    ("BitFlip-3", 17, {"horizon": 7, "terminate_when_all_ones": True}),
    ("BitFlip-65", 5, {"horizon": 3, "init": "zeros"}),
    ("BitFlip-130", 2, {}),
    ("BitFlipSubset-8", 4, {}),
    ("BitFlipSubset-3", 13, {"horizon": 6, "terminate_when_all_ones": True}),
    ("BitFlipSubset-67", 3, {"horizon": 1}),
    ("BitFlipSubset-64", 5, {"init": "zeros"}),
]


@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize(("env_id", "num_envs", "kwargs"), CONFIGS)
def test_matches_python_reference(env_id, num_envs, kwargs, copy):
    seed = 12345
    env = envs.make(env_id, num_envs, seed=seed, copy=copy, **kwargs)
    refs = [
        RefBitFlip(
            env.n_bits,
            env.horizon,
            isinstance(env, envs.BitFlipSubsetVectorEnv),
            env.init,
            env.terminate_when_all_ones,
            seed,
            i,
        )
        for i in range(num_envs)
    ]
    obs, info = env.reset()
    assert info == {}
    np.testing.assert_array_equal(obs, np.array([r.bits for r in refs], dtype=np.float32))
    rng = np.random.default_rng(0)
    n_partial = n_ended = 0
    for _ in range(40):
        actions = _random_actions(env, rng)
        obs, reward, terminated, truncated, infos = env.step(actions)
        out = [r.step(a) for r, a in zip(refs, actions, strict=True)]
        assert obs.dtype == np.float32 and reward.dtype == np.float32
        np.testing.assert_array_equal(obs, np.array([o[0] for o in out], dtype=np.float32))
        np.testing.assert_array_equal(reward, np.array([o[1] for o in out], dtype=np.float32))
        np.testing.assert_array_equal(terminated, [o[2] for o in out])
        np.testing.assert_array_equal(truncated, [o[3] for o in out])
        done = np.array([o[4] is not None for o in out])
        if not done.any():
            assert infos == {}
            continue
        n_ended += int(done.sum())
        n_partial += int(not done.all())
        np.testing.assert_array_equal(infos["_final_obs"], done)
        np.testing.assert_array_equal(infos["_episode_stats"], done)
        expected_final = np.array([o[4] if o[4] is not None else o[0] for o in out], np.float32)
        np.testing.assert_array_equal(infos["final_obs"], expected_final)
        ep_r = [o[5][0] if o[5] else 0.0 for o in out]
        ep_l = [o[5][1] if o[5] else 0 for o in out]
        np.testing.assert_array_equal(infos["episode_stats"]["r"], np.array(ep_r, np.float32))
        np.testing.assert_array_equal(infos["episode_stats"]["l"], np.array(ep_l, np.int32))
    assert n_ended > 0
    if kwargs.get("terminate_when_all_ones"):
        assert n_partial > 0, "the config was chosen so that episodes end at different steps"


def test_metadata_and_spaces():
    env = envs.make("BitFlip-16", 6, seed=3)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.single_action_space.n == 16
    assert env.action_space.shape == (6,)
    obs, _ = env.reset()
    assert obs.shape == (6, 16) and obs in env.observation_space
    sub = envs.make("BitFlipSubset-16", 6, seed=3)
    assert sub.action_space.shape == (6, 16)
    sub.reset(seed=1)
    for e in (env, sub):
        for _ in range(7):
            a = e.action_space.sample()
            assert a in e.action_space
            obs, *_, infos = e.step(a)
            assert obs in e.observation_space
            if infos:
                assert infos["final_obs"] in e.observation_space


def test_seeding():
    a = envs.make("BitFlip-64", 5, seed=7).reset()[0]
    b = envs.make("BitFlip-64", 5).reset(seed=7)[0]
    c = envs.make("BitFlip-64", 2).reset(seed=7)[0]
    d = envs.make("BitFlip-64", 5).reset(seed=8)[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:2], c)
    assert not np.array_equal(a, d)
    assert len({row.tobytes() for row in a}) == 5
    e = envs.make("BitFlip-64", 2)
    np.testing.assert_array_equal(e.reset(seed=[7, 9])[0][0], e.reset(seed=[7, 1])[0][0])
    first = e.reset(seed=4)[0]
    again = e.reset()[0]
    assert not np.array_equal(first, again), "reset() without a seed continues the stream"
    f = envs.make("BitFlip-64", 2, seed=None)
    g = envs.make("BitFlip-64", 2, seed=None)
    assert not np.array_equal(f.reset()[0], g.reset()[0])


def test_reset_mask():
    env = envs.make("BitFlip-32", 4, seed=0)
    obs0 = env.reset()[0]
    obs1, *_ = env.step(np.zeros(4, np.int64))
    kept = obs1.copy()
    mask = np.array([True, False, True, False])
    obs2, _ = env.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs2[~mask], kept[~mask])
    assert not np.array_equal(obs2[mask], obs0[mask])
    assert np.array_equal(env.get_state().arrays["t"], [0, 1, 0, 1])


def _rollout(env, actions):
    out = []
    for a in actions:
        obs, reward, terminated, truncated, infos = env.step(a)
        out.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy()))
        if infos:
            out.append((infos["final_obs"].copy(), infos["episode_stats"]["r"].copy()))
    return out


def _assert_same(x, y):
    assert len(x) == len(y)
    for u, v in zip(x, y, strict=True):
        for p, q in zip(u, v, strict=True):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("env_id", ["BitFlip-5", "BitFlipSubset-70"])
def test_get_set_state_roundtrip(env_id):
    env = envs.make(env_id, 6, seed=1, horizon=4, copy=False)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(3):
        env.step(_random_actions(env, rng))
    state = env.get_state()
    actions = [_random_actions(env, rng) for _ in range(11)]
    first = _rollout(env, actions)
    for _ in range(2):
        env.step(_random_actions(env, rng))
    obs = env.set_state(state)
    np.testing.assert_array_equal(obs, np.asarray(state.arrays["bits"], np.float32))
    _assert_same(first, _rollout(env, actions))
    state2 = env.get_state()
    for k in state.arrays:
        assert not np.shares_memory(state2.arrays[k], getattr(env, "_" + k))


def test_set_state_subset_and_broadcast():
    env = envs.make("BitFlip-9", 5, seed=2, horizon=3)
    env.reset()
    src = envs.make("BitFlip-9", 2, seed=99, horizon=3)
    src.reset()
    src.step(np.array([1, 2]))
    st = src.get_state()
    before = env.get_state()
    env.set_state(st, [4, 0])
    after = env.get_state()
    for k in st.arrays:
        np.testing.assert_array_equal(after.arrays[k][[4, 0]], st.arrays[k])
        np.testing.assert_array_equal(after.arrays[k][1:4], before.arrays[k][1:4])
    env.set_state(st.select(1))
    for k in st.arrays:
        np.testing.assert_array_equal(env.get_state().arrays[k], np.repeat(st.arrays[k][1:2], 5, 0))


@pytest.mark.parametrize("env_id", ["BitFlip-12", "BitFlipSubset-12"])
def test_clone_states(env_id):
    env = envs.make(env_id, 7, seed=5, horizon=3)
    env.reset()
    rng = np.random.default_rng(2)
    env.step(_random_actions(env, rng))
    ref_state = env.get_state(3)
    obs = env.clone_states(3, range(1, 5))
    for i in range(1, 5):
        np.testing.assert_array_equal(obs[i], obs[3])
    np.testing.assert_array_equal(
        env.get_state([0]).arrays["rng"] == ref_state.arrays["rng"], [False]
    )
    env.clone_states(3)
    one = _random_actions(env, rng)[:1]
    actions = [np.repeat(_random_actions(env, rng)[:1], 7, 0) for _ in range(8)] + [
        np.repeat(one, 7, 0)
    ]
    for step in _rollout(env, actions):
        for arr in step:
            assert (arr == arr[:1]).all(), "every clone follows the same trajectory"


def test_bad_actions_raise_before_any_env_moves():
    env = envs.make("BitFlip-8", 3, seed=0)
    env.reset()
    state = env.get_state()
    with pytest.raises(ValueError, match=r"actions\[2\] = 8 is outside Discrete\(8\)"):
        env.step(np.array([0, 1, 8]))
    with pytest.raises(ValueError, match=r"actions\[0\] = -1"):
        env.step(np.array([-1, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        env.step(np.zeros((3, 1), np.int64))
    with pytest.raises(TypeError, match="integers for Discrete"):
        env.step(np.array([0.0, 1.0, 2.0]))
    for k, v in env.get_state().arrays.items():
        np.testing.assert_array_equal(v, state.arrays[k])
    sub = envs.make("BitFlipSubset-4", 2, seed=0)
    sub.reset()
    with pytest.raises(ValueError, match=r"actions\[1\] = \[0, 2, 0, 0\] is outside MultiBinary"):
        sub.step(np.array([[1, 1, 0, 0], [0, 2, 0, 0]]))
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        sub.step(np.ones((2, 5), np.int8))
    with pytest.raises(TypeError, match="bool or integer"):
        sub.step(np.full((2, 4), np.nan))
    # One-byte actions with N a multiple of 8 take the packed path (8 actions per uint64).
    wide = envs.make("BitFlipSubset-16", 3, seed=0)
    obs = wide.reset()[0].copy()
    state = wide.get_state()
    for dtype, row, value in [(np.uint8, 2, 2), (np.int8, 0, -1), (np.uint8, 1, 128)]:
        bad = np.zeros((3, 16), dtype)
        bad[row, 11] = value
        with pytest.raises(ValueError, match=rf"actions\[{row}\] = .* is outside MultiBinary"):
            wide.step(bad)
    for k, v in wide.get_state().arrays.items():
        np.testing.assert_array_equal(v, state.arrays[k])
    np.testing.assert_array_equal(wide.step(np.zeros((3, 16), np.int8))[0], obs)
    strided = np.ones((3, 32), np.uint8)[:, ::2]  # not contiguous: the generic path
    np.testing.assert_array_equal(wide.step(strided)[0], 1.0 - obs)


def test_make_and_state_errors():
    assert "BitFlip-64" in envs.list_envs() and "BitFlipSubset-64" in envs.list_envs()
    with pytest.raises(ValueError, match="unknown env id 'CartPole-v1'; known ids: BitFlip-8"):
        envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="contradicts"):
        envs.make("BitFlip-8", n_bits=9)
    with pytest.raises(ValueError, match="num_envs"):
        envs.make("BitFlip-8", 0)
    with pytest.raises(ValueError, match="horizon"):
        envs.make("BitFlip-8", horizon=0)
    with pytest.raises(ValueError, match="init"):
        envs.make("BitFlip-8", init="ones")
    with pytest.raises(ValueError, match="seed"):
        envs.make("BitFlip-8", seed=-1)
    env = envs.make("BitFlip-8", 2)
    with pytest.raises(ValueError, match="one int per env"):
        env.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.ones(3, bool)})
    with pytest.raises(ValueError, match="this env is"):
        env.set_state(envs.make("BitFlip-8", 2, horizon=6).get_state())
    with pytest.raises(ValueError, match="holds 2 envs; expected 3"):
        envs.make("BitFlip-8", 3).set_state(env.get_state())
    with pytest.raises(TypeError, match="EnvState"):
        env.set_state({"bits": None})
    with pytest.raises(ValueError, match="indices"):
        env.get_state([5])
    with pytest.raises(ValueError, match="source"):
        env.clone_states(2)


@pytest.mark.parametrize("env_id", ["BitFlip-8", "BitFlipSubset-8"])
def test_copy_false_returns_preallocated_buffers(env_id):
    """``obs`` and ``final_obs`` are two preallocated buffers that swap roles at every step
    where an episode ends (the buffer that showed s_{t+1} is returned as ``final_obs``)."""
    env = envs.make(env_id, 4, seed=0, horizon=2, copy=False)
    obs0, _ = env.reset()
    a = np.ones((4, 8), np.uint8) if "Subset" in env_id else np.zeros(4, np.int64)
    out = [env.step(a) for _ in range(4)]
    assert out[0][0] is obs0 and out[0][4] == {}
    other = out[1][0]
    assert other is not obs0 and out[1][4]["final_obs"] is obs0
    assert out[2][0] is other
    assert out[3][0] is obs0 and out[3][4]["final_obs"] is other
    for step in out[1:]:
        for x, y in zip(out[0][1:4], step[1:4], strict=True):
            assert x is y
    copied = envs.make(env_id, 4, seed=0, horizon=2)
    c0, _ = copied.reset()
    assert not np.shares_memory(copied.step(a)[0], c0)


@pytest.mark.parametrize("env_id", ["BitFlip-70", "BitFlipSubset-70"])
def test_final_obs_after_reset_mask_and_set_state(env_id):
    """``final_obs`` rows of envs that go on equal ``obs`` and ended rows hold the last obs,
    also right after a masked reset or a ``set_state`` moved some rows mid-episode."""
    env = envs.make(env_id, 6, seed=3, horizon=3, copy=False)
    env.reset()
    rng = np.random.default_rng(4)
    other = env.get_state([5, 4])
    checked = 0
    for step in range(12):
        if step == 4:
            env.reset(options={"reset_mask": np.array([1, 0, 1, 0, 0, 1], bool)})
        if step == 7:
            env.set_state(other, [0, 3])
        before = env.get_state().arrays["bits"].astype(np.float32)
        actions = _random_actions(env, rng)
        if isinstance(env, envs.BitFlipSubsetVectorEnv):
            last = np.logical_xor(before, actions.astype(bool)).astype(np.float32)
        else:
            last = before.copy()
            last[np.arange(6), actions] = 1.0 - last[np.arange(6), actions]
        obs, _, terminated, truncated, infos = env.step(actions)
        done = terminated | truncated
        if not done.any():
            assert infos == {}
            continue
        checked += 1
        np.testing.assert_array_equal(infos["_final_obs"], done)
        np.testing.assert_array_equal(infos["final_obs"][done], last[done])
        np.testing.assert_array_equal(infos["final_obs"][~done], obs[~done])
        np.testing.assert_array_equal(obs[~done], last[~done])
        assert (
            infos["episode_stats"]["l"][~done].sum() == 0
            and (infos["episode_stats"]["l"][done] > 0).all()
        )
    assert checked >= 3


def test_state_bits_layout():
    """``EnvState`` keeps one uint8 per bit (``[k, n_bits]``) whatever the packing inside."""
    env = envs.make("BitFlip-70", 3, seed=0)
    obs, _ = env.reset()
    bits = env.get_state().arrays["bits"]
    assert bits.dtype == np.uint8 and bits.shape == (3, 70)
    np.testing.assert_array_equal(bits, obs.astype(np.uint8))
    state = env.get_state()
    bad = envs.EnvState(state.config, {**state.arrays, "bits": bits.astype(np.int64)})
    with pytest.raises(ValueError, match=r"state.arrays\['bits'\] must be uint8 \[k, 70\]"):
        env.set_state(bad)
