"""``qwr-search`` (alias ``rl-search``): play episodes with a planner on top of a blueprint and
report the score.

``qwr-search --env ENV_ID --blueprint DIR/checkpoint.pt --planner {blueprint,sparta,mcts,
policy-ft,q-ft} --episodes E --seed S [--budget-steps N | --budget-seconds X] [--horizon H]
[--out FILE.csv] [--episodes-out EPISODES.csv]``. ``q-ft`` takes a ``dqn-train`` checkpoint
(whose replay is the global buffer), the others a ``ppo-train`` checkpoint
(:mod:`qwr_fast.blueprints`). Prints a one-row table and appends one CSV row per run with the
columns of :data:`CSV_COLUMNS` (score mean +- s.e.m. over episodes, win rate where the env
defines a perfect score, env steps, gradient steps and seconds per move, the fraction of
searches whose result was adopted). Exit code 0 on success, 2 on bad arguments with a
one-line message.

Games of imperfect information (envs with ``belief_states``, i.e. Hanabi): every search starts
from ``--width`` belief samples of the real game instead of a copy of it: the acting player's
private belief for ``sparta`` and single-agent ``policy-ft`` (which fine-tunes the acting
player's seat only, the partner playing the blueprint), the public belief for ``--joint``
``policy-ft`` (multi-agent joint search: one fine-tuned policy for both seats, played by both
for the next ``--replan-every`` moves). Legal-action masks (``env.action_mask_slice``) are
passed to every planner. ``mcts`` assumes perfect information and refuses such envs.

Chance: the planners restore every snapshot with fresh chance drawn from their own generator
(seeded by ``--seed``), so no search sees the chance events (sticky actions, spawns, card
draws) the real game will draw next. ``--oracle-chance`` restores snapshots exactly instead
(a deterministic simulator of the real game, i.e. foresight no real player has); the CSV's
``oracle_chance`` column records which ran. ``--sticky-action-prob`` sets the sticky-action
probability of ALE and MinAtar games (0: none; an ALE game is then deterministic) for the
real game and the simulators alike; the ``sticky_action_prob`` column records the game's
(NaN where the family has none).

Episodes: episode e draws everything (the game's reset, the planner's sampling, the belief
samples) from seeds derived from ``--seed`` and e only. So under ``torchrun`` (the search farm,
episode e on rank e mod N) the scores and the CSV row are those of one process, and
``--episodes-out`` (one row per finished episode, keyed by the settings) lets a rerun of the
same command play only the episodes still missing.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist

from qwr_fast.blueprints import load_blueprint, load_q_blueprint
from qwr_fast.checkpoint import atomic_write
from qwr_fast.checks import check_fields
from qwr_fast.cli.common import USER_ERRORS, error, first_line
from qwr_fast.distributed import barrier, env_world, exit_process, join
from qwr_fast.nn.dueling_q import QBlueprint
from qwr_fast.planners.blueprint import BlueprintPlanner
from qwr_fast.planners.core import Budget
from qwr_fast.planners.mcts import MCTS, MCTSConfig
from qwr_fast.planners.policy_ft import PolicyFineTune, PolicyFineTuneConfig
from qwr_fast.planners.q_ft import QFineTune, QFineTuneConfig
from qwr_fast.planners.sparta import Sparta, SpartaConfig

__all__ = ["SearchConfig", "CSV_COLUMNS", "run_search", "main"]

CSV_COLUMNS = [
    "env",
    "planner",
    "blueprint",
    "seed",
    "episodes",
    "score_mean",
    "score_sem",
    "score_std",
    "moves_per_episode",
    "env_steps_per_move",
    "grad_steps_per_move",
    "seconds_per_move",
    "adopted_frac",
    "win_rate",
    "joint",
    "z",
    "belief_candidates",
    "budget_steps",
    "budget_seconds",
    "horizon",
    "width",
    "oracle_chance",
    "sticky_action_prob",
]


@dataclass
class SearchConfig:
    """Evaluate a decision-time planner on top of a ppo-train blueprint."""

    env: str = "MinAtar/Breakout"
    """env id from qwr_fast.envs (must support get_state/set_state)"""
    blueprint: str = "runs/ppo/checkpoint.pt"
    """blueprint checkpoint: ppo-train (a DQN checkpoint for q-ft)"""
    planner: Literal["blueprint", "sparta", "mcts", "policy-ft", "q-ft"] = "blueprint"
    """planner to evaluate"""
    episodes: int = 5
    """episodes to play"""
    seed: int = 0
    """seed of the episodes and of the planner's sampling"""
    out: str | None = None
    """CSV file to append the result row to"""
    episodes_out: str | None = None
    """CSV file of one row per finished episode (score, moves, env and gradient steps,
    seconds, searches, adopted), keyed by a hash of the settings: a rerun with the same
    settings plays only the episodes missing from it (a long evaluation resumes there)"""
    budget_steps: int | None = None
    """sim env steps per search (per move; per replan for policy-ft)"""
    budget_seconds: float | None = None
    """wall seconds per search"""
    horizon: int = 30
    """rollout horizon H (sparta, policy-ft); policy-ft also replans every --replan-every moves"""
    replan_every: int = 0
    """policy-ft / q-ft: moves played per search (0: horizon for policy-ft, 1 for q-ft)"""
    width: int = 8
    """sim envs stepped together (rollouts per batch; MCTS leaves per batch)"""
    epsilon: float = 0.0
    """sparta deviation / policy-ft acceptance threshold"""
    z: float | None = None
    """sparta / policy-ft: also require the searched choice to beat the blueprint by z standard
    errors of the difference of the Monte-Carlo means (0: off; None: 1 for policy-ft, whose
    acceptance test pairs its rollouts on common chance, 0 for sparta)"""
    sparta_paired: bool = True
    """sparta on belief samples: evaluate every action on the same sample per round"""
    belief_candidates: int = 0
    """games with hidden information: 0 samples beliefs from the chance posterior given the
    observations; K > 0 draws K such samples, weighs them by the blueprint's likelihood of the
    players' past moves (SPARTA-style belief tracking) and resamples --width of them"""
    accept_rounds: int = 1
    """policy-ft: acceptance-test batches per policy (0: adopt without a test)"""
    lr: float | None = None
    """policy-ft / q-ft learning rate (None: 3e-3 for policy-ft, whose few PPO updates per
    search barely move the policy at 1e-4, and 1e-4 for q-ft; docs/results.md)"""
    updates: int = 200
    """q-ft gradient steps per search"""
    p_global: float = 0.5
    """q-ft probability of drawing a transition from the blueprint's replay"""
    c: float = 5.0
    """mcts prior coefficient"""
    beta: float = 0.1
    """mcts prior exponent"""
    max_depth: int = 100
    """mcts depth limit"""
    gamma: float = 0.99
    """discount of the search returns"""
    greedy: bool = False
    """play (and roll out) the blueprint by argmax instead of sampling"""
    joint: bool = False
    """policy-ft in a multi-player game: multi-agent joint search on the public belief (one
    fine-tuned policy for every seat) instead of single-agent search on the acting player's
    private belief"""
    max_moves: int = 10_000
    """cap on the moves of one episode (an unfinished one counts its partial score)"""
    threads: int = 1
    """torch CPU threads"""
    progress: bool = True
    """print one line per finished episode"""
    oracle_chance: bool = False
    """restore the planners' snapshots exactly, RNG included, so that every search sees the
    real game's next chance events (default: fresh chance per restore)"""
    sticky_action_prob: float | None = None
    """ALE and MinAtar: the probability that the game repeats the previous action instead of
    the chosen one (ALE: per emulator frame; MinAtar: per step), in the real game and in the
    planners' simulators alike; 0: no sticky actions, which makes an ALE game deterministic
    (MinAtar's spawns stay random) (None: the family's default, 0.25 for ALE v5, 0.1 for
    MinAtar)"""


