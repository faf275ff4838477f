"""Decision-time planners (Fickinger et al., "Scalable Online Planning via RL Fine-Tuning",
NeurIPS 2021, arXiv 2109.15316), in the spirit of DeepMind's mctx: typed, frozen
configs and results, budgets counted the same way for every planner.

Every planner has ``plan(root, obs, budget, *, legal=None, generator=None) -> SearchResult``
and ``reset()`` (new episode): ``root`` is a 1-env snapshot ``env.get_state(i)`` of the real
env, searched on the planner's own ``sim`` env (same id and config); the real env is never
touched. Planners: :class:`BlueprintPlanner` (no search), :class:`Sparta` (1-ply Monte Carlo),
:class:`MCTS` (PUCT with the paper's prior term), :class:`PolicyFineTune` (Algorithm 1 with
:func:`acceptance_test`), :class:`QFineTune` (Algorithm 2, on a ``dqn-train`` blueprint,
:func:`qwr_fast.blueprints.load_q_blueprint`).
"""

from qwr_fast.planners.blueprint import BlueprintPlanner
from qwr_fast.planners.core import (
    AmortisedPlanner,
    Blueprint,
    Budget,
    Planner,
    SearchResult,
    rollout_returns,
)
from qwr_fast.planners.mcts import MCTS, MCTSConfig
from qwr_fast.planners.policy_ft import (
    AcceptanceResult,
    PolicyFineTune,
    PolicyFineTuneConfig,
    SeatPolicy,
    acceptance_test,
    finetune_policy,
)
from qwr_fast.planners.q_ft import QFineTune, QFineTuneConfig
from qwr_fast.planners.sparta import Sparta, SpartaConfig

__all__ = [
    "AcceptanceResult",
    "AmortisedPlanner",
    "Blueprint",
    "BlueprintPlanner",
    "Budget",
    "MCTS",
    "MCTSConfig",
    "Planner",
    "PolicyFineTune",
    "PolicyFineTuneConfig",
    "QFineTune",
    "QFineTuneConfig",
    "SearchResult",
    "SeatPolicy",
    "Sparta",
    "SpartaConfig",
    "acceptance_test",
    "finetune_policy",
    "rollout_returns",
]
