"""Hanabi (``Hanabi-Full``, ``Hanabi-Hard``, ``Hanabi-Small``, ``Hanabi-VerySmall``): OpenSpiel's
``hanabi`` (the Hanabi Learning Environment) for two players behind the ``qwr_fast.envs`` vector
API, plus belief sampling for search.

Variants (every parameter can be overridden by a kwarg of the same name):

================  ======  =====  =========  ======================  ===============
id                colors  ranks  hand_size  max_information_tokens  max_life_tokens
================  ======  =====  =========  ======================  ===============
Hanabi-Full       5       5      5          8                       3
Hanabi-Hard       5       5      5          2                       3
Hanabi-Small      2       5      2          3                       1
Hanabi-VerySmall  1       5      2          3                       1
================  ======  =====  =========  ======================  ===============

Self-play: one vector env steps a "team" agent; each env's observation is that of the player to
move, a float32 vector ``concat(observation_tensor(player) [D], seat one-hot [2], legal-action
mask [A])`` (``env.seat_slice``, ``env.action_mask_slice``; ``legal_mask(obs, env)``). Actions:
``Discrete(A)``, OpenSpiel's distinct actions (discard slot k, play slot k, reveal a colour, reveal
a rank); an illegal action raises ``ValueError`` before any env moves. Reward: OpenSpiel's
per-move reward (the change of the team score; losing the last life gives minus the score so
far), so an episode's return is the final score (0 when the lives run out). Episodes terminate
at the end of the game; there is no time limit by default.

Chance (the deal and every draw) is resolved inside the env with its own seeded
``numpy.random.Generator`` (PCG64), sampling from ``state.chance_outcomes()``. A snapshot is a
clone of the OpenSpiel state plus the generator's state, so ``set_state`` replays bit-exactly.
A checkpoint stores the state as OpenSpiel's text serialisation (the game and its action
history), which ``set_state`` replays in the env's own game (a snapshot of another game is
refused).

Fresh chance (``set_state(..., reseed=r)``, ``clone_states(..., reseed=r)``): the OpenSpiel state
holds no deck order (HLE's deck is a multiset of the undealt cards; a draw is a chance node whose
outcomes are those cards, each with probability copies left / cards left), so the future deck
order exists only as the generator's future output. A reseeded restore keeps the game state
exactly (both hands, fireworks, discards, tokens, history, the observation) and gives the env a
new generator: each later draw is a uniform draw without replacement from the undealt cards,
the chance model's distribution given the dealt cards, and independent of the draws the real
game will make. It does not re-deal the cards already in the hands; a simulator that must not
know the cards of the player to move loads ``belief_states`` (re-dealt hands from the belief
posterior, and likewise a fresh generator per sample).

Belief sampling (``sample_beliefs``, ``belief_distribution``, ``HanabiVectorEnv.belief_states``)
draws full game states consistent with what a player has observed, by replaying the action
history with the chance actions that dealt the hidden cards replaced. The target distribution is
the chance model's posterior: the deck is a uniform permutation of the physical cards, so given
the observations the hidden cards are a uniform draw without replacement from the unseen cards,
conditioned on every hidden card lying in its slot's plausible set (the per-slot colour x rank
knowledge that the hints produced; a card in it reproduces every hint outcome exactly). The
sampler is exact: rejection on the constrained slots (vectorised permutations of the unseen
cards), then exact enumeration weighted by falling factorials of the unseen multiplicities for
any draw that rejection did not settle; slots with no constraint take the rest of the
permutation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from qwr_fast.envs._loop import (
    LoopVectorEnv,
    check_num_envs,
    check_plain_snapshot,
    check_rng_state,
    missing_extra,
)
from qwr_fast.envs._vector import EnvState

HANABI_VARIANTS: dict[str, dict[str, int]] = {
    "Hanabi-Full": dict(
        colors=5, ranks=5, hand_size=5, max_information_tokens=8, max_life_tokens=3
    ),
    "Hanabi-Hard": dict(
        colors=5, ranks=5, hand_size=5, max_information_tokens=2, max_life_tokens=3
    ),
    "Hanabi-Small": dict(
        colors=2, ranks=5, hand_size=2, max_information_tokens=3, max_life_tokens=1
    ),
    "Hanabi-VerySmall": dict(
        colors=1, ranks=5, hand_size=2, max_information_tokens=3, max_life_tokens=1
    ),
}
HANABI_IDS = tuple(HANABI_VARIANTS)
_PARAMS = ("colors", "ranks", "hand_size", "max_information_tokens", "max_life_tokens")
_REJECTION_TRIES = 256  # rejection tries per wanted sample before exact enumeration takes over


def _import_pyspiel() -> Any:
    try:
        import pyspiel
    except ImportError as e:
        raise missing_extra("open_spiel", "hanabi", "Hanabi") from e
    return pyspiel


def _check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an int {bound}, got {value}")
    return int(value)


def card_count(rank: int, ranks: int) -> int:
    """Copies of each colour's card of 0-based ``rank`` in a deck of ``ranks`` ranks (HLE: three
    of the lowest, one of the highest, two of the others)."""
    if rank == 0:
        return 3
    return 1 if rank == ranks - 1 else 2


def legal_mask(obs: np.ndarray, env: HanabiVectorEnv) -> np.ndarray:
    """The legal-action mask ``bool [..., A]`` carried in observations of ``env``."""
    obs = np.asarray(obs)
    if obs.shape[-1:] != env.single_observation_space.shape:
        raise ValueError(
            f"obs must have shape [..., {env.single_observation_space.shape[0]}], got {obs.shape}"
        )
    return obs[..., env.action_mask_slice] > 0.5


# -- belief sampling --------------------------------------------------------------------------
@dataclass
class _Deal:
    """Who holds which card of a state's history, and what the hints told them."""

    game: Any
    colors: int
    ranks: int
    actions: list[int]  # the full history, chance actions included
    hands: list[list[int]]  # per player, per slot: position in ``actions`` of the dealing action
    knowledge: list[list[int]]  # per player, per slot: bitmask of the plausible card types
    gone: list[int]  # per card type: copies played or discarded (public)
    total: list[int]  # per card type: copies in the deck

    def hidden(self, player: int, public: bool) -> list[tuple[int, int]]:
        """The hidden slots as ``(player, slot)``: ``player``'s hand, or every hand."""
        owners = range(len(self.hands)) if public else (player,)
        return [(p, j) for p in owners for j in range(len(self.hands[p]))]

    def unseen(self, player: int, public: bool) -> list[int]:
        """Per card type, the copies that the observer cannot see (in hidden slots or the deck)."""
        counts = [t - g for t, g in zip(self.total, self.gone, strict=True)]
        if not public:
            for p, hand in enumerate(self.hands):
                if p != player:
                    for pos in hand:
                        counts[self.actions[pos]] -= 1
        return counts


