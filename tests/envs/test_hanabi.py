"""Hanabi vector env and belief sampling (``qwr_fast.envs.hanabi``)."""

from __future__ import annotations

import itertools
import sys
from collections import Counter

import numpy as np
import pytest

from qwr_fast import envs
from tests.envs.loop_contract import assert_same, check_seeding, n_episode_ends, rollout

pyspiel = pytest.importorskip(
    "pyspiel", reason="Hanabi suite needs the extra: pip install qwr_fast[hanabi]"
)
from qwr_fast.envs.hanabi import (  # noqa: E402
    belief_distribution,
    hidden_cards,
    legal_mask,
    sample_beliefs,
)

TINY = dict(colors=2, ranks=2, hand_size=2, max_information_tokens=3, max_life_tokens=1)


def random_legal(obs: np.ndarray, env, rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.choice(np.flatnonzero(m)) for m in legal_mask(obs, env)])


def play_until_hinted(game, rng: np.random.Generator, n_moves: int, hint_prob: float = 0.6):
    """A raw pyspiel state after up to ``n_moves`` random moves that favour hints (so the hands
    carry card knowledge); stops early rather than reach the end of the game."""
    state = game.new_initial_state()
    hand_size = game.get_parameters()["hand_size"]
    for _ in range(n_moves):
        while state.is_chance_node():
            outcomes, probs = zip(*state.chance_outcomes(), strict=True)
            state.apply_action(int(rng.choice(outcomes, p=probs)))
        legal = state.legal_actions()
        hints = [a for a in legal if a >= 2 * hand_size]
        nxt = state.clone()
        nxt.apply_action(int(rng.choice(hints if hints and rng.random() < hint_prob else legal)))
        while nxt.is_chance_node():
            outcomes, probs = zip(*nxt.chance_outcomes(), strict=True)
            nxt.apply_action(int(rng.choice(outcomes, p=probs)))
        if nxt.is_terminal():
            break
        state = nxt
    return state


def observations_along(game, actions: list[int], players) -> list | None:
    """Each of ``players``' observation strings after every prefix of ``actions`` (chance ones
    included); None if the history is illegal."""
    state = game.new_initial_state()
    out = []
    for a in actions:
        if not state.is_chance_node() and a not in state.legal_actions():
            return None
        try:
            state.apply_action(a)
        except pyspiel.SpielError:
            return None
        out.append(tuple(state.observation_string(p) for p in players))
    return out


def mask_hands(observation: str) -> str:
    return "\n".join(
        "XX" + line[line.index(" || ") :] if " || " in line else line
        for line in observation.split("\n")
    )


# -- the env ----------------------------------------------------------------------------------
def test_ids_spaces_and_parameters():
    ids = ["Hanabi-Full", "Hanabi-Hard", "Hanabi-Small", "Hanabi-VerySmall"]
    assert set(ids) <= set(envs.list_envs())
    expected = {
        "Hanabi-Full": (5, 5, 5, 8, 3),
        "Hanabi-Hard": (5, 5, 5, 2, 3),
        "Hanabi-Small": (2, 5, 2, 3, 1),
        "Hanabi-VerySmall": (1, 5, 2, 3, 1),
    }
    names = ("colors", "ranks", "hand_size", "max_information_tokens", "max_life_tokens")
    for env_id, values in expected.items():
        env = envs.make(env_id, 2, seed=0)
        params = env.game.get_parameters()
        assert tuple(params[k] for k in names) == values and params["players"] == 2
        d, a = env.game.observation_tensor_size(), env.game.num_distinct_actions()
        assert env.single_observation_space.shape == (d + 2 + a,)
        assert env.single_action_space.n == a and env.action_space.shape == (2,)
        assert env.seat_slice == slice(d, d + 2) and env.action_mask_slice == slice(
            d + 2, d + 2 + a
        )
        obs, _ = env.reset()
        assert obs.dtype == np.float32 and obs in env.observation_space
    env = envs.make("Hanabi-Small", colors=3, max_life_tokens=2)
    assert env.game.get_parameters()["colors"] == 3
    assert env.game.get_parameters()["max_life_tokens"] == 2
    with pytest.raises(ValueError, match="players must be 2"):
        envs.make("Hanabi-Full", players=3)
    with pytest.raises(ValueError, match=r"colors must be an int \[1, 5\], got 6"):
        envs.make("Hanabi-Full", colors=6)
    with pytest.raises(ValueError, match="hand_size=5 too large"):
        envs.make("Hanabi-VerySmall", hand_size=5, ranks=2)
    with pytest.raises(ValueError, match="unknown env id 'Hanabi-Huge'"):
        envs.make("Hanabi-Huge")


