"""QWR-LSE (default MuJoCo config) vs Stable-Baselines3 SAC on HalfCheetah-v5, side by side.

Both at the same network width (256-256), batch size (256) and one gradient step per env step
(QWR's default epoch is K = 1000 env steps, C = 1000 critic steps, P = 1000 actor steps, so one
critic and one actor step per env step), one torch thread each, on the CPU. Reported: env steps
per second after warm-up, and the implied wall time of a 100K-step run.

    pip install stable-baselines3    # not a qwr_fast dependency; only this comparison uses it
    python bench/qwr_vs_sb3.py [--steps 300] [--profile]

``--profile`` adds a torch.profiler table (top ops by self CPU time) of QWR's timed segment.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym
import torch


def qwr_steps_per_s(steps: int, profile: bool = False) -> float:
    from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer

    run_dir = tempfile.mkdtemp(prefix="qwr_vs_sb3_")
    cfg = QWRConfig(
        env="HalfCheetah-v5",
        preset="mujoco",
        run_dir=run_dir,
        progress=False,
        tensorboard=False,
        critic_steps=steps,
        actor_steps=steps,
    )
    trainer = QWRTrainer(cfg)
    trainer.collect(1000)  # fills the replay past the batch size
    trainer.update()  # warm-up
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.collect(steps)
            trainer.update()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    start = time.perf_counter()
    trainer.collect(steps)
    trainer.update()
    return steps / (time.perf_counter() - start)


def sb3_steps_per_s(steps: int) -> float:
    from stable_baselines3 import SAC

    model = SAC(
        "MlpPolicy",
        gym.make("HalfCheetah-v5"),
        policy_kwargs={"net_arch": [256, 256]},
        batch_size=256,
        train_freq=1,
        gradient_steps=1,
        learning_starts=1000,
        device="cpu",
        verbose=0,
    )
    model.learn(1000 + steps)  # warm-up: 1000 random steps, then `steps` with updates
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed env steps per method")
    parser.add_argument("--profile", action="store_true", help="print a profile of QWR's step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [
        ("qwr_fast QWR-LSE (preset mujoco)", qwr_steps_per_s(args.steps, args.profile)),
        ("Stable-Baselines3 SAC", sb3_steps_per_s(args.steps)),
    ]
    print("| method | env steps/s | 100K steps |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {100_000 / rate / 60:.0f} min |")
    print(f"\nQWR / SAC: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