def _analyse(state: Any) -> _Deal:
    """Replay ``state``'s history bookkeeping (HLE rules: the deal fills player 0's hand first, a
    played or discarded card leaves its slot and the drawn card goes to the end of the hand, a hint
    fixes the hinted value of the touched cards and rules it out for the others)."""
    game = state.get_game()
    params = game.get_parameters()
    if params.get("players", 2) != 2:
        raise ValueError(f"state must be a 2-player Hanabi state, got players={params['players']}")
    n_col, n_rank, hand_size = params["colors"], params["ranks"], params["hand_size"]
    n_types = n_col * n_rank
    rank_of = [t % n_rank for t in range(n_types)]
    col_of = [t // n_rank for t in range(n_types)]
    with_col = [sum(1 << t for t in range(n_types) if col_of[t] == c) for c in range(n_col)]
    with_rank = [sum(1 << t for t in range(n_types) if rank_of[t] == r) for r in range(n_rank)]
    everything = (1 << n_types) - 1
    actions: list[int] = []
    hands: list[list[int]] = [[], []]
    knowledge: list[list[int]] = [[], []]
    gone = [0] * n_types
    for k, pa in enumerate(state.full_history()):
        a = pa.action
        actions.append(a)
        if pa.player < 0:
            p = 0 if len(hands[0]) < hand_size else 1
            hands[p].append(k)
            knowledge[p].append(everything)
            continue
        p = pa.player
        if a < 2 * hand_size:
            slot = a % hand_size
            gone[actions[hands[p][slot]]] += 1
            del hands[p][slot], knowledge[p][slot]
            continue
        target = 1 - p
        if a < 2 * hand_size + n_col:
            cards = with_col[a - 2 * hand_size]
        else:
            cards = with_rank[a - 2 * hand_size - n_col]
        know = knowledge[target]
        for j, pos in enumerate(hands[target]):
            know[j] &= cards if (cards >> actions[pos]) & 1 else ~cards
    total = [card_count(rank_of[t], n_rank) for t in range(n_types)]
    return _Deal(game, n_col, n_rank, actions, hands, knowledge, gone, total)


def _bits(mask: int, n: int) -> list[int]:
    return [t for t in range(n) if (mask >> t) & 1]


def _enumerate(allowed: list[list[int]], counts: list[int]) -> tuple[list[tuple], list[int]]:
    """Every type assignment of the slots (slot j takes a type in ``allowed[j]``) that the unseen
    ``counts`` can supply, with its weight: the number of ordered draws of physical cards giving
    it (the product over types of falling factorials of the counts)."""
    assignments: list[tuple] = []
    weights: list[int] = []
    left = list(counts)
    prefix: list[int] = []

    def visit(j: int, w: int) -> None:
        if j == len(allowed):
            assignments.append(tuple(prefix))
            weights.append(w)
            return
        for t in allowed[j]:
            c = left[t]
            if c:
                left[t] = c - 1
                prefix.append(t)
                visit(j + 1, w * c)
                prefix.pop()
                left[t] = c

    visit(0, 1)
    return assignments, weights


def _propose(
    allowed: np.ndarray, counts: np.ndarray, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` sequential draws without replacement of one card per constrained slot, slot j
    from the unseen cards of the types in ``allowed[j]``; returns the types ``int64 [batch, k]``
    and a bool ``[batch]`` accept flag.

    A draw has proposal probability ``prod_j c_j / S_j`` (``c_j`` the copies of its type left,
    ``S_j`` the allowed copies left at step j) and target weight ``prod_j c_j``, so accepting with
    probability ``prod_j S_j / A_j`` (``A_j = S_j`` before any draw, an upper bound) makes the
    accepted draws exact samples of the target.
    """
    k = len(allowed)
    left = np.broadcast_to(counts, (batch, len(counts))).copy()
    rows = np.arange(batch)
    types = np.empty((batch, k), dtype=np.int64)
    ratio = np.ones(batch)
    alive = np.ones(batch, dtype=np.bool_)
    for j in range(k):
        avail = left * allowed[j]  # [batch, T]
        cum = np.cumsum(avail, axis=1)
        total = cum[:, -1]
        alive &= total > 0
        ratio *= total / (allowed[j] * counts).sum()
        u = rng.random(batch) * total
        t = np.minimum((cum <= u[:, None]).sum(axis=1), len(counts) - 1)
        types[:, j] = t
        left[rows, t] -= alive
    accept = alive & (rng.random(batch) < ratio)
    return types, accept


def _draw_assignments(
    masks: list[int], counts: list[int], n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` iid draws ``int64 [n, len(masks)]`` of the hidden slots' card types from the chance
    posterior: a uniform draw without replacement from the unseen ``counts``, conditioned on slot
    j's type lying in bitmask ``masks[j]``.

    The constrained slots (whose mask excludes some unseen type) are drawn by exact rejection
    (``_propose``); the draws it has not settled after ``_REJECTION_TRIES`` tries per sample come
    from exact enumeration. Conditioned on them, the unconstrained slots are a uniform draw
    without replacement from the remaining unseen cards.
    """
    h, n_types = len(masks), len(counts)
    if h > sum(counts):
        raise RuntimeError(f"{h} hidden slots but only {sum(counts)} unseen cards")
    out = np.empty((n, h), dtype=np.int64)
    if h == 0:
        return out
    present = sum(1 << t for t in range(n_types) if counts[t] > 0)
    constrained = [j for j in range(h) if masks[j] & present != present]
    free = [j for j in range(h) if masks[j] & present == present]
    k = len(constrained)
    allowed = np.array([[(masks[j] >> t) & 1 for t in range(n_types)] for j in constrained])
    allowed = allowed.reshape(k, n_types)
    counts_arr = np.asarray(counts, dtype=np.int64)
    if (allowed @ counts_arr == 0).any():
        raise RuntimeError("a hidden slot has no unseen card consistent with the hints")
    picked: list[np.ndarray] = []
    got, tries, budget = 0, 0, _REJECTION_TRIES * n
    while got < n and tries < budget:
        batch = min(budget - tries, max(64, 2 * (n - got)))
        tries += batch
        types, accept = _propose(allowed, counts_arr, batch, rng)
        picked.append(types[accept][: n - got])
        got += len(picked[-1])
    if got < n:
        assignments, weights = _enumerate([_bits(masks[j], n_types) for j in constrained], counts)
        if not assignments:
            raise RuntimeError("no deal of the unseen cards is consistent with the hints")
        p = np.asarray(weights, dtype=np.float64)
        picks = rng.choice(len(weights), size=n - got, p=p / p.sum())
        picked.append(np.array([assignments[i] for i in picks.tolist()]).reshape(n - got, k))
    fixed = np.concatenate(picked)
    out[:, constrained] = fixed
    if free:
        for row in range(n):
            rest = counts_arr.copy()
            np.subtract.at(rest, fixed[row], 1)
            out[row, free] = rng.permutation(np.repeat(np.arange(n_types), rest))[: len(free)]
    return out


def _public_view(observation: str) -> str:
    """An observation string with every card identity in the hands masked (``XX``)."""
    lines = observation.split("\n")
    for j, line in enumerate(lines):
        if " || " in line:
            lines[j] = "XX" + line[line.index(" || ") :]
    return "\n".join(lines)


def _check_player(state: Any, player: Any) -> int:
    if isinstance(player, bool) or not isinstance(player, (int, np.integer)):
        raise TypeError(f"player must be an int seat (0 or 1), got {type(player).__name__}")
    if player not in (0, 1):
        raise ValueError(f"player must be 0 or 1, got {player}")
    if not hasattr(state, "full_history") or not hasattr(state, "get_game"):
        raise TypeError(f"state must be a pyspiel.State, got {type(state).__name__}")
    if state.get_game().get_type().short_name != "hanabi":
        raise ValueError(f"state must be a Hanabi state, got {state.get_game()}")
    return int(player)


def sample_beliefs(
    state: Any, player: int, num_samples: int, rng: np.random.Generator, *, public: bool = False
) -> list[Any]:
    """``num_samples`` iid full game states consistent with everything ``player`` has observed.

    The cards in ``player``'s hand (``public=True``: in both hands) are re-dealt from the chance
    posterior described in the module docstring; the rest of the history (the other hand, the
    played and discarded cards, every move and hint) is kept. Each sample is verified: its
    history replays legally and ``observation_string(player)`` equals the original's
    (``public=True``: both players' observations agree with the original's once the cards in
    the hands are masked). Raises ``RuntimeError`` if a sample fails the check.
    """
    player = _check_player(state, player)
    num_samples = _check_int(num_samples, "num_samples", 1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    deal = _analyse(state)
    slots = deal.hidden(player, public)
    positions = [deal.hands[p][j] for p, j in slots]
    masks = [deal.knowledge[p][j] for p, j in slots]
    draws = _draw_assignments(masks, deal.unseen(player, public), num_samples, rng).tolist()
    if public:
        want = [_public_view(state.observation_string(p)) for p in (0, 1)]
    else:
        want = state.observation_string(player)
    # The history up to the first re-dealt card is shared: replay it once and clone it.
    first = min(positions, default=len(deal.actions))
    prefix = _replay(deal.game, deal.actions[:first])
    samples = []
    actions = list(deal.actions)
    for row in draws:
        for pos, t in zip(positions, row, strict=True):
            actions[pos] = t
        sample = _replay(deal.game, actions[first:], prefix.clone())
        if public:
            got = [_public_view(sample.observation_string(p)) for p in (0, 1)]
        else:
            got = sample.observation_string(player)
        if got != want:
            raise RuntimeError(
                f"belief sample {row} is inconsistent with player {player}'s observation:\n{got}"
            )
        samples.append(sample)
    return samples


def _replay(game: Any, actions: list[int], state: Any = None) -> Any:
    """``state`` (default: the initial state) after ``actions``."""
    state = game.new_initial_state() if state is None else state
    try:
        for a in actions:
            state.apply_action(a)
    except Exception as e:  # pyspiel.SpielError: an illegal deal or move
        raise RuntimeError(f"belief sample history {actions} is illegal: {e}") from e
    return state


def belief_distribution(state: Any, player: int, *, public: bool = False) -> dict[tuple, float]:
    """The exact chance posterior of the hidden cards (see ``sample_beliefs``), by enumeration.

    Keys are ``hidden_cards`` tuples: ``(colour, rank)`` (0-based) per hidden slot, ``player``'s
    hand in slot order (``public=True``: player 0's hand, then player 1's). Enumerates every
    assignment, so it is meant for small variants and tests.
    """
    player = _check_player(state, player)
    deal = _analyse(state)
    n_types = deal.colors * deal.ranks
    slots = deal.hidden(player, public)
    allowed = [_bits(deal.knowledge[p][j], n_types) for p, j in slots]
    assignments, weights = _enumerate(allowed, deal.unseen(player, public))
    total = sum(weights)
    return {
        tuple(divmod(t, deal.ranks) for t in a): w / total
        for a, w in zip(assignments, weights, strict=True)
    }


def hidden_cards(state: Any, player: int, *, public: bool = False) -> tuple:
    """The cards in the slots that ``sample_beliefs`` re-deals: ``(colour, rank)`` per slot, in
    the order of ``belief_distribution``'s keys."""
    player = _check_player(state, player)
    deal = _analyse(state)
    return tuple(
        divmod(deal.actions[deal.hands[p][j]], deal.ranks) for p, j in deal.hidden(player, public)
    )


# -- the vector env ---------------------------------------------------------------------------
def _resolve_chance(state: Any, rng: np.random.Generator) -> None:
    """Deal/draw with ``rng`` until a player is to move (or the game is over). Chance moves earn
    nothing (pyspiel's ``rewards()`` after one repeats the last move's reward)."""
    while state.is_chance_node():
        u = rng.random()
        acc = 0.0
        outcomes = state.chance_outcomes()
        chosen = outcomes[-1][0]
        for outcome, p in outcomes:
            acc += p
            if u < acc:
                chosen = outcome
                break
        state.apply_action(chosen)


class HanabiVectorEnv(LoopVectorEnv):
    """``num_envs`` two-player Hanabi games in self-play; see the module docstring."""

    FAMILY = "Hanabi"

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        *,
        players: int = 2,
        colors: int | None = None,
        ranks: int | None = None,
        hand_size: int | None = None,
        max_information_tokens: int | None = None,
        max_life_tokens: int | None = None,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        copy: bool = True,
    ) -> None:
        if env_id not in HANABI_IDS:
            raise ValueError(f"unknown Hanabi id {env_id!r}; known: {', '.join(HANABI_IDS)}")
        if players != 2:
            raise ValueError(f"players must be 2 (two-player self-play only), got {players}")
        pyspiel = _import_pyspiel()
        from open_spiel.python.observation import make_observation

        given = dict(
            colors=colors,
            ranks=ranks,
            hand_size=hand_size,
            max_information_tokens=max_information_tokens,
            max_life_tokens=max_life_tokens,
        )
        params = dict(HANABI_VARIANTS[env_id])
        params.update({k: v for k, v in given.items() if v is not None})
        params["colors"] = _check_int(params["colors"], "colors", 1, 5)
        params["ranks"] = _check_int(params["ranks"], "ranks", 1, 5)
        params["hand_size"] = _check_int(params["hand_size"], "hand_size", 1)
        params["max_information_tokens"] = _check_int(
            params["max_information_tokens"], "max_information_tokens", 1
        )
        params["max_life_tokens"] = _check_int(params["max_life_tokens"], "max_life_tokens", 1)
        deck = params["colors"] * sum(
            card_count(r, params["ranks"]) for r in range(params["ranks"])
        )
        if 2 * params["hand_size"] > deck:
            raise ValueError(
                f"hand_size={params['hand_size']} too large: two hands need "
                f"{2 * params['hand_size']} cards, the deck of {params['colors']} colours x "
                f"{params['ranks']} ranks has {deck}"
            )
        self.env_id = env_id
        self.params = params
        self.game = pyspiel.load_game("hanabi", {"players": 2, **params})
        n = check_num_envs(num_envs)
        d = self.game.observation_tensor_size()
        a = self.game.num_distinct_actions()
        self.obs_dim, self.num_actions = d, a
        self.max_score = params["colors"] * params["ranks"]  # every firework complete
        self.seat_slice = slice(d, d + 2)
        self.action_mask_slice = slice(d + 2, d + 2 + a)
        self._observer = make_observation(self.game)
        self._states = [self.game.new_initial_state() for _ in range(n)]
        self._rngs = [np.random.default_rng(0) for _ in range(n)]
        self._legal: list[list[int]] = [[] for _ in range(n)]
        obs_space = spaces.Box(0.0, 1.0, (d + 2 + a,), dtype=np.float32)
        super().__init__(
            n,
            obs_space,
            spaces.Discrete(a),
            max_episode_steps=max_episode_steps,
            seed=seed,
            copy=copy,
        )

    @property
    def config(self) -> tuple:
        return (
            "Hanabi",
            self.env_id,
            *((k, self.params[k]) for k in _PARAMS),
            ("max_episode_steps", self.max_episode_steps),
        )

    def _observe(self, state: Any, legal: list[int]) -> np.ndarray:
        """The observation of the player to move (at the end: of the next seat, no legal moves)."""
        p = state.current_player()
        if p < 0:
            last = [pa.player for pa in state.full_history() if pa.player >= 0]
            p = (last[-1] + 1) % 2 if last else 0
        self._observer.set_from(state, p)
        d = self.obs_dim
        out = np.zeros(d + 2 + self.num_actions, dtype=np.float32)
        out[:d] = self._observer.tensor
        out[d + p] = 1.0
        out[self.action_mask_slice.start + np.asarray(legal, dtype=np.int64)] = 1.0
        return out

    def _reset_one(self, i: int, seed: int | None) -> np.ndarray:
        if seed is not None:
            self._rngs[i] = np.random.default_rng(seed)
        state = self._states[i] = self.game.new_initial_state()
        _resolve_chance(state, self._rngs[i])
        legal = self._legal[i] = state.legal_actions()
        return self._observe(state, legal)

    def _step_one(self, i: int, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        state = self._states[i]
        state.apply_action(action)
        reward = state.rewards()[0]
        _resolve_chance(state, self._rngs[i])
        done = state.is_terminal()
        legal = self._legal[i] = [] if done else state.legal_actions()
        return self._observe(state, legal), reward, done, False

    def _check_actions(self, actions: Any) -> list | np.ndarray:
        values = super()._check_actions(actions)
        for i, a in enumerate(values):
            if a not in self._legal[i]:
                raise ValueError(
                    f"actions[{i}] = {a} is illegal in env {i} "
                    f"({self._states[i].action_to_string(a)}); legal: {self._legal[i]}"
                )
        return values

    def _snapshot_one(self, i: int) -> Any:
        return (self._states[i].clone(), self._rngs[i].bit_generator.state)

    def _restore_one(self, i: int, snapshot: Any) -> None:
        state, rng_state = snapshot
        self._states[i] = state.clone()
        rng = self._rngs[i] = np.random.default_rng(0)
        rng.bit_generator.state = rng_state
        self._legal[i] = [] if state.is_terminal() else state.legal_actions()

    @classmethod
    def _snapshot_to_plain(cls, snapshot: Any) -> dict[str, Any]:
        state, rng_state = snapshot
        # OpenSpiel's pickled form of a state: SerializeGameAndState's text (game + history)
        return {"family": cls.FAMILY, "state": str(state.__getstate__()), "rng": dict(rng_state)}

    def _snapshot_from_plain(self, i: int, plain: dict[str, Any]) -> Any:
        p = check_plain_snapshot(plain, self.FAMILY, ("state", "rng"))
        text = p["state"]
        head, sep, history = text.partition("\n[State]\n") if type(text) is str else ("", "", "")
        game = head.rpartition("[Game]\n")[2].strip()
        if not sep or game != str(self.game):
            raise ValueError(f"Hanabi snapshot of the game {game!r}, this env plays {self.game}")
        try:
            state = self.game.deserialize_state(history)
        except Exception as e:  # pyspiel raises its own error types
            raise ValueError(f"Hanabi snapshot holds no state of {self.game}: {e}") from e
        return state, check_rng_state(p["rng"], self._rngs[i].bit_generator, self.FAMILY)

    def _reseed_one(self, i: int, seed: int) -> None:
        # The OpenSpiel state holds no deck order: every draw is made by this generator from
        # ``chance_outcomes()`` when it happens, so a new generator re-draws the whole future.
        self._rngs[i] = np.random.default_rng(seed)

    def game_state(self, i: int) -> Any:
        """A clone of env ``i``'s OpenSpiel state (for inspection; the env keeps its own)."""
        return self._states[i].clone()

    def belief_states(
        self,
        i: int,
        num_samples: int,
        rng: np.random.Generator,
        *,
        public: bool = False,
        policy_logits: Callable[[np.ndarray], np.ndarray] | None = None,
        candidates: int | None = None,
    ) -> EnvState:
        """An ``EnvState`` of ``num_samples`` envs, each a belief sample (``sample_beliefs``) of
        env ``i``'s game from the point of view of the player to move (``public=True``: public
        knowledge only), with a fresh RNG stream drawn from ``rng`` (so later draws in rollouts
        are not the real deck's) and env ``i``'s step counter and return. Load it with
        ``sim.set_state(...)`` on an env of ``num_samples`` envs with the same config.

        ``policy_logits`` (``obs[N, *O] -> logits[N, A]``, numpy; e.g. the blueprint's): condition
        the belief on the players' past moves too, as SPARTA's belief tracking does. The sampler
        draws ``candidates`` (default ``8 * num_samples``) samples of the chance posterior, weighs
        each by the likelihood of the moves that depended on the re-dealt cards (the partner's
        moves for a private belief, every player's for a public one) under that policy, and
        resamples ``num_samples`` of them in proportion (self-normalised importance sampling)."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"i must be an int env index, got {type(i).__name__}")
        if not 0 <= i < self.num_envs:
            raise ValueError(f"i must lie in [0, {self.num_envs}), got {i}")
        n = _check_int(num_samples, "num_samples", 1)
        state = self._states[i]
        player = state.current_player()
        if policy_logits is None:
            samples = sample_beliefs(state, player, n, rng, public=public)
        else:
            k = _check_int(8 * n if candidates is None else candidates, "candidates", 1)
            pool = sample_beliefs(state, player, k, rng, public=public)
            logw = self.history_log_likelihood(pool, policy_logits, skip=None if public else player)
            w = np.exp(logw - logw.max())
            picks = rng.choice(k, size=n, p=w / w.sum())
            samples = [pool[j].clone() for j in picks]
        games = np.empty(n, dtype=object)
        obs = np.empty((n, *self.single_observation_space.shape), dtype=np.float32)
        for k, sample in enumerate(samples):
            fresh = np.random.default_rng(int(rng.integers(0, 2**63)))
            games[k] = (sample, fresh.bit_generator.state)
            obs[k] = self._observe(sample, sample.legal_actions())
        arrays = {
            "game": games,
            "obs": obs,
            "t": np.full(n, self._t[i], dtype=np.int32),
            "ep_return": np.full(n, self._ep_return[i], dtype=np.float64),
        }
        return EnvState(self.config, arrays)

    def history_log_likelihood(
        self,
        states: list[Any],
        policy_logits: Callable[[np.ndarray], np.ndarray],
        *,
        skip: int | None = None,
    ) -> np.ndarray:
        """``[len(states)]`` log-probability, under ``policy_logits`` (``obs[N, *O] ->
        logits[N, A]``), of every move in each state's history made by a player other than
        ``skip`` (each move scored on the observation its player had then, as this env builds
        it). Moves whose inputs are the same in every state cancel in a comparison of states
        with a common public history, so only their differences matter."""
        rows, actions, owner = [], [], []
        for k, st in enumerate(states):
            replay = self.game.new_initial_state()
            for a in st.history():
                if not replay.is_chance_node() and replay.current_player() != skip:
                    rows.append(self._observe(replay, replay.legal_actions()))
                    actions.append(a)
                    owner.append(k)
                replay.apply_action(a)
        out = np.zeros(len(states))
        if rows:
            logits = np.asarray(policy_logits(np.stack(rows)), dtype=np.float64)
            logits = logits - logits.max(-1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            np.add.at(out, np.asarray(owner), logp[np.arange(len(rows)), np.asarray(actions)])
        return out


__all__ = [
    "HANABI_IDS",
    "HANABI_VARIANTS",
    "HanabiVectorEnv",
    "belief_distribution",
    "card_count",
    "hidden_cards",
    "legal_mask",
    "sample_beliefs",
]
