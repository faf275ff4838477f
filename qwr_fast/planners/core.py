"""Types and rollouts shared by the planners: the blueprint interface, budgets, results.

A planner searches from a snapshot of the real environment (``root``, a 1-env ``EnvState``
from ``env.get_state(i)``) on its own simulation env ``sim`` (same id and config, ``W`` envs:
the rollouts of one batch step together). The real env is never touched.

Chance: a snapshot holds the env's RNG, so an exact restore would replay the chance events
(sticky actions, spawns, card draws) that the real env is about to draw: a planner would plan
with foresight that no real player has. Every restore in a search therefore goes through
:func:`restore` with a fresh chance stream (``set_state(..., reseed=word)``) whose word the
planner draws from its own ``generator`` (:func:`chance_word`); rows of one restore get
distinct streams. ``oracle_chance=True`` (a planner constructor argument, ``qwr-search
--oracle-chance``) keeps the exact restore for a user who wants a deterministic simulator of
the real env. In a game of imperfect
information the root may instead hold ``W`` envs, one belief sample per rollout (e.g.
``HanabiVectorEnv.belief_states(i, W, rng)``); every rollout of a batch then starts from its
own sample.

Budgets are counted in env steps of ``sim`` (every env of a batch step counts, also one whose
rollout already ended) and/or wall-clock seconds; a planner starts a unit of work (a batch of
rollouts, an update) only if its whole cost fits the step budget, so ``env_steps <= budget``
always holds exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from qwr_fast.envs import EnvState
from qwr_fast.nn.torsos import obs_tensor

__all__ = [
    "AmortisedPlanner",
    "Blueprint",
    "Planner",
    "Budget",
    "SearchResult",
    "chance_word",
    "check_root",
    "mask_illegal",
    "obs_tensor",
    "pick",
    "restore",
    "rollout_returns",
]


class Blueprint(Protocol):
    """A network ``obs[B, *O] -> (logits[B, K], value[B])`` (e.g. the PPO ``ActorCritic``)."""

    def __call__(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class Budget:
    """Search budget per planning call: at most ``env_steps`` sim env steps and/or about
    ``seconds`` of wall time (a unit of work starts only while time is left). At least one of
    the two must be given."""

    env_steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.env_steps is None and self.seconds is None:
            raise ValueError("Budget needs env_steps and/or seconds, got neither")
        if self.env_steps is not None and (
            isinstance(self.env_steps, bool) or not isinstance(self.env_steps, (int, np.integer))
        ):
            raise TypeError(f"env_steps must be an int, got {type(self.env_steps).__name__}")
        if self.env_steps is not None and self.env_steps < 0:
            raise ValueError(f"env_steps must be >= 0, got {self.env_steps}")
        if self.seconds is not None and not self.seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {self.seconds}")

    def allows(self, used: int, cost: int, t0: float) -> bool:
        """Whether a unit costing ``cost`` steps may start after ``used`` steps (timer ``t0``)."""
        if self.env_steps is not None and used + cost > self.env_steps:
            return False
        return self.seconds is None or time.perf_counter() - t0 < self.seconds


@dataclass(frozen=True)
class SearchResult:
    """What one planning call returns.

    action: the action to play now (int in ``[0, K)``).
    env_steps: sim env steps this call used (0 on an amortised move).
    grad_steps: gradient steps this call took.
    wall_s: wall time of the call in seconds.
    adopted: True when the searched choice replaced the blueprint (SPARTA deviated, a
        fine-tuned policy passed the acceptance test, MCTS chose by visit counts).
    action_values: ``[K]`` float64 value estimates of the root actions (SPARTA: Monte-Carlo
        means, MCTS: root Q; NaN where unknown), or None.
    visit_counts: ``[K]`` int64 root visit counts (MCTS) or rollouts per action (SPARTA), or
        None.
    """

    action: int
    env_steps: int
    grad_steps: int
    wall_s: float
    adopted: bool
    action_values: np.ndarray | None = None
    visit_counts: np.ndarray | None = None


def pick(logits: torch.Tensor, *, greedy: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Actions ``[B]`` from ``logits[B, K]``: argmax, or a sample."""
    if greedy:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)


