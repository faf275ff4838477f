"""Fused ops for sample-based Q-learning (Triton on CUDA, vectorised PyTorch on CPU).

Public API::

    from qwr_fast.kernels import lse_backup, awr_loss, sampled_q_head, QHeadParams, proposal_sample

Every op takes ``backend="auto"|"triton"|"torch"|"reference"``, validates its inputs, and is
registered as a ``torch.library`` custom op under the ``qwr_fast`` namespace. The function
names shadow their module names on this package; import a module's internals with
``from qwr_fast.kernels.<op> import ...``. The helpers the front end builds on (backend
dispatch, input and value checks, the bf16 probe, the head's LayerNorm epsilon) are exported
here too, so nothing outside the package imports its private ``_common`` module.
"""

from ._common import (
    check_tensor,
    resolve_backend,
    skip_value_checks,
    value_checks_enabled,
    warn_if_bf16_emulated,
)
from .awr_loss import awr_loss, awr_loss_reference
from .lse_backup import lse_backup, lse_backup_reference
from .proposal_sample import proposal_sample, proposal_sample_reference
from .sampled_q_head import LN_EPS, QHeadParams, sampled_q_head, sampled_q_head_reference

__all__ = [
    "LN_EPS",
    "QHeadParams",
    "awr_loss",
    "awr_loss_reference",
    "check_tensor",
    "lse_backup",
    "lse_backup_reference",
    "proposal_sample",
    "proposal_sample_reference",
    "resolve_backend",
    "sampled_q_head",
    "sampled_q_head_reference",
    "skip_value_checks",
    "value_checks_enabled",
    "warn_if_bf16_emulated",
]
