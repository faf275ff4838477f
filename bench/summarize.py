"""Turn pytest-benchmark JSON files into the markdown tables of docs/results.md.

    python -m pytest bench/test_bench_<op>.py --benchmark-json=run1.json   # repeat: run2, ...
    python bench/summarize.py run1.json [run2.json ...]

For every group it lists each variant's median time (the median over the runs of each run's
median) and its speed-up over the naive eager composite of the same group (the variant whose
name says ``naive`` or ``eager`` and not ``compile``): the median over the runs of the
per-run ratio, with the lowest and highest per-run ratio when there are several runs. On a
shared 2-core machine single runs drift, so the docs use several runs.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def _is_baseline(name: str) -> bool:
    lowered = name.lower()
    return ("naive" in lowered or "eager" in lowered) and "compile" not in lowered


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def summarize(paths: list[str]) -> str:
    runs = [_load(p) for p in paths]
    medians: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for data in runs:
        for bench in data["benchmarks"]:
            group = bench["group"] or bench["name"].split("[")[0]
            medians[group][bench["param"] or bench["name"]].append(bench["stats"]["median"])
    machine = runs[0].get("machine_info", {})
    cpu = machine.get("cpu", {})
    lines = [
        f"Machine: {cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} logical cores; "
        f"{runs[0].get('datetime', '')[:10]}; {len(runs)} run(s)",
        "",
        "| group | variant | median | speed-up vs naive eager (median [min-max] over runs) |",
        "|---|---|---:|---:|",
    ]
    for group, variants in sorted(medians.items()):
        baseline = next((v for v in variants if _is_baseline(v)), None)
        for variant, times in sorted(variants.items(), key=lambda kv: statistics.median(kv[1])):
            ratio = "-"
            if baseline is not None and len(variants[baseline]) == len(times):
                ratios = [b / t for b, t in zip(variants[baseline], times, strict=True)]
                ratio = f"{statistics.median(ratios):.2f}x"
                if len(ratios) > 1:
                    ratio += f" [{min(ratios):.2f}-{max(ratios):.2f}]"
            lines.append(
                f"| {group} | {variant} | {_fmt_time(statistics.median(times))} | {ratio} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1:]))