def test_observation_reward_and_mask_match_pyspiel():
    """Every row is the mover's observation tensor, seat and legal mask; every reward is the raw
    pyspiel reward of the same move; episode statistics sum the rewards."""
    env = envs.make("Hanabi-Small", 3, seed=4)
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    d = env.obs_dim
    returns, lengths, ends = np.zeros(3), np.zeros(3, dtype=int), 0
    for _ in range(150):
        expected_r = []
        for i in range(3):
            state = env.game_state(i)
            p = state.current_player()
            np.testing.assert_array_equal(obs[i, :d], np.float32(state.observation_tensor(p)))
            np.testing.assert_array_equal(obs[i, env.seat_slice], np.eye(2)[p])
            assert legal_mask(obs, env)[i].tolist() == [bool(x) for x in state.legal_actions_mask()]
        actions = random_legal(obs, env, rng)
        for i in range(3):
            state = env.game_state(i)
            state.apply_action(int(actions[i]))
            expected_r.append(state.rewards()[0])
        obs, reward, terminated, truncated, infos = env.step(actions)
        np.testing.assert_array_equal(reward, np.float32(expected_r))
        assert not truncated.any()
        returns += reward
        lengths += 1
        if terminated.any():
            ends += int(terminated.sum())
            np.testing.assert_array_equal(infos["_episode_stats"], terminated)
            np.testing.assert_allclose(infos["episode_stats"]["r"][terminated], returns[terminated])
            np.testing.assert_array_equal(
                infos["episode_stats"]["l"][terminated], lengths[terminated]
            )
            np.testing.assert_array_equal(infos["final_obs"][~terminated], obs[~terminated])
            final = infos["final_obs"][terminated]
            assert not legal_mask(final, env).any(), "no legal move at the end of a game"
            assert (legal_mask(obs[terminated], env).sum(axis=1) > 0).all(), "reset rows"
            assert (infos["episode_stats"]["r"][terminated] >= 0).all()
            assert (infos["episode_stats"]["r"][terminated] <= 10).all()
            returns[terminated] = 0
            lengths[terminated] = 0
    assert ends >= 3, "random play with one life ends several games in 150 moves"


def test_illegal_action_raises_before_any_env_moves():
    env = envs.make("Hanabi-Full", 2, seed=0)
    obs, _ = env.reset()
    before = [env.game_state(i).history() for i in range(2)]
    illegal = int(np.flatnonzero(~legal_mask(obs, env)[1])[0])
    legal = int(np.flatnonzero(legal_mask(obs, env)[0])[0])
    with pytest.raises(ValueError, match=rf"actions\[1\] = {illegal} is illegal in env 1"):
        env.step(np.array([legal, illegal]))
    assert [env.game_state(i).history() for i in range(2)] == before
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(np.array([legal, 99]))


def test_seeding():
    def trajectory(env, **kw):
        obs = [env.reset(**kw)[0]]
        rng = np.random.default_rng(0)
        for _ in range(10):
            obs.append(env.step(random_legal(obs[-1], env, rng))[0])
        return np.stack(obs)

    a = trajectory(envs.make("Hanabi-Small", 3, seed=11))
    np.testing.assert_array_equal(a, trajectory(envs.make("Hanabi-Small", 3), seed=11))
    assert not np.array_equal(a, trajectory(envs.make("Hanabi-Small", 3, seed=12)))
    check_seeding(lambda seed: envs.make("Hanabi-Small", 3, seed=seed), n_steps=0)


def recorded_actions(env, rng, n_steps: int) -> tuple[object, list[np.ndarray]]:
    """Legal actions for ``n_steps`` from the env's current state (stepping a clone of it)."""
    state = env.get_state()
    sim = envs.make(env.env_id, env.num_envs, **{k: v for k, v in env.params.items()})
    obs = sim.set_state(state)
    actions = []
    for _ in range(n_steps):
        a = random_legal(obs, sim, rng)
        actions.append(a)
        obs = sim.step(a)[0]
    return state, actions


