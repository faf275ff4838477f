"""The no-search planner: the blueprint's own action (sampled, or argmax with ``greedy``)."""

from __future__ import annotations

import time

import numpy as np
import torch

from qwr_fast.envs import EnvState
from qwr_fast.planners.core import Blueprint, Budget, SearchResult, obs_tensor, pick

__all__ = ["BlueprintPlanner"]


class BlueprintPlanner:
    """Plays the blueprint; uses no env step and no gradient step."""

    def __init__(self, blueprint: Blueprint, sim=None, *, greedy: bool = False) -> None:
        self.blueprint, self.greedy = blueprint, greedy

    def reset(self) -> None:
        """Start of a new episode (no state)."""

    @torch.no_grad()
    def plan(
        self,
        root: EnvState | None,
        obs: np.ndarray,
        budget: Budget | None = None,
        *,
        legal: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> SearchResult:
        t0 = time.perf_counter()
        logits = self.blueprint(obs_tensor(np.asarray(obs)[None]))[0]
        if legal is not None:
            logits = logits.masked_fill(~torch.as_tensor(legal, dtype=torch.bool), -torch.inf)
        action = int(pick(logits, greedy=self.greedy, generator=generator)[0])
        return SearchResult(action, 0, 0, time.perf_counter() - t0, False)
