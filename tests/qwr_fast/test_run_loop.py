"""The trainers' shared loop bookkeeping (qwr_fast/trainers/runlog.py): the run-directory
guard of every trainer, the fresh start that deletes an overwritten run's checkpoints, the
atomic config.json, and the evaluation / checkpoint schedule."""

import dataclasses
import json
import os

import pytest

from qwr_fast.cli.train import ppo_train
from qwr_fast.trainers import aql, dqn, ppo, qwr
from qwr_fast.trainers.runlog import Every, RunLog

TRAINERS = {
    "qwr": (qwr.QWRConfig, qwr.QWRTrainer),
    "aql": (aql.AQLConfig, aql.AQLTrainer),
    "ppo": (ppo.PPOConfig, ppo.PPOTrainer),
    "dqn": (dqn.DQNConfig, dqn.DQNTrainer),
}
ENV = {"qwr": "BitFlip-8", "aql": "BitFlipSubset-8", "ppo": "BitFlip-4", "dqn": "BitFlip-4"}


@pytest.mark.parametrize("stale", ["ckpt_500.pt", "checkpoint.pt"])
@pytest.mark.parametrize("name", list(TRAINERS))
def test_fresh_run_refuses_a_directory_with_checkpoints(tmp_path, name, stale):
    """A fresh run over another run's checkpoints would leave them for a later --resume to
    pick up; it is an error naming --resume and --overwrite, and --overwrite deletes them."""
    config_cls, trainer_cls = TRAINERS[name]
    (tmp_path / stale).write_bytes(b"another run")
    kw = dict(env=ENV[name], run_dir=str(tmp_path), total_steps=8, progress=False)
    with pytest.raises(ValueError, match="--resume .*--overwrite"):
        trainer_cls(config_cls(**kw))
    trainer = trainer_cls(config_cls(**kw, overwrite=True))
    with RunLog(trainer.cfg, 0, ["step"], ["step"]):
        assert not (tmp_path / stale).exists()  # deleted on entry, before any new checkpoint


def test_cli_refusal_is_a_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"another run")
    argv = ["--env", "BitFlip-4", "--run-dir", str(tmp_path), "--total-steps", "8"]
    assert ppo_train(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err


@dataclasses.dataclass
class _Cfg:
    run_dir: str
    total_steps: int = 10
    eval_every: int = 4
    checkpoint_every: int = 5
    progress: bool = False
    resume: str | None = None


def test_runlog_keeps_a_resumed_runs_checkpoints_and_rows(tmp_path):
    cfg = _Cfg(str(tmp_path))
    with RunLog(cfg, 0, ["step"], ["step"]) as log:
        for step in (2, 4, 6):
            log.train_row({"step": step})
    (tmp_path / "ckpt_4.pt").write_bytes(b"x")
    with RunLog(dataclasses.replace(cfg, resume=cfg.run_dir), 4, ["step"], ["step"]) as log:
        log.train_row({"step": 5})
    assert (tmp_path / "ckpt_4.pt").exists()
    rows = (tmp_path / "train.csv").read_text().split()
    assert rows == ["step", "2", "4", "5"]  # the row after the checkpoint (6) is dropped
    assert json.loads((tmp_path / "config.json").read_text())["eval_every"] == 4
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_every_fires_at_multiples_and_at_the_end():
    every = Every(4, step=5)  # resumed at step 5: next multiple is 8
    fired = [s for s in range(6, 15) if every.due(s, final=s == 14)]
    assert fired == [8, 12, 14]
    every = Every(3, step=0)
    assert [s for s in (2, 4, 5, 7) if every.due(s, final=False)] == [4, 7]