def test_snapshot_replay_is_bit_identical():
    env = envs.make("Hanabi-VerySmall", 3, seed=1)
    obs = env.reset()[0]
    rng = np.random.default_rng(0)
    for _ in range(4):
        obs = env.step(random_legal(obs, env, rng))[0]
    state, actions = recorded_actions(env, rng, 60)
    first = rollout(env, actions)
    assert n_episode_ends(first) >= 3, "the window was chosen to include episode ends"
    for a in recorded_actions(env, rng, 3)[1]:
        env.step(a)
    np.testing.assert_array_equal(env.set_state(state), obs)
    assert_same(first, rollout(env, actions))
    env.set_state(state)
    assert_same(first, rollout(env, actions))


def test_clone_states():
    env = envs.make("Hanabi-Small", 4, seed=2)
    obs = env.reset()[0]
    rng = np.random.default_rng(1)
    obs = env.step(random_legal(obs, env, rng))[0]
    others = env.get_state([0])
    obs = env.clone_states(1)
    assert (obs == obs[:1]).all()
    for _ in range(40):
        a = np.repeat(random_legal(obs[:1], env, rng), 4)
        obs, reward, terminated, _, _ = env.step(a)
        assert (obs == obs[:1]).all() and (reward == reward[0]).all()
        assert (terminated == terminated[0]).all()
    env.set_state(others, [2])
    np.testing.assert_array_equal(env.get_state([2]).arrays["obs"], others.arrays["obs"])


def test_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspiel", None)
    with pytest.raises(ImportError, match=r"pip install qwr_fast\[hanabi\]"):
        envs.make("Hanabi-Small")


# -- belief sampling --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "n_moves"),
    [
        ("Small", dict(colors=2, ranks=5, hand_size=2, max_information_tokens=3,
                       max_life_tokens=1), 12),
        ("Full", dict(colors=5, ranks=5, hand_size=5, max_information_tokens=8,
                      max_life_tokens=3), 30),
    ],
)  # fmt: skip
def test_every_belief_sample_is_consistent(name, params, n_moves):
    """Each sample replays legally, shows the observer exactly what the real game showed at
    every step of the history (perfect recall), keeps the other hand, and re-deals the own hand
    within its hint knowledge."""
    game = pyspiel.load_game("hanabi", {"players": 2, **params})
    rng = np.random.default_rng(7)
    moved = False
    for _ in range(3):
        state = play_until_hinted(game, rng, n_moves)
        for player in (0, 1):
            real = observations_along(game, state.history(), [player])
            samples = sample_beliefs(state, player, 12, rng)
            redealt = 0
            for sample in samples:
                assert observations_along(game, sample.history(), [player]) == real
                assert hidden_cards(sample, 1 - player) == hidden_cards(state, 1 - player)
                if player == state.current_player():  # the mover's moves do not depend on
                    assert sample.legal_actions() == state.legal_actions()  # its own cards
                redealt += hidden_cards(sample, player) != hidden_cards(state, player)
            moved |= redealt > 0
    assert moved, "some sample re-deals the hidden hand"


def hinted_tiny_states(n: int, seed: int) -> list:
    """Tiny-game states (2 colours x 2 ranks, hand 2) after a few moves, at least one a hint."""
    game = pyspiel.load_game("hanabi", {"players": 2, **TINY})
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        state = play_until_hinted(game, rng, int(rng.integers(1, 5)), hint_prob=0.8)
        if any(a >= 4 for a in state.history()[4:]):
            out.append(state)
    return out


def brute_force(state, player: int, public: bool) -> dict[tuple, float]:
    """The posterior of the hidden cards by rejection over every distinct deck order: replay the
    moves with the deck dealt in that order, keep the orders under which the observer saw what
    it saw at every step (public: both players' views with the hands masked)."""
    game = state.get_game()
    params = game.get_parameters()
    ranks = params["ranks"]
    deck = [c * ranks + r for c in range(params["colors"]) for r in range(ranks)
            for _ in range(3 if r == 0 else 1 if r == ranks - 1 else 2)]  # fmt: skip
    history = state.full_history()
    chance = [k for k, pa in enumerate(history) if pa.player < 0]
    actions = [pa.action for pa in history]
    players = (0, 1) if public else (player,)
    view = mask_hands if public else (lambda s: s)
    want = [tuple(view(o) for o in obs) for obs in observations_along(game, actions, players)]
    counts: Counter = Counter()
    for order in set(itertools.permutations(deck)):
        trial = list(actions)
        for k, card in zip(chance, order, strict=False):
            trial[k] = card
        seen = observations_along(game, trial, players)
        if seen is None or [tuple(view(o) for o in obs) for obs in seen] != want:
            continue
        replayed = game.new_initial_state()
        for a in trial:
            replayed.apply_action(a)
        counts[hidden_cards(replayed, player, public=public)] += 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


