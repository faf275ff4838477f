"""Re-evaluate finished ``qwr-train`` runs on many episodes (issue 4, results 2 and 3).

    python docs/qwr_final_eval.py RUN_DIR [RUN_DIR ...] [--episodes 100] [--temperature 0]
    python docs/qwr_final_eval.py RUN_DIR [RUN_DIR ...] --gait [--episodes 3] [--gait-csv PATH]
                                                                     (MuJoCo runs)

    python docs/qwr_final_eval.py RUN_DIR [RUN_DIR ...] --record   (also keeps the returns)

The in-run evaluations use ``eval_episodes`` (5 by default) episodes, so one evaluation moves by
a whole point on MinAtar. This loads the latest checkpoint of each run into a trainer built in a
temporary directory (the run directory is only read), with ``eval_episodes=--episodes``, and
runs ``QWRTrainer.evaluate`` once: one episode per eval env, seeded as the run's next
evaluation would be. Prints a markdown row per run: env steps, mean, std over episodes and the
standard error of the mean. ``--record`` also writes each episode's return to
``RUN_DIR/final_eval.csv`` (columns ``step,temperature,episode,return``; written atomically),
the record that ``docs/qwr_100k_runs.sh`` copies to ``docs/runs/`` and
``docs/minatar_table.py`` reads.

``--gait`` instead runs ``--episodes`` greedy episodes of each run's latest checkpoint in one
``gym.make(env)`` (seeds 100, 101, ...; policy mean, temperature 0) and prints, per episode, its
length, return, forward reward, the distance the torso travelled along x and whether it
terminated (fell) rather than hit the time limit; ``--gait-csv PATH`` also writes those rows to
PATH (the ``gait.csv`` records under ``docs/runs/``).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile

import gymnasium as gym
import numpy as np
import torch

from qwr_fast.checkpoint import atomic_write, latest_checkpoint, load_checkpoint
from qwr_fast.nn.policy import sample_from_mu
from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer


def _trainer(state: dict, tmp: str, episodes: int) -> QWRTrainer:
    """A trainer in ``tmp`` holding the checkpoint ``state``, with ``episodes`` eval envs."""
    overrides = dict(run_dir=tmp, resume=None, overwrite=True, eval_episodes=episodes)
    cfg = QWRConfig(**{**state["config"], **overrides, "progress": False, "tensorboard": False})
    trainer = QWRTrainer(cfg)
    trainer.load_state_dict(state)
    return trainer


def final_eval(run_dir: str, episodes: int, temperature: float) -> tuple[dict, np.ndarray, int]:
    """The saved config of ``run_dir``, the returns of ``episodes`` evaluation episodes of its
    latest checkpoint at ``temperature``, and that checkpoint's env step."""
    state = load_checkpoint(latest_checkpoint(run_dir))
    with tempfile.TemporaryDirectory(prefix="qwr_final_eval_") as tmp:
        trainer = _trainer(state, tmp, episodes)
        with torch.no_grad():
            returns = trainer.evaluate(temperature)
    return state["config"], returns, state["counters"]["global_step"]


def write_record(run_dir: str, step: int, temperature: float, returns: np.ndarray) -> str:
    """``RUN_DIR/final_eval.csv``: one row per episode (step, temperature, episode, return)."""
    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(["step", "temperature", "episode", "return"])
    rows.writerows([step, f"{temperature:g}", i, repr(float(r))] for i, r in enumerate(returns))
    path = os.path.join(run_dir, "final_eval.csv")
    atomic_write(path, lambda f: f.write(text.getvalue()), mode="w")
    return path


def forward_reward(env: gym.Env, info: dict) -> float:
    """The step's forward reward: ``info["reward_forward"]`` on the -v5 envs; the -v4 ones only
    report ``x_velocity``, which their reward weighs by ``_forward_reward_weight``."""
    if "reward_forward" in info:
        return info["reward_forward"]
    return env.unwrapped._forward_reward_weight * info["x_velocity"]


GAIT_COLUMNS = ["run", "episode", "length", "return", "forward_reward", "x_travelled", "fell"]


@torch.no_grad()
def gait(run_dir: str, episodes: int) -> list[list]:
    """Per greedy episode of a MuJoCo run, a row of ``GAIT_COLUMNS`` (return and forward reward
    rounded to whole points, x travelled in metres to 0.01)."""
    rows = []
    state = load_checkpoint(latest_checkpoint(run_dir))
    with tempfile.TemporaryDirectory(prefix="qwr_final_eval_") as tmp:
        trainer = _trainer(state, tmp, 1)
        env = gym.make(trainer.cfg.env)
        for episode in range(episodes):
            obs, _ = env.reset(seed=100 + episode)
            x0, ret, fwd, length, done = env.unwrapped.data.qpos[0], 0.0, 0.0, 0, False
            while not done:
                mu = trainer.policy_mu(trainer.obs_tensor(obs[None]))
                a = sample_from_mu(trainer.kind, mu, 1, temperature=0.0).squeeze(1)
                obs, r, term, trunc, info = env.step(trainer.actions.to_env(a)[0])
                ret, fwd, length, done = (
                    ret + r,
                    fwd + forward_reward(env, info),
                    length + 1,
                    term or trunc,
                )
            x = env.unwrapped.data.qpos[0] - x0
            rows.append([run_dir, episode, length, f"{ret:.0f}", f"{fwd:.0f}", f"{x:.2f}", term])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--gait", action="store_true", help="per-episode gait of MuJoCo runs")
    parser.add_argument("--record", action="store_true", help="write RUN_DIR/final_eval.csv")
    parser.add_argument("--gait-csv", help="with --gait: also write every run's rows to this CSV")
    args = parser.parse_args()
    if args.gait:
        print("| run | episode | length | return | forward reward | x travelled | fell |")
        print("|---|---:|---:|---:|---:|---:|---|")
        rows = []
        for run_dir in args.run_dirs:
            rows += gait(run_dir, args.episodes)
            for row in rows[-args.episodes :]:
                print("| " + " | ".join(map(str, row)) + " |", flush=True)
        if args.gait_csv:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows([GAIT_COLUMNS, *rows])
            atomic_write(args.gait_csv, lambda f: f.write(text.getvalue()), mode="w")
        return
    print(
        f"| env | algo | env steps | return over {args.episodes} episodes (temperature "
        f"{args.temperature:g}), mean +- std | standard error |"
    )
    print("|---|---|---:|---:|---:|")
    for run_dir in args.run_dirs:
        cfg, returns, step = final_eval(run_dir, args.episodes, args.temperature)
        sem = returns.std(ddof=1) / np.sqrt(len(returns))
        if args.record:
            write_record(run_dir, step, args.temperature, returns)
        print(
            f"| {cfg['env']} | {cfg['algo']} | {step} | {returns.mean():.2f} +- "
            f"{returns.std():.2f} | {sem:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
