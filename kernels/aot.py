"""Ahead-of-time compile check for every Triton kernel of the op core; needs no GPU.

Each op file lists its kernels and launch configs in ``aot_specs()``. This module compiles
every spec with Triton's real compiler for ``GPUTarget("cuda", 80, 32)`` and
``GPUTarget("cuda", 90, 32)``, then runs the ``ptxas`` bundled with Triton in verbose mode on
the PTX to report registers, spill bytes and shared memory per kernel.

Run it on its own::

    python -m qwr_fast.kernels.aot            # table; exit 1 on any compile error
    python -m qwr_fast.kernels.aot --strict   # also exit 1 on any spill

It must not run under ``TRITON_INTERPRET=1`` (the interpreter replaces the compiler).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

OPS = ("lse_backup", "awr_loss", "sampled_q_head", "proposal_sample")
TARGETS = (80, 90)


@dataclass(frozen=True)
class AOTResult:
    op: str
    name: str
    arch: int
    registers: int
    spill_stores: int
    spill_loads: int
    shared_bytes: int
    error: str = ""


def _ptxas() -> str:
    """The newest ptxas bundled with Triton (Triton's PTX version can be newer than the plain
    ``ptxas`` it ships accepts; ``ptxas-blackwell`` reads every PTX version Triton writes)."""
    import triton

    bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    for name in ("ptxas-blackwell", "ptxas"):
        if (bundled / name).exists():
            return str(bundled / name)
    return "ptxas"


def _parse_ptxas(text: str) -> tuple[int, int, int]:
    registers = max((int(m) for m in re.findall(r"Used (\d+) registers", text)), default=0)
    stores = sum(int(m) for m in re.findall(r"(\d+) bytes spill stores", text))
    loads = sum(int(m) for m in re.findall(r"(\d+) bytes spill loads", text))
    return registers, stores, loads


def _compile_one(op: str, index: int, arch: int) -> AOTResult:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    spec = importlib.import_module(f"qwr_fast.kernels.{op}").aot_specs()[index]
    try:
        src = ASTSource(fn=spec.fn, signature=spec.signature, constexprs=spec.constexprs)
        compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32))
        ptx = compiled.asm["ptx"]
        gpu = re.search(r"^\.target\s+(\w+)", ptx, re.MULTILINE).group(1)
        with tempfile.TemporaryDirectory() as tmp:
            ptx_path = Path(tmp) / "k.ptx"
            ptx_path.write_text(ptx)
            out = subprocess.run(
                [_ptxas(), "-v", f"--gpu-name={gpu}", str(ptx_path), "-o", os.devnull],
                capture_output=True,
                text=True,
                check=True,
            )
        registers, stores, loads = _parse_ptxas(out.stdout + out.stderr)
        return AOTResult(op, spec.name, arch, registers, stores, loads, compiled.metadata.shared)
    except Exception as exc:  # reported, and turned into a non-zero exit status
        return AOTResult(op, spec.name, arch, 0, 0, 0, 0, error=f"{type(exc).__name__}: {exc}")


def compile_all(ops: tuple[str, ...] = OPS, workers: int = 2) -> list[AOTResult]:
    """Compile every spec of ``ops`` for every target; results in a stable order."""
    jobs = []
    for op in ops:
        specs = importlib.import_module(f"qwr_fast.kernels.{op}").aot_specs()
        jobs += [(op, i, arch) for i in range(len(specs)) for arch in TARGETS]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_compile_one, *zip(*jobs, strict=True)))


def format_table(results: list[AOTResult]) -> str:
    lines = [
        f"{'op':<16} {'kernel / config':<64} {'sm':>3} {'regs':>5} {'spill st/ld':>11} "
        f"{'smem B':>7}",
    ]
    for r in results:
        if r.error:
            lines.append(f"{r.op:<16} {r.name:<64} {r.arch:>3} COMPILE ERROR: {r.error}")
            continue
        spills = f"{r.spill_stores}/{r.spill_loads}"
        lines.append(
            f"{r.op:<16} {r.name:<64} {r.arch:>3} {r.registers:>5} {spills:>11} {r.shared_bytes:>7}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="*", default=list(OPS), help="ops to compile")
    parser.add_argument("--strict", action="store_true", help="fail on any register spill")
    parser.add_argument("--workers", type=int, default=2, help="compile processes")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("unset TRITON_INTERPRET: the AOT check needs Triton's real compiler")
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, made explicit
    results = compile_all(tuple(args.ops), args.workers)
    print(format_table(results))
    errors = [r for r in results if r.error]
    spilling = [r for r in results if not r.error and (r.spill_stores or r.spill_loads)]
    print(f"\n{len(results)} compiles, {len(errors)} errors, {len(spilling)} with spills")
    if errors or (args.strict and spilling):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
