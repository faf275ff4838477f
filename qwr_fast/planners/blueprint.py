"""The no-search planner: the blueprint's own action (sampled, or argmax with ``greedy``)."""

from __future__ import annotations

import time

import torch

from qwr_fast.planners.core import (
    Blueprint,
    Planner,
    SearchResult,
    mask_illegal,
    obs_tensor,
    pick,
)

__all__ = ["BlueprintPlanner"]


class BlueprintPlanner(Planner):
    """Plays the blueprint; uses no env step and no gradient step (``root`` and ``budget`` may
    be None)."""

    needs_root = False

    def __init__(self, blueprint: Blueprint, sim=None, *, greedy: bool = False) -> None:
        super().__init__(blueprint, sim)
        self.greedy = greedy

    @torch.no_grad()
    def _search(self, root, obs, budget, legal, generator, t0: float) -> SearchResult:
        logits = mask_illegal(self.blueprint(obs_tensor(obs[None]))[0], legal)
        action = int(pick(logits, greedy=self.greedy, generator=generator)[0])
        return SearchResult(action, 0, 0, time.perf_counter() - t0, False)
