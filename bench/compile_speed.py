"""Env steps/s of ``qwr-train`` eager vs ``--compile`` (the whole update step compiled), side by
side in one run on this machine, and the profile of both update steps (issue 22).

    python bench/compile_speed.py [--env HalfCheetah-v5] [--steps 4000] [--threads 1]
                                  [--out docs/runs/compile_speed]

Each mode trains ``qwr-train --preset mujoco`` for ``--steps`` env steps in its own process
(1000 env steps per epoch, 1000 critic + 1000 actor steps per epoch: the preset's defaults),
one after the other, and reports the env steps/s of every epoch after the first (the first
also holds ``torch.compile``'s compilation, reported apart as the first epoch's wall time).
Then each mode's update is profiled in this process (``torch.profiler``, 50 critic + 50 actor
steps after warm-up) and its self CPU time grouped: matrix products, the fused ops, the
optimiser, the compiled graphs (inductor's generated kernels and their glue), dynamo's guard
checks, the rest (``--profile-only`` redoes only this part). Writes
``speed.csv``, ``profile.csv``, ``profile_<mode>.txt`` and ``config.json`` to ``--out``;
``python docs/compile_table.py`` prints the results.md table from them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

MODES = {"eager": [], "compile": ["--compile"]}
GROUPS = {
    "matrix products": ("aten::addmm", "aten::mm", "aten::mv", "aten::addmv", "aten::bmm"),
    "fused ops (qwr_fast::*)": ("qwr_fast::",),
    "optimiser (Adam, clip, zero_grad)": (
        "aten::_fused_adam_",
        "Optimizer.",
        "aten::linalg_vector_norm",
        "aten::_foreach",
    ),
    "compiled graphs (inductor's fused kernels and their glue)": (
        "## Call CompiledFxGraph",
        "Torch-Compiled Region",
        "CompiledFunction",
    ),
    "dynamo guard checks": ("TorchDynamo Cache Lookup",),
}


VIEWS = {
    "aten::view", "aten::t", "aten::reshape", "aten::expand", "aten::as_strided",
    "aten::select", "aten::slice", "aten::unsqueeze", "aten::squeeze", "aten::detach",
    "aten::empty", "aten::empty_like", "aten::transpose", "aten::permute", "aten::alias",
    "aten::lift_fresh", "aten::_unsafe_view", "aten::resolve_conj", "aten::resolve_neg",
    "aten::empty_strided", "aten::flatten", "aten::unbind", "aten::split", "aten::chunk",
    "aten::narrow", "aten::detach_", "aten::result_type", "aten::is_nonzero",
    "aten::_reshape_alias", "aten::set_", "aten::contiguous", "aten::to", "aten::_to_copy",
    "aten::view_as", "aten::expand_as", "aten::squeeze_", "aten::unsqueeze_",
}  # fmt: skip


def _write_csv(path: str, rows: list[dict]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _train(args, mode: str, run_dir: str) -> dict:
    argv = [
        sys.executable, "-m", "qwr_fast.cli", "qwr-train", "--preset", "mujoco",
        "--env", args.env, "--total-steps", str(args.steps), "--threads", str(args.threads),
        "--eval-every", str(10 * args.steps), "--eval-episodes", "1", "--eval-max-steps", "10",
        "--no-progress", "--no-tensorboard", "--seed", "0", "--run-dir", run_dir,
        *MODES[mode],
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    total = time.perf_counter() - start
    with open(os.path.join(run_dir, "train.csv")) as f:
        rows = list(csv.DictReader(f))
    steady = [float(r["steps_per_s"]) for r in rows[1:]]
    return {
        "mode": mode,
        "env_steps": args.steps,
        "steady_steps_per_s": sum(steady) / len(steady),
        "first_epoch_s": float(rows[0]["wall_s"]),
        "process_wall_s": total,
    }


def _profile(args, mode: str) -> tuple[dict[str, float], str]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from qwr_fast.trainers.qwr import PRESETS, QWRConfig, QWRTrainer

    torch.set_num_threads(args.threads)
    cfg = QWRConfig(
        **{
            **PRESETS["mujoco"],
            "env": args.env,
            "preset": "mujoco",
            "run_dir": tempfile.mkdtemp(prefix="compile_speed_"),
            "progress": False,
            "tensorboard": False,
            "critic_steps": 50,
            "actor_steps": 50,
            "threads": args.threads,
            "compile": mode == "compile",
        }
    )
    trainer = QWRTrainer(cfg)
    trainer.collect(2000)
    trainer.update_steps()
    trainer.update_steps()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        start = time.perf_counter()
        trainer.update_steps()
        wall = time.perf_counter() - start
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    groups = dict.fromkeys([*GROUPS, "other (elementwise, copies, indexing, ...)"], 0.0)
    for e in events:
        name = next((g for g, keys in GROUPS.items() if e.key.startswith(keys)), None)
        groups[name or "other (elementwise, copies, indexing, ...)"] += e.self_cpu_time_total
    shares = {g: v / total for g, v in groups.items()}
    shares["ms per update step"] = wall / 100 * 1e3
    # for the on-paper GPU estimate: the matrix products' FLOPs and the ops that would each be
    # a kernel launch (ops that do their own work, views and allocations left out), per step
    shares["gflop per update step"] = sum(e.flops for e in events) / 100 / 1e9
    shares["kernel-like ops per update step"] = (
        sum(
            e.count
            for e in events
            if e.key.startswith("aten::")
            and e.key not in VIEWS
            and e.self_cpu_time_total >= 0.5 * e.cpu_time_total
        )
        / 100
    )
    table = events.table(sort_by="self_cpu_time_total", row_limit=20)
    return shares, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="docs/runs/compile_speed")
    p.add_argument("--profile-only", action="store_true", help="keep OUT/speed.csv, profile")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if not args.profile_only:
        speed = []
        with tempfile.TemporaryDirectory(prefix="compile_speed_") as tmp:
            for mode in MODES:
                speed.append(_train(args, mode, os.path.join(tmp, mode)))
                print(speed[-1], flush=True)
        _write_csv(os.path.join(args.out, "speed.csv"), speed)
    profile_rows = []
    for mode in MODES:
        shares, table = _profile(args, mode)
        profile_rows.append({"mode": mode, **shares})
        with open(os.path.join(args.out, f"profile_{mode}.txt"), "w") as f:
            f.write(table)
        print(mode, shares, flush=True)
    _write_csv(os.path.join(args.out, "profile.csv"), profile_rows)
    import torch

    config = {
        "command": "python bench/compile_speed.py --steps " + str(args.steps),
        "env": args.env,
        "steps": args.steps,
        "threads": args.threads,
        "preset": "mujoco",
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "date": time.strftime("%Y-%m-%d"),
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
