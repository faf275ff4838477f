"""The one collector (qwr_fast/data/collect.py): what it writes equals a hand-written env loop,
and its checkpoint state continues a run exactly."""

import numpy as np
import torch

from qwr_fast.data.collect import Collector
from qwr_fast.data.replay import Replay
from qwr_fast.envs import make


class FixedBehaviour:
    """Action ``(t + e) % K`` for env e at the t-th call; mu = the obs' first column."""

    def __init__(self, k):
        self.k, self.t = k, 0

    def act(self, obs):
        a = (self.t + torch.arange(obs.shape[0])) % self.k
        self.t += 1
        return a, obs[:, :1].float()

    def to_env(self, action):
        return action.numpy()

    def next_mu(self, boot_obs, mu):
        return boot_obs[:, :1].float() + 100.0


def test_collector_writes_what_a_hand_written_loop_sees():
    E, steps = 3, 60
    env = make("BitFlip-8", E, seed=1)
    replay = Replay(steps, E, (8,), 1, action_dtype=torch.int64)
    collector = Collector(env, seed=1, obs_to_tensor=torch.as_tensor)
    assert collector.collect(steps, FixedBehaviour(8), replay) == steps
    twin = make("BitFlip-8", E, seed=1)
    obs, _ = twin.reset(seed=1)
    ret, returns = np.zeros(E), []
    for t in range(steps // E):
        a = (t + np.arange(E)) % 8
        nxt, r, term, trunc, info = twin.step(a)
        done = term | trunc
        boot = np.where(done[:, None], info.get("final_obs", nxt), nxt)
        np.testing.assert_array_equal(replay.obs[t].numpy(), obs)
        np.testing.assert_array_equal(replay.next_obs[t].numpy(), boot)
        np.testing.assert_array_equal(replay.action[t].numpy(), a)
        np.testing.assert_allclose(replay.reward[t].numpy(), r.astype(np.float32))
        np.testing.assert_array_equal(replay.terminal[t].numpy(), term)
        np.testing.assert_array_equal(replay.truncated[t].numpy(), trunc)
        np.testing.assert_array_equal(replay.next_mu[t, :, 0].numpy(), boot[:, 0] + 100.0)
        ret += r
        returns += ret[done].tolist()
        ret[done] = 0.0
        obs = nxt
    assert returns and collector.pop_returns() == returns
    assert collector.pop_returns() == []


def test_collector_state_continues_exactly():
    E = 2
    a = Collector(make("BitFlip-8", E, seed=3), seed=3, obs_to_tensor=torch.as_tensor)
    sink = Replay(400, E, (8,), 1, action_dtype=torch.int64)
    a.collect(40, FixedBehaviour(8), sink)
    state = a.state_dict()
    b = Collector(make("BitFlip-8", E, seed=99), seed=99, obs_to_tensor=torch.as_tensor)
    b.load_state_dict(state, reset_seed=0)
    ra = Replay(400, E, (8,), 1, action_dtype=torch.int64)
    rb = Replay(400, E, (8,), 1, action_dtype=torch.int64)
    a.collect(40, FixedBehaviour(8), ra)
    b.collect(40, FixedBehaviour(8), rb)
    for name in ("obs", "next_obs", "reward", "terminal", "truncated"):
        assert torch.equal(getattr(ra, name), getattr(rb, name)), name
    np.testing.assert_array_equal(a.ep_return, b.ep_return)