def make_planner(cfg: SearchConfig, net, sim, replay=None):
    """The planner object named by ``cfg.planner``."""
    if cfg.planner == "q-ft":
        qcfg = QFineTuneConfig(
            horizon=cfg.horizon,
            updates=cfg.updates,
            p_global=cfg.p_global,
            lr=cfg.lr,
            gamma=cfg.gamma,
            accept_rounds=cfg.accept_rounds,
            epsilon=cfg.epsilon,
            replan_every=cfg.replan_every or 1,
        )
        return QFineTune(net, sim, qcfg, replay=replay, oracle_chance=cfg.oracle_chance)
    if cfg.planner == "blueprint":
        return BlueprintPlanner(net, sim, greedy=cfg.greedy)
    if cfg.planner == "sparta":
        scfg = SpartaConfig(cfg.horizon, cfg.gamma, cfg.epsilon, greedy=cfg.greedy)
        return Sparta(net, sim, scfg, oracle_chance=cfg.oracle_chance)
    if cfg.planner == "mcts":
        mcfg = MCTSConfig(cfg.c, cfg.beta, cfg.max_depth, cfg.gamma)
        return MCTS(net, sim, mcfg, oracle_chance=cfg.oracle_chance)
    multi_player = getattr(sim, "seat_slice", None) is not None
    pcfg = PolicyFineTuneConfig(
        horizon=cfg.horizon,
        replan_every=cfg.replan_every or cfg.horizon,
        accept_rounds=cfg.accept_rounds,
        epsilon=cfg.epsilon,
        accept_z=cfg.z,
        gamma=cfg.gamma,
        lr=cfg.lr,
        own_seat_only=multi_player and not cfg.joint,
        greedy=cfg.greedy,
    )
    return PolicyFineTune(net, sim, pcfg, oracle_chance=cfg.oracle_chance)


