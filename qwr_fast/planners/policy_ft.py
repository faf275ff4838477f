"""RL policy fine-tuning at decision time (Fickinger et al., NeurIPS 2021, Algorithm 1) and
the acceptance test.

From the current state s*, copy the blueprint policy and value and run N PPO updates, each on
``W = sim.num_envs`` rollouts of H steps from clones of s*, with GAE whose last step bootstraps
from the *blueprint* value ``V_phi(s_H)`` (or the refined value, ``refined_bootstrap``). The
acceptance test then evaluates the fine-tuned and the blueprint policy on E rollouts each from
s* and adopts the fine-tuned one only if its mean return is higher by more than ``epsilon``
(plus ``accept_z`` standard errors of the paired differences; a tie is not adopted). The
chosen policy plays the next ``replan_every`` moves (amortised search; 1 replans every move).
Steps after an episode ended inside a rollout are masked out of the update.

Multi-player games whose observation names the seat to move (``sim.seat_slice``, e.g. Hanabi):
with ``own_seat_only`` the fine-tuned policy plays only the searching player's seat and the
frozen blueprint plays the partners (single-agent search; the partners' moves train the value,
not the policy: :class:`SeatPolicy`); without it one fine-tuned policy plays every seat (joint
search, on public-belief roots).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from qwr_fast.checks import check_fields
from qwr_fast.envs import EnvState
from qwr_fast.estimators import gae
from qwr_fast.objectives.ppo import ppo_update
from qwr_fast.planners.core import (
    AmortisedPlanner,
    Blueprint,
    Budget,
    chance_word,
    mask_illegal,
    obs_tensor,
    pick,
    restore,
    rollout_returns,
)

__all__ = [
    "AcceptanceResult",
    "PolicyFineTuneConfig",
    "PolicyFineTune",
    "SeatPolicy",
    "acceptance_test",
    "finetune_policy",
]


@dataclass(frozen=True)
class AcceptanceResult:
    """adopted: candidate mean - blueprint mean > epsilon + z * difference_sem; the means and
    standard errors of the E discounted rollout returns of each, and the standard error of the
    mean of the E paired differences; env_steps used by both evaluations."""

    adopted: bool
    candidate_mean: float
    blueprint_mean: float
    candidate_sem: float
    blueprint_sem: float
    env_steps: int
    difference_sem: float = float("nan")


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def acceptance_test(
    sim,
    root: EnvState,
    candidate: Blueprint,
    blueprint: Blueprint,
    *,
    rounds: int,
    horizon: int,
    gamma: float,
    epsilon: float,
    z: float = 0.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    oracle_chance: bool = False,
) -> AcceptanceResult:
    """Evaluate both policies on ``rounds * sim.num_envs`` rollouts of ``horizon`` steps from
    ``root`` (blueprint value bootstrap for both) and adopt ``candidate`` only if its mean
    return is higher by more than ``epsilon`` plus ``z`` standard errors of the mean
    difference: a candidate no better than the blueprint (a tie, as when fine-tuning did not
    change the moves) is not adopted.

    Each round restores the root for both policies with the same fresh chance words (drawn
    from ``generator``), so rollout w of the candidate and of the blueprint meet the same
    chance (common random numbers), and the standard error is that of the mean of the paired
    differences: the chance both rollouts share cancels in it. ``oracle_chance``: the root's
    own stream for both."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    rets: dict[str, list[np.ndarray]] = {"cand": [], "bp": []}
    steps = 0
    for _ in range(rounds):
        reseed = chance_word(generator, oracle_chance=oracle_chance)
        for name, pol in (("cand", candidate), ("bp", blueprint)):
            r, s = rollout_returns(
                sim,
                root,
                pol,
                horizon=horizon,
                gamma=gamma,
                bootstrap=blueprint,
                greedy=greedy,
                generator=generator,
                reseed=reseed,
            )
            rets[name].append(r)
            steps += s
    cand, bp = np.concatenate(rets["cand"]), np.concatenate(rets["bp"])
    se = _sem(cand - bp)  # paired: rollout w of both met the same chance
    margin = epsilon
    if z > 0:
        margin += z * (se if np.isfinite(se) else np.inf)
    return AcceptanceResult(
        adopted=bool(cand.mean() - bp.mean() > margin),
        candidate_mean=float(cand.mean()),
        blueprint_mean=float(bp.mean()),
        candidate_sem=_sem(cand),
        blueprint_sem=_sem(bp),
        env_steps=steps,
        difference_sem=se,
    )


