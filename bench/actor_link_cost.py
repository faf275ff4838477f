"""What mode 2 (``qwr-train --actors``) pays per epoch to move data between ranks, on gloo:
one actor's chunk to its learner (:class:`qwr_fast.distributed.Chunk`) and the weights and
normaliser the learners broadcast (:func:`qwr_fast.distributed.broadcast_weights`), at the
sizes of a given env and preset.

    torchrun --standalone --nproc-per-node=2 bench/actor_link_cost.py [--env MinAtar/Breakout]
        [--preset minatar] [--iters 20]

Rank 0 plays the learner, rank 1 the actor; prints the chunk's and the weights' bytes and the
median ms per transfer (the actor's chunk of ``steps_per_epoch`` steps, one epoch's worth
with one actor).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch.distributed as dist

from qwr_fast.distributed import exit_process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="MinAtar/Breakout")
    parser.add_argument("--preset", default="minatar")
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()

    from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

    preset = PRESETS[args.preset]
    cfg = QWRConfig(
        **{**preset, "env": args.env, "actors": 1, "num_envs": preset.get("num_envs", 1)},
        run_dir=tempfile.mkdtemp(),
        progress=False,
        tensorboard=False,
        eval_episodes=1,
    )
    trainer = QWRTrainer(cfg)
    rank = trainer.world.rank
    chunk = trainer.chunks[0]
    tensors = trainer.acting_tensors()
    chunk_bytes = sum(t.numel() * t.element_size() for t in chunk.tensors.values())
    weight_bytes = sum(t.numel() * t.element_size() for t in tensors)
    sends, bcasts = [], []
    for _ in range(args.iters):
        dist.barrier()
        t0 = time.perf_counter()
        if rank == 0:
            chunk.recv(1)
        else:
            chunk.send(0)
        sends.append(time.perf_counter() - t0)
        dist.barrier()
        t0 = time.perf_counter()
        from qwr_fast.distributed import broadcast_weights

        broadcast_weights(tensors, [0.0] * 4)
        bcasts.append(time.perf_counter() - t0)
    if rank == 0:
        print(f"env {args.env}, preset {args.preset}: chunk of {cfg.steps_per_epoch} steps")
        print(f"| transfer | bytes | median ms (gloo, {args.iters} iterations) |")
        print("|---|---:|---:|")
        print(f"| chunk, actor -> learner | {chunk_bytes} | {statistics.median(sends) * 1e3:.2f} |")
        print(
            f"| weights + normaliser, broadcast | {weight_bytes} | "
            f"{statistics.median(bcasts) * 1e3:.2f} |"
        )

    exit_process(0)  # gloo's interpreter teardown can abort a finished rank (see its doc)


if __name__ == "__main__":
    main()
