"""qwr_fast: sample-based Q-learning (QWR, AQL) and decision-time planning with fused ops.

Layers, lowest first (data flows one way): ``qwr_fast.kernels`` (fused ops) and
``qwr_fast.envs`` (vector environments) -> ``qwr_fast.nn`` (modules) -> losses, trainers,
planners.
"""

__version__ = "0.1.0"
