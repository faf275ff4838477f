"""MCTS baseline of Fickinger et al. (NeurIPS 2021, section 5): PUCT guided by the blueprint
policy with the prior term ``c * pi(a|s)^beta * sqrt(sum_b N(s, b)) / (1 + N(s, a))`` (c=5,
beta=0.1), the blueprint value at every new node and at the depth limit (100), on cloned
env states, with batched leaf evaluation.

Each batch selects ``W = sim.num_envs`` paths with virtual loss (a pending visit counts as a
visit of return 0), expands their leaf edges by restoring the parents' snapshots into the W
sim envs and stepping them together (W env steps; envs without a distinct leaf repeat the
first one), evaluates every new node with one blueprint call, and backs the returns up. Q of
an unvisited edge is 0 (the paper's equation 8 uses raw Q). The move is the most-visited root
action (ties: higher Q, then lower index).

Chance: every expansion restores its parents with fresh chance drawn from the planner's
generator (``qwr_fast.planners.core.restore``), so in a stochastic env the child of an edge is
one sampled outcome of it, not the outcome the real env will draw; ``oracle_chance=True``
restores the snapshots exactly (the search then sees the real env's next chance events).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from qwr_fast.checks import check_fields
from qwr_fast.planners.core import Planner, SearchResult, obs_tensor, restore

__all__ = ["MCTSConfig", "MCTS", "Node"]


@dataclass(frozen=True)
class MCTSConfig:
    """c, beta: the prior term; max_depth: nodes this deep are leaves valued by the blueprint;
    gamma: discount."""

    c: float = 5.0
    beta: float = 0.1
    max_depth: int = 100
    gamma: float = 0.99

    def __post_init__(self) -> None:
        check_fields(self, "c beta", ">= 0", flags=False)
        check_fields(self, "max_depth", ">= 1", flags=False)
        check_fields(self, "gamma", "[0, 1]", flags=False)


class Node:
    """A search node: its env snapshot, blueprint prior ``[K]`` and value, edge statistics
    ``N[K]`` (visits), ``W[K]`` (summed returns), ``R[K]`` (rewards) and children."""

    __slots__ = ("state", "prior", "value", "depth", "terminal", "N", "W", "V", "R", "children")

    def __init__(self, state, prior: np.ndarray, value: float, depth: int, terminal: bool):
        K = len(prior)
        self.state, self.prior, self.value = state, prior, value
        self.depth, self.terminal = depth, terminal
        self.N = np.zeros(K, dtype=np.int64)
        self.V = np.zeros(K, dtype=np.int64)  # pending (virtual) visits
        self.W = np.zeros(K)
        self.R = np.zeros(K)
        self.children: list[Node | None] = [None] * K


class MCTS(Planner):
    """PUCT search from a root snapshot; see the module docstring."""

    CONFIG = MCTSConfig

    @property
    def min_search_steps(self) -> int:
        """One batch of expansions: ``sim.num_envs``."""
        return self.sim.num_envs

    def reset(self) -> None:
        """Start of a new episode (the tree is rebuilt every move)."""
        self.root = None

    def _select(self, node: Node, legal: np.ndarray | None) -> int:
        c = self.cfg
        n = node.N + node.V
        q = np.where(n > 0, node.W / np.maximum(n, 1), 0.0)
        total = n.sum()
        if total == 0:
            score = node.prior.copy()
        else:
            score = q + c.c * node.prior**c.beta * math.sqrt(total) / (1 + n)
        if legal is not None:
            score = np.where(legal, score, -np.inf)
        return int(np.argmax(score))

    @torch.no_grad()
    def _evaluate(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, value = self.blueprint(obs_tensor(obs))
        return torch.softmax(logits, -1).double().numpy(), value.double().numpy()

    @torch.no_grad()
    def _search(self, root, obs, budget, legal, generator, t0: float) -> SearchResult:
        """One PUCT search from ``root``; ``generator`` draws the chance of every expansion
        (unused with ``oracle_chance``, where the search is deterministic given the root)."""
        K, W, c = self.num_actions, self.sim.num_envs, self.cfg
        if legal is not None:
            legal = np.asarray(legal, dtype=bool)
            if legal.shape != (K,) or not legal.any():
                raise ValueError(f"legal must be a bool [{K}] mask with a True entry")
        prior, value = self._evaluate(np.asarray(obs)[None])
        self.root = tree = Node(root, prior[0], float(value[0]), 0, False)
        used = 0
        while budget.allows(used, W, t0):
            paths: list[list[tuple[Node, int]]] = []
            frontier: dict[tuple[int, int], tuple[Node, int]] = {}
            for _ in range(W):
                node, path = tree, []
                while True:
                    a = self._select(node, legal if node is tree else None)
                    path.append((node, a))
                    node.V[a] += 1
                    child = node.children[a]
                    if child is None:
                        frontier.setdefault((id(node), a), (node, a))
                        break
                    if child.terminal or child.depth >= c.max_depth:
                        break
                    node = child
                paths.append(path)
            if frontier:
                used += self._expand(list(frontier.values()), self._chance(generator))
            for path in paths:
                node, a = path[-1]
                child = node.children[a]
                g = child.value
                for node, a in reversed(path):
                    g = node.R[a] + c.gamma * g
                    node.V[a] -= 1
                    node.N[a] += 1
                    node.W[a] += g
            if not frontier:
                break  # every selected path ends at a valued leaf: the tree is exhausted
        n = tree.N
        q = np.where(n > 0, tree.W / np.maximum(n, 1), np.nan)
        cand = np.flatnonzero(legal) if legal is not None else np.arange(K)
        order = sorted(cand.tolist(), key=lambda a: (-n[a], -np.nan_to_num(q[a], nan=-np.inf), a))
        return SearchResult(
            action=int(order[0]) if n.sum() > 0 else int(cand[np.argmax(tree.prior[cand])]),
            env_steps=used,
            grad_steps=0,
            wall_s=time.perf_counter() - t0,
            adopted=bool(n.sum() > 0),
            action_values=q,
            visit_counts=n.copy(),
        )

    def _expand(self, edges: list[tuple[Node, int]], reseed: int | None) -> int:
        """Step the W sim envs from the parents of ``edges`` (padded by repeating the first);
        ``reseed``: the chance of the restores (distinct per sim env), None to restore
        exactly."""
        sim, W = self.sim, self.sim.num_envs
        slots = [edges[k] if k < len(edges) else edges[0] for k in range(W)]
        for i, (node, _) in enumerate(slots):
            restore(sim, node.state, i, reseed=reseed)
        actions = np.array([a for _, a in slots], dtype=np.int64)
        obs, r, term, trunc, info = sim.step(actions)
        end = term | trunc
        leaf_obs = info.get("final_obs", obs)
        prior, value = self._evaluate(leaf_obs[: len(edges)])
        for i, (node, a) in enumerate(edges):
            v = 0.0 if term[i] else float(value[i])
            state = None if end[i] else sim.get_state(i)
            node.children[a] = Node(state, prior[i], v, node.depth + 1, bool(end[i]))
            node.R[a] = float(r[i])
        return W
