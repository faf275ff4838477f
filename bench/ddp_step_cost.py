"""Where the time of a data-parallel ``qwr-train`` step goes on this machine (gloo, CPU): one
critic gradient step of the preset's trainer timed alone and side by side with a second
process, with and without the gradient all-reduce.

    torchrun --standalone --nproc-per-node=2 bench/ddp_step_cost.py [--env HalfCheetah-v5]
        [--preset mujoco] [--iters 200]

Rows (ms per critic step, mean over ``--iters`` after warm-up, one torch thread per process):
batch B alone (rank 1 idle in a barrier), B/2 alone, B/2 on both ranks at once without
communication, B/2 on both ranks through DistributedDataParallel (what ``torchrun ...
qwr-train`` runs), and the bare all-reduce of the critic's gradient (its parameter count x 4
bytes). Also the actor step the same ways. The data-parallel speed-up of the update is about
(B alone) / (B/2 DDP).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.distributed as dist

from qwr_fast.distributed import exit_process


def _ms(fn, iters: int) -> float:
    for _ in range(5):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--preset", default="mujoco")
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args()

    from qwr_fast.kernels import skip_value_checks
    from qwr_fast.trainers._common import optimizer_step
    from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

    torch.set_num_threads(1)
    cfg = QWRConfig(
        **{**PRESETS[args.preset], "env": args.env, "num_envs": 2},
        run_dir=tempfile.mkdtemp(),
        progress=False,
        tensorboard=False,
        eval_episodes=1,
    )
    t = QWRTrainer(cfg)  # under torchrun: DDP-wrapped losses, batch_size / 2 per rank
    t.collect(4000)
    rank, B = t.world.rank, cfg.batch_size

    def local(batch_size: int, critic: bool):
        def step():  # the trainer's step without DDP: no gradient all-reduce
            t.local_batch = batch_size
            b = t.sample_batch()
            if critic:
                out = t.critic_loss(b)
                optimizer_step(t.opt_q, t.critic.parameters(), out["critic_loss"], 50.0)
            else:
                out = t.actor_loss(b)
                optimizer_step(t.opt_pi, t.policy.parameters(), out["actor_loss"], 50.0)
            t.local_batch = B // 2

        return step

    def ddp(critic: bool):
        return lambda: (t.critic_step if critic else t.actor_step)(t.sample_batch())

    params = {True: sum(p.numel() for p in t.critic.parameters())}
    params[False] = sum(p.numel() for p in t.policy.parameters())
    rows = []
    with skip_value_checks():
        for critic in (True, False):
            name = "critic" if critic else "actor"
            for label, batch in ((f"B={B} alone", B), (f"B/2={B // 2} alone", B // 2)):
                dist.barrier()
                ms = _ms(local(batch, critic), args.iters) if rank == 0 else float("nan")
                dist.barrier()
                rows.append((name, label, ms))
            dist.barrier()
            rows.append(
                (
                    name,
                    "B/2 on both ranks, no communication",
                    _ms(local(B // 2, critic), args.iters),
                )
            )
            dist.barrier()
            rows.append((name, "B/2 on both ranks, DDP", _ms(ddp(critic), args.iters)))
            buf = torch.randn(params[critic])
            dist.barrier()
            rows.append(
                (
                    name,
                    f"all-reduce of {params[critic]} floats",
                    _ms(lambda buf=buf: dist.all_reduce(buf), args.iters),
                )
            )
    if rank == 0:
        print(f"{args.env}, preset {args.preset}, batch {B}, 1 thread per process")
        print("| step | how | ms |")
        print("|---|---|---:|")
        for name, label, ms in rows:
            print(f"| {name} | {label} | {ms:.2f} |")

    exit_process(0)  # gloo's interpreter teardown can abort a finished rank (see its doc)


if __name__ == "__main__":
    main()
