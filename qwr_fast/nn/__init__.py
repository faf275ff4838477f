"""Networks: torsos and the observation normaliser, QWR's policies and critics (the sampled-action
Q evaluated by the fused head), AQL's network and proposal, the planners' blueprints."""

from qwr_fast.nn.actor_critic import ILLEGAL_LOGIT, ActorCritic
from qwr_fast.nn.aql_net import AQLNet
from qwr_fast.nn.dueling_q import DuelingQ, QBlueprint
from qwr_fast.nn.policy import CategoricalPolicy, GaussianPolicy, sample_from_mu
from qwr_fast.nn.proposal import AutoregressiveProposal
from qwr_fast.nn.sampled_q import SampledQ
from qwr_fast.nn.torsos import RunningNorm, full_precision, make_body, share_first_layer
from qwr_fast.nn.value import StateValue

__all__ = [
    "ILLEGAL_LOGIT",
    "AQLNet",
    "ActorCritic",
    "AutoregressiveProposal",
    "CategoricalPolicy",
    "DuelingQ",
    "GaussianPolicy",
    "QBlueprint",
    "RunningNorm",
    "SampledQ",
    "StateValue",
    "full_precision",
    "make_body",
    "sample_from_mu",
    "share_first_layer",
]
