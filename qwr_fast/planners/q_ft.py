"""RL Q-value fine-tuning at decision time (Fickinger et al., NeurIPS 2021, Algorithm 2).

From the current state s*: M = rounds x ``sim.num_envs`` epsilon-greedy rollouts (w.r.t. the
blueprint Q) of H steps from clones of s*; in every rollout still running after H steps the
last reward becomes ``r + gamma * max_a Q_bp(s_H, a)`` and the step is treated as final; a
truncation inside the rollout bootstraps the same way from the final observation. Then N
double-Q Huber updates of a copy of the blueprint, each on a batch whose transitions come
with probability p from the blueprint's global replay and 1 - p from the new rollouts, with a
target network synced every ``target_every`` updates. The fine-tuned Q plays greedily; with
``accept_rounds`` > 0 it is adopted only if it beats the greedy blueprint by ``epsilon`` on
fresh rollouts (:func:`qwr_fast.planners.acceptance_test`).

Envs whose observations carry a legal-action mask (``sim.action_mask_slice``, Hanabi): the
rollouts' greedy and exploring actions, the bootstrap maxima, the double-Q targets and both
policies of the acceptance test range over the legal actions only. In a multi-player game
(``sim.seat_slice``) the acceptance test and play use the fine-tuned Q on the searching
player's seat only, the blueprint on the others (single-agent search); the fine-tuning data
are every seat's rollout transitions.

Rollouts take env steps from the budget; the N updates (``updates``) do not, but they stop
early when a seconds budget runs out.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from qwr_fast.actions import legal_actions
from qwr_fast.checks import check_fields
from qwr_fast.data.replay import Replay
from qwr_fast.envs import EnvState
from qwr_fast.nn.dueling_q import QBlueprint
from qwr_fast.objectives.dqn import double_q_loss
from qwr_fast.planners.core import AmortisedPlanner, Budget, mask_illegal, obs_tensor, restore
from qwr_fast.planners.policy_ft import SeatPolicy, acceptance_test

__all__ = ["QFineTuneConfig", "QFineTune"]


@dataclass(frozen=True)
class QFineTuneConfig:
    """horizon: H; explore: epsilon of the rollouts; updates: N gradient steps; batch_size:
    B; p_global: probability of drawing a transition from the global replay; lr: Adam step;
    target_every: updates between target syncs; accept_rounds / epsilon: acceptance test
    (0 rounds: adopt without a test); replan_every: moves played per search."""

    horizon: int = 10
    explore: float = 0.1
    updates: int = 200
    batch_size: int = 32
    p_global: float = 0.5
    lr: float = 1e-4
    target_every: int = 50
    gamma: float = 0.99
    accept_rounds: int = 1
    epsilon: float = 0.0
    replan_every: int = 1

    def __post_init__(self) -> None:
        check_fields(self, "horizon batch_size target_every replan_every", ">= 1", flags=False)
        check_fields(self, "updates accept_rounds", ">= 0", flags=False)
        check_fields(self, "explore p_global", "[0, 1]", flags=False)


class QFineTune(AmortisedPlanner):
    """The Q-value fine-tuning planner; the blueprint maps ``obs[B, *O] -> Q[B, K]``. Every
    ``replan_every`` moves it fine-tunes a copy from ``root`` and plays the adopted Q-network
    (or the blueprint) greedily until the next search."""

    CONFIG = QFineTuneConfig

    def __init__(
        self,
        blueprint_q: torch.nn.Module,
        sim,
        cfg: QFineTuneConfig | None = None,
        *,
        replay: Replay | None = None,
        oracle_chance: bool = False,
    ) -> None:
        super().__init__(blueprint_q, sim, cfg, oracle_chance=oracle_chance)
        self.replay = replay
        self.mask_slice: slice | None = getattr(sim, "action_mask_slice", None)

    def greedy_q(self, q: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` Q-values of ``q`` at ``obs``, illegal actions at ``-inf``."""
        values = q(obs)
        legal = legal_actions(obs, self.mask_slice)
        return values if legal is None else values.masked_fill(~legal, -torch.inf)

    @torch.no_grad()
    def _collect(
        self, root: EnvState, rng: np.random.Generator, gen: torch.Generator
    ) -> tuple[dict[str, torch.Tensor], int]:
        """One batch of ``W`` rollouts: flat transitions of the rollouts' live steps, steps.
        The root is restored with fresh chance from ``gen`` (unless ``oracle_chance``)."""
        c, sim, W = self.cfg, self.sim, self.sim.num_envs
        obs = restore(sim, root, reseed=self._chance(gen))
        alive = np.ones(W, dtype=bool)
        out: dict[str, list] = {k: [] for k in ("obs", "action", "r", "disc", "next_obs")}
        for t in range(c.horizon):
            x = obs_tensor(obs)
            greedy = self.greedy_q(self.blueprint, x).argmax(-1).numpy()
            legal = legal_actions(x, self.mask_slice)
            if legal is None:
                explore = rng.integers(0, self.num_actions, W)
            else:  # uniform over the legal actions: the argmax of uniforms restricted to them
                explore = np.where(legal.numpy(), rng.random((W, self.num_actions)), -1.0)
                explore = explore.argmax(-1)
            a = np.where(rng.random(W) < c.explore, explore, greedy)
            nxt, r, term, trunc, info = sim.step(a)
            final = info.get("final_obs", nxt)
            r = torch.as_tensor(r, dtype=torch.float32)
            cut = torch.as_tensor(trunc & ~term) | (t == c.horizon - 1)
            cut &= torch.as_tensor(~term)
            if cut.any():  # truncated here: the blueprint's max Q closes the return
                boot = self.greedy_q(self.blueprint, obs_tensor(final)).max(-1).values
                r = r + cut * c.gamma * boot
            keep = torch.as_tensor(alive)
            out["obs"].append(obs_tensor(obs)[keep])
            out["action"].append(torch.as_tensor(a)[keep])
            out["r"].append(r[keep])
            out["disc"].append((c.gamma * ~(torch.as_tensor(term) | cut)).float()[keep])
            out["next_obs"].append(obs_tensor(final)[keep])
            alive &= ~(term | trunc)
            obs = nxt
            if not alive.any():
                break
        return {k: torch.cat(v) for k, v in out.items()}, W * (t + 1)

    def _train(self, data, t0: float, budget: Budget, gen: torch.Generator):
        c = self.cfg
        q = copy.deepcopy(self.blueprint)
        target = copy.deepcopy(self.blueprint)
        opt = torch.optim.Adam(q.parameters(), lr=c.lr)
        n_local = data["action"].shape[0]
        steps = 0
        for i in range(c.updates):
            if budget.seconds is not None and time.perf_counter() - t0 >= budget.seconds:
                break
            n_glob = 0
            if self.replay is not None and len(self.replay) > 0:
                n_glob = int(torch.binomial(torch.tensor(float(c.batch_size)),
                                            torch.tensor(c.p_global), generator=gen))  # fmt: skip
            idx = torch.randint(0, n_local, (c.batch_size - n_glob,), generator=gen)
            obs, a = data["obs"][idx], data["action"][idx]
            r, disc, nxt = data["r"][idx], data["disc"][idx], data["next_obs"][idx]
            if n_glob > 0:
                b = self.replay.sample(n_glob, generator=gen)
                obs = torch.cat([obs, b.obs.float()])
                a = torch.cat([a, b.action])
                r = torch.cat([r, b.reward[:, 0]])
                disc = torch.cat([disc, c.gamma * (~b.terminal[:, 0]).float()])
                nxt = torch.cat([nxt, b.next_obs[:, 0].float()])
            next_mask = legal_actions(nxt, self.mask_slice)
            loss = double_q_loss(q, target, obs, a, r, disc, nxt, next_mask=next_mask)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q.parameters(), 10.0)
            opt.step()
            steps += 1
            if (i + 1) % c.target_every == 0:
                target.load_state_dict(q.state_dict())
        q.eval()
        return q, steps

    def _finetune(self, root, obs, budget, generator, t0: float):
        c, W = self.cfg, self.sim.num_envs
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen)))
        reserve = 2 * c.accept_rounds * W * c.horizon
        parts = []
        used = grads = 0
        while budget.allows(reserve + used, W * c.horizon, t0):
            data, steps = self._collect(root, rng, gen)
            parts.append(data)
            used += steps
        adopted = False
        q = self.blueprint
        if parts and c.updates > 0:
            data = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            q, grads = self._train(data, t0, budget, gen)
            adopted = grads > 0
        if adopted and c.accept_rounds > 0:
            blueprint = QBlueprint(self.blueprint, self.mask_slice)
            candidate: torch.nn.Module = QBlueprint(q, self.mask_slice)
            seat_slice = getattr(self.sim, "seat_slice", None)
            if seat_slice is not None:  # single-agent: the partners play the blueprint
                seat = int(obs[seat_slice].argmax())
                candidate = SeatPolicy(candidate, blueprint, seat_slice, seat)
            res = acceptance_test(
                self.sim,
                root,
                candidate,
                blueprint,
                rounds=c.accept_rounds,
                horizon=c.horizon,
                gamma=c.gamma,
                epsilon=c.epsilon,
                greedy=True,
                generator=gen,
                oracle_chance=self.oracle_chance,
            )
            used += res.env_steps
            adopted = res.adopted
        return (q if adopted else self.blueprint), used, grads, adopted

    @torch.no_grad()
    def _act(self, net, obs, legal, generator) -> tuple[int, np.ndarray]:
        qv = mask_illegal(net(obs_tensor(obs[None]))[0], legal)
        return int(qv.argmax()), qv.double().numpy()