class SeatPolicy(nn.Module):
    """``net`` on the rows whose seat (``obs[:, seat_slice]`` one-hot) is ``seat``, the frozen
    ``blueprint``'s logits on the others; the value is ``net``'s everywhere. The blueprint is
    held outside the module's parameters (never trained, not copied by ``deepcopy``)."""

    def __init__(self, net: nn.Module, blueprint: Blueprint, seat_slice: slice, seat: int) -> None:
        super().__init__()
        self.net = net
        self._blueprint = (blueprint,)
        self.seat_slice, self.seat = seat_slice, int(seat)

    def own(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool: the rows where ``seat`` is to move."""
        return obs[:, self.seat_slice].argmax(-1) == self.seat

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, value = self.net(obs)
        with torch.no_grad():
            frozen = self._blueprint[0](obs)[0]
        return torch.where(self.own(obs)[:, None], logits, frozen), value

    def __deepcopy__(self, memo: dict) -> SeatPolicy:
        net = copy.deepcopy(self.net, memo)
        return SeatPolicy(net, self._blueprint[0], self.seat_slice, self.seat)


@dataclass(frozen=True)
class PolicyFineTuneConfig:
    """horizon: H, steps per fine-tuning rollout; replan_every: moves the chosen policy plays
    before the next search (H in the paper, 1 replans every move); accept_rounds: batches of
    ``sim.num_envs`` rollouts per policy in the acceptance test (0: adopt without a test);
    epsilon: acceptance threshold; accept_z: also require the candidate to be better by that
    many standard errors of the paired difference (0: off); refined_bootstrap: bootstrap step H with
    the fine-tuned value instead of the blueprint's; own_seat_only: in a multi-player game
    (``sim.seat_slice``) fine-tune and play only the searching player's seat, the blueprint
    playing the others (single-agent search); the rest are PPO hyperparameters of each
    update (lr 3e-3: at 1e-4 the few updates of a search barely move a weak blueprint's moves,
    docs/results.md, "Policy fine-tuning must earn its adoptions")."""

    horizon: int = 30
    replan_every: int = 30
    accept_rounds: int = 1
    epsilon: float = 0.0
    accept_z: float = 1.0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    lr: float = 3e-3
    epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.1
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    refined_bootstrap: bool = False
    own_seat_only: bool = False
    greedy: bool = False

    def __post_init__(self) -> None:
        check_fields(self, "horizon replan_every epochs num_minibatches", ">= 1", flags=False)
        check_fields(self, "accept_z accept_rounds", ">= 0", flags=False)
        check_fields(self, "gamma", "[0, 1]", flags=False)


def finetune_policy(
    blueprint: torch.nn.Module,
    sim,
    root: EnvState,
    cfg: PolicyFineTuneConfig,
    budget: Budget,
    *,
    t0: float,
    reserve: int = 0,
    seat: int | None = None,
    generator: torch.Generator | None = None,
    oracle_chance: bool = False,
) -> tuple[torch.nn.Module, int, int]:
    """Algorithm 1: a fine-tuned copy of ``blueprint``, the env steps and gradient steps used.
    Updates run while ``reserve`` + used + one update's ``W * H`` steps fit the budget. Every
    update's rollouts restore ``root`` with fresh chance from ``generator`` (the root's own
    stream with ``oracle_chance``).

    ``seat`` (multi-player games with ``sim.seat_slice``): only that seat's moves use and train
    the copy; the frozen blueprint plays the others, and the result is a :class:`SeatPolicy`."""
    W, H = sim.num_envs, cfg.horizon
    if (W * H) % cfg.num_minibatches:
        raise ValueError(
            f"num_minibatches ({cfg.num_minibatches}) must divide sim.num_envs * horizon ({W * H})"
        )
    net = copy.deepcopy(blueprint)
    if seat is not None:
        seat_slice = getattr(sim, "seat_slice", None)
        if seat_slice is None:
            raise ValueError("seat was given but sim has no seat_slice (not a multi-player env)")
        net = SeatPolicy(net, blueprint, seat_slice, seat)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-5)
    used = grads = 0
    while budget.allows(reserve + used, W * H, t0):
        with torch.no_grad():
            obs = restore(sim, root, reseed=chance_word(generator, oracle_chance=oracle_chance))
            obs_buf, act, logp, v_tm1, r_t, disc, weight, own = [], [], [], [], [], [], [], []
            alive = np.ones(W, dtype=bool)
            for _ in range(H):
                o = obs_tensor(obs)
                logits, value = net(o)
                a = pick(logits, greedy=False, generator=generator)
                obs, r, term, trunc, info = sim.step(a.numpy())
                r = torch.as_tensor(r, dtype=torch.float32)
                cut = trunc & ~term & alive
                if cut.any():
                    v_final = blueprint(obs_tensor(info["final_obs"]))[1]
                    r = r + cfg.gamma * v_final * torch.as_tensor(cut, dtype=torch.float32)
                obs_buf.append(o)
                act.append(a)
                logp.append(torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1))
                v_tm1.append(value)
                r_t.append(r)
                weight.append(torch.as_tensor(alive, dtype=torch.float32))
                if seat is not None:
                    own.append(net.own(o).to(torch.float32))
                alive = alive & ~(term | trunc)
                disc.append(cfg.gamma * torch.as_tensor(~(term | trunc), dtype=torch.float32))
            boot = net if cfg.refined_bootstrap else blueprint
            v_last = boot(obs_tensor(obs))[1]
            v_tm1_t = torch.stack(v_tm1)
            v_t = torch.cat([v_tm1_t[1:], v_last[None]])
            adv = gae(torch.stack(r_t), torch.stack(disc), v_tm1_t, v_t, lam=cfg.gae_lambda)
        used += W * H
        batch = {
            "obs": torch.cat(obs_buf),
            "actions": torch.cat(act),
            "logp": torch.cat(logp),
            "adv": adv.reshape(-1),
            "returns": (adv + v_tm1_t).reshape(-1),
            "values": v_tm1_t.reshape(-1),
            "weight": torch.stack(weight).reshape(-1),
        }
        if seat is not None:
            batch["policy_weight"] = torch.stack(own).reshape(-1)
        _, g = ppo_update(
            net,
            opt,
            batch,
            epochs=cfg.epochs,
            num_minibatches=cfg.num_minibatches,
            clip_coef=cfg.clip_coef,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            generator=generator,
        )
        grads += g
    net.eval()
    return net, used, grads


class PolicyFineTune(AmortisedPlanner):
    """The policy fine-tuning planner (Algorithm 1 + acceptance test + amortised play): every
    ``replan_every`` moves it fine-tunes the blueprint from ``root`` and plays the adopted
    policy (or the blueprint) until the next search."""

    CONFIG = PolicyFineTuneConfig

    def _finetune(self, root, obs, budget, generator, t0: float):
        c = self.cfg
        W, H = self.sim.num_envs, c.horizon
        reserve = 2 * c.accept_rounds * W * H
        seat = None
        if c.own_seat_only:
            seat_slice = getattr(self.sim, "seat_slice", None)
            if seat_slice is None:
                raise ValueError("own_seat_only needs a multi-player sim with a seat_slice")
            seat = int(obs[seat_slice].argmax())
        net, used, grads = finetune_policy(
            self.blueprint,
            self.sim,
            root,
            c,
            budget,
            t0=t0,
            reserve=reserve,
            seat=seat,
            generator=generator,
            oracle_chance=self.oracle_chance,
        )
        adopted = grads > 0
        if adopted and c.accept_rounds > 0:
            res = acceptance_test(
                self.sim,
                root,
                net,
                self.blueprint,
                rounds=c.accept_rounds,
                horizon=H,
                gamma=c.gamma,
                epsilon=c.epsilon,
                z=c.accept_z,
                greedy=c.greedy,
                generator=generator,
                oracle_chance=self.oracle_chance,
            )
            used += res.env_steps
            adopted = res.adopted
        return (net if adopted else self.blueprint), used, grads, adopted

    @torch.no_grad()
    def _act(self, net, obs, legal, generator) -> tuple[int, None]:
        logits = mask_illegal(net(obs_tensor(obs[None]))[0], legal)
        return int(pick(logits, greedy=self.cfg.greedy, generator=generator)[0]), None
