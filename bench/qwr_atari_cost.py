"""What a full Atari 100K QWR run costs on this machine: the default Atari config (preset
``atari``: Nature-DQN torso, width 512, n = 8 sampled actions, batch 256, margin T = 3, one
critic and one actor step per env step) on ALE/Pong-v5, on the CPU.

Measures the seconds per env step (collection plus its share of updates) over a few timed
steps after a warm-up, counts the matmul/conv FLOPs of one env step's updates
(``torch.utils.flop_counter``), and extrapolates both to 100K env steps.

    python bench/qwr_atari_cost.py [--steps 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed env steps (with updates)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    from qwr_fast.trainers.qwr import QWRConfig, QWRTrainer

    cfg = QWRConfig(
        env="ALE/Pong-v5",
        preset="atari",
        run_dir=tempfile.mkdtemp(prefix="qwr_atari_cost_"),
        progress=False,
        tensorboard=False,
        critic_steps=1,
        actor_steps=1,
    )
    trainer = QWRTrainer(cfg)
    t0 = time.perf_counter()
    trainer.collect(300)  # enough for a batch of 256 with margin 3
    collect_s = (time.perf_counter() - t0) / 300
    trainer.update()  # warm-up
    with FlopCounterMode(display=False) as counter:
        trainer.update()
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.update()
    update_s = (time.perf_counter() - t0) / args.steps
    per_step = collect_s + update_s
    print(f"ALE/Pong-v5, preset atari, {args.threads} torch thread(s)")
    print(f"collection: {collect_s * 1e3:.1f} ms per env step (acting and env)")
    print(f"updates: {update_s:.3f} s per env step (1 critic + 1 actor step, batch 256)")
    rate = flops / update_s / 1e9
    print(f"update FLOPs: {flops / 1e9:.1f} GFLOP per env step ({rate:.0f} GFLOP/s achieved)")
    print(f"100K env steps: {per_step * 1e5 / 3600:.1f} h on this CPU")


if __name__ == "__main__":
    main()
