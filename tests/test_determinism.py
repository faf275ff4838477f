"""Seeded runs are reproducible: every training entry point run twice with one seed writes the
identical eval.csv and train.csv (timing columns aside), and qwr-search the identical CSV row;
another seed changes the losses (so the comparison can fail)."""

from __future__ import annotations

import csv

import pytest

from qwr_fast.cli.search import main as search_main
from qwr_fast.cli.train import aql_train, dqn_train, ppo_train, qwr_train

TIMING = {"wall_s", "steps_per_s", "seconds_per_move", "sps", "time_s"}
# --preset none: the runs below are sized by their flags, not by the env family's preset
COMMON = ["--preset", "none", "--no-progress", "--total-steps", "160", "--eval-every", "80",
          "--eval-episodes", "2"]  # fmt: skip
RUNS = {
    "qwr-train": (qwr_train, ["--env", "Pendulum-v1", "--steps-per-epoch", "40",
                              "--critic-steps", "4", "--actor-steps", "4", "--batch-size", "16",
                              "--hidden", "16", "--num-envs", "2", "--no-tensorboard"]),
    "aql-train": (aql_train, ["--env", "BitFlipSubset-8", "--steps-per-epoch", "40",
                              "--updates-per-epoch", "3", "--learning-starts", "40",
                              "--batch-size", "8", "--hidden", "16", "--proposal-width", "8",
                              "--num-proposal", "5", "--num-uniform", "11",
                              "--no-tensorboard"]),
    "ppo-train": (ppo_train, ["--env", "BitFlip-8", "--num-envs", "2", "--num-steps", "16",
                              "--num-minibatches", "2", "--hidden", "8", "--no-tensorboard"]),
    "dqn-train": (dqn_train, ["--env", "BitFlip-8", "--num-envs", "2", "--buffer-size", "400",
                              "--learning-starts", "40", "--train-every", "2",
                              "--target-every", "10", "--hidden", "8"]),
}  # fmt: skip


def _rows(path, drop=TIMING) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def _train(name: str, run_dir, seed: int) -> tuple[list[dict], list[dict]]:
    fn, argv = RUNS[name]
    assert fn([*argv, *COMMON, "--seed", str(seed), "--run-dir", str(run_dir)]) == 0
    return _rows(run_dir / "eval.csv"), _rows(run_dir / "train.csv")


@pytest.mark.parametrize("name", sorted(RUNS))
def test_same_seed_same_run(name, tmp_path, capsys):
    eval_a, train_a = _train(name, tmp_path / "a", 7)
    eval_b, train_b = _train(name, tmp_path / "b", 7)
    assert len(eval_a) >= 2 and len(train_a) >= 1
    assert eval_a == eval_b
    assert train_a == train_b
    _, train_c = _train(name, tmp_path / "c", 8)
    assert train_c != train_a, "the seed changes nothing: the comparison above cannot fail"


def test_same_seed_same_search(tmp_path, capsys):
    bp = tmp_path / "bp"
    fn, argv = RUNS["ppo-train"]
    assert fn([*argv, *COMMON, "--seed", "0", "--run-dir", str(bp)]) == 0
    rows = []
    for seed in (3, 3, 4):
        out = tmp_path / f"search_{len(rows)}.csv"
        args = ["--env", "BitFlip-8", "--blueprint", str(bp / "checkpoint.pt"), "--planner",
                "policy-ft", "--episodes", "3", "--budget-steps", "96", "--horizon", "4",
                "--width", "4", "--seed", str(seed), "--out", str(out)]  # fmt: skip
        args.append("--no-progress")
        assert search_main(args) == 0
        rows.append(_rows(out, drop=TIMING | {"seed"}))
    assert rows[0] == rows[1]
    assert rows[2] != rows[0], "the seed changes nothing: the comparison above cannot fail"
