"""Weights & Biases tracking (``--track``, issue 21): offline runs write their W&B files into
RUN_DIR/wandb with the TensorBoard scalars and the config, for every trainer; without the
wandb extra ``--track`` is a one-line error naming it."""

import glob
import json
import sys
from pathlib import Path

import pytest

from qwr_fast.cli.train import dqn_train, qwr_train
from qwr_fast.trainers import aql, dqn, ppo, qwr
from qwr_fast.trainers.tracking import TrackedRunLog

TRACK = dict(track=True, wandb_project="qwr_fast_test", progress=False)


def _configs(tmp_path):
    return {
        "qwr": qwr.QWRTrainer(
            qwr.QWRConfig(
                env="BitFlip-8",
                run_dir=str(tmp_path / "qwr"),
                total_steps=80,
                steps_per_epoch=40,
                critic_steps=2,
                actor_steps=2,
                batch_size=16,
                hidden=16,
                num_envs=2,
                eval_every=40,
                eval_episodes=2,
                device="cpu",
                **TRACK,
            )
        ),
        "aql": aql.AQLTrainer(
            aql.AQLConfig(
                env="BitFlipSubset-4",
                run_dir=str(tmp_path / "aql"),
                total_steps=40,
                steps_per_epoch=20,
                batch_size=8,
                hidden=16,
                num_envs=2,
                eval_every=20,
                eval_episodes=2,
                device="cpu",
                tensorboard=False,
                **TRACK,
            )
        ),
        "ppo": ppo.PPOTrainer(
            ppo.PPOConfig(
                env="BitFlip-4",
                num_envs=2,
                num_steps=8,
                hidden=16,
                total_steps=32,
                eval_every=16,
                eval_episodes=2,
                tensorboard=False,
                run_dir=str(tmp_path / "ppo"),
                **TRACK,
            )
        ),
        "dqn": dqn.DQNTrainer(
            dqn.DQNConfig(
                env="BitFlip-4",
                num_envs=2,
                hidden=16,
                batch_size=8,
                learning_starts=20,
                total_steps=1000,
                eval_every=500,
                eval_episodes=2,
                run_dir=str(tmp_path / "dqn"),
                **TRACK,
            )
        ),
    }


EXPECTED = {  # a train and an eval scalar of each trainer (what TensorBoard gets)
    "qwr": ("train/critic_loss", "eval/return_t0"),
    "aql": ("train/steps_per_s", "eval/return"),
    "ppo": ("train/steps_per_s", "eval/return_greedy"),
    "dqn": ("train/loss", "eval/return_mean_greedy"),
}


def test_track_offline_logs_scalars_and_config_into_the_run_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged: dict[str, list[dict]] = {}
    init = TrackedRunLog._init_wandb

    def spy(self):
        run = init(self)
        calls = logged.setdefault(self.cfg.run_dir, [])
        log = run.log
        run.log = lambda data, *a, **k: (calls.append(dict(data)), log(data, *a, **k))[1]
        return run

    monkeypatch.setattr(TrackedRunLog, "_init_wandb", spy)
    for name, trainer in _configs(tmp_path).items():
        trainer.train()
        run_dir = str(tmp_path / name)
        calls = logged[run_dir]
        keys = set().union(*calls)
        train_key, eval_key = EXPECTED[name]
        assert {"global_step", train_key, eval_key} <= keys, (name, keys)
        assert all("global_step" in c for c in calls)
        # the offline run lives in RUN_DIR/wandb and holds the scalars and the config
        (files,) = glob.glob(f"{run_dir}/wandb/offline-run-*/run-*.wandb")
        data = Path(files).read_bytes()
        assert train_key.encode() in data and eval_key.encode() in data
        assert b"wandb_project" in data and b"qwr_fast_test" in data
        assert json.loads(Path(run_dir, "config.json").read_text())["track"] is True
        assert Path(run_dir, "wandb", "run_id").read_text().strip()


@pytest.mark.parametrize("main", [qwr_train, dqn_train])
def test_track_without_the_extra_is_one_line(tmp_path, monkeypatch, capsys, main):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    run_dir = tmp_path / "run"
    argv = ["--env", "BitFlip-4", "--run-dir", str(run_dir), "--track", "--no-progress"]
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--track" in errors[0] and "qwr_fast[wandb]" in errors[0]
    assert not run_dir.exists()  # nothing ran