def check_out_header(path: str | None) -> None:
    """Refuse to append to a CSV written with other columns (e.g. by an older version)."""
    if path is None or not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    if header != CSV_COLUMNS:
        raise ValueError(
            f"--out {path} has the columns {header}, not this version's {CSV_COLUMNS}: "
            "write to a new file"
        )


EPISODE_COLUMNS = [
    "config",
    "episode",
    "score",
    "moves",
    "env_steps",
    "grad_steps",
    "seconds",
    "searches",
    "adopted",
]
"""``--episodes-out``: one row per finished episode; ``config`` is :func:`config_key`"""

_NOT_IN_KEY = ("episodes", "out", "episodes_out", "progress", "threads")


def config_key(cfg: SearchConfig) -> str:
    """What makes two episodes with the same number the same episode: a hash of every setting
    but the number of episodes, the output files, the progress lines and the threads."""
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_IN_KEY}
    if fields["sticky_action_prob"] is None:  # as before the flag: older files keep their keys
        del fields["sticky_action_prob"]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _read_episodes(path: str | None) -> list[dict]:
    if path is None or not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != EPISODE_COLUMNS:
            raise ValueError(
                f"--episodes-out {path} has the columns {reader.fieldnames}, not "
                f"{EPISODE_COLUMNS}: write to a new file"
            )
        return list(reader)


def _episode_record(row: dict) -> dict:
    return {k: (float if k in ("score", "seconds") else int)(row[k]) for k in EPISODE_COLUMNS[2:]}


def play_episodes(cfg: SearchConfig, play) -> list[dict]:
    """``play(ep)`` for every episode ``ep < cfg.episodes`` not already in
    ``--episodes-out`` under this config (:func:`config_key`), each finished one appended
    there at once; returns the records in episode order.

    Under ``torchrun`` (the search farm) rank ``r`` of ``N`` plays the episodes ``ep`` with
    ``ep % N == r`` and every rank ends with all records (one all-reduce): the records, and so
    the CSV row, are those of a single process."""
    world, _ = join(torch.device("cpu"))
    key = config_key(cfg)
    path = cfg.episodes_out
    rows = _read_episodes(path)
    done = {int(r["episode"]): _episode_record(r) for r in rows if r["config"] == key}
    if path is not None and world.is_main and not rows:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(EPISODE_COLUMNS)
    barrier(world)
    for ep in range(world.rank, cfg.episodes, world.size):
        if ep in done:
            continue
        done[ep] = play(ep)
        if path is not None:  # one short append per row: whole lines from concurrent ranks
            line = io.StringIO()
            csv.writer(line).writerow([key, ep, *done[ep].values()])
            with open(path, "a", newline="") as f:
                f.write(line.getvalue())
    names = EPISODE_COLUMNS[2:]
    table = torch.zeros(cfg.episodes, len(names), dtype=torch.float64)
    for ep in range(world.rank, cfg.episodes, world.size):
        table[ep] = torch.tensor([float(done[ep][k]) for k in names], dtype=torch.float64)
    if world.distributed:
        dist.all_reduce(table)
    records = [
        {
            k: (float(v) if k in ("score", "seconds") else int(v))
            for k, v in zip(names, t, strict=True)
        }
        for t in table.tolist()
    ]
    if path is not None and world.is_main:  # the file sorted, one row per episode
        rows = _read_episodes(path)
        unique = {(r["config"], int(r["episode"])): r for r in rows}
        ordered = [unique[k] for k in sorted(unique)]

        def write(f):
            w = csv.DictWriter(f, fieldnames=EPISODE_COLUMNS)
            w.writeheader()
            w.writerows(ordered)

        atomic_write(path, write, mode="w")
    return records


DEFAULT_Z = {"policy-ft": 1.0}
"""``--z`` left at None: this per planner (0 for the others)"""
DEFAULT_LR = {"policy-ft": 3e-3, "q-ft": 1e-4}
"""``--lr`` left at None: this per planner"""


