"""QWR-LSE (default MuJoCo config) vs Stable-Baselines3 SAC on HalfCheetah-v5, side by side.

Both at the same network width (256-256), batch size (256) and one gradient step per env step
(QWR's default epoch is K = 1000 env steps, C = 1000 critic steps, P = 1000 actor steps, so one
critic and one actor step per env step), one torch thread each, on the CPU. Reported: env steps
per second after warm-up, and the implied wall time of a 100K-step run.

    pip install stable-baselines3    # not a qwr_fast dependency; only this comparison uses it
    python bench/qwr_vs_sb3.py [--steps 300] [--profile] [--flops] [--threads 1]
                               [--precision fp32 bf16]

``--profile`` adds a torch.profiler table (top ops by self CPU time) of QWR's timed segment.
``--flops`` counts the matmul FLOPs (forward and backward, ``torch.utils.flop_counter``) of
one env step's updates of each method, and the floor they put under a 100K-step run at a given
FLOP rate. ``--threads`` sets torch's CPU threads for both methods. ``--precision`` lists the
QWR trainer precisions to time (``bf16``: autocast bfloat16 products, see ``QWRConfig``); SB3
SAC runs as a user runs it, in fp32.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym
import torch


def _qwr_trainer(updates_per_epoch: int, precision: str = "fp32"):
    """QWR-LSE at the default MuJoCo config with ``updates_per_epoch`` critic and actor steps
    per ``update()``, its replay filled past the batch size by 1000 env steps."""
    from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer

    cfg = QWRConfig(
        env="HalfCheetah-v5",
        preset="mujoco",
        run_dir=tempfile.mkdtemp(prefix="qwr_vs_sb3_"),
        progress=False,
        tensorboard=False,
        critic_steps=updates_per_epoch,
        actor_steps=updates_per_epoch,
        threads=torch.get_num_threads(),  # the trainer sets torch's threads from its config
        precision=precision,
    )
    trainer = QWRTrainer(cfg)
    trainer.collect(1000)
    return trainer


def qwr_steps_per_s(steps: int, profile: bool = False, precision: str = "fp32") -> float:
    trainer = _qwr_trainer(steps, precision)
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


def update_flops() -> dict[str, float]:
    """Matmul FLOPs of the updates that one env step pays for (QWR: one critic and one actor
    step; SAC: one gradient step), forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    trainer = _qwr_trainer(1)
    trainer.update()  # warm-up (lazy init)
    with FlopCounterMode(display=False) as counter:
        trainer.update()
    qwr = counter.get_total_flops()
    model = _sac(learning_starts=300)
    model.learn(301)
    with FlopCounterMode(display=False) as counter:
        model.train(gradient_steps=1, batch_size=256)
    return {"qwr": float(qwr), "sac": float(counter.get_total_flops())}


def gemm_flop_rate(
    m: int = 3072, k: int = 256, n: int = 256, seconds: float = 2.0, dtype=torch.float32
) -> float:
    """FLOP/s of ``torch.mm`` at QWR's largest GEMM (the target network's head over 256 x 3 x 4
    sampled actions, width 256) on the current thread count: the ceiling for a GEMM-bound step
    (``dtype=torch.bfloat16``: the products of ``--precision bf16``)."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    out = torch.empty(m, n, dtype=dtype)
    for _ in range(20):
        torch.mm(a, b, out=out)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b, out=out)
        calls += 1
    return 2.0 * m * k * n * calls / (time.perf_counter() - start)


def _sac(learning_starts: int = 1000):
    from stable_baselines3 import SAC

    return SAC(
        "MlpPolicy",
        gym.make("HalfCheetah-v5"),
        policy_kwargs={"net_arch": [256, 256]},
        batch_size=256,
        train_freq=1,
        gradient_steps=1,
        learning_starts=learning_starts,
        device="cpu",
        verbose=0,
    )


def sb3_steps_per_s(steps: int) -> float:
    model = _sac()
    model.learn(1000 + steps)  # warm-up: 1000 random steps, then `steps` with updates
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=300, help="timed env steps per method (0: no timing)"
    )
    parser.add_argument("--profile", action="store_true", help="print a profile of QWR's step")
    parser.add_argument("--flops", action="store_true", help="count each update's matmul FLOPs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both methods)")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=("fp32", "bf16"),
        default=["fp32"],
        help="QWR trainer precisions to time",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.flops:
        flops, rate = update_flops(), gemm_flop_rate()
        bf16_rate = gemm_flop_rate(dtype=torch.bfloat16)
        print(
            f"torch.mm 3072x256x256 on {args.threads} thread(s): {rate / 1e9:.1f} GFLOP/s fp32 "
            f"(the rate of the floor below), {bf16_rate / 1e9:.1f} GFLOP/s bf16\n"
        )
        print("| method | matmul GFLOP per env step | env steps/s at that GEMM rate | 100K steps |")
        print("|---|---:|---:|---:|")
        for name, f in flops.items():
            print(f"| {name} | {f / 1e9:.3f} | {rate / f:.1f} | {f * 1e5 / rate / 60:.1f} min |")
        print(f"\nQWR / SAC FLOPs per env step: {flops['qwr'] / flops['sac']:.2f}x\n")
        if args.steps == 0:
            return
    rows = [
        (
            f"qwr_fast QWR-LSE (preset mujoco, precision {precision})",
            qwr_steps_per_s(args.steps, args.profile, precision),
        )
        for precision in args.precision
    ]
    sac = sb3_steps_per_s(args.steps)
    print("| method | env steps/s | 100K steps | vs SB3 SAC |")
    print("|---|---:|---:|---:|")
    for name, rate in [*rows, ("Stable-Baselines3 SAC (fp32)", sac)]:
        print(f"| {name} | {rate:.1f} | {100_000 / rate / 60:.0f} min | {rate / sac:.2f}x |")


if __name__ == "__main__":
    main()
