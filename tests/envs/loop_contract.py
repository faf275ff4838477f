"""Contract checks shared by the MuJoCo / MinAtar / Atari test files (envs that loop over real
single envs): seeding, snapshot/replay, clones, autoreset bookkeeping."""

from __future__ import annotations

import numpy as np


def random_actions(env, rng: np.random.Generator, n_steps: int) -> list[np.ndarray]:
    """``n_steps`` batched actions drawn with ``rng`` (not the env's own sampler)."""
    space = env.single_action_space
    out = []
    for _ in range(n_steps):
        if hasattr(space, "nvec"):
            out.append(rng.integers(0, space.nvec, (env.num_envs, len(space.nvec))))
        elif hasattr(space, "n"):
            out.append(rng.integers(0, space.n, env.num_envs))
        else:
            a = rng.uniform(space.low, space.high, (env.num_envs, *space.shape))
            out.append(a.astype(space.dtype))
    return out


def rollout(env, actions) -> list[tuple]:
    """Everything a step returns, copied: obs, reward, flags, and the infos at episode ends."""
    out = []
    for a in actions:
        obs, reward, terminated, truncated, infos = env.step(a)
        row = [obs.copy(), reward.copy(), terminated.copy(), truncated.copy()]
        if infos:
            row += [infos["final_obs"].copy(), infos["_final_obs"].copy()]
            row += [infos["episode_stats"]["r"].copy(), infos["episode_stats"]["l"].copy()]
        out.append(tuple(row))
    return out


def assert_same(x: list[tuple], y: list[tuple]) -> None:
    assert len(x) == len(y)
    for t, (u, v) in enumerate(zip(x, y, strict=True)):
        assert len(u) == len(v), f"step {t}: one rollout ended an episode, the other did not"
        for p, q in zip(u, v, strict=True):
            np.testing.assert_array_equal(p, q, err_msg=f"step {t}")


def n_episode_ends(steps: list[tuple]) -> int:
    return sum(int(s[5].sum()) for s in steps if len(s) > 4)


def check_seeding(make, n_steps: int = 20) -> None:
    """Same seed, same trajectory under the same actions; another seed, another trajectory
    (compared over ``n_steps``: some games start from a fixed screen)."""

    def trajectory(env, **reset_kwargs):
        obs = [env.reset(**reset_kwargs)[0]]
        for a in random_actions(env, np.random.default_rng(0), n_steps):
            obs.append(env.step(a)[0])
        return np.stack(obs)

    a = trajectory(make(seed=11))
    np.testing.assert_array_equal(a, trajectory(make(seed=None), seed=11))
    assert not np.array_equal(a, trajectory(make(seed=12)))
    env = make(seed=None)
    first = env.reset(seed=[5] * env.num_envs)[0]
    for i in range(1, env.num_envs):
        np.testing.assert_array_equal(first[i], first[0])


def check_replay(env, rng, warmup: int, n_steps: int, min_ends: int) -> None:
    """Snapshot, step ``n_steps`` random actions, keep stepping, restore, replay the same
    actions: bit-identical trajectories (episode ends and autoresets included)."""
    obs_at_snapshot = env.reset()[0]
    for a in random_actions(env, rng, warmup):
        obs_at_snapshot = env.step(a)[0]
    state = env.get_state()
    actions = random_actions(env, rng, n_steps)
    first = rollout(env, actions)
    assert n_episode_ends(first) >= min_ends, "the window was chosen to include episode ends"
    for a in random_actions(env, rng, 3):
        env.step(a)
    obs = env.set_state(state)
    np.testing.assert_array_equal(obs, obs_at_snapshot)
    assert_same(first, rollout(env, actions))
    env.set_state(state)
    assert_same(first, rollout(env, actions))


def check_clone(env, rng, n_steps: int) -> None:
    """Clone env 1 into every env: identical actions give identical rows; a subset write
    leaves the other envs untouched."""
    env.reset()
    for a in random_actions(env, rng, 2):
        env.step(a)
    others = env.get_state([0])
    env.clone_states(1)
    same = [np.repeat(a[:1], env.num_envs, 0) for a in random_actions(env, rng, n_steps)]
    for step in rollout(env, same):
        for arr in step:
            assert (arr == arr[:1]).all(), "every clone follows the same trajectory"
    env.set_state(others, [2])
    after = env.get_state([2])
    np.testing.assert_array_equal(after.arrays["obs"], others.arrays["obs"])
    np.testing.assert_array_equal(after.arrays["t"], others.arrays["t"])


def check_time_limit(env, limit: int, rng) -> None:
    """With no termination possible before ``limit`` steps, every env truncates at step
    ``limit`` with SAME_STEP autoreset and episode statistics."""
    env.reset(seed=3)
    total = np.zeros(env.num_envs)
    for t, a in enumerate(random_actions(env, rng, limit)):
        obs, reward, terminated, truncated, infos = env.step(a)
        total += reward
        assert not terminated.any()
        if t < limit - 1:
            assert not truncated.any() and infos == {}
    assert truncated.all()
    assert infos["_final_obs"].all() and infos["_episode_stats"].all()
    np.testing.assert_array_equal(
        infos["episode_stats"]["l"], np.full(env.num_envs, limit, np.int32)
    )
    np.testing.assert_allclose(infos["episode_stats"]["r"], total.astype(np.float32), rtol=1e-6)
    assert not np.array_equal(infos["final_obs"], obs)
    np.testing.assert_array_equal(env.get_state().arrays["t"], np.zeros(env.num_envs))
