"""SPARTA baseline, single-agent 1-ply (Lerer et al., "Improving Policies via Search in
Cooperative Partially Observable Games", AAAI 2020, arXiv 1912.02318):
Monte-Carlo value of every legal root action with blueprint play afterwards; deviate from the
blueprint's action only if the best action is better by more than ``epsilon``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from qwr_fast.checks import check_fields
from qwr_fast.envs import EnvState
from qwr_fast.planners.core import (
    Planner,
    SearchResult,
    obs_tensor,
    pick,
    rollout_returns,
)

__all__ = ["SpartaConfig", "Sparta"]


@dataclass(frozen=True)
class SpartaConfig:
    """horizon: steps per rollout (root action included) before the blueprint value
    bootstraps; gamma: discount; epsilon: deviation threshold on the Monte-Carlo means; z:
    also require the difference to exceed ``z`` standard errors of the difference of the two
    means (0: off; with few rollouts per action and many actions, the largest of the noisy
    means is biased upwards, and ``z`` ~ 2 keeps SPARTA from deviating on noise); greedy: the
    blueprint plays (and names its own action) by argmax instead of sampling; paired: with a
    root of belief samples, compare the actions on the same sample per round (False: the
    rollouts of a round go to different samples, as with a single root)."""

    horizon: int = 30
    gamma: float = 0.99
    epsilon: float = 0.05
    greedy: bool = False
    z: float = 0.0
    paired: bool = True

    def __post_init__(self) -> None:
        check_fields(self, "horizon", ">= 1", flags=False)
        check_fields(self, "gamma", "[0, 1]", flags=False)
        check_fields(self, "epsilon z", ">= 0", flags=False)


class Sparta(Planner):
    """1-ply Monte-Carlo search over the root actions.

    ``sim.num_envs`` must be at least the number of legal actions L: each batch (a "round")
    gives the legal actions the ``sim.num_envs`` rollouts in turn (``W // L`` or one more each)
    and costs ``sim.num_envs * horizon`` steps at most; rounds run while the budget allows one
    more, and the round-robin continues across rounds so that counts stay within one. With a
    root of belief samples, each round instead evaluates every legal action on one sample (the
    next one), so that the actions are compared on the same worlds (paired).
    """

    CONFIG = SpartaConfig

    @property
    def min_search_steps(self) -> int:
        """One round: ``sim.num_envs * horizon``."""
        return self.sim.num_envs * self.cfg.horizon

    def _rollouts(self, root, first: np.ndarray, generator, reseed) -> tuple[np.ndarray, int]:
        """One round: ``first[w]`` then blueprint play in sim env w, blueprint value at H."""
        c = self.cfg
        return rollout_returns(
            self.sim,
            root,
            self.blueprint,
            horizon=c.horizon,
            gamma=c.gamma,
            bootstrap=self.blueprint,
            first_actions=first,
            greedy=c.greedy,
            generator=generator,
            reseed=reseed,
        )

    def _plan_paired(self, root, actions, a_bp, budget, t0, generator) -> SearchResult:
        """Belief roots (``root`` holds S samples): round r rolls every legal action out from
        the same sample ``r mod S`` with the same chance stream (common random numbers: one
        fresh word for the whole round, or the sample's own stream with ``oracle_chance``), so
        the actions are compared on paired worlds; ``z`` uses the standard error of the paired
        differences."""
        K, W, c = self.num_actions, self.sim.num_envs, self.cfg
        first = actions[np.arange(W) % len(actions)]
        per_round: list[np.ndarray] = []
        used = 0
        while budget.allows(used, W * c.horizon, t0):
            pick_one = np.full(W, len(per_round) % root.num_envs)
            world = EnvState(root.config, {k: v[pick_one] for k, v in root.arrays.items()})
            word = self._chance(generator)
            reseed = None if word is None else [word] * W
            ret, steps = self._rollouts(world, first, generator, reseed)
            used += steps
            total = np.zeros(K)
            count = np.zeros(K)
            np.add.at(total, first, ret)
            np.add.at(count, first, 1)
            with np.errstate(invalid="ignore"):
                per_round.append(total / count)  # NaN for the illegal actions
        R = len(per_round)
        count = np.zeros(K, dtype=np.int64)
        np.add.at(count, first, R)
        q = np.full(K, np.nan)
        table = np.stack(per_round) if R else np.empty((0, K))  # [R, K]
        if R:
            q[actions] = table[:, actions].mean(0)

        def se_diff(best: int) -> float:
            d = table[:, best] - table[:, a_bp]
            return float(d.std(ddof=1) / np.sqrt(R)) if R > 1 else np.inf

        return self._decide(q, actions, a_bp, se_diff, used, count, t0)

    def _decide(self, q, actions, a_bp, se_diff, used, count, t0) -> SearchResult:
        """Deviate to the best legal action when it beats the blueprint's ``a_bp`` by
        ``epsilon`` plus ``z`` times ``se_diff(best)``, the standard error of the difference."""
        c = self.cfg
        action, adopted = a_bp, False
        if not np.isnan(q[a_bp]):
            best = int(actions[np.argmax(q[actions])])
            margin = c.epsilon + (c.z * se_diff(best) if c.z > 0 else 0.0)
            if best != a_bp and q[best] - q[a_bp] > margin:
                action, adopted = best, True
        return SearchResult(
            action=action,
            env_steps=used,
            grad_steps=0,
            wall_s=time.perf_counter() - t0,
            adopted=adopted,
            action_values=q,
            visit_counts=count,
        )

    @torch.no_grad()
    def _search(self, root, obs, budget, legal, generator, t0: float) -> SearchResult:
        """One SPARTA decision: Monte-Carlo values of the legal root actions."""
        K, W, c = self.num_actions, self.sim.num_envs, self.cfg
        legal = np.ones(K, dtype=bool) if legal is None else np.asarray(legal, dtype=bool)
        if legal.shape != (K,) or not legal.any():
            raise ValueError(f"legal must be a bool [{K}] mask with a True entry, got {legal}")
        actions = np.flatnonzero(legal)
        if len(actions) > W:
            raise ValueError(
                f"sim.num_envs ({W}) must be at least the number of legal actions ({len(actions)})"
            )
        logits = self.blueprint(obs_tensor(obs[None]))[0][0]
        logits = logits.masked_fill(torch.as_tensor(~legal), -torch.inf)
        a_bp = int(pick(logits[None], greedy=c.greedy, generator=generator)[0])
        if root.num_envs > 1 and c.paired:
            return self._plan_paired(root, actions, a_bp, budget, t0, generator)
        total = np.zeros(K)
        total_sq = np.zeros(K)
        count = np.zeros(K, dtype=np.int64)
        used = rounds = 0
        while budget.allows(used, W * c.horizon, t0):
            first = actions[(np.arange(W) + rounds * W) % len(actions)]
            rounds += 1
            ret, steps = self._rollouts(root, first, generator, self._chance(generator))
            used += steps
            np.add.at(total, first, ret)
            np.add.at(total_sq, first, ret**2)
            np.add.at(count, first, 1)
        q = np.full(K, np.nan)
        q[count > 0] = total[count > 0] / count[count > 0]

        def se_diff(best: int) -> float:
            n = np.maximum(count[[best, a_bp]], 1)
            var = np.maximum(total_sq[[best, a_bp]] / n - q[[best, a_bp]] ** 2, 0.0)
            # squared standard error of each mean: population variance / (n - 1); one rollout
            # leaves it unknown (infinite: no deviation)
            se2 = np.where(n > 1, var / np.maximum(n - 1, 1), np.inf)
            return float(np.sqrt(se2.sum()))

        return self._decide(q, actions, a_bp, se_diff, used, count, t0)
