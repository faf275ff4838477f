"""The one command to run the first time this project meets an NVIDIA GPU (``make gpu-check``).

    python bench/gpu_check.py [--out docs/bench] [--steps 3000] [--batch-scale 64]

On a machine without CUDA it prints one line and exits 2 without running anything. On a GPU it
runs, in order, and writes one Markdown report, ``OUT/gpu-<device>-<date>.md``, naming the device:

1. the kernel tests compiled for the device (``pytest tests/kernels -m kernel``, no
   interpreter);
2. the four op benchmarks (``bench/test_bench_{lse_backup,awr_loss,sampled_q_head,
   proposal_sample}.py``) with the trainers' batches times ``--batch-scale``: each variant's
   median, and the fused op's achieved GB/s and GFLOP/s (from its docstring floor) as a share of
   the device's peak where the device is in :data:`PEAKS`;
3. ``qwr-train --preset mujoco --env HalfCheetah-v5`` for ``--steps`` env steps in eager,
   ``--compile``, ``--cuda-graphs`` and ``--compile --cuda-graphs`` mode, env steps/s side by
   side (each update step compiled whole and/or captured in a CUDA graph:
   ``qwr_fast.trainers.step``);
4. Stable-Baselines3 SAC on the same env and steps, if ``stable_baselines3`` is installed.

Sized to finish in under 8 minutes on one H100. Independent of CI (nothing in the suite runs
it on a GPU; ``tests/test_gpu_check.py`` only checks the no-CUDA refusal).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = ("lse_backup", "awr_loss", "sampled_q_head", "proposal_sample")

PEAKS = {  # device name substring: (HBM GB/s, dense fp32 TFLOP/s, dense tf32/bf16 TFLOP/s)
    "H200": (4800.0, 67.0, 989.0),
    "H100 80GB HBM3": (3350.0, 67.0, 989.0),  # SXM5
    "H100 PCIe": (2000.0, 51.0, 756.0),
    "H100": (3350.0, 67.0, 989.0),
    "A100-SXM4-80GB": (2039.0, 19.5, 312.0),
    "A100": (1555.0, 19.5, 312.0),
}
"""Public datasheet peaks (NVIDIA H100 / H200 / A100 datasheets; dense, no sparsity)."""


def _run(cmd: list[str], env: dict | None = None, timeout: int = 600) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def _peaks(name: str) -> tuple[float, float, float] | None:
    for key, value in PEAKS.items():
        if key in name:
            return value
    return None


def kernel_tests() -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "pytest", "tests/kernels", "-q", "-m", "kernel"]
    rc, out, secs = _run(cmd, env)
    summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    status = "passed" if rc == 0 else f"FAILED (exit {rc})"
    lines = [f"`{' '.join(cmd[2:])}`: {status} in {secs:.0f} s: {summary[-1] if summary else ''}"]
    if rc != 0:
        lines += ["", "```", *out.splitlines()[-40:], "```"]
    return lines


def op_benchmarks(batch_scale: int, peaks) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ops.json")
        env = {**os.environ, "QWR_FAST_BENCH_BATCH_SCALE": str(batch_scale)}
        files = [f"bench/test_bench_{op}.py" for op in OPS]
        cmd = [sys.executable, "-m", "pytest", *files, "-q", "--benchmark-min-rounds=20"]
        rc, out, secs = _run([*cmd, f"--benchmark-json={path}"], env)
        if rc != 0 or not os.path.exists(path):
            return [f"op benchmarks FAILED (exit {rc})", "", "```", *out.splitlines()[-40:], "```"]
        with open(path) as f:
            data = json.load(f)
    lines = [
        f"Batch x {batch_scale} (`QWR_FAST_BENCH_BATCH_SCALE`), {secs:.0f} s. Achieved rates of "
        "each variant against the fused op's floor; % of peak: HBM bandwidth, and dense fp32 "
        "compute.",
        "",
        "| benchmark | median | GB/s | GFLOP/s | % of peak GB/s | % of peak fp32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for bench in data["benchmarks"]:
        info, median = bench.get("extra_info", {}), bench["stats"]["median"]
        gbs, gflops = info.get("gbytes_per_s"), info.get("gflops")
        pct_bw = pct_fp = "-"
        if peaks is not None and gbs is not None:
            pct_bw = f"{100 * gbs / peaks[0]:.1f}"
            pct_fp = f"{100 * gflops / 1e3 / peaks[1]:.1f}"
        gbs_s = "-" if gbs is None else f"{gbs:.1f}"
        gfl_s = "-" if gflops is None else f"{gflops:.1f}"
        lines.append(
            f"| {bench['name']} | {median * 1e6:.1f} us | {gbs_s} | {gfl_s} | {pct_bw} | {pct_fp} |"
        )
    return lines


def _train(steps: int, flags: list[str], run_dir: str) -> tuple[str, float | None]:
    cmd = [sys.executable, "-m", "qwr_fast.cli", "qwr-train", "--preset", "mujoco", "--env"]
    cmd += ["HalfCheetah-v5", "--total-steps", str(steps), "--eval-every", str(steps)]
    cmd += ["--eval-episodes", "1", "--run-dir", run_dir, "--no-progress", "--no-tensorboard"]
    rc, out, secs = _run([*cmd, *flags])
    if rc != 0:
        return f"FAILED (exit {rc}): {out.strip().splitlines()[-1] if out.strip() else ''}", None
    with open(os.path.join(run_dir, "train.csv"), newline="") as f:
        wall = float(list(csv.DictReader(f))[-1]["wall_s"])
    return f"{steps / wall:.1f} env steps/s ({wall:.0f} s of training, {secs:.0f} s in all)", wall


def training(steps: int) -> list[str]:
    lines = [f"`qwr-train --preset mujoco --env HalfCheetah-v5`, {steps} env steps (1000 + 1000 "
             "updates per 1000 env steps, batch 256):", ""]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        modes = (
            ("eager", []),
            ("--compile", ["--compile"]),
            ("--cuda-graphs", ["--cuda-graphs"]),
            ("--compile --cuda-graphs", ["--compile", "--cuda-graphs"]),
        )
        for name, flags in modes:
            result, _ = _train(
                steps, flags, os.path.join(tmp, name.replace("-", "").replace(" ", "_"))
            )
            lines.append(f"- {name}: {result}")
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        lines.append("- Stable-Baselines3 SAC: not installed, not run")
        return lines
    code = (
        "import time, gymnasium as gym; from stable_baselines3 import SAC; "
        "m = SAC('MlpPolicy', gym.make('HalfCheetah-v5'), learning_starts=256, device='cuda'); "
        f"t = time.perf_counter(); m.learn({steps}); print({steps} / (time.perf_counter() - t))"
    )
    rc, out, _ = _run([sys.executable, "-c", code])
    sps = out.strip().splitlines()[-1] if rc == 0 else f"FAILED (exit {rc})"
    lines.append(f"- Stable-Baselines3 SAC, same env and steps: {sps} env steps/s")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/bench", help="folder of the report")
    parser.add_argument("--steps", type=int, default=3000, help="qwr-train env steps per mode")
    parser.add_argument("--batch-scale", type=int, default=64, help="op benchmark batch factor")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing run",
              file=sys.stderr)  # fmt: skip
        return 2
    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    peaks = _peaks(name)
    today = datetime.date.today().isoformat()
    sections = [
        f"# GPU check: {name} (sm_{major}{minor}), {today}",
        "",
        f"torch {torch.__version__}, CUDA {torch.version.cuda}; command: `make gpu-check` "
        f"(`python bench/gpu_check.py --steps {args.steps} --batch-scale {args.batch_scale}`). "
        + (
            f"Peaks used: {peaks[0]:.0f} GB/s, {peaks[1]:.1f} fp32 TFLOP/s."
            if peaks
            else "No peaks known for this device."
        ),
        "",
        "## Kernel tests on the device",
        "",
        *kernel_tests(),
        "",
        "## Op benchmarks",
        "",
        *op_benchmarks(args.batch_scale, peaks),
        "",
        "## Training",
        "",
        *training(args.steps),
        "",
    ]
    os.makedirs(os.path.join(ROOT, args.out), exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    path = os.path.join(ROOT, args.out, f"gpu-{slug}-{today}.md")
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(path), delete=False) as f:
        f.write("\n".join(sections))
    os.replace(f.name, path)  # atomic: a report is whole or absent
    print(f"gpu-check: report written to {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
