import pytest
import torch

from qwr_fast.data.replay import Replay

E = 3


def _fill(replay: Replay, steps: int, *, ends: dict, valid_after_done: bool = True) -> dict:
    """Add ``steps`` steps; obs = (t, env, episode id); ``ends[(t, e)]`` is 'term' or 'trunc'.
    Returns per-env python lists of what was stored (the reference for the checks)."""
    episode = [0] * E
    log = {e: [] for e in range(E)}
    prev_done = [False] * E
    for t in range(steps):
        obs = torch.tensor([[t, e, episode[e]] for e in range(E)], dtype=torch.float32)
        term = torch.tensor([ends.get((t, e)) == "term" for e in range(E)])
        trunc = torch.tensor([ends.get((t, e)) == "trunc" for e in range(E)])
        final = obs + torch.tensor([0.5, 0.0, 0.0])  # the bootstrap obs of each step
        valid = torch.tensor([valid_after_done or not prev_done[e] for e in range(E)])
        replay.add(
            obs,
            obs[:, :1] * 10 + obs[:, 1:2],  # mu encodes (t, e)
            (obs[:, 0] * 7 + obs[:, 1]).long() % 5,
            obs[:, 0] + 100 * obs[:, 1],
            term,
            trunc,
            final,
            final[:, :1] * 10 + final[:, 1:2],
            valid=valid,
        )
        for e in range(E):
            log[e].append(dict(t=t, ep=episode[e], term=bool(term[e]), trunc=bool(trunc[e])))
            prev_done[e] = bool(term[e] or trunc[e])
            if prev_done[e]:
                episode[e] += 1
    return log


def _make(capacity: int) -> Replay:
    return Replay(capacity, E, (3,), 1, (), action_dtype=torch.int64)


@pytest.mark.parametrize("margin", [1, 3, 5])
def test_slices_follow_storage_and_stop_at_episode_ends(margin):
    replay = _make(E * 40)
    ends = {(5, 0): "term", (6, 1): "trunc", (9, 0): "trunc", (10, 2): "term", (11, 2): "term"}
    log = _fill(replay, 25, ends=ends)
    g = torch.Generator().manual_seed(1)
    b = replay.sample(512, margin, generator=g)
    assert b.reward.shape == (512, margin) and b.next_obs.shape == (512, margin, 3)
    t0, env = b.obs[:, 0].long(), b.obs[:, 1].long()
    torch.testing.assert_close(b.mu[:, 0], b.obs[:, 0] * 10 + b.obs[:, 1])
    torch.testing.assert_close(b.action, (t0 * 7 + env) % 5)
    for j in range(512):
        e, t = int(env[j]), int(t0[j])
        stopped = False
        for i in range(margin):
            if stopped:
                break
            entry = log[e][min(t + i, 24)]
            assert b.next_obs[j, i, 0] == entry["t"] + 0.5  # bootstrap obs of step t+i
            assert b.next_obs[j, i, 2] == log[e][t]["ep"]  # never another episode
            assert b.reward[j, i] == entry["t"] + 100 * e
            assert b.next_mu[j, i, 0] == (entry["t"] + 0.5) * 10 + e
            assert bool(b.terminal[j, i]) == entry["term"]
            assert bool(b.truncated[j, i]) == entry["trunc"]
            expect_stop = entry["term"] or entry["trunc"] or t + i == 24
            assert bool(b.stop[j, i]) == expect_stop
            stopped = expect_stop


def test_truncation_is_not_termination():
    replay = _make(E * 10)
    _fill(replay, 4, ends={(1, 0): "trunc", (2, 0): "term"})
    assert replay.truncated[1, 0] and not replay.terminal[1, 0]
    assert replay.terminal[2, 0] and not replay.truncated[2, 0]
    b = replay.sample(256, 2, generator=torch.Generator().manual_seed(0))
    rows = (b.obs[:, 0] == 1) & (b.obs[:, 1] == 0)
    assert rows.any()
    assert b.stop[rows, 0].all() and b.truncated[rows, 0].all() and not b.terminal[rows, 0].any()


def test_wraparound_keeps_only_the_newest_steps():
    replay = _make(E * 7)
    _fill(replay, 20, ends={})
    assert len(replay) == E * 7
    b = replay.sample(1000, 4, generator=torch.Generator().manual_seed(0))
    assert b.obs[:, 0].min() >= 13 and b.obs[:, 0].max() <= 19
    last = b.obs[:, 0] == 19
    assert b.stop[last, 0].all()  # the newest step ends every slice
    assert (b.next_obs[:, :, 0] <= 19.5).all()


