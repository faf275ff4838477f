"""Fused ops for sample-based Q-learning (Triton on CUDA, vectorised PyTorch on CPU).

Public API::

    from qwr_fast.kernels import lse_backup, awr_loss, sampled_q_head, QHeadParams, proposal_sample

Every op takes ``backend="auto"|"triton"|"torch"|"reference"`` and is registered as a
``torch.library`` custom op under the ``qwr_fast`` namespace.
"""

import importlib

from ._common import skip_value_checks

_EXPORTS = {
    "lse_backup": "lse_backup",
    "lse_backup_reference": "lse_backup",
    "awr_loss": "awr_loss",
    "awr_loss_reference": "awr_loss",
    "sampled_q_head": "sampled_q_head",
    "sampled_q_head_reference": "sampled_q_head",
    "QHeadParams": "sampled_q_head",
    "proposal_sample": "proposal_sample",
    "proposal_sample_reference": "proposal_sample",
}

__all__ = [*_EXPORTS, "skip_value_checks"]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
