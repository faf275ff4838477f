"""Fused ops for sample-based Q-learning (Triton on CUDA, vectorised PyTorch on CPU).

Public API::

    from qwr_fast.kernels import lse_backup, awr_loss, sampled_q_head, QHeadParams, proposal_sample

Every op takes ``backend="auto"|"triton"|"torch"|"reference"``, validates its inputs, and is
registered as a ``torch.library`` custom op under the ``qwr_fast`` namespace. The function
names shadow their module names on this package; import a module's internals with
``from qwr_fast.kernels.<op> import ...``.
"""

from ._common import skip_value_checks
from .awr_loss import awr_loss, awr_loss_reference
from .lse_backup import lse_backup, lse_backup_reference
from .proposal_sample import proposal_sample, proposal_sample_reference
from .sampled_q_head import QHeadParams, sampled_q_head, sampled_q_head_reference

__all__ = [
    "QHeadParams",
    "awr_loss",
    "awr_loss_reference",
    "lse_backup",
    "lse_backup_reference",
    "proposal_sample",
    "proposal_sample_reference",
    "sampled_q_head",
    "sampled_q_head_reference",
    "skip_value_checks",
]
