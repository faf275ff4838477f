import csv
import importlib.util
import json

import numpy as np
import pytest
import torch

from qwr_fast.checkpoint import CheckpointError, latest_checkpoint
from qwr_fast.cli.train import aql_train as main
from qwr_fast.trainers.aql import PRESETS, AQLConfig, AQLTrainer

TINY = dict(
    num_envs=2,
    steps_per_epoch=20,
    updates_per_epoch=3,
    learning_starts=20,
    batch_size=8,
    hidden=16,
    proposal_width=8,
    num_proposal=5,
    num_uniform=11,
    entropy_samples=3,
    eval_every=20,
    eval_episodes=2,
    eval_max_steps=20,
    checkpoint_every=20,
    progress=False,
    tensorboard=False,
)


def _run(run_dir, total, **kw):
    cfg = AQLConfig(**{**TINY, **kw, "total_steps": total, "run_dir": str(run_dir)})
    trainer = AQLTrainer(cfg)
    trainer.train()
    return trainer


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "algo,kw",
    [
        ("aql", {}),
        ("uniform-ql", {}),
        ("exhaustive-dqn", {}),
        ("aql", {"stored_argmax": True}),
        ("aql", {"prioritized": True, "per_beta_steps": 60}),
        ("exhaustive-dqn", {"prioritized": True, "per_alpha": 1.0, "per_beta_steps": 60}),
    ],
)
def test_resume_equals_uninterrupted(tmp_path, algo, kw):
    env = "BitFlipSubset-4"
    straight = _run(tmp_path / "a", 60, env=env, algo=algo, seed=3, **kw)
    _run(tmp_path / "b", 40, env=env, algo=algo, seed=3, **kw)
    resumed = AQLTrainer.resumed(str(tmp_path / "b"), total_steps=60)
    assert resumed.global_step == 40
    resumed.train()
    assert _equal_state(straight.net, resumed.net) and _equal_state(straight.target, resumed.target)
    assert straight.num_updates == resumed.num_updates == 9
    if kw.get("prioritized"):
        tree_a, tree_b = straight.replay.tree, resumed.replay.tree
        assert np.array_equal(tree_a.tree, tree_b.tree)
        assert straight.replay.max_priority == resumed.replay.max_priority > 1.0
        assert len(np.unique(tree_a.leaves)) > 2  # updated from TD errors, not all at max
    eval_a = (tmp_path / "a" / "eval.csv").read_text()
    assert eval_a == (tmp_path / "b" / "eval.csv").read_text()
    assert eval_a.count("\n") == 4  # header + 3 evaluations, none duplicated by the resume


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_smoke(tmp_path, preset):
    env = "BitFlipSubset-5"
    if preset == "mujoco":
        if importlib.util.find_spec("mujoco") is None:
            pytest.skip("preset mujoco needs the [mujoco] extra (mujoco not installed)")
        env = "Hopper-v5"
    small = dict(TINY, env=env, preset=preset)
    cfg = AQLConfig(**{**PRESETS[preset], **small, "total_steps": 40, "run_dir": str(tmp_path)})
    trainer = AQLTrainer(cfg)
    last = trainer.train()
    assert last["step"] == 40 and trainer.num_updates == 6
    if preset == "mujoco":
        assert trainer.spec.sizes == (11, 11, 11)
    for name in ("config.json", "eval.csv", "train.csv", "curve.png", "ckpt_40.pt"):
        assert (tmp_path / name).exists(), name
    with open(tmp_path / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["critic_loss"]) == float(rows[-1]["critic_loss"])  # not NaN


def test_cli_contract(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = [
        "--env",
        "BitFlipSubset-6",
        "--algo",
        "aql",
        "--total-steps",
        "40",
        "--seed",
        "1",
        "--run-dir",
        str(run_dir),
        "--num-proposal",
        "4",
        "--num-uniform",
        "12",
        "--preset",
        "bitflip",
        "--learning-starts",
        "20",
        "--updates-per-epoch",
        "2",
        "--steps-per-epoch",
        "20",
        "--eval-episodes",
        "2",
        "--no-progress",
        "--no-tensorboard",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("aql on BitFlipSubset-6: step 40, eval return")
    cfg = json.loads((run_dir / "config.json").read_text())
    assert (cfg["num_proposal"], cfg["num_uniform"], cfg["hidden"]) == (4, 12, 64)  # preset kept
    assert main(["--resume", str(run_dir), "--total-steps", "60", "--no-progress"]) == 0
    assert latest_checkpoint(run_dir).endswith("ckpt_60.pt")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--algo", "exhaustive-dqn", "--env", "BitFlipSubset-20"], "enumerates every action"),
        (["--algo", "aql", "--num-proposal", "0"], "--algo aql needs --num-proposal >= 1"),
        (["--env", "CartPole-v0-nope"], "--env 'CartPole-v0-nope'"),
        (["--env", "Pendulum-v1"], "wrap a Box"),
        (["--bins", "1"], "--bins must be 0 (off) or >= 2"),
        (["--preset", "atari"], "--preset must be one of"),
    ],
)
def test_cli_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main([*argv, "--run-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aql-train: error: ") and message in err and err.count("\n") == 1


def test_bins_discretise_a_box_env(tmp_path):
    trainer = AQLTrainer(
        AQLConfig(**{**TINY, "env": "Pendulum-v1", "bins": 5, "run_dir": str(tmp_path)})
    )
    assert trainer.spec.sizes == (5,) and trainer.spec.kind == "multi_discrete"
    trainer.collect(40)
    assert trainer.global_step == 40 and len(trainer.replay) == 40


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    _run(tmp_path, 20, env="BitFlipSubset-4")
    path = latest_checkpoint(tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        AQLTrainer.resumed(str(tmp_path))
    assert main(["--resume", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("aql-train: error: checkpoint")