def resolve_defaults(cfg: SearchConfig) -> SearchConfig:
    """``cfg`` with the planner's own ``z`` and ``lr`` where they were left at None (what the
    CSV row and the episode key record)."""
    z = DEFAULT_Z.get(cfg.planner, 0.0) if cfg.z is None else cfg.z
    lr = DEFAULT_LR.get(cfg.planner, 1e-4) if cfg.lr is None else cfg.lr
    return dataclasses.replace(cfg, z=z, lr=lr)


def sticky_kwargs(cfg: SearchConfig) -> dict:
    """The env kwargs of ``--sticky-action-prob`` (none when it is left at None)."""
    p = cfg.sticky_action_prob
    if p is None:
        return {}
    if not cfg.env.startswith(("ALE/", "MinAtar/")):
        raise ValueError(
            f"--sticky-action-prob applies to ALE/<Game>-v5 and MinAtar/<Game> envs; {cfg.env} "
            "has no sticky actions"
        )
    if not 0.0 <= p < 1.0:
        raise ValueError(f"--sticky-action-prob must lie in [0, 1), got {p}")
    return {"sticky_action_prob": float(p)}


def run_search(cfg: SearchConfig) -> dict:
    """Play ``cfg.episodes`` episodes; returns the CSV row (also appended to ``cfg.out``)."""
    from qwr_fast.envs import make

    cfg = resolve_defaults(cfg)
    check_fields(cfg, "episodes width max_moves threads", ">= 1")
    env_kw = sticky_kwargs(cfg)
    check_out_header(cfg.out)
    if cfg.planner != "blueprint" and cfg.budget_steps is None and cfg.budget_seconds is None:
        raise ValueError(f"--planner {cfg.planner} needs --budget-steps and/or --budget-seconds")
    torch.set_num_threads(cfg.threads)
    replay = None
    if cfg.planner == "q-ft":
        net, bp_cfg, replay = load_q_blueprint(cfg.blueprint)
    else:
        net, bp_cfg = load_blueprint(cfg.blueprint)
    if bp_cfg["env"] != cfg.env:
        raise ValueError(f"--blueprint was trained on {bp_cfg['env']}, not on --env {cfg.env}")
    env = make(cfg.env, 1, seed=cfg.seed, **env_kw)
    sim = make(cfg.env, cfg.width, seed=cfg.seed, **env_kw)
    beliefs = hasattr(env, "belief_states")
    mask = getattr(env, "action_mask_slice", None)
    if beliefs and cfg.planner == "mcts":
        raise ValueError(f"--planner mcts assumes perfect information; {cfg.env} has hidden state")
    if cfg.joint and not (beliefs and cfg.planner == "policy-ft"):
        raise ValueError("--joint applies to --planner policy-ft on a multi-player env (Hanabi)")
    if isinstance(net, QBlueprint):  # a dqn-train checkpoint, played greedily
        if cfg.planner != "blueprint":
            raise ValueError(
                f"--planner {cfg.planner} needs a ppo-train blueprint; a dqn-train checkpoint "
                "serves --planner blueprint (greedy play) and q-ft"
            )
        net.mask_slice = mask
    if cfg.planner == "q-ft" and cfg.belief_candidates > 0:
        raise ValueError(
            "--belief-candidates weighs belief samples by the blueprint policy's likelihood of "
            "past moves; --planner q-ft's DQN blueprint is not a policy (use 0)"
        )
    budget = None if cfg.planner == "blueprint" else Budget(cfg.budget_steps, cfg.budget_seconds)
    planner = make_planner(cfg, net, sim, replay)
    if cfg.budget_steps is not None and cfg.budget_steps < planner.min_search_steps:
        raise ValueError(
            f"--budget-steps {cfg.budget_steps} cannot pay for one {cfg.planner} search: it "
            f"needs at least {planner.min_search_steps} sim env steps with --width {cfg.width} "
            f"and --horizon {cfg.horizon}; raise --budget-steps or lower --width / --horizon"
        )
    if cfg.belief_candidates < 0:
        raise ValueError(f"--belief-candidates must be >= 0, got {cfg.belief_candidates}")
    belief_kw = {}
    if cfg.belief_candidates > 0:

        def policy_logits(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return net(torch.as_tensor(obs, dtype=torch.float32))[0].numpy()

        belief_kw = dict(policy_logits=policy_logits, candidates=cfg.belief_candidates)

    def play(ep: int) -> dict:
        """Episode ``ep``: its own seeds (env, planner sampling, belief sampling) derived from
        ``--seed`` and ``ep`` only, so its score does not depend on which process plays it or
        on the episodes played before."""
        episode_seed = cfg.seed * 100_003 + ep
        gen = torch.Generator().manual_seed(episode_seed)
        belief_rng = np.random.default_rng((cfg.seed, ep))
        obs, _ = env.reset(seed=episode_seed)
        planner.reset()
        rec = dict.fromkeys(EPISODE_COLUMNS[2:], 0)
        rec["score"] = 0.0
        for _ in range(cfg.max_moves):
            searching = cfg.planner != "blueprint"
            if beliefs and searching:
                root = env.belief_states(0, cfg.width, belief_rng, public=cfg.joint, **belief_kw)
            else:
                root = env.get_state(0)
            legal = None if mask is None else obs[0][mask] > 0.5
            res = planner.plan(root, obs[0], budget, legal=legal, generator=gen)
            rec["moves"] += 1
            rec["env_steps"] += res.env_steps
            rec["grad_steps"] += res.grad_steps
            rec["seconds"] += res.wall_s
            if res.env_steps > 0 or cfg.planner == "mcts":
                rec["searches"] += 1
                rec["adopted"] += int(res.adopted)
            obs, r, term, trunc, _ = env.step(np.array([res.action], dtype=np.int64))
            rec["score"] += float(r[0])
            if term[0] or trunc[0]:
                break
        if cfg.progress:
            print(f"episode {ep}: score {rec['score']:g}", file=sys.stderr, flush=True)
        return rec

    records = play_episodes(cfg, play)
    scores = [rec["score"] for rec in records]
    moves = sum(rec["moves"] for rec in records)
    steps = sum(rec["env_steps"] for rec in records)
    grads = sum(rec["grad_steps"] for rec in records)
    secs = sum(rec["seconds"] for rec in records)
    searches = sum(rec["searches"] for rec in records)
    adopted = sum(rec["adopted"] for rec in records)
    s = np.array(scores)
    max_score = getattr(env, "max_score", None)
    row = {
        "env": cfg.env,
        "planner": cfg.planner,
        "blueprint": cfg.blueprint,
        "seed": cfg.seed,
        "episodes": cfg.episodes,
        "score_mean": float(s.mean()),
        "score_sem": float(s.std(ddof=1) / np.sqrt(len(s))) if len(s) > 1 else float("nan"),
        "score_std": float(s.std()),
        "moves_per_episode": moves / cfg.episodes,
        "env_steps_per_move": steps / moves,
        "grad_steps_per_move": grads / moves,
        "seconds_per_move": secs / moves,
        "adopted_frac": adopted / searches if searches else float("nan"),
        "win_rate": float(np.mean(s >= max_score)) if max_score is not None else float("nan"),
        "joint": cfg.joint,
        "z": cfg.z,
        "belief_candidates": cfg.belief_candidates,
        "budget_steps": cfg.budget_steps,
        "budget_seconds": cfg.budget_seconds,
        "horizon": cfg.horizon,
        "width": cfg.width,
        "oracle_chance": cfg.oracle_chance,
        "sticky_action_prob": getattr(env, "sticky_action_prob", float("nan")),
    }
    if cfg.out is not None and env_world().is_main:
        new = not os.path.exists(cfg.out) or os.path.getsize(cfg.out) == 0
        os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
        with open(cfg.out, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            if new:
                w.writeheader()
            w.writerow(row)
    return row


def main(argv: list[str] | None = None) -> int:
    """``qwr-search`` (alias ``rl-search``) entry point; under ``torchrun`` (the search farm)
    each rank ends here with its status (:func:`qwr_fast.distributed.exit_process`)."""
    return exit_process(_main(argv))


def _main(argv: list[str] | None = None) -> int:
    import tyro

    prog = os.path.basename(sys.argv[0]) if argv is None else "qwr-search"
    prog = prog if prog in ("qwr-search", "rl-search") else "qwr-search"
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = tyro.cli(SearchConfig, args=argv, prog=prog)
    t0 = time.perf_counter()
    try:
        row = run_search(cfg)
    except USER_ERRORS as e:
        return error(prog, first_line(e))
    if not env_world().is_main:  # the search farm's rank 0 reports
        return 0
    print(
        "| planner | episodes | score (mean +- s.e.m.) | moves/episode | env steps/move "
        "| s/move | adopted |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {row['planner']} | {row['episodes']} | {row['score_mean']:.2f} +- "
        f"{row['score_sem']:.2f} | {row['moves_per_episode']:.1f} | "
        f"{row['env_steps_per_move']:.0f} | "
        f"{row['seconds_per_move']:.4f} | {row['adopted_frac']:.2f} |"
    )
    print(f"({time.perf_counter() - t0:.1f} s total)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