@pytest.mark.parametrize("public", [False, True])
def test_belief_distribution_matches_brute_force(public):
    for state in hinted_tiny_states(3, seed=1 + public):
        player = state.current_player()
        exact = belief_distribution(state, player, public=public)
        brute = brute_force(state, player, public)
        assert exact.keys() == brute.keys()
        for key, p in exact.items():
            assert p == pytest.approx(brute[key], rel=1e-12), key
        assert hidden_cards(state, player, public=public) in exact


@pytest.mark.parametrize("public", [False, True])
def test_sample_frequencies_match_belief_distribution(public):
    from scipy.stats import chisquare

    # The hinted state whose belief has the most outcomes, and unequal ones.
    chosen = None
    for state in hinted_tiny_states(40, seed=5):
        dist = belief_distribution(state, state.current_player(), public=public)
        if min(dist.values()) < max(dist.values()) and len(dist) > len((chosen or (0, {}))[1]):
            chosen = state, dist
    assert chosen is not None, "the seed yields a hinted state with a non-uniform belief"
    state, dist = chosen
    n = 4000
    samples = sample_beliefs(state, state.current_player(), n, np.random.default_rng(0),
                             public=public)  # fmt: skip
    counts = Counter(hidden_cards(s, state.current_player(), public=public) for s in samples)
    assert set(counts) <= set(dist)
    keys = sorted(dist)
    observed = np.array([counts[k] for k in keys], dtype=np.float64)
    expected = np.array([dist[k] for k in keys]) * n
    assert chisquare(observed, expected).pvalue > 1e-3


def test_enumeration_fallback_is_exact(monkeypatch):
    """With rejection disabled every draw comes from exact enumeration: same distribution."""
    from scipy.stats import chisquare

    from qwr_fast.envs import hanabi

    monkeypatch.setattr(hanabi, "_REJECTION_TRIES", 0)
    state = hinted_tiny_states(1, seed=9)[0]
    player = state.current_player()
    dist = belief_distribution(state, player)
    samples = sample_beliefs(state, player, 2000, np.random.default_rng(1))
    counts = Counter(hidden_cards(s, player) for s in samples)
    keys = sorted(dist)
    observed = np.array([counts[k] for k in keys], dtype=np.float64)
    if len(keys) > 1:
        assert chisquare(observed, np.array([dist[k] for k in keys]) * 2000).pvalue > 1e-3
    else:
        assert observed.sum() == 2000


def test_public_beliefs_redeal_both_hands():
    small = dict(colors=2, ranks=5, hand_size=2, max_information_tokens=3, max_life_tokens=1)
    game = pyspiel.load_game("hanabi", {"players": 2, **small})
    state = play_until_hinted(game, np.random.default_rng(3), 8)
    player = state.current_player()
    samples = sample_beliefs(state, player, 50, np.random.default_rng(4), public=True)
    want = [mask_hands(state.observation_string(p)) for p in (0, 1)]
    changed = [0, 0]
    for sample in samples:
        assert [mask_hands(sample.observation_string(p)) for p in (0, 1)] == want
        for p in (0, 1):
            changed[p] += hidden_cards(sample, p) != hidden_cards(state, p)
    assert changed[0] > 0 and changed[1] > 0


