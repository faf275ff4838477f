"""Turn a pytest-benchmark JSON file into the markdown tables of docs/results.md.

    python -m pytest bench/test_bench_<op>.py --benchmark-json=out.json
    python bench/summarize.py out.json

For every group it lists each variant's median and its speed-up over the naive eager
composite of the same group (the variant whose name says ``naive`` or ``eager`` and not
``compile``), plus the achieved GB/s and GFLOP/s the bench stored in ``extra_info``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _is_baseline(name: str) -> bool:
    lowered = name.lower()
    return ("naive" in lowered or "eager" in lowered) and "compile" not in lowered


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def summarize(path: str) -> str:
    with open(path) as f:
        data = json.load(f)
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"] or bench["name"].split("[")[0]].append(bench)
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "?")
    lines = [
        f"Machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} logical cores; "
        f"{data.get('datetime', '')[:10]}",
        "",
        "| group | variant | median | speed-up vs naive eager | GB/s | GFLOP/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group, benches in sorted(groups.items()):
        baseline = next((b for b in benches if _is_baseline(b["param"] or b["name"])), None)
        for b in sorted(benches, key=lambda b: b["stats"]["median"]):
            median = b["stats"]["median"]
            ratio = f"{baseline['stats']['median'] / median:.2f}x" if baseline else "-"
            extra = b.get("extra_info", {})
            gbs, gflops = extra.get("GB/s"), extra.get("GFLOP/s")
            lines.append(
                f"| {group} | {b['param'] or b['name']} | {_fmt_time(median)} | {ratio} | "
                f"{'-' if gbs is None else f'{gbs:.2f}'} | "
                f"{'-' if gflops is None else f'{gflops:.2f}'} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1]))
