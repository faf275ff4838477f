"""MinAtar (``MinAtar/Asterix``, ``MinAtar/Breakout``, ``MinAtar/Freeway``, ``MinAtar/Seaquest``,
``MinAtar/SpaceInvaders``) behind the ``qwr_fast.envs`` vector API.

Each env is a ``minatar.Environment`` with its defaults (sticky actions p=0.1, difficulty
ramping on; both are kwargs). Observations are MinAtar's own ``bool [10, 10, C]`` grids.
Actions: ``Discrete(6)``, MinAtar's full set (as ``MinAtar/<Game>-v0`` in ``minatar.gym``), or
with ``minimal_action_set=True`` the game's minimal set (as ``-v1``). MinAtar has no time
limit of its own and a good Breakout agent never loses, so the loop truncates at
``max_episode_steps`` (default 10,000 agent steps; None disables it).

Seeding: a seeded reset calls ``Environment.seed`` (one ``numpy.random.RandomState`` shared
by the sticky actions and the game) with the env's derived seed mod 2^32. State: a deep copy
of the ``Environment`` (game fields and the shared ``RandomState`` together), plus the loop's
step counter and return; stored in a checkpoint as the fields of the ``Environment`` and of its
game (ints, bools, lists, arrays) and the ``RandomState``'s state dict, from which
``set_state`` rebuilds the objects (classes from the env, never from the file).
``set_state(..., reseed=r)`` restores the deep copy, then calls ``Environment.seed`` with the
restored env's reseed word mod 2^32: the board, the last action and the counters are the
snapshot's, the sticky-action draws, spawns and ball directions to come are new.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from gymnasium import spaces

from qwr_fast.envs._loop import (
    _NO_LIMIT,
    LoopVectorEnv,
    check_num_envs,
    check_plain_snapshot,
    missing_extra,
    plain_fields,
)
from qwr_fast.envs._vector import is_plain

MINATAR_GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
MINATAR_IDS = tuple(f"MinAtar/{name}" for name in MINATAR_GAMES)


class MinAtarVectorEnv(LoopVectorEnv):
    """``num_envs`` MinAtar games of one kind; see the module docstring."""

    FAMILY = "MinAtar"

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        *,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        minimal_action_set: bool = False,
        max_episode_steps: int | None = 10_000,
        seed: int | None = None,
        copy: bool = True,
    ) -> None:
        if env_id not in MINATAR_IDS:
            raise ValueError(f"unknown MinAtar id {env_id!r}; known: {', '.join(MINATAR_IDS)}")
        try:
            from minatar import Environment
        except ImportError as e:
            raise missing_extra("minatar", "minatar", "MinAtar") from e
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob must lie in [0, 1], got {sticky_action_prob}")
        self.env_id = env_id
        self.sticky_action_prob = float(sticky_action_prob)
        self.difficulty_ramping = bool(difficulty_ramping)
        self.minimal_action_set = bool(minimal_action_set)
        game = MINATAR_GAMES[env_id.split("/", 1)[1]]
        self._games = [
            Environment(game, self.sticky_action_prob, self.difficulty_ramping)
            for _ in range(check_num_envs(num_envs))
        ]
        first = self._games[0]
        if self.minimal_action_set:
            self._action_set = [int(a) for a in first.minimal_action_set()]
        else:
            self._action_set = list(range(first.num_actions()))
        obs_space = spaces.Box(0.0, 1.0, first.state_shape(), dtype=np.bool_)
        super().__init__(
            num_envs,
            obs_space,
            spaces.Discrete(len(self._action_set)),
            max_episode_steps=max_episode_steps,
            seed=seed,
            copy=copy,
        )
        # The obs buffer as flat bytes: MinAtar's states are fresh C-contiguous bool arrays of
        # exactly one row's size, so a step writes all rows with one bytes copy (a wrong size
        # raises ValueError).
        self._obs_bytes = memoryview(self._obs.reshape(-1).view(np.uint8))
        self._final_obs_bytes = memoryview(self._final_obs.reshape(-1).view(np.uint8))
        self._identity_actions = self._action_set == list(range(len(self._action_set)))
        self._rewarded: list[int] = []  # the rows whose reward the last step set

    @property
    def config(self) -> tuple:
        return (
            "MinAtar",
            self.env_id,
            ("sticky_action_prob", self.sticky_action_prob),
            ("difficulty_ramping", self.difficulty_ramping),
            ("minimal_action_set", self.minimal_action_set),
            ("max_episode_steps", self.max_episode_steps),
        )

    def _reset_one(self, i: int, seed: int | None) -> np.ndarray:
        game = self._games[i]
        if seed is not None:
            game.seed(seed % 2**32)
        game.reset()
        return game.state()

    def _step_one(self, i: int, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        game = self._games[i]
        reward, terminal = game.act(action if self._identity_actions else self._action_set[action])
        return game.state(), reward, terminal, False

    def _step_envs(self, actions: list) -> tuple[list, list]:
        # LoopVectorEnv._step_envs with the game calls inlined (the game step is ~3 us, so
        # every Python operation per env shows): the step counters advance in one
        # comprehension and the time limit is looked at per env only at a step where some env
        # reaches it; rewards are sparse, so only the nonzero ones are written (and cleared at
        # the next step) and added to the episode returns.
        games, ep_return, reward = self._games, self._ep_return, self._reward
        for i in self._rewarded:
            reward[i] = 0.0
        rewarded = self._rewarded = []
        if not self._identity_actions:
            actions = [self._action_set[a] for a in actions]
        t = self._t = [ti + 1 for ti in self._t]
        limit = self.max_episode_steps or _NO_LIMIT
        at_limit = {i for i, ti in enumerate(t) if ti >= limit} if max(t) >= limit else ()
        rows, ended = [], []
        for i, (game, a) in enumerate(zip(games, actions, strict=True)):
            r, te = game.act(a)
            o = game.env.state()  # Environment.state / .reset only forward to .env
            if r:
                reward[i] = r
                rewarded.append(i)
                ep_return[i] += r
            if te or (at_limit and i in at_limit):
                ended.append((i, o, ep_return[i], t[i], te, t[i] >= limit))
                t[i] = 0
                ep_return[i] = 0.0
                game.env.reset()
                o = game.env.state()
            rows.append(o)
        return rows, ended

    def _write_obs(self, rows: list[np.ndarray]) -> None:
        self._obs_bytes[:] = b"".join(rows)

    def _write_final_obs(self, rows: list, ended: list) -> None:
        rows = rows.copy()
        for e in ended:
            rows[e[0]] = e[1]
        self._final_obs_bytes[:] = b"".join(rows)

    def _snapshot_one(self, i: int) -> Any:
        return copy.deepcopy(self._games[i])

    def _restore_one(self, i: int, snapshot: Any) -> None:
        self._games[i] = copy.deepcopy(snapshot)

    @classmethod
    def _snapshot_to_plain(cls, snapshot: Any) -> dict[str, Any]:
        game, rs = snapshot.env, snapshot.random
        return {
            "family": cls.FAMILY,
            "env": plain_fields(snapshot, ("random", "env"), "Environment"),
            "game": plain_fields(game, ("random",), "Environment.env"),
            "random": rs.get_state(legacy=False),
            # MinAtar shares one RandomState between the Environment and its game
            "game_random": None if game.random is rs else game.random.get_state(legacy=False),
        }

    def _snapshot_from_plain(self, i: int, plain: dict[str, Any]) -> Any:
        p = check_plain_snapshot(plain, self.FAMILY, ("env", "game", "random", "game_random"))
        live = self._games[i]
        fields = {}
        for key, obj, skip in (("env", live, {"random", "env"}), ("game", live.env, {"random"})):
            value = p[key]
            want = set(vars(obj)) - skip
            if type(value) is not dict or set(value) != want or not is_plain(value):
                got = sorted(value) if type(value) is dict else type(value).__name__
                raise ValueError(f"MinAtar snapshot {key!r} holds {got}, expected {sorted(want)}")
            fields[key] = value
        if fields["env"]["env_name"] != live.env_name:
            raise ValueError(
                f"MinAtar snapshot of {fields['env']['env_name']!r}, this env is {live.env_name!r}"
            )
        rs = _random_state(p["random"])
        game_rs = rs if p["game_random"] is None else _random_state(p["game_random"])
        game = object.__new__(type(live.env))
        vars(game).update(fields["game"], random=game_rs)
        env = object.__new__(type(live))
        vars(env).update(fields["env"], env=game, random=rs)
        return env

    def _reseed_one(self, i: int, seed: int) -> None:
        # Environment.seed gives the sticky actions and the game one new shared RandomState, as
        # a seeded reset does; the game's fields and the last (sticky) action stay.
        self._games[i].seed(seed % 2**32)


def _random_state(state: Any) -> np.random.RandomState:
    """A ``RandomState`` in ``state`` (``get_state(legacy=False)``); ValueError if it is not one."""
    rs = np.random.RandomState()  # noqa: NPY002 (MinAtar's own generator type)
    try:
        rs.set_state(state)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise ValueError(f"MinAtar snapshot holds no RandomState state: {e}") from e
    return rs
