#!/usr/bin/env bash
# MinAtar at 100K env steps (issue 4, result 3; the CPU-scale counterpart of the paper's Atari
# table): QWR-LSE vs AWR on Breakout, Freeway and Seaquest, preset minatar, seed 0, plus a
# uniformly random policy (100 episodes per game), through the queue of docs/qwr_100k_runs.sh
# (one torch thread per run, pinned to core ${CORE:-0}). Runs land in runs/minatar_<steps>/.
# Cost on this project's CPU, one thread, the other core busy with a second run (2026-12-05):
# 61-65 min per 100K-step run for QWR-LSE and 47-56 min for AWR (wall_s.txt, docs/results.md).
# Usage: [RUNS="MinAtar/Breakout:qwr-lse:0 ..."] [CORE=0] bash docs/qwr_minatar_runs.sh [TOTAL_STEPS]
set -euo pipefail
export PRESET=minatar RANDOM_EPISODES=${RANDOM_EPISODES:-100}
export RUNS=${RUNS:-"MinAtar/Breakout:qwr-lse:0 MinAtar/Breakout:awr:0 MinAtar/Freeway:qwr-lse:0 MinAtar/Freeway:awr:0 MinAtar/Seaquest:qwr-lse:0 MinAtar/Seaquest:awr:0"}
exec bash "$(dirname "$0")/qwr_100k_runs.sh" "$@"
