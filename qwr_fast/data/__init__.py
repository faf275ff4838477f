"""Experience: the replay and its prioritised variant, the env-to-replay collector, and the
offline datasets of ``qwr-collect``."""

from qwr_fast.data.collect import Behaviour, Collector, autoreset_mode, make_env
from qwr_fast.data.datasets import (
    DATASET_SCHEMA_VERSION,
    DatasetRecorder,
    dataset_replay,
    load_dataset,
)
from qwr_fast.data.prioritized_replay import (
    PrioritizedBatch,
    PrioritizedReplay,
    SumTree,
    annealed_beta,
)
from qwr_fast.data.replay import Replay, ReplayBatch

__all__ = [
    "DATASET_SCHEMA_VERSION",
    "Behaviour",
    "Collector",
    "DatasetRecorder",
    "PrioritizedBatch",
    "PrioritizedReplay",
    "Replay",
    "ReplayBatch",
    "SumTree",
    "annealed_beta",
    "autoreset_mode",
    "dataset_replay",
    "load_dataset",
    "make_env",
]
