"""Neural-network modules built on the fused ops of :mod:`qwr_fast.kernels`."""

from .proposal import AutoregressiveProposal
from .sampled_q import SampledQ, TwinSampledQ

__all__ = ["AutoregressiveProposal", "SampledQ", "TwinSampledQ"]
