"""Proportional prioritised replay: sum tree, sampling law, importance weights, priorities,
state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from qwr_fast.data.prioritized_replay import PrioritizedReplay, SumTree, annealed_beta


def make_replay(capacity=12, num_envs=3, alpha=0.6, steps=None, valid=None):
    rep = PrioritizedReplay(capacity, num_envs, (2,), 1, alpha=alpha, eps=1e-3)
    E = num_envs
    for t in range(rep.length if steps is None else steps):
        z = torch.zeros(E, 1)
        obs = torch.full((E, 2), float(t))
        obs[:, 1] = torch.arange(E, dtype=torch.float32)  # (step, env) readable from obs
        v = None if valid is None else valid[t]
        rep.add(obs, z, torch.zeros(E), torch.zeros(E), torch.zeros(E, dtype=torch.bool),
                torch.zeros(E, dtype=torch.bool), obs, z, valid=v)  # fmt: skip
    return rep


@pytest.mark.parametrize("size", [1, 2, 5, 16, 37])
def test_sum_tree_matches_prefix_sums(size):
    rng = np.random.default_rng(size)
    tree = SumTree(size)
    values = rng.random(size) * (rng.random(size) < 0.7)  # some zero leaves
    values[rng.integers(size)] = 0.5
    tree.set(np.arange(size), values)
    tree.set(np.array([0, 0]), np.array([0.25, values[0]]))  # repeated index: last one wins
    np.testing.assert_allclose(tree.total, values.sum())
    cum = np.cumsum(values)
    mass = np.concatenate([rng.random(200) * cum[-1], [0.0, cum[-1], cum[-1] * (1 + 1e-12)]])
    found = tree.find(mass)
    want = np.minimum(np.searchsorted(cum, mass, side="right"), size - 1)
    want = np.where(values[want] > 0, want, np.flatnonzero(values)[-1])  # mass >= total
    np.testing.assert_array_equal(found, want)
    assert (values[found] > 0).all()


def test_sum_tree_rejects_bad_input():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="all zero"):
        tree.find(np.array([0.0]))
    with pytest.raises(ValueError, match="index"):
        tree.set(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="value"):
        tree.set(np.array([1]), np.array([-1.0]))
    with pytest.raises(ValueError, match="size"):
        SumTree(0)


def slot_of(rep, batch):
    """The slot (row * E + e) of each sampled start step, read back from its observation."""
    row = batch.obs[:, 0].long() % rep.length
    return (row * rep.num_envs + batch.obs[:, 1].long()).numpy()


@pytest.mark.parametrize("alpha", [0.6, 1.0])
def test_sampling_frequencies_follow_priorities_to_the_alpha(alpha):
    rep = make_replay(alpha=alpha)
    n = rep.length * rep.num_envs
    td = torch.linspace(0.0, 3.0, n)
    rep.update_priorities(torch.arange(n), td)
    want = (td.double().numpy() + 1e-3) ** alpha
    want /= want.sum()
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(n)
    for _ in range(100):
        pb = rep.sample_prioritized(64, beta=0.5, generator=gen)
        np.testing.assert_array_equal(pb.index.numpy(), slot_of(rep, pb.batch))
        counts += np.bincount(pb.index.numpy(), minlength=n)
    assert stats.chisquare(counts, want * counts.sum()).pvalue > 1e-4
    # the same counts are far from the law of a sampler with the wrong exponent
    wrong = (td.double().numpy() + 1e-3) ** (alpha / 2)
    assert stats.chisquare(counts, wrong / wrong.sum() * counts.sum()).pvalue < 1e-6


def test_importance_weights_against_a_hand_computation():
    rep = make_replay(capacity=4, num_envs=1, alpha=0.5)
    rep.update_priorities(torch.arange(4), torch.tensor([0.999, 3.999, 8.999, 15.999]))
    # p = |td| + 1e-3 = 1, 4, 9, 16; p^0.5 = 1, 2, 3, 4; P = 0.1, 0.2, 0.3, 0.4
    pb = rep.sample_prioritized(4, beta=0.5, generator=torch.Generator().manual_seed(1))
    probs = np.array([0.1, 0.2, 0.3, 0.4])[pb.index.numpy()]
    n = 4
    w = (n * probs) ** -0.5
    np.testing.assert_allclose(pb.weight.numpy(), w / w.max(), rtol=1e-6)
    assert pb.weight.dtype == torch.float32 and float(pb.weight.max()) == 1.0
    # stratified sampling: the last of the 4 strata, [.75, 1) of the mass, lies in slot 3's
    assert pb.index[-1] == 3  # [.6, 1)


def test_new_steps_enter_at_max_priority_and_invalid_steps_never_come_back():
    valid = [torch.tensor([True, False, True])] * 4
    rep = make_replay(capacity=12, num_envs=3, alpha=1.0, steps=2, valid=valid)
    leaves = rep.tree.leaves
    np.testing.assert_array_equal(leaves[:6], [1, 0, 1, 1, 0, 1])
    rep.update_priorities(torch.tensor([0, 3]), torch.tensor([4.999, 0.5]))
    assert rep.max_priority == pytest.approx(5.0)
    np.testing.assert_allclose(rep.tree.leaves[[0, 3]], [5.0, 0.501])
    obs = torch.full((3, 2), 2.0)
    obs[:, 1] = torch.arange(3.0)
    z = torch.zeros(3, 1)
    f = torch.zeros(3, dtype=torch.bool)
    rep.add(obs, z, torch.zeros(3), torch.zeros(3), f, f, obs, z, valid=valid[2])
    np.testing.assert_allclose(rep.tree.leaves[6:9], [5.0, 0.0, 5.0])
    pb = rep.sample_prioritized(300, beta=1.0, generator=torch.Generator().manual_seed(2))
    assert not np.isin(pb.index.numpy(), [1, 4, 7]).any()
    with pytest.raises(ValueError, match="td_abs"):
        rep.update_priorities(torch.tensor([0, 3]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="beta"):
        rep.sample_prioritized(4, beta=1.5)


def test_wraparound_slices_start_at_the_sampled_step():
    rep = make_replay(capacity=4, num_envs=2, steps=7)  # 2 rows: steps 5 and 6 are kept
    gen = torch.Generator().manual_seed(3)
    pb = rep.sample_prioritized(32, margin=2, beta=0.4, generator=gen)
    np.testing.assert_array_equal(pb.index.numpy(), slot_of(rep, pb.batch))
    # the newest step's slice is cut at its first step
    newest = pb.batch.obs[:, 0] == 6
    assert bool(pb.batch.stop[newest, 0].all()) and bool((~pb.batch.stop[~newest, 0]).all())


def test_state_dict_round_trip_draws_the_same_batches():
    rep = make_replay()
    rep.update_priorities(torch.arange(5), torch.arange(5.0))
    other = PrioritizedReplay(12, 3, (2,), 1, alpha=0.6, eps=1e-3)
    other.load_state_dict(rep.state_dict())
    a = rep.sample_prioritized(16, beta=0.7, generator=torch.Generator().manual_seed(4))
    b = other.sample_prioritized(16, beta=0.7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.index, b.index) and torch.equal(a.weight, b.weight)
    assert other.max_priority == rep.max_priority
    with pytest.raises(ValueError, match="priorities"):
        other.load_state_dict({k: v for k, v in rep.state_dict().items() if k != "priorities"})


def test_annealed_beta():
    assert annealed_beta(0.4, 0, 100) == pytest.approx(0.4)
    assert annealed_beta(0.4, 50, 100) == pytest.approx(0.7)
    assert annealed_beta(0.4, 500, 100) == 1.0
