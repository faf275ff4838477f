"""Print the results.md tables of the whole-step compile (issue 22) from the records that
``python bench/compile_speed.py`` wrote (``docs/runs/compile_speed/``), with the on-paper H100
estimate derived from the eager step's measured FLOPs and kernel-like op count.

    python docs/compile_table.py [docs/runs/compile_speed]

The estimate (a model, not a measurement; ``make gpu-check`` measures it when a GPU is lent):
one update step costs ``max(FLOPs / fp32 rate, kernels * per-kernel cost)``, with the fp32 rate
at 30 % of the H100 SXM's 67 TFLOP/s non-tensor-core peak (the step's matrices are 256 x 256 x
~1000: far too small for the peak), a per-kernel cost of 5 us launched eagerly and 1.5 us
replayed from a CUDA graph, and the compiled step's kernel count taken as half the eager one
(inductor fuses the elementwise chains). One env step of ``--preset mujoco`` pays two update
steps (1000 critic + 1000 actor steps per 1000 env steps) plus acting and MuJoCo stepping
(taken as 0.3 ms).
"""

from __future__ import annotations

import csv
import json
import os
import sys

H100_FP32_FLOPS = 67e12 * 0.30
LAUNCH_S = {"eager": 5e-6, "cuda-graphs": 1.5e-6}
ENV_STEP_S = 0.3e-3
UPDATES_PER_ENV_STEP = 2


def _rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(root: str = "docs/runs/compile_speed") -> None:
    with open(os.path.join(root, "config.json")) as f:
        config = json.load(f)
    speed = {r["mode"]: r for r in _rows(os.path.join(root, "speed.csv"))}
    prof = {r["mode"]: r for r in _rows(os.path.join(root, "profile.csv"))}
    eager = float(speed["eager"]["steady_steps_per_s"])
    print(f"`{config['command']}` ({config['cpu']}, {config['threads']} thread, "
          f"torch {config['torch']}, {config['date']}):\n")  # fmt: skip
    print("| mode | env steps/s (epochs 2+) | vs eager | first epoch (s) | ms per update step |")
    print("|---|---|---|---|---|")
    for mode, r in speed.items():
        sps = float(r["steady_steps_per_s"])
        ms = float(prof[mode]["ms per update step"])
        print(f"| {mode} | {sps:.1f} | {sps / eager:.2f}x | {float(r['first_epoch_s']):.0f} "
              f"| {ms:.2f} |")  # fmt: skip
    groups = [k for k in prof["eager"] if k != "mode" and not k[0].isdigit()]
    groups = [g for g in groups if "per update step" not in g]
    print("\nShare of the update's self CPU time (torch.profiler):\n")
    print("| where | " + " | ".join(prof) + " |")
    print("|---|" + "---|" * len(prof))
    for g in groups:
        print(f"| {g} | " + " | ".join(f"{100 * float(prof[m][g]):.0f} %" for m in prof) + " |")
    gflop = float(prof["eager"]["gflop per update step"])
    kernels = float(prof["eager"]["kernel-like ops per update step"])
    flop_s = gflop * 1e9 / H100_FP32_FLOPS
    print(
        f"\nOn paper, one H100 (SXM): {gflop:.2f} GFLOP and ~{kernels:.0f} kernel-like ops per "
        f"update step; the FLOPs take {flop_s * 1e6:.0f} us at 30 % of the fp32 peak.\n"
    )
    print("| H100 mode (estimate) | us per update step | env steps/s |")
    print("|---|---|---|")
    for name, n_kernels, launch in (
        ("eager", kernels, LAUNCH_S["eager"]),
        ("--compile", kernels / 2, LAUNCH_S["eager"]),
        ("--cuda-graphs", kernels, LAUNCH_S["cuda-graphs"]),
        ("--compile --cuda-graphs", kernels / 2, LAUNCH_S["cuda-graphs"]),
    ):
        step = max(flop_s, n_kernels * launch)
        env_sps = 1.0 / (UPDATES_PER_ENV_STEP * step + ENV_STEP_S)
        print(f"| {name} | {step * 1e6:.0f} | {env_sps:.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