def chance_word(generator: torch.Generator | None, *, oracle_chance: bool) -> int | None:
    """The ``reseed`` of one restore: a fresh 62-bit word drawn from the planner's
    ``generator`` (None: torch's global generator), or None (exact restore, the real env's own
    chance stream) when ``oracle_chance``."""
    if oracle_chance:
        return None
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def restore(sim, state: EnvState, indices=None, *, reseed) -> np.ndarray:
    """``sim.set_state(state, indices, reseed=reseed)``: load ``state`` into all envs of ``sim``
    (or ``indices``) and return their obs; ``reseed`` None restores exactly, an int or one int
    per restored row gives fresh chance (the ``qwr_fast.envs`` contract)."""
    if reseed is None:
        return sim.set_state(state, indices)
    try:
        return sim.set_state(state, indices, reseed=reseed)
    except TypeError as e:
        if "reseed" not in str(e):
            raise
        raise TypeError(
            f"sim {type(sim).__name__}.set_state takes no reseed= argument, so a search on it "
            "would replay the real env's future chance; give it one (see qwr_fast.envs) or "
            "construct the planner with oracle_chance=True (qwr-search --oracle-chance)"
        ) from e


def check_root(root: EnvState, sim) -> None:
    if not isinstance(root, EnvState):
        raise TypeError(f"root must be a 1-env EnvState (env.get_state(i)), got {type(root)}")
    if root.num_envs not in (1, sim.num_envs):
        raise ValueError(
            f"root must hold 1 env (a snapshot) or sim.num_envs = {sim.num_envs} envs (belief "
            f"samples), got {root.num_envs}"
        )
    if root.config != sim.get_state(0).config:
        raise ValueError(f"root was taken from {root.config}; sim is {sim.get_state(0).config}")


@torch.no_grad()
def rollout_returns(
    sim,
    root: EnvState,
    policy: Blueprint,
    *,
    horizon: int,
    gamma: float,
    bootstrap: Blueprint | None,
    first_actions: np.ndarray | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    reseed,
) -> tuple[np.ndarray, int]:
    """Discounted returns ``[W]`` of ``W = sim.num_envs`` rollouts of at most ``horizon`` steps
    from ``root`` (one snapshot cloned W times, or W belief samples), and the env steps used.

    Step 0 plays ``first_actions[W]`` if given, then ``policy``; an episode that ends stops
    its rollout (a truncation adds ``gamma^(t+1) V(final_obs)``); rollouts still running after
    ``horizon`` steps add ``gamma^H V(s_H)`` from ``bootstrap`` (None: no bootstrap). The
    batch stops early once every rollout has ended. ``reseed`` (required, so that no caller
    replays the real env's chance by accident): the chance of the restore, as in
    :func:`restore` (e.g. :func:`chance_word`; None: the root's own stream, exactly).
    """
    W = sim.num_envs
    obs = restore(sim, root, reseed=reseed)
    ret = np.zeros(W)
    alive = np.ones(W, dtype=bool)
    disc = 1.0
    steps = 0
    for t in range(horizon):
        if t == 0 and first_actions is not None:
            a = np.asarray(first_actions, dtype=np.int64)
        else:
            a = pick(policy(obs_tensor(obs))[0], greedy=greedy, generator=generator).numpy()
        obs, r, term, trunc, info = sim.step(a)
        steps += W
        ret += alive * disc * r
        disc *= gamma
        cut = alive & trunc & ~term
        if bootstrap is not None and cut.any():
            ret += cut * disc * bootstrap(obs_tensor(info["final_obs"]))[1].numpy()
        alive &= ~(term | trunc)
        if not alive.any():
            return ret, steps
    if bootstrap is not None:
        ret += alive * disc * bootstrap(obs_tensor(obs))[1].numpy()
    return ret, steps


def mask_illegal(x: torch.Tensor, legal: np.ndarray | None) -> torch.Tensor:
    """``x[..., K]`` (logits or Q) with the actions that ``legal[K]`` (bool) marks illegal at
    ``-inf``; ``x`` itself when ``legal`` is None."""
    if legal is None:
        return x
    return x.masked_fill(~torch.as_tensor(legal, dtype=torch.bool), -torch.inf)


