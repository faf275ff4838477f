"""What the two Q-learners (``aql-train``, ``dqn-train``) share besides :class:`Trainer`: the
replay (uniform, or proportional prioritised with ``--prioritized``), the epsilon-greedy
schedule, the annealed importance-weight exponent, the replay sample of one gradient step and
the priority update after it. Their config flags are
:class:`~qwr_fast.trainers.config.QLearnerConfig`'s."""

from __future__ import annotations

import torch

from qwr_fast.data.prioritized_replay import PrioritizedReplay, annealed_beta
from qwr_fast.data.replay import Replay
from qwr_fast.trainers._common import Trainer

__all__ = ["QLearner"]


class QLearner(Trainer):
    """A :class:`Trainer` with a (possibly prioritised) replay and epsilon-greedy acting."""

    SLICE_FIELD: str | None = None
    """the config field of the replay slice length of one sample (aql-train: ``n_step``);
    None: single transitions"""

    @property
    def env(self):
        """The training vector env (None on a mode-2 learner)."""
        return None if self.collector is None else self.collector.env

    def make_replay(self, *args, **kw) -> Replay | None:
        """The learner's replay (``Replay(*args, **kw)``, prioritised with ``--prioritized``);
        None on an actor rank, which has none."""
        cfg = self.cfg
        if self.world.is_actor:
            return None
        if cfg.prioritized:
            return PrioritizedReplay(*args, alpha=cfg.per_alpha, eps=cfg.per_eps, **kw)
        return Replay(*args, **kw)

    def epsilon(self, step: int | None = None) -> float:
        """Exploration probability at env step ``step`` (default: the current one)."""
        c = self.cfg
        step = self.global_step if step is None else step
        frac = min(1.0, step / max(1.0, c.eps_fraction * c.total_steps))
        return c.eps_start + frac * (c.eps_end - c.eps_start)

    def beta(self) -> float:
        """Importance-weight exponent of prioritised replay at the current step."""
        c = self.cfg
        return annealed_beta(c.per_beta0, self.global_step, c.per_beta_steps or c.total_steps)

    def sample(self) -> tuple:
        """``(replay batch, importance weights, slots)`` of one gradient step (the weights and
        slots None without prioritised replay)."""
        c = self.cfg
        margin = 1 if self.SLICE_FIELD is None else getattr(c, self.SLICE_FIELD)
        if c.prioritized:
            pb = self.replay.sample_prioritized(
                self.local_batch, margin, beta=self.beta(), generator=self.gen
            )
            return pb.batch, pb.weight, pb.index
        # the default generator: the update step lends it the trainer's stream
        return self.replay.sample(self.local_batch, margin), None, None

    def update_priorities(self, out: dict, index: torch.Tensor | None) -> dict:
        """Pop the TD errors ``td_abs`` from the loss dict ``out`` and, with prioritised
        replay (``index`` the sampled slots), make them the slots' new priorities."""
        td_abs = out.pop("td_abs")
        if index is not None:
            self.replay.update_priorities(index, td_abs)
        return out