def test_belief_states_load_into_a_sim_env():
    env = envs.make("Hanabi-Full", 2, seed=3)
    obs = env.reset()[0]
    rng = np.random.default_rng(0)
    for _ in range(12):
        obs = env.step(random_legal(obs, env, rng))[0]
    real = env.get_state()
    beliefs = env.belief_states(1, 6, np.random.default_rng(5))
    assert beliefs.num_envs == 6 and beliefs.config == env.config
    sim = envs.make("Hanabi-Full", 6)
    sim_obs = sim.set_state(beliefs)
    np.testing.assert_array_equal(sim_obs, np.repeat(obs[1:2], 6, axis=0))
    np.testing.assert_array_equal(beliefs.arrays["t"], np.full(6, env.get_state().arrays["t"][1]))
    rng_states = [g[1]["state"]["state"] for g in beliefs.arrays["game"]]
    assert len(set(rng_states)) == 6, "every sample has its own RNG stream"
    play = [a for a in env.game_state(1).legal_actions() if a < 10]  # a discard or play: a draw
    sim.step(np.full(6, play[0]))
    decks = {tuple(sim.game_state(k).history()) for k in range(6)}
    assert len(decks) > 1
    after = env.get_state()
    for key in ("obs", "t", "ep_return"):
        np.testing.assert_array_equal(after.arrays[key], real.arrays[key])
    assert [g[0].history() for g in after.arrays["game"]] == [
        g[0].history() for g in real.arrays["game"]
    ]


@pytest.mark.parametrize("tries", [256, 0])
def test_draw_assignments_exact_with_overlapping_constraints(monkeypatch, tries):
    """The sampler core on hand-made knowledge whose allowed sets overlap (so earlier draws
    change what later slots can take): frequencies match the weighted enumeration, through
    rejection (256 tries per sample) and through the enumeration fallback (0 tries)."""
    from scipy.stats import chisquare

    from qwr_fast.envs import hanabi

    monkeypatch.setattr(hanabi, "_REJECTION_TRIES", tries)
    counts = [3, 1, 2, 1, 1]
    masks = [0b00011, 0b00110, 0b11111, 0b10100]
    allowed = [[t for t in range(5) if (m >> t) & 1] for m in masks]
    assignments, weights = hanabi._enumerate(allowed, counts)
    n = 6000
    draws = hanabi._draw_assignments(masks, counts, n, np.random.default_rng(2))
    assert draws.shape == (n, 4)
    got = Counter(map(tuple, draws.tolist()))
    assert set(got) <= set(assignments)
    expected = np.array(weights, dtype=np.float64) / sum(weights) * n
    observed = np.array([got[a] for a in assignments], dtype=np.float64)
    assert chisquare(observed, expected).pvalue > 1e-3


def test_blueprint_weighted_beliefs_match_the_exact_posterior():
    # Beliefs conditioned on the partner's moves: P(hand | history) is the chance posterior
    # (belief_distribution) times the policy's likelihood of the partner's past moves, which
    # depends on the history only through the hidden cards. Sampling-importance-resampling
    # with many candidates must reproduce it.
    env = envs.make("Hanabi-Small", 1, seed=2, **TINY)
    obs = env.reset(seed=2)[0]
    rng = np.random.default_rng(2)
    for _ in range(4):  # two moves of each player: the partner has seen this player's hand
        obs = env.step(random_legal(obs, env, rng))[0]
    state = env.game_state(0)
    player = state.current_player()
    w = np.random.default_rng(7).normal(0.0, 0.5, (obs.shape[1], env.num_actions))

    def policy_logits(o: np.ndarray) -> np.ndarray:
        return o @ w

    pool = sample_beliefs(state, player, 600, np.random.default_rng(3))
    loglik = env.history_log_likelihood(pool, policy_logits, skip=player)
    by_key: dict[tuple, float] = {}
    for st, ll in zip(pool, loglik, strict=True):
        key = hidden_cards(st, player)
        assert by_key.setdefault(key, ll) == pytest.approx(ll), "likelihood depends on the cards"
    prior = belief_distribution(state, player)
    assert set(by_key) == set(prior)
    post = {k: prior[k] * np.exp(by_key[k]) for k in prior}
    z = sum(post.values())
    post = {k: v / z for k, v in post.items()}
    assert max(abs(post[k] - prior[k]) for k in prior) > 0.05, "the test policy must inform"
    beliefs = env.belief_states(
        0, 3000, np.random.default_rng(4), policy_logits=policy_logits, candidates=6000
    )
    counts = Counter(hidden_cards(g[0], player) for g in beliefs.arrays["game"])
    tv = 0.5 * sum(abs(counts.get(k, 0) / 3000 - post[k]) for k in post)
    assert tv < 0.04, (tv, counts, post)
    uniform = env.belief_states(0, 3000, np.random.default_rng(4))
    counts_u = Counter(hidden_cards(g[0], player) for g in uniform.arrays["game"])
    assert 0.5 * sum(abs(counts_u.get(k, 0) / 3000 - post[k]) for k in post) > 0.04