class Planner:
    """What every planner is: ``plan(root, obs, budget, *, legal, generator)`` on its own
    simulation env ``sim``, and ``reset()`` at the start of an episode. ``plan`` starts the
    timer, checks the root and hands over to the subclass's ``_search`` (which returns the
    :class:`SearchResult`). Restores draw fresh chance from ``generator`` unless
    ``oracle_chance`` (see the module docstring)."""

    needs_root = True
    CONFIG: type | None = None
    """the planner's config dataclass; ``cfg=None`` means its defaults"""

    def __init__(self, blueprint, sim, cfg=None, *, oracle_chance: bool = False) -> None:
        if not isinstance(oracle_chance, bool):
            raise TypeError(f"oracle_chance must be a bool, got {type(oracle_chance).__name__}")
        if cfg is None and self.CONFIG is not None:
            cfg = self.CONFIG()
        self.blueprint, self.sim, self.cfg = blueprint, sim, cfg
        self.oracle_chance = oracle_chance
        self.num_actions = None if sim is None else int(sim.single_action_space.n)
        self.reset()

    def reset(self) -> None:
        """Start of a new episode (no state by default)."""

    @property
    def min_search_steps(self) -> int:
        """Sim env steps that one search needs at the least; a step budget below it does no
        search and plays the blueprint (0: this planner does not search)."""
        return 0

    def plan(
        self,
        root: EnvState | None,
        obs: np.ndarray,
        budget: Budget | None = None,
        *,
        legal: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> SearchResult:
        """Search from ``root`` (a snapshot of the real env whose observation is ``obs[*O]``)
        within ``budget``; ``legal[K]`` (bool) masks the root's illegal actions."""
        t0 = time.perf_counter()
        if self.needs_root:
            check_root(root, self.sim)
        return self._search(root, np.asarray(obs), budget, legal, generator, t0)

    def _search(self, root, obs, budget, legal, generator, t0: float) -> SearchResult:
        raise NotImplementedError

    def _chance(self, generator: torch.Generator | None) -> int | None:
        """The ``reseed`` of the next restore (:func:`chance_word` with this planner's mode)."""
        return chance_word(generator, oracle_chance=self.oracle_chance)


class AmortisedPlanner(Planner):
    """A planner that searches every ``cfg.replan_every`` moves for a network (the policy or Q
    it fine-tuned, or the blueprint when the search was not adopted) and plays that network
    in between (policy and Q-value fine-tuning). Subclasses give ``_finetune`` (the search)
    and ``_act`` (one move of a network)."""

    @property
    def min_search_steps(self) -> int:
        """One batch of ``W * horizon`` fine-tuning rollouts plus the acceptance test's
        ``2 * accept_rounds`` batches."""
        return self.sim.num_envs * self.cfg.horizon * (1 + 2 * self.cfg.accept_rounds)

    def reset(self) -> None:
        """Start of a new episode: drop the network of the previous search."""
        self._net = None
        self._left = 0
        self._adopted = False

    def _search(self, root, obs, budget, legal, generator, t0: float) -> SearchResult:
        used = grads = 0
        if self._left == 0 or self._net is None:
            self._net, used, grads, self._adopted = self._finetune(root, obs, budget, generator, t0)
            self._left = self.cfg.replan_every
        action, values = self._act(self._net, obs, legal, generator)
        self._left -= 1
        return SearchResult(
            action=action,
            env_steps=used,
            grad_steps=grads,
            wall_s=time.perf_counter() - t0,
            adopted=self._adopted,
            action_values=values,
        )

    def _finetune(self, root, obs, budget, generator, t0: float):
        """``(network to play, env steps, gradient steps, adopted)``."""
        raise NotImplementedError

    def _act(self, net, obs, legal, generator) -> tuple[int, np.ndarray | None]:
        """``(action, root action values or None)`` of ``net`` at ``obs``."""
        raise NotImplementedError
