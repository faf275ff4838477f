"""``qwr-search`` end to end on BitFlip with an untrained PPO blueprint."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from qwr_fast.cli.search import CSV_COLUMNS, main
from qwr_fast.trainers.ppo import PPOConfig, PPOTrainer


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


@pytest.mark.parametrize(
    "planner, budget, least",
    [("sparta", 7, 8), ("mcts", 3, 4), ("policy-ft", 23, 24), ("policy-ft", 0, 24)],
)
def test_rl_search_refuses_a_budget_that_cannot_pay_for_one_search(
    blueprint, planner, budget, least, capsys
):
    # width 4, horizon 2: a SPARTA round costs 8, an MCTS batch 4, a fine-tuning batch plus
    # its acceptance test 8 + 16; one step less and the planner would silently play the
    # blueprint under its own name.
    argv = ["--env", "BitFlip-4", "--blueprint", blueprint, "--planner", planner, "--no-progress"]
    argv += ["--budget-steps", str(budget), "--horizon", "2", "--width", "4"]
    assert main(argv) == 2
    assert f"needs at least {least} sim env steps" in capsys.readouterr().err
    assert main([*argv[:-6], "--budget-steps", str(least), "--horizon", "2", "--width", "4",
                 "--episodes", "1"]) == 0  # fmt: skip


def test_rl_search_records_the_chance_mode_and_refuses_a_foreign_csv(blueprint, tmp_path, capsys):
    out = tmp_path / "res.csv"
    argv = ["--env", "BitFlip-4", "--blueprint", blueprint, "--planner", "sparta"]
    argv += ["--episodes", "1", "--budget-steps", "8", "--horizon", "2", "--width", "4"]
    argv += ["--out", str(out), "--no-progress"]
    assert main(argv) == 0 and main([*argv, "--oracle-chance"]) == 0
    assert [r["oracle_chance"] for r in csv.DictReader(out.open())] == ["False", "True"]
    old = tmp_path / "old.csv"
    old.write_text(",".join(CSV_COLUMNS[:-1]) + "\n")  # a CSV of the previous version
    assert main([*argv[:-3], "--out", str(old), "--no-progress"]) == 2
    assert "write to a new file" in capsys.readouterr().err
    assert old.read_text() == ",".join(CSV_COLUMNS[:-1]) + "\n"


def _untrained_blueprint(env: str, run_dir) -> str:
    """A ppo-train checkpoint of ``env`` after one tiny update (what the search reads)."""
    cfg = PPOConfig(
        env=env,
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        hidden=8,
        eval_episodes=1,
        run_dir=str(run_dir),
        progress=False,
        tensorboard=False,
    )
    return PPOTrainer(cfg).save()


@pytest.fixture
def hanabi_blueprint(tmp_path):
    pytest.importorskip("pyspiel", reason="the Hanabi tests need open_spiel (extra `hanabi`)")
    return _untrained_blueprint("Hanabi-VerySmall", tmp_path / "hbp")


@pytest.mark.parametrize(
    "planner, extra",
    [
        ("blueprint", []),
        ("sparta", []),
        ("policy-ft", ["--replan-every", "1"]),
        ("policy-ft", ["--joint", "--replan-every", "3"]),
    ],
)
def test_search_on_hanabi_beliefs(hanabi_blueprint, tmp_path, planner, extra, monkeypatch):
    # Searches start from belief samples (never from the real game) and play legal moves only:
    # the env raises on an illegal action, so a finished run is the check.
    from qwr_fast.envs.hanabi import HanabiVectorEnv

    calls = []
    real = HanabiVectorEnv.belief_states

    def spy(self, i, n, rng, *, public=False):
        calls.append(public)
        return real(self, i, n, rng, public=public)

    monkeypatch.setattr(HanabiVectorEnv, "belief_states", spy)
    out = tmp_path / "h.csv"
    argv = ["--env", "Hanabi-VerySmall", "--blueprint", hanabi_blueprint, "--planner", planner]
    argv += ["--episodes", "2", "--budget-steps", "96", "--horizon", "3", "--width", "8"]
    argv += ["--out", str(out), "--no-progress", *extra]
    assert main(argv) == 0
    row = next(csv.DictReader(out.open()))
    assert 0 <= float(row["score_mean"]) <= 5 and 0 <= float(row["win_rate"]) <= 1
    assert row["joint"] == str("--joint" in extra)
    if planner == "blueprint":
        assert calls == []
    else:
        assert calls and set(calls) == {"--joint" in extra}
        assert 0 < float(row["env_steps_per_move"]) <= 96


@pytest.fixture(scope="module")
def hanabi_dqn(tmp_path_factory):
    """A tiny dqn-train checkpoint on Hanabi-VerySmall (its replay is q-ft's global buffer)."""
    from qwr_fast.trainers.dqn import DQNConfig, DQNTrainer

    pytest.importorskip("pyspiel", reason="the Hanabi tests need open_spiel (extra `hanabi`)")
    cfg = DQNConfig(
        env="Hanabi-VerySmall", num_envs=2, hidden=8, total_steps=200, learning_starts=100,
        eval_every=200, eval_episodes=1, buffer_size=200, checkpoint_every=200,
        run_dir=str(tmp_path_factory.mktemp("hdqn") / "r"), progress=False,
    )  # fmt: skip
    DQNTrainer(cfg).train()
    return f"{cfg.run_dir}/checkpoint.pt"


@pytest.mark.parametrize("planner", ["blueprint", "q-ft"])
def test_dqn_blueprint_and_q_finetuning_on_hanabi(hanabi_dqn, tmp_path, planner, capsys):
    # The env raises on an illegal action: a finished run is the check that q-ft's rollouts,
    # acceptance test and play, and the greedy DQN blueprint, mask the illegal moves.
    out = tmp_path / "q.csv"
    argv = ["--env", "Hanabi-VerySmall", "--blueprint", hanabi_dqn, "--planner", planner]
    argv += ["--episodes", "2", "--budget-steps", "96", "--horizon", "3", "--width", "8"]
    argv += ["--out", str(out), "--no-progress", "--updates", "10"]
    assert main(argv) == 0
    row = next(csv.DictReader(out.open()))
    assert 0 <= float(row["score_mean"]) <= 5 and row["planner"] == planner
    assert (float(row["grad_steps_per_move"]) > 0) == (planner == "q-ft")
    assert main([*argv, "--planner", "sparta"]) == 2
    assert "needs a ppo-train blueprint" in capsys.readouterr().err
    assert main([*argv, "--planner", "q-ft", "--belief-candidates", "8"]) == 2
    assert "is not a policy" in capsys.readouterr().err


def test_search_refuses_mcts_on_hanabi(hanabi_blueprint, capsys):
    argv = ["--env", "Hanabi-VerySmall", "--blueprint", hanabi_blueprint, "--no-progress"]
    assert main([*argv, "--planner", "mcts", "--budget-steps", "8"]) == 2
    assert main([*argv, "--planner", "sparta", "--budget-steps", "8", "--joint"]) == 2
    err = capsys.readouterr().err
    assert "perfect information" in err and "--joint applies" in err


@pytest.mark.parametrize("game", ["ALE/MsPacman-v5", "ALE/SpaceInvaders-v5"])
def test_atari_blueprint_and_search_smoke(tmp_path, game):
    # The paper's Atari games end to end at a toy budget: a PPO blueprint on real ALE frames
    # (Nature torso), then SPARTA on clones of the real emulator state for a few moves.
    pytest.importorskip("ale_py", reason="the Atari tests need ale-py (extra `atari`)")
    cfg = PPOConfig(
        env=game,
        preset="atari",
        num_envs=1,
        num_steps=8,
        num_minibatches=2,
        update_epochs=1,
        hidden=16,
        total_steps=8,
        eval_episodes=1,
        eval_max_steps=8,
        run_dir=str(tmp_path / "bp"),
        progress=False,
        tensorboard=False,
    )
    trainer = PPOTrainer(cfg)
    trainer.train()
    ckpt = str(tmp_path / "bp" / "checkpoint.pt")
    out = tmp_path / "a.csv"
    argv = ["--env", game, "--blueprint", ckpt, "--planner", "sparta", "--episodes", "1"]
    argv += ["--budget-steps", "18", "--horizon", "1", "--width", "18", "--max-moves", "2"]
    argv += ["--out", str(out), "--no-progress"]
    assert main(argv) == 0
    row = next(csv.DictReader(out.open()))
    assert row["moves_per_episode"] == "2.0" and 0 < float(row["env_steps_per_move"]) <= 18


def test_sticky_action_prob_sets_the_game_and_the_simulators_and_is_recorded(
    tmp_path, capsys, monkeypatch
):
    """``--sticky-action-prob 0`` plays the game without sticky actions (real env and
    simulators), the CSV records the game's probability (the family default when the flag is
    left out), a family without sticky actions refuses the flag, and episode files written
    before the flag existed keep their keys."""
    from qwr_fast.cli.search import SearchConfig, config_key, sticky_kwargs

    pytest.importorskip("minatar", reason="needs the extra: pip install qwr_fast[minatar]")
    bp = _untrained_blueprint("MinAtar/Breakout", tmp_path / "bp")
    out = tmp_path / "res.csv"
    argv = ["--env", "MinAtar/Breakout", "--blueprint", bp, "--planner", "sparta", "--episodes"]
    argv += ["1", "--budget-steps", "12", "--horizon", "2", "--width", "6", "--max-moves", "3"]
    argv += ["--out", str(out), "--no-progress"]
    import qwr_fast.envs

    made = []  # every env the search builds: the real game and the simulators

    def recording_make(*args, **kwargs):
        env = make(*args, **kwargs)
        made.append(env)
        return env

    make = qwr_fast.envs.make
    monkeypatch.setattr(qwr_fast.envs, "make", recording_make)
    assert main(argv) == 0
    assert [e.sticky_action_prob for e in made] == [0.1, 0.1]  # the family's default
    made.clear()
    assert main([*argv, "--sticky-action-prob", "0"]) == 0
    assert [(e.num_envs, e.sticky_action_prob) for e in made] == [(1, 0.0), (6, 0.0)]
    assert [r["sticky_action_prob"] for r in csv.DictReader(out.open())] == ["0.1", "0.0"]
    assert sticky_kwargs(SearchConfig(env="ALE/Pong-v5", sticky_action_prob=0)) == {
        "sticky_action_prob": 0.0
    }
    # the key of a configuration without the flag is the one written before it existed
    old = SearchConfig(env="MinAtar/Breakout", blueprint="bp.pt", planner="policy-ft")
    assert config_key(dataclasses.replace(old, budget_steps=256)) == "da5d3e02edd811b3"
    assert config_key(dataclasses.replace(old, sticky_action_prob=0.0)) != config_key(old)
    capsys.readouterr()
    bad = ["--blueprint", bp, "--planner", "sparta", "--budget-steps", "8", "--no-progress"]
    assert main(["--env", "BitFlip-4", *bad, "--sticky-action-prob", "0"]) == 2
    assert "--sticky-action-prob applies to ALE/<Game>-v5" in capsys.readouterr().err
    assert main(["--env", "MinAtar/Breakout", *bad, "--sticky-action-prob", "1"]) == 2
    assert "--sticky-action-prob must lie in [0, 1), got 1.0" in capsys.readouterr().err
