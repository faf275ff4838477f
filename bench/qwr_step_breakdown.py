"""Where one env step of ``qwr-train`` goes: a QWR trainer's update parts timed alone, on the CPU.

    python bench/qwr_step_breakdown.py [--env HalfCheetah-v5] [--preset mujoco] [--algo qwr-lse]
                                       [--iters 200] [--compile] [--bf16] [--threads 1]

Prints ms per call of: one env step of collection, one replay sample, one critic step, one actor
step, one full ``update()`` at one critic and one actor step (the updates one env step pays for
at the default epoch ratio), and the critic optimiser's step for Adam fused / foreach / default.
``--compile`` also times ``update()`` with the config's ``compile=True`` (the two losses under
``torch.compile``); ``--bf16`` also times the critic step, the actor step and ``update()`` of a
trainer with ``precision="bf16"`` (autocast bfloat16 products). Each figure is the mean over
``--iters`` calls after warm-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def _ms(fn, iters: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters * 1e3


def _trainer(args, compile_losses: bool, precision: str = "fp32"):
    from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

    cfg = QWRConfig(
        **{
            **PRESETS[args.preset],
            "env": args.env,
            "preset": args.preset,
            "algo": args.algo,
            "run_dir": tempfile.mkdtemp(prefix="qwr_breakdown_"),
            "progress": False,
            "tensorboard": False,
            "critic_steps": 1,
            "actor_steps": 1,
            "threads": args.threads,
            "compile": compile_losses,
            "precision": precision,
        }
    )
    trainer = QWRTrainer(cfg)
    trainer.collect(2000)
    return trainer


def _step_rows(tr, label: str, iters: int) -> list[tuple[str, float]]:
    """Critic step, actor step (on one fixed batch) and a whole update(), as the trainer runs
    them (inside its autocast region when its precision is bf16)."""
    batch = tr.sample_batch()

    def critic_step():
        tr.critic_step(batch)

    def actor_step():
        tr.actor_step(batch)

    return [
        (
            f"critic step (loss, backward, clip, Adam, target sync), {label}",
            _ms(critic_step, iters),
        ),
        (f"actor step (loss, backward, clip, Adam), {label}", _ms(actor_step, iters)),
        (f"update(): 1 critic + 1 actor step, {label}", _ms(tr.update, iters)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--preset", default="mujoco")
    parser.add_argument("--algo", default="qwr-lse")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time compiled losses")
    parser.add_argument("--bf16", action="store_true", help="also time precision='bf16' steps")
    args = parser.parse_args()
    tr = _trainer(args, compile_losses=False)
    rows = [
        ("collect, one env step", _ms(lambda: tr.collect(tr.cfg.num_envs), args.iters)),
        ("replay sample (batch, margin)", _ms(tr.sample_batch, args.iters)),
        *_step_rows(tr, "eager", args.iters),
    ]
    for name, kw in [("fused", {"fused": True}), ("foreach", {"foreach": True}), ("default", {})]:
        opt = torch.optim.Adam(tr.critic.parameters(), lr=1e-3, **kw)
        for p in tr.critic.parameters():
            p.grad = torch.randn_like(p)
        rows.append((f"Adam step over the critic's parameters, {name}", _ms(opt.step, args.iters)))
    if args.bf16:
        rows += _step_rows(
            _trainer(args, compile_losses=False, precision="bf16"), "bf16", args.iters
        )
    if args.compile:
        compiled = _trainer(args, compile_losses=True)
        start = time.perf_counter()
        compiled.update()
        rows.append(("torch.compile warm-up (first update), s", time.perf_counter() - start))
        rows.append(
            ("update(): 1 critic + 1 actor step, compiled losses", _ms(compiled.update, args.iters))
        )
    print(f"{args.env}, preset {args.preset}, {args.algo}, {torch.get_num_threads()} thread(s)")
    print("| part | ms per call |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
