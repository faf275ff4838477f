"""``qwr-search`` end to end on BitFlip with an untrained PPO blueprint."""

from __future__ import annotations

import csv

import pytest

from qwr_fast.planners.cli import CSV_COLUMNS, main
from qwr_fast.trainers.ppo import PPOConfig, PPOTrainer


@pytest.fixture
def blueprint(tmp_path):
    cfg = PPOConfig(
        env="BitFlip-4",
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        hidden=8,
        eval_episodes=1,
        run_dir=str(tmp_path / "bp"),
        progress=False,
        tensorboard=False,
    )
    return PPOTrainer(cfg).save()


@pytest.mark.parametrize("planner", ["blueprint", "sparta", "mcts", "policy-ft"])
def test_rl_search_writes_one_row(blueprint, tmp_path, planner, capsys):
    out = tmp_path / "res.csv"
    argv = ["--env", "BitFlip-4", "--blueprint", blueprint, "--planner", planner]
    argv += ["--episodes", "2", "--budget-steps", "32", "--horizon", "2", "--width", "4"]
    argv += ["--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert main([*argv, "--seed", "1"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and list(rows[0]) == CSV_COLUMNS
    row = rows[0]
    assert row["planner"] == planner and row["episodes"] == "2"
    assert float(row["moves_per_episode"]) == 5.0  # BitFlip episodes are 5 moves
    steps = float(row["env_steps_per_move"])
    if planner == "blueprint":
        assert steps == 0.0
    elif planner == "policy-ft":  # one search of <= 32 steps every 2 moves
        assert 0 < steps <= 32 * 3 / 5
    else:
        assert 0 < steps <= 32
    assert f"| {planner} | 2 |" in capsys.readouterr().out


def test_rl_search_errors(blueprint, capsys):
    base = ["--blueprint", blueprint, "--no-progress"]
    assert main(["--env", "BitFlip-4", "--planner", "mcts", *base]) == 2
    assert main(["--env", "BitFlip-8", "--planner", "blueprint", *base]) == 2
    assert main(["--env", "BitFlip-4", "--blueprint", "/nonexistent.pt"]) == 2
    err = capsys.readouterr().err
    assert "needs --budget-steps" in err and "trained on BitFlip-4" in err
