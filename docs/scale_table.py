"""Print the scale-out tables of docs/results.md ("Scaling out") from their records.

    python docs/scale_table.py [RECORDS]   (default docs/runs)

Speed (``RECORDS/scale_out_speed*/p1`` and ``p2``, one folder per round of ``bash
docs/scale_out_runs.sh speed``): the same qwr-train run in 1 process and in 2 data-parallel
ranks, whole-process wall seconds (``wall_s.txt``; the sum of its lines when a run was
resumed) and the speed-up.
Actors (``RECORDS/scale_out_actors/u<updates>_p<1|2>``, from ``bash docs/scale_out_runs.sh
actors``): 1 process vs 1 learner + 1 actor on MinAtar Breakout, wall seconds and speed-up.
Farm (``RECORDS/scale_out_farm/p1``, ``p2``, from ``bash docs/scale_out_runs.sh farm``): the
same qwr-search in 1 process and 2 ranks, its CSV row and wall seconds.
Returns (``RECORDS/scale_out_100000/*``, from ``bash docs/scale_out_runs.sh returns``): the
final greedy evaluation of each seed and their mean +- population std over the seeds.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import sys


def _wall(run: str) -> float:
    with open(os.path.join(run, "wall_s.txt")) as f:
        return sum(float(line) for line in f if line.strip())


def _last_eval(run: str) -> tuple[int, float]:
    with open(os.path.join(run, "eval.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return int(rows[-1]["step"]), float(rows[-1]["return_mean"])


def _world(run: str) -> int:
    with open(os.path.join(run, "config.json")) as f:
        return json.load(f).get("world", {}).get("world_size", 1)


def _timed(runs: list[str]):
    """``(run, procs, wall s, speed-up over the first run)`` for the ``p1`` / ``p2`` run
    directories of one comparison that exist."""
    base = None
    for run in runs:
        if not os.path.isdir(run):
            continue
        wall = _wall(run)
        base = base or wall
        yield run, os.path.basename(run).split("_")[-1], wall, base / wall


def speed(root: str) -> None:
    rounds = sorted(n for n in os.listdir(root) if n.startswith("scale_out_speed"))
    if not rounds:
        return
    print(
        "| round | processes | env steps | wall s | env steps / s | speed-up | final eval return |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in rounds:
        for run, _, wall, gain in _timed([os.path.join(root, name, p) for p in ("p1", "p2")]):
            step, ret = _last_eval(run)
            print(
                f"| {name} | {_world(run)} | {step} | {wall:.0f} | {step / wall:.1f} | "
                f"{gain:.2f}x | {ret:.1f} |"
            )
    print()


def actors(root: str) -> None:
    base = os.path.join(root, "scale_out_actors")
    if not os.path.isdir(base):
        return
    print(
        "| updates per 1000 env steps (critic + actor) | ranks | env steps | wall s "
        "| env steps / s | speed-up |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for updates in sorted({n.split("_")[0] for n in os.listdir(base)}, key=lambda u: -int(u[1:])):
        runs = [os.path.join(base, f"{updates}_{procs}") for procs in ("p1", "p2")]
        for run, procs, wall, gain in _timed(runs):
            step, _ = _last_eval(run)
            ranks = "1 process" if procs == "p1" else "1 learner + 1 actor"
            print(
                f"| {updates[1:]} + {updates[1:]} | {ranks} | {step} | {wall:.0f} | "
                f"{step / wall:.1f} | {gain:.2f}x |"
            )
    print()


def farm(root: str) -> None:
    base = os.path.join(root, "scale_out_farm")
    if not os.path.isdir(base):
        return
    print("| qwr-search | episodes | score mean +- s.e.m. | wall s | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for run, procs, wall, gain in _timed([os.path.join(base, p) for p in ("p1", "p2")]):
        with open(os.path.join(run, "search.csv"), newline="") as f:
            row = list(csv.DictReader(f))[-1]
        ranks = "1 process" if procs == "p1" else "2 ranks (torchrun)"
        print(
            f"| {ranks} | {row['episodes']} | {float(row['score_mean']):.2f} +- "
            f"{float(row['score_sem']):.2f} | {wall:.1f} | {gain:.2f}x |"
        )
    print()


def returns(root: str) -> None:
    base = os.path.join(root, "scale_out_100000")
    if not os.path.isdir(base):
        return
    finals, walls = [], []
    print("| run | processes | env steps | final eval return (temperature 0) | wall min |")
    print("|---|---:|---:|---:|---:|")
    for name in sorted(os.listdir(base)):
        run = os.path.join(base, name)
        step, ret = _last_eval(run)
        wall = _wall(run)
        print(f"| {name} | {_world(run)} | {step} | {ret:.1f} | {wall / 60:.1f} |")
        if step == 100_000:
            finals.append(ret)
            walls.append(wall)
    if finals:
        std = statistics.pstdev(finals) if len(finals) > 1 else 0.0
        print(
            f"\n{len(finals)} seed(s) at 100K: {statistics.mean(finals):.1f} +- {std:.1f} "
            f"(mean +- population std over seeds); wall {min(walls) / 60:.1f}-"
            f"{max(walls) / 60:.1f} min per run"
        )


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "docs/runs"
    speed(root)
    actors(root)
    farm(root)
    returns(root)
