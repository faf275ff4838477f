"""Planners on toy problems with known answers (BitFlip from hand-set states)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from qwr_fast.envs import EnvState, make
from qwr_fast.nn.actor_critic import ActorCritic
from qwr_fast.planners import (
    MCTS,
    BlueprintPlanner,
    Budget,
    MCTSConfig,
    PolicyFineTune,
    PolicyFineTuneConfig,
    SeatPolicy,
    Sparta,
    SpartaConfig,
    acceptance_test,
    finetune_policy,
    rollout_returns,
)


class FixedNet(nn.Module):
    """Constant logits ``[K]`` and value for every observation."""

    def __init__(self, logits, value: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("logits", torch.as_tensor(logits, dtype=torch.float32))
        self.v = value

    def forward(self, obs):
        B = obs.shape[0]
        return self.logits.expand(B, -1).clone(), torch.full((B,), self.v)


class CountingEnv:
    """Proxy of a vector env that counts env steps (``num_envs`` per ``step`` call)."""

    def __init__(self, env) -> None:
        self.env, self.steps = env, 0

    def step(self, actions):
        self.steps += self.env.num_envs
        return self.env.step(actions)

    def __getattr__(self, name):
        return getattr(self.env, name)


def bitflip(bits, num_envs: int, **kw):
    """A BitFlip env of ``num_envs`` envs and a 1-env root snapshot with the given bits."""
    env = make(f"BitFlip-{len(bits)}", num_envs, seed=0, **kw)
    real = make(f"BitFlip-{len(bits)}", 1, seed=1, **kw)
    real.reset()
    s = real.get_state(0)
    arrays = {**s.arrays, "bits": np.array([bits], dtype=np.uint8)}
    root = EnvState(s.config, arrays)
    real.set_state(root)
    return env, real, root


BANDIT = [1, 1, 0, 1]  # horizon-1 BitFlip: flipping bit 2 gives +1, any other bit -1
UNIFORM = [0.0, 0.0, 0.0, 0.0]


def test_budget_checks():
    with pytest.raises(ValueError, match="env_steps and/or seconds"):
        Budget()
    with pytest.raises(ValueError, match="env_steps"):
        Budget(env_steps=-1)
    with pytest.raises(TypeError, match="env_steps"):
        Budget(env_steps=1.5)
    with pytest.raises(ValueError, match="seconds"):
        Budget(seconds=-0.1)


def test_sparta_bandit_values_and_deviation():
    sim, real, root = bitflip(BANDIT, 8, horizon=1)
    bp = FixedNet(UNIFORM)  # greedy blueprint plays action 0 (value -1)
    res = Sparta(bp, sim, SpartaConfig(horizon=3, greedy=True)).plan(
        root, real.get_state().arrays["bits"][0].astype(np.float32), Budget(env_steps=48)
    )
    np.testing.assert_array_equal(res.action_values, [-1.0, -1.0, 1.0, -1.0])
    assert res.action == 2 and res.adopted
    np.testing.assert_array_equal(res.visit_counts, [res.visit_counts[0]] * 4)


@pytest.mark.parametrize("epsilon, deviates", [(1.5, True), (2.5, False)])
def test_sparta_deviates_only_when_better_by_epsilon(epsilon, deviates):
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    obs = np.array(BANDIT, dtype=np.float32)
    res = Sparta(FixedNet(UNIFORM), sim, SpartaConfig(epsilon=epsilon, greedy=True)).plan(
        root, obs, Budget(env_steps=1000)
    )
    assert res.adopted == deviates
    assert res.action == (2 if deviates else 0)


def test_sparta_legal_mask():
    sim, real, root = bitflip(BANDIT, 3, horizon=1)
    obs = np.array(BANDIT, dtype=np.float32)
    legal = np.array([True, True, False, True])
    res = Sparta(FixedNet(UNIFORM), sim, SpartaConfig(greedy=True)).plan(
        root, obs, Budget(env_steps=100), legal=legal
    )
    assert res.action != 2 and res.visit_counts[2] == 0 and np.isnan(res.action_values[2])
    with pytest.raises(ValueError, match="at least the number of legal actions"):
        Sparta(FixedNet(UNIFORM), sim).plan(root, obs, Budget(env_steps=100))


def test_sparta_round_robin_when_width_is_not_a_multiple():
    # 5 sim envs, 4 legal actions: 20 rollouts over 4 rounds give each action exactly 5.
    sim, real, root = bitflip(BANDIT, 5, horizon=1)
    obs = np.array(BANDIT, dtype=np.float32)
    res = Sparta(FixedNet(UNIFORM), sim, SpartaConfig(horizon=1, greedy=True)).plan(
        root, obs, Budget(env_steps=20)
    )
    np.testing.assert_array_equal(res.visit_counts, [5, 5, 5, 5])
    assert res.env_steps == 20 and res.action == 2


def test_mcts_finds_terminal_goal():
    # 5-step episodes that end when all bits are 1: flipping bit 2 ends at once with +1 (1.0);
    # any other first move is worth at most -1 + 0.99 + 0.99^2 < 1.
    sim, real, root = bitflip(BANDIT, 4, horizon=5, terminate_when_all_ones=True)
    obs = np.array(BANDIT, dtype=np.float32)
    res = MCTS(FixedNet(UNIFORM), sim).plan(root, obs, Budget(env_steps=200))
    assert res.action == 2
    assert res.action_values[2] == pytest.approx(1.0)
    assert res.visit_counts[2] == res.visit_counts.max()


# Golden tree from bits [0, 1, 1] (horizon 3, terminal when all ones, uniform prior, value 0,
# c=5, beta=0.1, 4 leaves per batch). First batch, by hand: the first path takes the top prior
# (action 0, ties to the lowest index), the next two the unvisited edges 1 and 2, the fourth
# action 0 again (deduplicated): N = [2, 1, 1], Q = [1, -1, -1]. After 6 batches (stored from
# this implementation): root N and the N of the children of actions 1 and 2 (action 0's child
# is terminal).
GOLDEN = {
    4: {"root": [2, 1, 1], "q": [1.0, -1.0, -1.0], 1: [0, 0, 0], 2: [0, 0, 0]},
    24: {"root": [12, 6, 6], "q": [1.0, -0.505, -0.505], 1: [2, 2, 1], 2: [2, 1, 2]},
}


@pytest.mark.parametrize("steps", sorted(GOLDEN))
def test_mcts_golden_tree(steps):
    sim, real, root = bitflip([0, 1, 1], 4, horizon=3, terminate_when_all_ones=True)
    mcts = MCTS(FixedNet([0.0, 0.0, 0.0]), sim, MCTSConfig(c=5.0, beta=0.1))
    res = mcts.plan(root, np.array([0, 1, 1], dtype=np.float32), Budget(env_steps=steps))
    gold = GOLDEN[steps]
    assert res.env_steps == steps
    assert int(res.visit_counts.sum()) == steps  # W paths per batch, one visit each at the root
    np.testing.assert_array_equal(res.visit_counts, gold["root"])
    np.testing.assert_allclose(res.action_values, gold["q"], rtol=1e-12)
    assert mcts.root.children[0].terminal and mcts.root.children[0].N.sum() == 0
    for a in (1, 2):
        np.testing.assert_array_equal(mcts.root.children[a].N, gold[a])
    if steps == 24:  # every edge below the root is expanded: rewards of bits 001 and 010
        np.testing.assert_array_equal(mcts.root.children[1].R, [1.0, 1.0, -1.0])
        np.testing.assert_array_equal(mcts.root.children[2].R, [1.0, -1.0, 1.0])
    assert res.action == 0


def _planners(sim, bp, horizon=2):
    return [
        Sparta(bp, sim, SpartaConfig(horizon=horizon)),
        MCTS(bp, sim),
        PolicyFineTune(
            bp, sim, PolicyFineTuneConfig(horizon=horizon, replan_every=1, num_minibatches=2)
        ),
    ]


@pytest.mark.parametrize("budget", [0, 7, 16, 50, 101])
def test_budgets_respected_exactly(budget):
    env, real, root = bitflip([0, 0, 1, 1], 4, horizon=4)
    torch.manual_seed(0)
    bp = ActorCritic((4,), 4, hidden=8)
    sim = CountingEnv(env)
    obs = np.array([0, 0, 1, 1], dtype=np.float32)
    for planner in _planners(sim, bp):
        sim.steps = 0
        res = planner.plan(root, obs, Budget(env_steps=budget))
        assert res.env_steps == sim.steps <= budget, type(planner).__name__
        assert 0 <= res.action < 4


def test_search_leaves_real_env_and_root_untouched():
    sim, real, root = bitflip([0, 0, 1, 1], 4, horizon=4)
    before = real.get_state()
    root_before = {k: v.copy() for k, v in root.arrays.items()}
    torch.manual_seed(0)
    bp = ActorCritic((4,), 4, hidden=8)
    obs = np.array([0, 0, 1, 1], dtype=np.float32)
    for planner in [*_planners(sim, bp), BlueprintPlanner(bp)]:
        planner.plan(root, obs, Budget(env_steps=40))
    after = real.get_state()
    for k in before.arrays:
        np.testing.assert_array_equal(before.arrays[k], after.arrays[k], err_msg=k)
        np.testing.assert_array_equal(root.arrays[k], root_before[k], err_msg=k)


def test_acceptance_test_adopts_only_when_better():
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    good, bad = FixedNet([0.0, 0.0, 5.0, 0.0]), FixedNet([5.0, 0.0, 0.0, 0.0])
    kw = dict(rounds=2, horizon=3, gamma=0.99, greedy=True)
    worse = acceptance_test(sim, root, bad, good, epsilon=0.0, **kw)
    assert not worse.adopted
    assert (worse.candidate_mean, worse.blueprint_mean) == (-1.0, 1.0)
    assert acceptance_test(sim, root, good, bad, epsilon=0.0, **kw).adopted
    assert acceptance_test(sim, root, good, bad, epsilon=1.99, **kw).adopted
    assert not acceptance_test(sim, root, good, bad, epsilon=2.01, **kw).adopted
    assert not acceptance_test(sim, root, good, good, epsilon=0.01, **kw).adopted
    tie = acceptance_test(sim, root, good, good, epsilon=0.0, **kw)  # no better: not adopted
    assert not tie.adopted and tie.candidate_mean == tie.blueprint_mean


def test_policy_finetuning_learns_the_bandit():
    sim, real, root = bitflip(BANDIT, 16, horizon=1)
    torch.manual_seed(0)
    bp = ActorCritic((4,), 4, hidden=16)
    obs = torch.tensor([BANDIT], dtype=torch.float32)
    p0 = torch.softmax(bp(obs)[0], -1)[0, 2].item()
    cfg = PolicyFineTuneConfig(horizon=1, lr=3e-3, num_minibatches=2, ent_coef=0.0)
    gen = torch.Generator().manual_seed(0)
    net, used, grads = finetune_policy(
        bp, sim, root, cfg, Budget(env_steps=16 * 40), t0=0.0, generator=gen
    )
    p1 = torch.softmax(net(obs)[0], -1)[0, 2].item()
    assert used == 640 and grads == 40 * cfg.epochs * cfg.num_minibatches
    assert p0 < 0.4 and p1 > 0.9, (p0, p1)
    assert torch.softmax(bp(obs)[0], -1)[0, 2].item() == p0  # the blueprint is not modified
    # sampled play: the fine-tuned policy (p1) beats the blueprint's (p0) and is adopted
    planner = PolicyFineTune(bp, sim, cfg)
    res = planner.plan(root, obs[0].numpy(), Budget(env_steps=16 * 42), generator=gen)
    assert res.adopted and res.action == 2
    # greedy play: the blueprint's argmax is arm 2 already (0.2966 vs 0.2960), so the
    # fine-tuned policy plays the same moves: a tie, not adopted
    planner = PolicyFineTune(bp, sim, PolicyFineTuneConfig(**{**cfg.__dict__, "greedy": True}))
    res = planner.plan(root, obs[0].numpy(), Budget(env_steps=16 * 42), generator=gen)
    assert not res.adopted and res.action == 2


def test_policy_finetuning_amortises_over_replan_every():
    sim, real, root = bitflip([0, 0, 1, 1], 4, horizon=4)
    torch.manual_seed(0)
    bp = ActorCritic((4,), 4, hidden=8)
    planner = PolicyFineTune(
        bp, sim, PolicyFineTuneConfig(horizon=2, replan_every=3, num_minibatches=2)
    )
    obs = np.array([0, 0, 1, 1], dtype=np.float32)
    steps = [planner.plan(root, obs, Budget(env_steps=40)).env_steps for _ in range(4)]
    assert steps[0] > 0 and steps[1] == steps[2] == 0 and steps[3] > 0
    planner.reset()
    assert planner.plan(root, obs, Budget(env_steps=40)).env_steps > 0


def test_root_checks():
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    obs = np.array(BANDIT, dtype=np.float32)
    planner = Sparta(FixedNet(UNIFORM), sim)
    with pytest.raises(TypeError, match="root"):
        planner.plan(root.arrays, obs, Budget(env_steps=10))
    with pytest.raises(ValueError, match="1 env .* or sim.num_envs = 4"):
        planner.plan(sim.get_state([0, 1]), obs, Budget(env_steps=10))
    other = make("BitFlip-4", 1, seed=0, horizon=2).get_state(0)
    with pytest.raises(ValueError, match="taken from"):
        planner.plan(other, obs, Budget(env_steps=10))


def test_zero_seconds_budget_does_no_work():
    env, real, root = bitflip([0, 0, 1, 1], 4, horizon=4)
    sim = CountingEnv(env)
    torch.manual_seed(0)
    bp = ActorCritic((4,), 4, hidden=8)
    obs = np.array([0, 0, 1, 1], dtype=np.float32)
    for planner in _planners(sim, bp):
        res = planner.plan(root, obs, Budget(seconds=0.0))
        assert res.env_steps == sim.steps == 0 and res.grad_steps == 0
        assert not res.adopted and 0 <= res.action < 4


def test_rollouts_from_one_belief_sample_per_env():
    # A root of W envs (one sample each) starts rollout w from sample w: flipping bit 0 gains
    # +1 where that sample's bit 0 is 0 and -1 where it is 1.
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    samples = [[0, 1, 1, 1], [1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0]]
    arrays = {**sim.get_state().arrays, "bits": np.array(samples, dtype=np.uint8)}
    beliefs = EnvState(root.config, arrays)
    ret, steps = rollout_returns(
        sim,
        beliefs,
        FixedNet(UNIFORM),
        horizon=1,
        gamma=0.9,
        bootstrap=None,
        first_actions=np.zeros(4, dtype=np.int64),
        reseed=123,
    )
    np.testing.assert_array_equal(ret, [1.0, -1.0, 1.0, -1.0])
    assert steps == 4


class SeatNet(nn.Module):
    """Logits = a learnable bias [K] for every row; value = a learnable scalar."""

    def __init__(self, bias) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.as_tensor(bias, dtype=torch.float32))
        self.v = nn.Parameter(torch.zeros(()))

    def forward(self, obs):
        B = obs.shape[0]
        return self.bias.expand(B, -1), self.v.expand(B)


def test_seat_policy_plays_its_seat_only_and_trains_only_the_copy():
    bp = SeatNet([0.0, 0.0, 5.0])
    net = SeatNet([1.0, 2.0, 3.0])
    # obs = [feature, seat0, seat1]; rows 0 and 2 are seat 1's turns.
    obs = torch.tensor([[0.5, 0.0, 1.0], [0.1, 1.0, 0.0], [0.2, 0.0, 1.0]])
    pol = SeatPolicy(net, bp, slice(1, 3), seat=1)
    logits, value = pol(obs)
    torch.testing.assert_close(logits[[0, 2]], net.bias.expand(2, -1))
    torch.testing.assert_close(logits[1], bp.bias)
    logits.sum().backward()
    assert bp.bias.grad is None and net.bias.grad is not None
    assert [n for n, _ in pol.named_parameters()] == ["net.bias", "net.v"]
    twin = copy.deepcopy(pol)
    assert twin._blueprint[0] is bp and twin.net is not net


def test_sparta_z_margin_needs_evidence():
    # One rollout per action leaves the standard errors unknown: with z > 0 SPARTA keeps the
    # blueprint's action; with more rollouts of a deterministic bandit (zero variance) the
    # margin is epsilon alone and it deviates.
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    obs = np.array(BANDIT, dtype=np.float32)
    cfg = SpartaConfig(horizon=1, epsilon=0.0, greedy=True, z=2.0)
    one = Sparta(FixedNet(UNIFORM), sim, cfg).plan(root, obs, Budget(env_steps=4))
    assert not one.adopted and one.action == 0
    many = Sparta(FixedNet(UNIFORM), sim, cfg).plan(root, obs, Budget(env_steps=16))
    assert many.adopted and many.action == 2
    with pytest.raises(ValueError, match="z must be >= 0"):
        SpartaConfig(z=-1.0)


def test_acceptance_z_margin():
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    good, bad = FixedNet([0.0, 0.0, 5.0, 0.0]), FixedNet([5.0, 0.0, 0.0, 0.0])
    kw = dict(rounds=2, horizon=3, gamma=0.99, greedy=True, epsilon=0.0)
    # deterministic returns: zero standard error, so any z keeps the decision
    res = acceptance_test(sim, root, good, bad, z=3.0, **kw)
    assert res.adopted and res.difference_sem == 0.0
    # sampled play: noisy returns, so a large z refuses what z = 0 adopts
    kw = {**kw, "greedy": False}
    noisy = FixedNet([0.0, 0.0, 2.0, 0.0])
    gen = torch.Generator().manual_seed(0)
    res = acceptance_test(sim, root, noisy, bad, z=0.0, generator=gen, **kw)
    assert res.adopted and res.candidate_sem > 0
    gen = torch.Generator().manual_seed(0)
    assert not acceptance_test(sim, root, noisy, bad, z=1e6, generator=gen, **kw).adopted


def test_sparta_on_belief_samples_compares_actions_on_the_same_worlds():
    # Root = 4 belief samples; round r rolls every action out on sample r, so after 4 rounds
    # q[a] is the mean over the 4 worlds of flipping bit a: +1 where it is 0, -1 where it is 1.
    sim, real, root = bitflip(BANDIT, 4, horizon=1)
    samples = np.array([[0, 1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 1], [1, 0, 0, 1]], dtype=np.uint8)
    beliefs = EnvState(root.config, {**sim.get_state().arrays, "bits": samples})
    obs = np.array(BANDIT, dtype=np.float32)

    def plan(z):
        cfg = SpartaConfig(horizon=1, epsilon=0.0, greedy=True, z=z)
        return Sparta(FixedNet(UNIFORM), sim, cfg).plan(beliefs, obs, Budget(env_steps=16))

    res = plan(0.0)
    np.testing.assert_allclose(res.action_values, [0.0, 0.0, 1.0, -1.0])
    np.testing.assert_array_equal(res.visit_counts, [4, 4, 4, 4])
    assert res.env_steps == 16 and res.adopted and res.action == 2
    # paired differences bit 2 - bit 0 (the blueprint's argmax) per world: 0, 2, 0, 2: mean 1,
    # standard error 0.577, so z = 2 asks for 1.15 and keeps the blueprint's action.
    res = plan(2.0)
    assert not res.adopted and res.action == 0
    # unpaired: rollout w always starts from sample w, so action a is only seen on sample a
    cfg = SpartaConfig(horizon=1, greedy=True, paired=False)
    res = Sparta(FixedNet(UNIFORM), sim, cfg).plan(beliefs, obs, Budget(env_steps=16))
    np.testing.assert_allclose(res.action_values, [1.0, -1.0, 1.0, -1.0])


def test_policy_finetuning_beats_a_weak_blueprint_on_a_deterministic_task():
    """BitFlip-8 from a fixed state with three 0 bits (5 moves: the best return is 3): an
    untrained blueprint scores 1 or less played greedily. Policy fine-tuning with its default
    PPO settings, searching every move, must find the optimum, and adopts only what is better
    (deterministic rollouts: the paired difference is exact)."""
    bits = [0, 1, 0, 1, 1, 0, 1, 1]
    torch.manual_seed(1)
    bp = ActorCritic((8,), 8, hidden=16)
    cfg = PolicyFineTuneConfig(horizon=5, replan_every=1, greedy=True)
    returns, adopted = {}, []
    for name in ("blueprint", "policy-ft"):
        sim, real, root = bitflip(bits, 16, horizon=5)
        planner = BlueprintPlanner(bp, greedy=True) if name == "blueprint" else None
        planner = planner or PolicyFineTune(bp, sim, cfg)
        obs, gen, total = np.array(bits, dtype=np.float32), torch.Generator().manual_seed(0), 0.0
        for _ in range(5):
            res = planner.plan(real.get_state(0), obs, Budget(env_steps=960), generator=gen)
            adopted.append(res.adopted)
            nxt, r, _, _, _ = real.step(np.array([res.action]))
            obs, total = nxt[0], total + float(r[0])
        returns[name] = total
    assert returns["blueprint"] <= 1.0 and returns["policy-ft"] == 3.0, returns
    assert not any(adopted[:5]) and any(adopted[5:])  # the blueprint planner adopts nothing