def test_invalid_steps_are_never_slice_starts():
    replay = _make(E * 30)
    ends = {(3, 0): "term", (8, 1): "trunc", (12, 2): "term"}
    _fill(replay, 20, ends=ends, valid_after_done=False)
    b = replay.sample(4000, 3, generator=torch.Generator().manual_seed(0))
    starts = set(zip(b.obs[:, 0].long().tolist(), b.obs[:, 1].long().tolist(), strict=True))
    assert not starts & {(4, 0), (9, 1), (13, 2)}
    assert len(starts) == 20 * E - 3


def test_invalid_steps_stop_mattering_once_overwritten():
    """The replay counts its invalid steps as rows are overwritten (and on load): once the
    circular buffer has replaced every invalid step, all stored steps are slice starts again."""
    replay = _make(E * 10)
    _fill(replay, 10, ends={(3, 0): "term"}, valid_after_done=False)  # (4, 0) is invalid
    starts = replay.sample(3000, 1, generator=torch.Generator().manual_seed(0)).obs[:, :2]
    assert len(set(map(tuple, starts.long().tolist()))) == 10 * E - 1
    restored = _make(E * 10)
    restored.load_state_dict(replay.state_dict())
    for r in (replay, restored):
        r.add(*(torch.zeros(E, *shape) for shape in ((3,), (1,))), torch.zeros(E, dtype=torch.long),
              torch.full((E,), 10.0), torch.zeros(E, dtype=torch.bool),
              torch.zeros(E, dtype=torch.bool), torch.zeros(E, 3), torch.zeros(E, 1))  # fmt: skip
    for r in (replay, restored):  # step 0 was overwritten; (4, 0) is still stored and invalid
        starts = r.sample(3000, 1, generator=torch.Generator().manual_seed(1)).obs[:, :2]
        assert [4.0, 0.0] not in starts.tolist()
    _fill(replay, 10, ends={})  # overwrites every step, all valid
    starts = replay.sample(3000, 1, generator=torch.Generator().manual_seed(2)).obs[:, :2]
    assert len(set(map(tuple, starts.long().tolist()))) == 10 * E


def test_state_dict_round_trip_gives_identical_samples():
    a, b = _make(E * 8), _make(E * 8)
    _fill(a, 11, ends={(2, 1): "term"})
    b.load_state_dict(a.state_dict())
    sa = a.sample(64, 3, generator=torch.Generator().manual_seed(3))
    sb = b.sample(64, 3, generator=torch.Generator().manual_seed(3))
    for name in ("obs", "mu", "action", "reward", "stop", "next_obs", "next_mu"):
        assert torch.equal(getattr(sa, name), getattr(sb, name)), name


def test_load_arrays_matches_add():
    N = 9
    obs = torch.arange(N * 3, dtype=torch.float32).view(N, 3)
    arrays = dict(
        obs=obs,
        mu=obs[:, :1],
        action=torch.arange(N),
        reward=torch.arange(N, dtype=torch.float32),
        terminal=torch.zeros(N, dtype=torch.bool),
        truncated=torch.arange(N) == 4,
        next_obs=obs + 1,
        next_mu=obs[:, :1] + 1,
    )
    bulk = Replay(N, 1, (3,), 1, (), action_dtype=torch.int64)
    bulk.load_arrays(**arrays)
    step = Replay(N, 1, (3,), 1, (), action_dtype=torch.int64)
    for i in range(N):
        step.add(
            *(
                arrays[k][i : i + 1]
                for k in (
                    "obs",
                    "mu",
                    "action",
                    "reward",
                    "terminal",
                    "truncated",
                    "next_obs",
                    "next_mu",
                )
            )
        )
    for name in Replay._FIELDS:
        assert torch.equal(getattr(bulk, name), getattr(step, name)), name
    assert (bulk.pos, bulk.size) == (step.pos, step.size)


def test_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        Replay(0, 1, (3,), 1)
    replay = _make(E * 4)
    with pytest.raises(ValueError, match="empty"):
        replay.sample(4, 1)
    with pytest.raises(ValueError, match=r"obs must have shape \(3, 3\)"):
        replay.add(
            torch.zeros(2, 3),
            *([torch.zeros(E, 1)] + [torch.zeros(E)] * 4),
            torch.zeros(E, 3),
            torch.zeros(E, 1),
        )
